package archive

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameLen bounds member names. No legitimate distribution needs more,
// and tar PAX headers would otherwise allow names of up to a megabyte each.
const maxNameLen = 4096

// checkMemberName rejects member names that could make a consumer that
// extracts the archive write outside its target directory (path traversal,
// absolute paths, Windows drive letters and separators), or that different
// tools would read as different paths (non-canonical forms, invalid UTF-8,
// control characters, which also enable log and terminal injection).
func checkMemberName(name string) error {
	switch {
	case name == "":
		return invalidf("Archive member has an empty name")
	case len(name) > maxNameLen:
		return invalidf("Archive member name is too long: %s", showName(name))
	case !utf8.ValidString(name):
		return invalidf("Archive member name is not valid UTF-8: %s", showName(name))
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return invalidf("Archive member name contains a control character: %s", showName(name))
		}
	}
	if name[0] == '/' {
		return invalidf("Archive member path is absolute: %s", showName(name))
	}
	if hasDriveLetter(name) {
		return invalidf("Archive member path has a drive letter: %s", showName(name))
	}
	// Backslash is a path separator on Windows, so "a\..\..\x" is a
	// traversal there even though it is one component here.
	if strings.IndexByte(name, '\\') >= 0 {
		return invalidf("Archive member name contains a backslash: %s", showName(name))
	}
	// A single trailing slash marks a directory; anything else empty,
	// "." or ".." is a component that extractors resolve.
	for _, c := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		switch c {
		case "..":
			return invalidf("Archive member path escapes the archive: %s", showName(name))
		case "", ".":
			return invalidf("Archive member path is not canonical: %s", showName(name))
		}
	}
	return nil
}

// hasDriveLetter reports whether name starts like "C:", which Windows
// resolves against a drive rather than the extraction directory.
func hasDriveLetter(name string) bool {
	if len(name) < 2 || name[1] != ':' {
		return false
	}
	c := name[0] | 0x20
	return 'a' <= c && c <= 'z'
}

// showName renders a member name for an error message: verbatim when it is
// short and printable, otherwise quoted and truncated, so that a hostile
// name cannot inject text into logs, terminals or HTML.
func showName(name string) string {
	const maxShown = 200
	truncated := false
	if len(name) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name, truncated = name[:cut], true
	}
	printable := utf8.ValidString(name)
	if printable {
		for _, r := range name {
			if !unicode.IsPrint(r) {
				printable = false
				break
			}
		}
	}
	if !printable {
		name = strconv.Quote(name)
	}
	if truncated {
		name += "..."
	}
	return name
}

// memberSet detects duplicate member names. Tools disagree on which of two
// same-named members wins (the first, the last, or an error), so the index
// and an installer could see different files. A file "a" and a directory
// "a/" also count as duplicates.
//
// Names are stored as hashes so that memory stays small and fixed per
// entry even with many long names.
type memberSet map[[sha256.Size]byte]struct{}

func (s memberSet) add(name string) error {
	key := sha256.Sum256([]byte(strings.TrimSuffix(name, "/")))
	if _, dup := s[key]; dup {
		return invalidf("Archive contains duplicate member: %s", showName(name))
	}
	s[key] = struct{}{}
	return nil
}

// sdistLayout enforces that an sdist has exactly one top-level directory,
// which is where PKG-INFO is looked up. A second top-level directory or a
// top-level file would make "the" PKG-INFO ambiguous and would scatter
// files when the sdist is unpacked.
type sdistLayout struct {
	top string
}

func (l *sdistLayout) add(name string, isDir bool) error {
	top, _, nested := strings.Cut(name, "/")
	if !nested && !isDir {
		return invalidf("sdist has a file outside its top-level directory: %s", showName(name))
	}
	if l.top == "" {
		l.top = top
		return nil
	}
	if top != l.top {
		return errMultipleTopDirs
	}
	return nil
}

// pkgInfoPath is where PKG-INFO must be, or "" if no member was seen.
func (l *sdistLayout) pkgInfoPath() string {
	if l.top == "" {
		return ""
	}
	return l.top + "/PKG-INFO"
}
