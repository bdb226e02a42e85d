package pep

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want string // normalized form; "" means invalid
	}{
		{"1.0", "1.0"},
		{"1.0.0", "1.0.0"},
		{"01.002.0003", "1.2.3"},
		{"v1.2", "1.2"},
		{"V1.2", "1.2"},
		{"  1.0\t\n", "1.0"},
		{"\u00a01.0\u3000", "1.0"},
		{"0!1.0", "1.0"},
		{"1!2.0", "1!2.0"},
		{"v1!2.0", "1!2.0"},
		{"1.0a1", "1.0a1"},
		{"1.0alpha1", "1.0a1"},
		{"1.0.a.1", "1.0a1"},
		{"1.0-a-1", "1.0a1"},
		{"1.0_a_1", "1.0a1"},
		{"1.0a", "1.0a0"},
		{"1.0beta2", "1.0b2"},
		{"1.0c2", "1.0rc2"},
		{"1.0pre2", "1.0rc2"},
		{"1.0PREVIEW3", "1.0rc3"},
		{"1.0RC1", "1.0rc1"},
		{"1.0-1", "1.0.post1"},
		{"1.0-r1", "1.0.post1"},
		{"1.0rev2", "1.0.post2"},
		{"1.0_post_2", "1.0.post2"},
		{"1.0.post", "1.0.post0"},
		{"1.0POST1", "1.0.post1"},
		{"1.0.dev", "1.0.dev0"},
		{"1.0-dev-1", "1.0.dev1"},
		{"1.0a1-1", "1.0a1.post1"},
		{"1.0a1.post2.dev3", "1.0a1.post2.dev3"},
		{"1.0a-1", "1.0a1"},        // the pre-release separator wins over "-1"
		{"1.0a--1", "1.0a0.post1"}, // ...unless it is doubled
		{"1.0.dev-", "1.0.dev0"},   // a trailing separator is allowed
		{"1.0.post-+abc", "1.0.post0+abc"},
		{"1.0+abc.5", "1.0+abc.5"},
		{"1.0+ABC-5_x", "1.0+abc.5.x"},
		{"1.0+abc.007", "1.0+abc.7"},
		{"1.0+007abc", "1.0+007abc"},
		{"123456789012345678901234567890.1", "123456789012345678901234567890.1"},
		{"1.0-foo", ""},
		{"", ""},
		{"v", ""},
		{"1.0-", ""},
		{"1.0.", ""},
		{".1", ""},
		{"1..0", ""},
		{"1!", ""},
		{"!1", ""},
		{"1.0+", ""},
		{"1.0+abc.", ""},
		{"1.0+abc..1", ""},
		{"1.0-1-1", ""},
		{"1.0a1b1", ""},
		{"1.0.post1.post2", ""},
		{"1.0 1", ""},
		{"1.0\x00", ""},
		{"1.0+é", ""},
		{"1.0.poſt1", ""},  // Python accepts U+017F as "s"; we do not
		{"1.0+\u212a", ""}, // nor the Kelvin sign as "k"
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := ParseVersion(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseVersion(%q) = %q, want error", tt.in, v)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVersion(%q): got error %v, want %q", tt.in, err, tt.want)
			}
			if got := v.String(); got != tt.want {
				t.Errorf("ParseVersion(%q).String(): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestInvalidVersionError(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"1.0-foo", `invalid version: "1.0-foo"`},
		{"1.0\r\nX-Injected: yes", `invalid version: "1.0\r\nX-Injected: yes"`},
		{strings.Repeat("9", 200) + "x", `invalid version: "` + strings.Repeat("9", 100) + `"...`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseVersion(tt.in)
			if err == nil {
				t.Fatalf("ParseVersion(%q): got nil error, want %s", tt.in, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			var ive *InvalidVersionError
			if !errors.As(err, &ive) || ive.Version != tt.in {
				t.Errorf("got %#v, want *InvalidVersionError for %q", err, tt.in)
			}
		})
	}
}

func mustVersion(t testing.TB, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCompareOrder(t *testing.T) {
	// Strictly increasing, per PEP 440's examples plus epochs and locals.
	ordered := []string{
		"1.0.dev456",
		"1.0a1",
		"1.0a2.dev456",
		"1.0a12.dev456",
		"1.0a12",
		"1.0b1.dev456",
		"1.0b2",
		"1.0b2.post345.dev456",
		"1.0b2.post345",
		"1.0rc1.dev456",
		"1.0rc1",
		"1.0",
		"1.0+abc.5",
		"1.0+abc.7",
		"1.0+5",
		"1.0.post456.dev34",
		"1.0.post456",
		"1.0.15",
		"1.1.dev1",
		"1.9",
		"1.10",
		"2",
		"99999999999999999999",
		"1!0.1",
		"1!1.0",
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := cmp.Compare(i, j)
			t.Run(a+" vs "+b, func(t *testing.T) {
				if got := Compare(mustVersion(t, a), mustVersion(t, b)); got != want {
					t.Errorf("Compare(%q, %q): got %d, want %d", a, b, got, want)
				}
			})
		}
	}
}

func TestCompareEqual(t *testing.T) {
	tests := []struct{ a, b string }{
		{"1.0", "1.0.0"},
		{"1", "1.0.0.0"},
		{"0!1.0", "1.0"},
		{"1.0-1", "1.0.post1"},
		{"1.0c1", "1.0rc1"},
		{"1.0.dev", "1.0.dev0"},
		{"1.0+ABC.01", "1.0.0+abc-1"},
		{"v1.0", "1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.a+" == "+tt.b, func(t *testing.T) {
			a, b := mustVersion(t, tt.a), mustVersion(t, tt.b)
			if got := Compare(a, b); got != 0 {
				t.Errorf("Compare(%q, %q): got %d, want 0", tt.a, tt.b, got)
			}
			if a.Canonical() != b.Canonical() {
				t.Errorf("Canonical: got %q and %q, want equal", a.Canonical(), b.Canonical())
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.0", "1"},
		{"1.0.0", "1"},
		{"0", "0"},
		{"0.0", "0"},
		{"1.10.0", "1.10"},
		{"1.0.1", "1.0.1"},
		{"1!2.0.0rc1.post0.dev0+local.0", "1!2rc1.post0.dev0+local.0"},
		{"2.0+1.0", "2+1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := mustVersion(t, tt.in).Canonical(); got != tt.want {
				t.Errorf("Canonical(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got, want := CanonicalizeVersion("not a version"), "not a version"; got != want {
		t.Errorf("CanonicalizeVersion of an invalid version: got %q, want %q", got, want)
	}
}

func TestVersionPredicates(t *testing.T) {
	tests := []struct {
		in                       string
		public                   string
		local, pre, post, devrel bool
	}{
		{"1.0", "1.0", false, false, false, false},
		{"1.0+abc", "1.0", true, false, false, false},
		{"1!1.0rc1+abc", "1!1.0rc1", true, true, false, false},
		{"1.0.dev1", "1.0.dev1", false, true, false, true},
		{"1.0.post1.dev1", "1.0.post1.dev1", false, true, true, true},
		{"1.0.post1", "1.0.post1", false, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v := mustVersion(t, tt.in)
			if got := v.Public(); got != tt.public {
				t.Errorf("Public: got %q, want %q", got, tt.public)
			}
			if got := v.IsLocal(); got != tt.local {
				t.Errorf("IsLocal: got %v, want %v", got, tt.local)
			}
			if got := v.IsPrerelease(); got != tt.pre {
				t.Errorf("IsPrerelease: got %v, want %v", got, tt.pre)
			}
			if got := v.IsPostrelease(); got != tt.post {
				t.Errorf("IsPostrelease: got %v, want %v", got, tt.post)
			}
			if got := v.IsDevrelease(); got != tt.devrel {
				t.Errorf("IsDevrelease: got %v, want %v", got, tt.devrel)
			}
		})
	}
}

func TestZeroVersion(t *testing.T) {
	var zero Version
	if got := zero.String(); got != "0" {
		t.Errorf("zero String: got %q, want %q", got, "0")
	}
	if got := Compare(zero, mustVersion(t, "0.0")); got != 0 {
		t.Errorf("Compare(zero, 0.0): got %d, want 0", got)
	}
}

func TestVersionAgainstPackaging(t *testing.T) {
	// packagingVersions are the inputs cross-checked against python3-packaging:
	// every alternative spelling PEP 440 allows, ordering corner cases, and
	// strings that must be rejected.
	packagingVersions := []string{
		"1.0", "1.0.0", "1", "1.0.0.0", "0", "0.0", "01.02", "1.01", "1.1", "1.9",
		"1.10", "v1.2", "V1.2", "  1.0  ", "\t1.0\n", "\x1c1.0\x85",
		"1!1.0", "0!1.0", "2!0.1", "v1!1.0",
		"1.0-1", "1.0.post1", "1.0.POST1", "1.0post1", "1.0-r1", "1.0rev2",
		"1.0_post_2", "1.0.post", "1.0r", "1.0.post0",
		"1.0c2", "1.0rc2", "1.0RC2", "1.0pre2", "1.0preview2", "1.0PREVIEW3",
		"1.0alpha1", "1.0a1", "1.0.a.1", "1.0-a-1", "1.0beta", "1.0b2", "1.0a0",
		"1.0.0a", "1.0a10", "1.0rc1",
		"1.0.dev", "1.0.dev0", "1.0dev1", "1.0-dev-1", "1.0a1.dev2", "1.0a1.post1",
		"1.0a1.post1.dev3", "1.0.post1.dev1", "1.0a-1", "1.0a--1", "1.0.dev-",
		"1.0a.post1", "1.0-r-1",
		"1.0.dev1+abc", "1.0+abc.5", "1.0+ABC-5", "1.0+abc_5.x", "1.0+5",
		"1.0+05", "1.0+abc", "1.0+abc.1", "1.0+1.abc", "1.0+abc.007",
		"1.0.post-+abc", "1.0.0+abc", "123456789012345678901234567890",
		// invalid
		"1.0-foo", "", "v", "1.0+", "1.0+abc.", "1.0-", "1!", "!1", "1.0.",
		".1", "1.0..0", "1.0-1-1", "1.0 1", "1.0+abc def", "1.0_", "a1.0",
		"1.0a1b1", "1.0.post1.post2", "1.0\x00", "1.0é", "1.0+é", "dev",
		"1.0.dev1.dev2", "1.0++abc", "1,0", "1.0-dev1-1",
	}
	const script = `
import json, sys
from packaging.version import Version, InvalidVersion
from packaging.utils import canonicalize_version
inputs = json.load(sys.stdin)
res, valid = [], []
for s in inputs:
    try:
        v = Version(s)
    except InvalidVersion:
        res.append({"valid": False})
        continue
    valid.append((v, s))
    res.append({"valid": True, "str": str(v), "public": v.public,
                "canon": canonicalize_version(s), "local": v.local is not None,
                "pre": v.is_prerelease})
order = [s for v, s in sorted(valid, key=lambda p: p[0])]
cmp = [[(a > b) - (a < b) for b, _ in valid] for a, _ in valid]
json.dump({"results": res, "order": order, "cmp": cmp}, sys.stdout)
`
	var py struct {
		Results []struct {
			Valid  bool
			Str    string
			Public string
			Canon  string
			Local  bool
			Pre    bool
		}
		Order []string
		Cmp   [][]int
	}
	runPython(t, script, packagingVersions, &py)
	if len(py.Results) != len(packagingVersions) {
		t.Fatalf("python returned %d results, want %d", len(py.Results), len(packagingVersions))
	}

	var valid []Version
	var validIn []string
	for i, in := range packagingVersions {
		want := py.Results[i]
		t.Run(in, func(t *testing.T) {
			v, err := ParseVersion(in)
			if (err == nil) != want.Valid {
				t.Fatalf("ParseVersion(%q): got error %v, want valid=%v", in, err, want.Valid)
			}
			if err != nil {
				return
			}
			if got := v.String(); got != want.Str {
				t.Errorf("String: got %q, want %q", got, want.Str)
			}
			if got := v.Public(); got != want.Public {
				t.Errorf("Public: got %q, want %q", got, want.Public)
			}
			if got := v.Canonical(); got != want.Canon {
				t.Errorf("Canonical: got %q, want %q", got, want.Canon)
			}
			if got := v.IsLocal(); got != want.Local {
				t.Errorf("IsLocal: got %v, want %v", got, want.Local)
			}
			if got := v.IsPrerelease(); got != want.Pre {
				t.Errorf("IsPrerelease: got %v, want %v", got, want.Pre)
			}
		})
		if v, err := ParseVersion(in); err == nil {
			valid = append(valid, v)
			validIn = append(validIn, in)
		}
	}
	if len(valid) != len(py.Cmp) {
		t.Fatalf("got %d valid versions, python has %d", len(valid), len(py.Cmp))
	}

	t.Run("pairwise", func(t *testing.T) {
		for i := range valid {
			for j := range valid {
				if got, want := Compare(valid[i], valid[j]), py.Cmp[i][j]; got != want {
					t.Errorf("Compare(%q, %q): got %d, want %d", validIn[i], validIn[j], got, want)
				}
			}
		}
	})
	t.Run("sorted", func(t *testing.T) {
		idx := make([]int, len(valid))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return Compare(valid[a], valid[b]) })
		got := make([]string, len(idx))
		for i, k := range idx {
			got[i] = validIn[k]
		}
		if !slices.Equal(got, py.Order) {
			t.Errorf("sorted order:\ngot  %q\nwant %q", got, py.Order)
		}
	})
}
