package pep

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseVersion checks that normalization is a fixed point and that
// Compare is a consistent total order agreeing with Canonical.
func FuzzParseVersion(f *testing.F) {
	seeds := [][2]string{
		{"1.0", "1.0.0"},
		{"v1!2.0rc1.post2.dev3+abc.5", "1!2.0c1-2.dev3+ABC-05"},
		{"1.0-1", "1.0_post_2"},
		{"1.0PREVIEW3", "1.0a1"},
		{"1.0a-1", "1.0a--1"},
		{"1.0.dev-", "1.0.post-+abc"},
		{"  1.0\t", "1.0+1"},
		{"1.0+abc", "1.0+1.abc"},
		{"99999999999999999999999", "1.0.dev0"},
		{"1.0-foo", ""},
		{"1!", "+"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, sa, sb string) {
		a, errA := ParseVersion(sa)
		b, errB := ParseVersion(sb)
		for _, p := range []struct {
			in  string
			v   Version
			err error
		}{{sa, a, errA}, {sb, b, errB}} {
			if p.err != nil {
				if msg := p.err.Error(); strings.ContainsAny(msg, "\r\n") {
					t.Errorf("error for %q contains a line break: %q", p.in, msg)
				}
				continue
			}
			s := p.v.String()
			again, err := ParseVersion(s)
			if err != nil {
				t.Fatalf("String() of %q is %q, which does not parse: %v", p.in, s, err)
			}
			if got := again.String(); got != s {
				t.Errorf("%q: String() %q re-parses to %q", p.in, s, got)
			}
			if c := Compare(p.v, again); c != 0 {
				t.Errorf("%q: Compare with its re-parsed String(): got %d, want 0", p.in, c)
			}
			if c := Compare(p.v, p.v); c != 0 {
				t.Errorf("%q: Compare with itself: got %d, want 0", p.in, c)
			}
			canon, err := ParseVersion(p.v.Canonical())
			if err != nil {
				t.Fatalf("Canonical() of %q is %q, which does not parse: %v", p.in, p.v.Canonical(), err)
			}
			if c := Compare(p.v, canon); c != 0 || canon.Canonical() != p.v.Canonical() {
				t.Errorf("%q: Canonical %q is not an equal fixed point", p.in, p.v.Canonical())
			}
			if !strings.HasPrefix(s, p.v.Public()) || p.v.IsLocal() != strings.Contains(s, "+") {
				t.Errorf("%q: Public %q / IsLocal %v inconsistent with %q", p.in, p.v.Public(), p.v.IsLocal(), s)
			}
		}
		if errA != nil || errB != nil {
			return
		}
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba {
			t.Errorf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", sa, sb, ab, sb, sa, ba)
		}
		if (ab == 0) != (a.Canonical() == b.Canonical()) {
			t.Errorf("Compare(%q, %q) = %d but Canonical forms are %q and %q", sa, sb, ab, a.Canonical(), b.Canonical())
		}
	})
}

// FuzzParseWheelFilename checks that accepted names are safe and are
// exactly reassembled from their parts.
func FuzzParseWheelFilename(f *testing.F) {
	for _, s := range []string{
		"requests-2.31.0-py3-none-any.whl",
		"six-1.16.0-py2.py3-none-any.whl",
		"zope.interface-6.0-1-cp39-cp39-win_amd64.whl",
		"My_Pkg-1.0_post_2-20240101.abc_1-py3-none-any.whl",
		"pkg-1!2.0+local.1-py3-none-any.whl",
		"../foo-1.0-py3-none-any.whl",
		"foo__bar-1.0-py3-none-any.whl",
		"foo-1.0--py3-none-any.whl",
		"foo-1.0-py3.-none-any.whl",
		"foo-1.0-py3-none-any.whl\x00",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		w, err := ParseWheelFilename(name)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error contains a line break: %q", err)
			}
			return
		}
		checkSafeFilename(t, name)
		if !ValidProjectName(w.Name) {
			t.Errorf("%q: accepted invalid name %q", name, w.Name)
		}
		if _, err := ParseVersion(w.Version); err != nil {
			t.Errorf("%q: accepted invalid version: %v", name, err)
		}
		parts := []string{w.Name, w.Version}
		if w.Build != "" {
			parts = append(parts, w.Build)
		}
		parts = append(parts,
			strings.Join(w.PythonTags, "."), strings.Join(w.ABITags, "."), strings.Join(w.PlatformTags, "."))
		if got := strings.Join(parts, "-") + ".whl"; got != name {
			t.Errorf("reassembled %q from %+v, want %q", got, w, name)
		}
		if len(w.Tags()) != len(w.PythonTags)*len(w.ABITags)*len(w.PlatformTags) || len(w.Tags()) == 0 {
			t.Errorf("%q: Tags() = %q", name, w.Tags())
		}
	})
}

// FuzzParseSdistFilename checks that accepted names are safe, reassemble
// exactly, and that the PEP 625 name built from them parses back to the
// same project and version.
func FuzzParseSdistFilename(f *testing.F) {
	for _, s := range []string{
		"my_project-1.0.tar.gz",
		"name-with-dashes-1.0.tar.gz",
		"zope.interface-4.0.zip",
		"foo-1.0-dev.tar.gz",
		"foo-2-1.tar.gz",
		"foo-1!2.0+local.tar.gz",
		"../foo-1.0.tar.gz",
		"foo-1.0..tar.gz",
		"foo-.tar.gz",
		"-1.0.zip",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		sd, err := ParseSdistFilename(name)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error contains a line break: %q", err)
			}
			return
		}
		checkSafeFilename(t, name)
		if got := sd.Name + "-" + sd.Version + sd.Ext; got != name {
			t.Errorf("reassembled %q from %+v, want %q", got, sd, name)
		}
		if !ValidProjectName(sd.Name) {
			t.Errorf("%q: accepted invalid name %q", name, sd.Name)
		}
		v, err := ParseVersion(sd.Version)
		if err != nil {
			t.Fatalf("%q: accepted invalid version: %v", name, err)
		}
		canonical := SdistFilenameFor(sd.Name, sd.Version)
		again, err := ParseSdistFilename(canonical)
		if err != nil {
			t.Fatalf("%q: PEP 625 name %q does not parse: %v", name, canonical, err)
		}
		if NormalizeName(again.Name) != NormalizeName(sd.Name) || again.Version != v.String() {
			t.Errorf("%q: PEP 625 name %q parses to %+v", name, canonical, again)
		}
	})
}

func checkSafeFilename(t *testing.T, name string) {
	t.Helper()
	if strings.ContainsAny(name, "/\\\x00 ") || strings.Contains(name, "..") {
		t.Errorf("accepted unsafe file name %q", name)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			t.Errorf("accepted file name %q with byte %#x", name, name[i])
		}
	}
}

// FuzzParseMetadata checks that parsing never panics and that serializing
// the parsed headers (other than Description, whose indentation is
// rewritten) and body yields the same parse.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		metadata10, metadata11, metadata12, metadata21, metadata22, metadata23, metadata24,
		"Metadata-Version: 2.1\nName: x\n",
		"Metadata-Version: 2.1\rName: cr\r\rbody\r",
		"Metadata-Version:2.1\nLicense:\n  MIT\n\tor not \n",
		"Metadata-Version: 2.1\nDescription: a\n       |b\n       |\n",
		" Metadata-Version: 2.1\n",
		"Metadata-Version: 3.0\n",
		"\uFEFFMetadata-Version: 2.1\n",
		"Metadata-Version: 2.1\n\xff",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(data)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error contains a line break: %q", err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8 %q", data)
		}
		if !knownMetadataVersion(m.MetadataVersion()) {
			t.Errorf("accepted Metadata-Version %q", m.MetadataVersion())
		}
		var b strings.Builder
		var want []Field
		for _, fl := range m.Fields {
			if fl.Name == "" || strings.ContainsAny(fl.Name, ": \t\r\n") {
				t.Errorf("bad field name %q", fl.Name)
			}
			if strings.HasSuffix(fl.Value, "\n") || strings.HasSuffix(fl.Value, "\r") {
				t.Errorf("field %q value %q ends with a line break", fl.Name, fl.Value)
			}
			if strings.EqualFold(fl.Name, "Description") {
				continue
			}
			want = append(want, fl)
			b.WriteString(fl.Name + ": " + fl.Value + "\n")
		}
		b.WriteString("\n" + m.Body)
		again, err := ParseMetadata([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-serialized metadata %q does not parse: %v", b.String(), err)
		}
		if len(again.Fields) != len(want) {
			t.Fatalf("re-parse: got %q, want %q", again.Fields, want)
		}
		for i := range want {
			if again.Fields[i] != want[i] {
				t.Errorf("re-parse field %d: got %q, want %q", i, again.Fields[i], want[i])
			}
		}
		if again.Body != m.Body {
			t.Errorf("re-parse body: got %q, want %q", again.Body, m.Body)
		}
	})
}

// FuzzNormalizeName checks the algebra of the name functions.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{
		"requests", "Foo__Bar", "zope.interface", "-_.", "Pi1L0w", "Ünïcode", "\u0130", "\xff", "",
		"\xb5\xc4.\xb0", // removing '.' used to join the bytes of U+0130
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := NormalizeName(name)
		if again := NormalizeName(n); again != n {
			t.Errorf("NormalizeName not idempotent on %q: %q then %q", name, n, again)
		}
		if strings.ContainsAny(n, "_.") || strings.Contains(n, "--") {
			t.Errorf("NormalizeName(%q) = %q still has separators to collapse", name, n)
		}
		u := UltranormalizeName(name)
		if again := UltranormalizeName(u); again != u {
			t.Errorf("UltranormalizeName not idempotent on %q: %q then %q", name, u, again)
		}
		if via := UltranormalizeName(n); via != u {
			t.Errorf("UltranormalizeName(%q) = %q but via NormalizeName %q", name, u, via)
		}
		if ValidProjectName(name) {
			if !ValidProjectName(n) {
				t.Errorf("NormalizeName(%q) = %q is not a valid name", name, n)
			}
			if n != strings.ToLower(n) || strings.ContainsAny(u, "-_.lio") {
				t.Errorf("%q: normalized %q, ultranormalized %q", name, n, u)
			}
		}
	})
}
