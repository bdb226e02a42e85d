// Package pep implements the pure Python packaging rules an index needs:
// project name normalization (PEP 503), version parsing and ordering
// (PEP 440), distribution filenames (PEP 427/491 wheels, PEP 625 and legacy
// sdists) and core metadata files (METADATA / PKG-INFO, PEP 241 through
// PEP 639).
//
// The reference implementation for all of these rules is the Python
// "packaging" library; where this package deliberately differs (it is
// stricter about non-ASCII input and about characters that are unsafe in
// file names) the difference is documented on the function concerned.
//
// Everything here is free of I/O and safe for concurrent use.
package pep
