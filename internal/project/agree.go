package project

import (
	"slices"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// agreeingFields are the form fields that must say what the archive's own
// metadata says. pip reads dependencies, extras and Requires-Python from the
// file (or from its PEP 658 metadata file, which is the wheel's METADATA),
// while the index lists them from the form: if the two differed, the JSON
// API, the data-requires-python attribute and every scanner that reads them
// would describe a package other than the one installed.
var agreeingFields = []struct {
	form, header string
	norm         func(string) string
}{
	{"requires_dist", "Requires-Dist", normalizeRequirement},
	{"provides_extra", "Provides-Extra", pep.NormalizeName}, // PEP 685
	{"requires_python", "Requires-Python", normalizeRequirement},
}

// agreeWithMetadata checks the form's dependency fields against the
// archive's metadata, and fills in the ones the client did not send (older
// clients leave some out), so the index always lists what is installed.
//
// An sdist whose metadata predates 2.2 is exempt: before PEP 643 an sdist's
// PKG-INFO made no promise about the dependencies of what it builds, so
// clients that compute the form from the project (poetry, flit) may
// legitimately send more than PKG-INFO says.
func agreeWithMetadata(f *Form, md *pep.Metadata, path string) error {
	if f.Filetype == "sdist" && !metadataAtLeast(md.MetadataVersion(), 2, 2) {
		return nil
	}
	for _, af := range agreeingFields {
		var inFile []string
		for _, v := range md.GetAll(af.header) {
			if v = strings.TrimSpace(v); v != "" && v != "UNKNOWN" {
				inFile = append(inFile, v)
			}
		}
		sent := f.Fields[af.form]
		if len(sent) == 0 {
			if len(inFile) > 0 {
				f.Fields[af.form] = inFile
			}
			continue
		}
		if missing, extra := diffNormalized(sent, inFile, af.norm); missing != "" || extra != "" {
			detail := ""
			if extra != "" {
				detail = "the form sends '" + extra + "', which " + path + " does not have"
			} else {
				detail = path + " has '" + missing + "', which the form does not send"
			}
			return derrors.New(derrors.Invalid, "Invalid distribution file. %s in %s does not match the upload's %s field: %s. Upload the file with a client that reads its metadata from the file (twine, uv).",
				af.header, path, af.form, detail)
		}
	}
	if rp := f.Fields["requires_python"]; len(rp) > 0 && f.RequiresPython == "" {
		f.RequiresPython = strings.TrimSpace(rp[0])
		if err := pep.ValidSpecifierSet(f.RequiresPython); err != nil {
			return invalidRequiresPython(f.RequiresPython)
		}
	}
	return nil
}

// diffNormalized compares two lists as multisets after normalizing, and
// returns one value (as written) that only the second has, or only the first.
func diffNormalized(sent, inFile []string, norm func(string) string) (missing, extra string) {
	count := map[string]int{}
	for _, v := range inFile {
		count[norm(v)]++
	}
	for _, v := range sent {
		n := norm(v)
		if count[n] == 0 {
			return "", v
		}
		count[n]--
	}
	for _, v := range inFile {
		if n := norm(v); count[n] > 0 {
			return v, ""
		}
	}
	return "", ""
}

// normalizeRequirement makes two spellings of one requirement or specifier
// compare equal: whitespace carries no meaning in PEP 508 outside quoted
// marker values, and names are case-insensitive.
func normalizeRequirement(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), ""))
}

// metadataAtLeast reports whether a Metadata-Version is at least
// major.minor.
func metadataAtLeast(v string, major, minor int) bool {
	maj, min, ok := strings.Cut(strings.TrimSpace(v), ".")
	if !ok {
		return false
	}
	return slices.Compare([]int{atoi(maj), atoi(min)}, []int{major, minor}) >= 0
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1000 {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
