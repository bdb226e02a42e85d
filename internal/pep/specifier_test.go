package pep

import "testing"

// specifierSamples are Requires-Python values seen in real packages, every
// operator and spelling packaging accepts, and strings it refuses.
var specifierSamples = []string{
	">=3.8", ">=3.8,<4", ">= 3.8, < 4", ">=3.6, !=3.7.*", "~=3.9", "==3.*", "!=3.0.*,!=3.1.*",
	"", " ", ">=3.8,", ",>=3.8", ">=3.8,,<4", "===foobar", "== 3.10", "==3.10+local", "!=1.0+abc.1",
	">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*", ">3", "<3.13", "<=3.12", ">=v3.8", ">=3.8rc1", ">=1!2.0",
	">=3.8.post1", ">=3.8.dev0", "~=3.9.0", "==2.0.0a1",
	// invalid
	"3.8", ">=", ">=3.8 <4", ">=3.8;<4", "python>=3.8", ">=3.8+local", "~=3", "~=3.8+local", ">=3.*",
	"~=3.8.*", "==3.8a1.*", "=>3.8", "=3.8", ">>3.8", ">=3..8", ">=3.8 .1", "===foo bar", "===foo;",
	"any", "*", ">=3.8\x00", ">=3.8é", "<4.0, >=3.7-foo",
}

func TestValidSpecifierSetAgainstPackaging(t *testing.T) {
	const script = `
import json, sys
from packaging.specifiers import SpecifierSet, InvalidSpecifier
out = []
for s in json.load(sys.stdin):
    try:
        SpecifierSet(s)
        out.append(True)
    except InvalidSpecifier:
        out.append(False)
print(json.dumps(out))
`
	var want []bool
	runPython(t, script, specifierSamples, &want)
	for i, s := range specifierSamples {
		got := ValidSpecifierSet(s) == nil
		if got != want[i] {
			t.Errorf("ValidSpecifierSet(%q): valid=%v, packaging says %v", s, got, want[i])
		}
	}
}

func FuzzValidSpecifierSet(f *testing.F) {
	for _, s := range specifierSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ValidSpecifierSet(s) // must not panic
	})
}
