package pep

import "testing"

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"requests", "requests"},
		{"Django", "django"},
		{"zope.interface", "zope-interface"},
		{"Foo__Bar", "foo-bar"},
		{"foo-_.-bar", "foo-bar"},
		{"-foo-", "-foo-"},
		{"A.B_C-D", "a-b-c-d"},
		{"", ""},
		{"Ünïcode", "ünïcode"},
		{"a--b", "a-b"},
		{"-", "-"},
		{"foo-bar-2", "foo-bar-2"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := NormalizeName(tt.in); got != tt.want {
				t.Errorf("NormalizeName(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNormalizeNameNormalizedDoesNotCopy: a name that is already normalized
// (every /simple/<name>/ request pip sends) comes back as it is, without a
// copy.
func TestNormalizeNameNormalizedDoesNotCopy(t *testing.T) {
	for _, name := range []string{"foo-bar", "requests", "p0000001", "a-b-c-2"} {
		var got string
		if allocs := testing.AllocsPerRun(100, func() { got = NormalizeName(name) }); allocs != 0 || got != name {
			t.Errorf("NormalizeName(%q): %q with %.0f allocations, want it back with none", name, got, allocs)
		}
	}
}

func TestValidProjectName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"A1", true},
		{"zope.interface", true},
		{"foo_bar-baz", true},
		{"foo__bar", true},
		{"1", true},
		{"", false},
		{"-foo", false},
		{"foo-", false},
		{".foo", false},
		{"foo bar", false},
		{"foo/bar", false},
		{"foo\n", false},
		{"foo\x00", false},
		{"föo", false},
		{"\u017f", false}, // matches [A-Z] under Python's re.IGNORECASE
		{"\u212a", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ValidProjectName(tt.in); got != tt.want {
				t.Errorf("ValidProjectName(%q): got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestUltranormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"requests", "requests"},
		{"Hello-World", "he110w0r1d"},
		{"h.e_l-l.o", "he110"},
		{"LIO", "110"},
		{"pi11ow", "p1110w"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := UltranormalizeName(tt.in); got != tt.want {
				t.Errorf("UltranormalizeName(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if a, b := UltranormalizeName("pillow"), UltranormalizeName("Pi1L0w"); a != b {
		t.Errorf("pillow and Pi1L0w: got %q and %q, want equal", a, b)
	}
}

func TestNormalizeNameAgainstPackaging(t *testing.T) {
	names := []string{
		"requests", "Django", "zope.interface", "Foo__Bar", "foo-_.-bar",
		"-foo-", "A.B_C-D", "", "foo..bar", "FOO", "a-b", "a_b", "a.b",
		"___", "Ünïcode", "x.Y_z", "123",
	}
	const script = `
import json, sys
from packaging.utils import canonicalize_name
json.dump([canonicalize_name(n) for n in json.load(sys.stdin)], sys.stdout)
`
	var want []string
	runPython(t, script, names, &want)
	for i, n := range names {
		t.Run(n, func(t *testing.T) {
			if got := NormalizeName(n); got != want[i] {
				t.Errorf("NormalizeName(%q): got %q, want %q", n, got, want[i])
			}
		})
	}
}
