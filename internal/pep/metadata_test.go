package pep

import (
	"reflect"
	"strings"
	"testing"
)

// Samples of every metadata version, written the way the tools of the time
// wrote them.
const (
	metadata10 = `Metadata-Version: 1.0
Name: oldpkg
Version: 0.1
Summary: An old package
Home-page: http://example.com/
Author: A. Author
Author-email: a@example.com
License: MIT
Description: First line.
        
        Second paragraph
            indented.
Platform: UNKNOWN
`

	metadata11 = `Metadata-Version: 1.1
Name: Classic
Version: 1.1
Summary: Classifiers arrive
Download-URL: http://example.com/classic-1.1.tar.gz
Classifier: Development Status :: 5 - Production/Stable
Classifier: License :: OSI Approved :: MIT License
Classifier: Programming Language :: Python :: 2
Requires: os
Provides: classic
`

	metadata12 = "Metadata-Version: 1.2\n" +
		"Name: mathfuncs\n" +
		"Version: 1.2\n" +
		"Maintainer: M. Aintainer\n" +
		"Requires-Python: >=2.7, !=3.0.*\n" +
		"Requires-Dist: pkginfo\n" +
		"Requires-Dist: PasteDeploy\n" +
		"Requires-Dist: zope.interface (>3.5.0)\n" +
		"Project-URL: Bug Tracker, http://bitbucket.org/tarek/distribute/issues/\n" +
		"Description: This project provides powerful math functions\n" +
		"        |For example, you can use `sum()` to sum numbers:\n" +
		"        |\n" +
		"        |Example::\n" +
		"        |\n" +
		"        |    >>> sum(1, 2)\n" +
		"        |    3\n" +
		"        |\n" +
		"License: GPL\n"

	metadata21 = `Metadata-Version: 2.1
Name: modern
Version: 2.1.0
Summary: Body descriptions
License: Copyright (c) 2024 Somebody
        
        Permission is hereby granted, free of charge, to any person obtaining
        a copy of this software.
Classifier: Programming Language :: Python :: 3
Classifier: Operating System :: OS Independent
Requires-Python: >=3.8
Description-Content-Type: text/markdown; charset=UTF-8
Provides-Extra: socks
Requires-Dist: idna<4,>=2.5
Requires-Dist: PySocks!=1.5.7,>=1.5.6; extra == "socks"

# Modern

Héllo wörld — 日本語 ✓

    code block
`

	metadata22 = "Metadata-Version: 2.2\r\n" +
		"Name: crlf-pkg\r\n" +
		"Version: 2.2\r\n" +
		"Dynamic: Classifier\r\n" +
		"Dynamic: Requires-Dist\r\n" +
		"Keywords: one,two\r\n" +
		"  three\r\n" +
		"\r\n" +
		"Body with CRLF.\r\nSecond line.\r\n"

	metadata23 = `Metadata-Version: 2.3
Name: hatched
Version: 2.3
Project-URL: Homepage, https://example.com
Project-URL: Source, https://example.com/src
Author-email: Jane <jane@example.com>, "John, Q" <john@example.com>
Provides-Extra: test
Requires-Dist: pytest; extra == 'test'
Description-Content-Type: text/x-rst

Title
=====
`

	metadata24 = `Metadata-Version: 2.4
Name: licensed
Version: 2.4
License-Expression: MIT OR Apache-2.0
License-File: LICENSE-MIT
License-File: LICENSE-APACHE
License-File: licenses/NOTICE
Description-Content-Type: text/plain

plain text body`
)

func TestParseMetadataFields(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []Field
		body   string
	}{
		{"1.0 folded description", metadata10, []Field{
			{"Metadata-Version", "1.0"},
			{"Name", "oldpkg"},
			{"Version", "0.1"},
			{"Summary", "An old package"},
			{"Home-page", "http://example.com/"},
			{"Author", "A. Author"},
			{"Author-email", "a@example.com"},
			{"License", "MIT"},
			{"Description", "First line.\n\nSecond paragraph\n    indented."},
			{"Platform", "UNKNOWN"},
		}, ""},
		{"1.2 pipe description", metadata12, []Field{
			{"Metadata-Version", "1.2"},
			{"Name", "mathfuncs"},
			{"Version", "1.2"},
			{"Maintainer", "M. Aintainer"},
			{"Requires-Python", ">=2.7, !=3.0.*"},
			{"Requires-Dist", "pkginfo"},
			{"Requires-Dist", "PasteDeploy"},
			{"Requires-Dist", "zope.interface (>3.5.0)"},
			{"Project-URL", "Bug Tracker, http://bitbucket.org/tarek/distribute/issues/"},
			{"Description", "This project provides powerful math functions\nFor example, you can use `sum()` to sum numbers:\n\nExample::\n\n    >>> sum(1, 2)\n    3"},
			{"License", "GPL"},
		}, ""},
		{"2.2 CRLF and folded keywords", metadata22, []Field{
			{"Metadata-Version", "2.2"},
			{"Name", "crlf-pkg"},
			{"Version", "2.2"},
			{"Dynamic", "Classifier"},
			{"Dynamic", "Requires-Dist"},
			{"Keywords", "one,two\r\n  three"},
		}, "Body with CRLF.\r\nSecond line.\r\n"},
		{"seven-space pipe description", "Metadata-Version: 1.2\nDescription: a\n       |b\n       |\n       |  c\n", []Field{
			{"Metadata-Version", "1.2"},
			{"Description", "a\nb\n\n  c"},
		}, ""},
		{"eight-space description with table", "Metadata-Version: 1.1\nDescription: Table:\n        \n        +---+\n        | a |\n        +---+\n", []Field{
			{"Metadata-Version", "1.1"},
			{"Description", "Table:\n\n+---+\n| a |\n+---+"},
		}, ""},
		{"only Description is unindented", "Metadata-Version: 1.1\nSummary: a\n        b\n", []Field{
			{"Metadata-Version", "1.1"},
			{"Summary", "a\n        b"},
		}, ""},
		{"no trailing newline", "Metadata-Version: 2.1\nName: x", []Field{
			{"Metadata-Version", "2.1"},
			{"Name", "x"},
		}, ""},
		{"empty first line of value", "Metadata-Version:2.1\nLicense:\n  MIT\n\tor not \n", []Field{
			{"Metadata-Version", "2.1"},
			{"License", "\n  MIT\n\tor not "},
		}, ""},
		{"lone CR line endings", "Metadata-Version: 2.1\rName: cr\r\rbody\r", []Field{
			{"Metadata-Version", "2.1"},
			{"Name", "cr"},
		}, "body\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseMetadata: got error %v", err)
			}
			if !reflect.DeepEqual(m.Fields, tt.fields) {
				t.Errorf("Fields:\ngot  %q\nwant %q", m.Fields, tt.fields)
			}
			if m.Body != tt.body {
				t.Errorf("Body: got %q, want %q", m.Body, tt.body)
			}
		})
	}
}

func TestMetadataAccessors(t *testing.T) {
	tests := []struct {
		name                                    string
		in                                      string
		mdVersion, pkgName, version, summary    string
		requiresPython, descContentType, descIn string // descIn: substring of Description()
		multi                                   string
		multiWant                               []string
	}{
		{"1.0", metadata10, "1.0", "oldpkg", "0.1", "An old package", "", "", "Second paragraph\n    indented.", "platform", []string{"UNKNOWN"}},
		{"1.1", metadata11, "1.1", "Classic", "1.1", "Classifiers arrive", "", "", "", "CLASSIFIER", []string{
			"Development Status :: 5 - Production/Stable",
			"License :: OSI Approved :: MIT License",
			"Programming Language :: Python :: 2",
		}},
		{"1.2", metadata12, "1.2", "mathfuncs", "1.2", "", ">=2.7, !=3.0.*", "", "    >>> sum(1, 2)\n    3", "Requires-Dist", []string{
			"pkginfo", "PasteDeploy", "zope.interface (>3.5.0)",
		}},
		{"2.1", metadata21, "2.1", "modern", "2.1.0", "Body descriptions", ">=3.8", "text/markdown; charset=UTF-8", "Héllo wörld — 日本語 ✓", "requires-dist", []string{
			"idna<4,>=2.5", `PySocks!=1.5.7,>=1.5.6; extra == "socks"`,
		}},
		{"2.2", metadata22, "2.2", "crlf-pkg", "2.2", "", "", "", "Second line.", "Dynamic", []string{"Classifier", "Requires-Dist"}},
		{"2.3", metadata23, "2.3", "hatched", "2.3", "", "", "text/x-rst", "Title\n=====\n", "Project-URL", []string{
			"Homepage, https://example.com", "Source, https://example.com/src",
		}},
		{"2.4", metadata24, "2.4", "licensed", "2.4", "", "", "text/plain", "plain text body", "License-File", []string{
			"LICENSE-MIT", "LICENSE-APACHE", "licenses/NOTICE",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseMetadata: got error %v", err)
			}
			for _, c := range []struct{ what, got, want string }{
				{"MetadataVersion", m.MetadataVersion(), tt.mdVersion},
				{"Name", m.Name(), tt.pkgName},
				{"Version", m.Version(), tt.version},
				{"Summary", m.Summary(), tt.summary},
				{"RequiresPython", m.RequiresPython(), tt.requiresPython},
				{"DescriptionContentType", m.DescriptionContentType(), tt.descContentType},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			if d := m.Description(); !strings.Contains(d, tt.descIn) {
				t.Errorf("Description: got %q, want it to contain %q", d, tt.descIn)
			}
			if got := m.GetAll(tt.multi); !reflect.DeepEqual(got, tt.multiWant) {
				t.Errorf("GetAll(%q): got %q, want %q", tt.multi, got, tt.multiWant)
			}
		})
	}
}

func TestMetadataGet(t *testing.T) {
	m, err := ParseMetadata([]byte("metadata-version: 2.1\nname: first\nNAME: second\nSummary:  padded  \n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{m.Get("Name"), "first"},
		{m.Get("Metadata-Version"), "2.1"},
		{m.Get("Summary"), "padded  "},
		{m.Summary(), "padded"},
		{m.Get("Missing"), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := m.GetAll("missing"); got != nil {
		t.Errorf("GetAll(missing): got %q, want nil", got)
	}
	if got, want := m.GetAll("name"), []string{"first", "second"}; !reflect.DeepEqual(got, want) {
		t.Errorf("GetAll(name): got %q, want %q", got, want)
	}
}

func TestMetadataDescriptionPrecedence(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"header", "Metadata-Version: 1.2\nDescription: in header\n", "in header"},
		{"body", "Metadata-Version: 2.1\n\nin body\n", "in body\n"},
		{"header wins", "Metadata-Version: 2.1\nDescription: header\n\nbody", "header"},
		{"blank header falls back", "Metadata-Version: 2.1\nDescription: \n\nbody", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Description(); got != tt.want {
				t.Errorf("Description: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseMetadataErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "missing Metadata-Version"},
		{"no version", "Name: x\nVersion: 1\n", "missing Metadata-Version"},
		{"version only in body", "Name: x\n\nMetadata-Version: 2.1\n", "missing Metadata-Version"},
		{"unknown version", "Metadata-Version: 3.0\n", `unsupported Metadata-Version "3.0"`},
		{"blank version", "Metadata-Version: \n", `unsupported Metadata-Version ""`},
		{"invalid UTF-8", "Metadata-Version: 2.1\nSummary: \xff\xfe\n", "not valid UTF-8"},
		{"no colon", "Metadata-Version: 2.1\nthis is not a header\n", `line 2: malformed header line "this is not a header"`},
		{"space in name", "Metadata-Version: 2.1\nHome page: x\n", "line 2: malformed header line"},
		{"empty name", "Metadata-Version: 2.1\n: x\n", "line 2: malformed header line"},
		{"non-ASCII name", "Metadata-Version: 2.1\nNäme: x\n", "line 2: malformed header line"},
		{"mbox From line", "From nobody\nMetadata-Version: 2.1\n", "line 1: malformed header line"},
		{"leading continuation", " Metadata-Version: 2.1\n", "line 1: continuation line before any header"},
		{"byte order mark", "\uFEFFMetadata-Version: 2.1\n", "byte order mark"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseMetadata(%q): got %+v, want error containing %q", tt.in, m, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestMetadataAgainstEmailParser compares the parse with Python's
// email.parser under policy compat32. That is what
// packaging.metadata.parse_email is built on; Debian's python3-packaging
// 23.0 predates packaging.metadata, so the email package is used directly.
// Description unfolding is not part of compat32, so the Python side applies
// the same prefix rule before comparing.
func TestMetadataAgainstEmailParser(t *testing.T) {
	samples := []string{metadata10, metadata11, metadata12, metadata21, metadata22, metadata23, metadata24}
	const script = `
import email.parser, email.policy, json, re, sys
def unfold(v):
    first, *cont = v.split("\n")
    pipe = re.compile(r" {7,8}[|]")
    if cont and all(pipe.match(l) for l in cont):
        cont = [pipe.sub("", l, count=1) for l in cont]
    else:
        cont = [l[8:] if l.startswith(" " * 8) else l for l in cont]
    return "\n".join([first] + cont).rstrip("\r\n")
out = []
for s in json.load(sys.stdin):
    msg = email.parser.Parser(policy=email.policy.compat32).parsestr(s)
    assert not msg.defects, msg.defects
    fields = [[k, unfold(v) if k.lower() == "description" else v] for k, v in msg.items()]
    out.append({"fields": fields, "body": msg.get_payload()})
json.dump(out, sys.stdout)
`
	var want []struct {
		Fields [][2]string
		Body   string
	}
	runPython(t, script, samples, &want)
	for i, s := range samples {
		t.Run(strings.SplitN(s, "\n", 2)[0], func(t *testing.T) {
			m, err := ParseMetadata([]byte(s))
			if err != nil {
				t.Fatalf("ParseMetadata: got error %v", err)
			}
			got := make([][2]string, len(m.Fields))
			for j, f := range m.Fields {
				got[j] = [2]string{f.Name, f.Value}
			}
			if !reflect.DeepEqual(got, want[i].Fields) {
				t.Errorf("Fields:\ngot  %q\nwant %q", got, want[i].Fields)
			}
			if m.Body != want[i].Body {
				t.Errorf("Body: got %q, want %q", m.Body, want[i].Body)
			}
		})
	}
}
