package pep

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Metadata is a parsed core metadata file: the METADATA file of a wheel or
// the PKG-INFO file of an sdist. The format is a set of RFC 822 style
// headers (PEP 241) optionally followed by a blank line and a body that
// holds the long description (PEP 566).
//
// Parsing follows Python's email.parser with policy compat32, which both
// packaging.metadata.parse_email and importlib.metadata build on, so the
// values seen here are the values Python tools see.
type Metadata struct {
	// Fields holds every header in file order. Name is as written. Value
	// is the header value with folded continuation lines kept verbatim,
	// each with its line ending, and trailing line endings removed (the
	// compat32 unfolding). For Description the indentation older tools
	// added to continuation lines is removed; see ParseMetadata.
	Fields []Field

	// Body is everything after the blank line that ends the headers,
	// byte for byte. Since metadata 2.1 it carries the description.
	Body string
}

// Field is one header of a core metadata file.
type Field struct {
	Name  string
	Value string
}

// knownMetadataVersion reports whether v is a Metadata-Version this
// package understands: 1.0 (PEP 241), 1.1 (PEP 314), 1.2 (PEP 345), 2.1
// (PEP 566), 2.2 (PEP 643), 2.3 (PEP 685), 2.4 (PEP 639) and 2.5, the
// newest revision, which only adds fields. 2.0 belongs to the withdrawn
// PEP 426, but bdist_wheel wrote it into wheels for years, so it is
// accepted too.
func knownMetadataVersion(v string) bool {
	switch v {
	case "1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5":
		return true
	}
	return false
}

// ParseMetadata parses a core metadata file.
//
// Header lines are "Name: value", where the name is printable ASCII other
// than ':' (as in Python's email.feedparser), and lines starting with a
// space or tab continue the previous header. The headers end at the first
// empty line or at end of input; lines end with "\n", "\r\n" or "\r".
//
// Where Python would silently start the body at a malformed header line,
// ParseMetadata returns an error instead. It also fails if the input is not
// UTF-8, if Metadata-Version is missing, or if it names an unknown version.
//
// Description headers written by old tools indent each continuation line
// with eight spaces, or with spaces and a '|' (the core metadata
// specification's encoding for blank and indented lines); that prefix is
// removed so Value holds the original text. See unfoldDescription for how
// the two are told apart.
func ParseMetadata(b []byte) (*Metadata, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid metadata: not valid UTF-8")
	}
	s := string(b)
	m := &Metadata{}

	// The header being collected: its name, the rest of its first line
	// and its continuation lines, each still with its line ending.
	var (
		name  string
		first string
		cont  []string
	)
	flush := func() {
		if name == "" {
			return
		}
		if strings.EqualFold(name, "Description") {
			unfoldDescription(cont)
		}
		value := first + strings.Join(cont, "")
		m.Fields = append(m.Fields, Field{Name: name, Value: strings.TrimRight(value, "\r\n")})
		name, first, cont = "", "", nil
	}

	pos := 0
	for lineno := 1; pos < len(s); lineno++ {
		end := lineEnd(s, pos)
		line := s[pos:end]
		pos = end

		if line[0] == '\n' || line[0] == '\r' {
			// The empty line separating headers from the body.
			m.Body = s[pos:]
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name == "" {
				return nil, fmt.Errorf("invalid metadata: line %d: continuation line before any header", lineno)
			}
			cont = append(cont, line)
			continue
		}

		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !onlyBytes(line[:colon], isHeaderNameByte) {
			if lineno == 1 && strings.HasPrefix(line, "\uFEFF") {
				return nil, errors.New("invalid metadata: file starts with a byte order mark")
			}
			return nil, fmt.Errorf("invalid metadata: line %d: malformed header line %s", lineno, quoteShort(strings.TrimRight(line, "\r\n")))
		}
		flush()
		name = line[:colon]
		// compat32 strips only spaces and tabs after the colon; the line
		// ending stays so that continuation lines join correctly.
		first = strings.TrimLeft(line[colon+1:], " \t")
	}
	flush()

	if len(m.GetAll("Metadata-Version")) == 0 {
		return nil, errors.New("invalid metadata: missing Metadata-Version")
	}
	if v := m.MetadataVersion(); !knownMetadataVersion(v) {
		return nil, fmt.Errorf("invalid metadata: unsupported Metadata-Version %s", quoteShort(v))
	}
	return m, nil
}

// lineEnd returns the index just past the line starting at pos, including
// its terminator. Like Python's universal newlines, "\r\n", "\r" and "\n"
// all end a line.
func lineEnd(s string, pos int) int {
	i := strings.IndexAny(s[pos:], "\r\n")
	if i < 0 {
		return len(s)
	}
	i += pos
	if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
		return i + 2
	}
	return i + 1
}

// unfoldDescription removes, in place, the indentation older tools put on
// the continuation lines of a Description header, so that the value is the
// original text.
//
// Two encodings exist. distutils' rfc822_escape (PKG-INFO up to metadata
// 1.2, and setuptools well after) prefixes every line with eight spaces.
// The core metadata specification instead describes a '|' after the
// indentation so that blank and indented lines survive any RFC 822 parser;
// its prose says seven spaces and its example shows eight. '|' also starts
// reStructuredText table rows, so the pipe form is only assumed when every
// continuation line carries it; otherwise eight spaces are removed where
// present and anything else is left as compat32 delivers it.
func unfoldDescription(lines []string) {
	if len(lines) == 0 {
		return
	}
	pipe := true
	for _, l := range lines {
		if pipePrefixLen(l) == 0 {
			pipe = false
			break
		}
	}
	for i, l := range lines {
		switch {
		case pipe:
			lines[i] = l[pipePrefixLen(l):]
		case strings.HasPrefix(l, "        "):
			lines[i] = l[8:]
		}
	}
}

// pipePrefixLen returns the length of a "       |" or "        |" prefix of
// line, or 0 if it has neither.
func pipePrefixLen(line string) int {
	for _, n := range []int{7, 8} {
		if len(line) > n && line[n] == '|' && strings.Count(line[:n], " ") == n {
			return n + 1
		}
	}
	return 0
}

// isHeaderNameByte matches the field name characters Python's email parser
// accepts (RFC 5322 ftext: printable ASCII except ':').
func isHeaderNameByte(c byte) bool {
	return '!' <= c && c <= '~' && c != ':'
}

// Get returns the value of the first field with the given name, compared
// case-insensitively, or "" if there is none.
func (m *Metadata) Get(name string) string {
	for _, f := range m.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// GetAll returns the values of every field with the given name, compared
// case-insensitively, in file order. Use it for the multiple-use fields:
// Classifier, Requires-Dist, Provides-Extra, Project-URL, Platform,
// Supported-Platform, Dynamic, License-File, Requires-External,
// Provides-Dist, Obsoletes-Dist and the 1.1 Requires/Provides/Obsoletes.
func (m *Metadata) GetAll(name string) []string {
	var vals []string
	for _, f := range m.Fields {
		if strings.EqualFold(f.Name, name) {
			vals = append(vals, f.Value)
		}
	}
	return vals
}

// MetadataVersion returns the Metadata-Version field, trimmed.
func (m *Metadata) MetadataVersion() string {
	return strings.TrimSpace(m.Get("Metadata-Version"))
}

// Name returns the Name field, trimmed. It is not normalized.
func (m *Metadata) Name() string { return strings.TrimSpace(m.Get("Name")) }

// Version returns the Version field, trimmed. It is not normalized.
func (m *Metadata) Version() string { return strings.TrimSpace(m.Get("Version")) }

// Summary returns the Summary field, trimmed.
func (m *Metadata) Summary() string { return strings.TrimSpace(m.Get("Summary")) }

// RequiresPython returns the Requires-Python field (a PEP 440 version
// specifier), trimmed.
func (m *Metadata) RequiresPython() string {
	return strings.TrimSpace(m.Get("Requires-Python"))
}

// Description returns the long description: the Description field if it is
// present and not blank (metadata before 2.1 puts it there), otherwise the
// body (PEP 566).
func (m *Metadata) Description() string {
	if d := m.Get("Description"); strings.TrimSpace(d) != "" {
		return d
	}
	return m.Body
}

// DescriptionContentType returns the Description-Content-Type field
// (PEP 566), trimmed, e.g. "text/markdown; charset=UTF-8".
func (m *Metadata) DescriptionContentType() string {
	return strings.TrimSpace(m.Get("Description-Content-Type"))
}
