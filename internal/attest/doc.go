// Package attest verifies PEP 740 digital attestations.
package attest
