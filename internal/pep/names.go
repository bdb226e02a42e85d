package pep

import (
	"strings"
	"unicode/utf8"
)

// NormalizeName returns the PEP 503 normalized form of a project name:
// every run of '-', '_' and '.' becomes a single '-' and the result is
// lower-cased, i.e. Python's re.sub(r"[-_.]+", "-", name).lower().
//
// Two names refer to the same project exactly when their normalized forms
// are equal, so this is the key used for lookups and for the /simple/ URLs.
func NormalizeName(name string) string {
	if isNormalized(name) {
		return name // the common case on every /simple/ request: no copy
	}
	name = validUTF8(name)
	var b strings.Builder
	b.Grow(len(name))
	inRun := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isNameSeparator(c) {
			if !inRun {
				b.WriteByte('-')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteByte(c)
	}
	// Lower-casing after collapsing is safe: no character lower-cases to
	// one of the separators.
	return strings.ToLower(b.String())
}

// isNormalized reports whether name is already its own normalized form:
// lower-case ASCII letters, digits and single '-'s only.
func isNormalized(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && (i == 0 || name[i-1] != '-'):
		default:
			return false
		}
	}
	return true
}

// ValidProjectName reports whether name is a valid project name, i.e. it
// matches ^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$ case-insensitively (the
// core metadata "Name" rule, originally PEP 508).
//
// Only ASCII is accepted. Python's re.IGNORECASE would also let "ſ"
// (U+017F) and the Kelvin sign (U+212A) through and its "$" tolerates a
// trailing newline; both are rejected here on purpose.
func ValidProjectName(name string) bool {
	if name == "" {
		return false
	}
	if !isASCIIAlnum(name[0]) || !isASCIIAlnum(name[len(name)-1]) {
		return false
	}
	for i := 1; i < len(name)-1; i++ {
		if c := name[i]; !isASCIIAlnum(c) && !isNameSeparator(c) {
			return false
		}
	}
	return true
}

// UltranormalizeName returns the form Warehouse (PyPI) uses to refuse new
// projects whose names are confusingly similar to existing ones: the
// separators '-', '_' and '.' are removed, the name is lower-cased, and then
// 'l' and 'i' become '1' and 'o' becomes '0'. Because lower-casing comes
// first, 'L', 'I' and 'O' are folded as well.
func UltranormalizeName(name string) string {
	name = validUTF8(name)
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isNameSeparator(c) {
			b.WriteByte(c)
		}
	}
	lower := strings.ToLower(b.String())
	return strings.Map(func(r rune) rune {
		switch r {
		case 'l', 'i':
			return '1'
		case 'o':
			return '0'
		}
		return r
	}, lower)
}

// validUTF8 replaces invalid UTF-8 with U+FFFD, the closest equivalent of
// the Python str these rules are defined on. Without it, removing a
// separator could join stray bytes into a new character.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// isNameSeparator reports whether c is one of the characters PEP 503 treats
// as interchangeable in project names.
func isNameSeparator(c byte) bool {
	return c == '-' || c == '_' || c == '.'
}

func isASCIIAlnum(c byte) bool {
	return isASCIIDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isASCIIDigit(c byte) bool {
	return '0' <= c && c <= '9'
}
