package pep

import (
	"fmt"
	"strings"
)

// WheelFilename is the parsed form of a wheel file name (PEP 427, as amended
// by PEP 491): {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl.
//
// Name, Version and Build are exactly as written in the file name (Name is
// the escaped distribution name, e.g. "zope_interface"); compare names with
// NormalizeName and versions with ParseVersion/Compare.
type WheelFilename struct {
	Name    string
	Version string
	Build   string // optional build tag; "" when absent

	// The compressed tag sets of PEP 425, split on '.': a wheel tagged
	// "py2.py3-none-any" has PythonTags ["py2", "py3"].
	PythonTags   []string
	ABITags      []string
	PlatformTags []string
}

// Tags expands the compressed tag sets into the individual
// "python-abi-platform" tags the wheel supports (PEP 425).
func (w WheelFilename) Tags() []string {
	var tags []string
	for _, py := range w.PythonTags {
		for _, abi := range w.ABITags {
			for _, plat := range w.PlatformTags {
				tags = append(tags, py+"-"+abi+"-"+plat)
			}
		}
	}
	return tags
}

// ParseWheelFilename parses a wheel file name.
//
// It is stricter than packaging.utils.parse_wheel_filename where strictness
// protects an index that stores files under these names: the distribution
// name must consist of [A-Za-z0-9_.] and be a valid project name without
// "__" (PEP 427 escaping replaces each run of characters other than
// letters, digits and '.' with a single '_'), the
// version must be valid PEP 440, the build tag must start with a digit and
// contain only [A-Za-z0-9_.], and every tag must be non-empty [A-Za-z0-9_]
// (PEP 425 replaces all other characters with '_'). Names containing path
// separators, "..", whitespace, control or non-ASCII characters, and names
// longer than 255 bytes are rejected outright.
func ParseWheelFilename(filename string) (WheelFilename, error) {
	fail := func(format string, args ...any) (WheelFilename, error) {
		return WheelFilename{}, fmt.Errorf("invalid wheel filename %s: %s", quoteShort(filename), fmt.Sprintf(format, args...))
	}
	if reason := unsafeFilename(filename); reason != "" {
		return fail("%s", reason)
	}
	stem, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return fail("extension must be .whl")
	}
	parts := strings.Split(stem, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return fail("expected 5 or 6 dash-separated parts, got %d", len(parts))
	}

	w := WheelFilename{Name: parts[0], Version: parts[1]}
	if !isEscapedName(w.Name) {
		return fail("invalid distribution name %s", quoteShort(w.Name))
	}
	if _, err := ParseVersion(w.Version); err != nil {
		return fail("%v", err)
	}
	if len(parts) == 6 {
		w.Build = parts[2]
		if w.Build == "" || !isASCIIDigit(w.Build[0]) || !onlyBytes(w.Build, isWheelBuildByte) {
			return fail("build tag %s must start with a digit and contain only letters, digits, '_' and '.'", quoteShort(w.Build))
		}
	}

	tagSets := parts[len(parts)-3:]
	for i, dst := range []*[]string{&w.PythonTags, &w.ABITags, &w.PlatformTags} {
		for tag := range strings.SplitSeq(tagSets[i], ".") {
			if tag == "" || !onlyBytes(tag, isTagByte) {
				return fail("invalid compatibility tag %s", quoteShort(tagSets[i]))
			}
			*dst = append(*dst, tag)
		}
	}
	return w, nil
}

// SdistFilename is the parsed form of a source distribution file name.
//
// Name and Version are exactly as written; compare names with NormalizeName
// and versions with ParseVersion/Compare.
type SdistFilename struct {
	Name    string
	Version string
	Ext     string // ".tar.gz" or ".zip"
}

// ParseSdistFilename parses a source distribution file name: the PEP 625
// form ("my_project-1.0.tar.gz") as well as the legacy forms older tools
// produced ("My.Project-1.0.zip", "name-with-dashes-1.0.tar.gz").
//
// PEP 440 versions may themselves contain '-' ("1.0-1", "1.0-rc1"), so the
// name/version split is made at the last '-' whose remainder parses as a
// PEP 440 version: "foo-1.0-dev.tar.gz" is foo 1.0.dev0, while
// "foo-2-1.tar.gz" is project "foo-2" version 1. The name must be a valid
// project name. Like ParseWheelFilename, unsafe file names (path
// separators, "..", whitespace, control or non-ASCII characters, more than
// 255 bytes) are rejected.
func ParseSdistFilename(filename string) (SdistFilename, error) {
	fail := func(format string, args ...any) (SdistFilename, error) {
		return SdistFilename{}, fmt.Errorf("invalid sdist filename %s: %s", quoteShort(filename), fmt.Sprintf(format, args...))
	}
	if reason := unsafeFilename(filename); reason != "" {
		return fail("%s", reason)
	}
	var sd SdistFilename
	var stem string
	for _, ext := range []string{".tar.gz", ".zip"} {
		if s, ok := strings.CutSuffix(filename, ext); ok {
			stem, sd.Ext = s, ext
			break
		}
	}
	if sd.Ext == "" {
		return fail("extension must be .tar.gz or .zip")
	}

	split := -1
	for i := strings.LastIndexByte(stem, '-'); i >= 0; i = strings.LastIndexByte(stem[:i], '-') {
		// A version starts with 'v' or a digit; checking that first keeps
		// names with many dashes from costing a full parse per dash.
		rest := stem[i+1:]
		if rest == "" || (rest[0] != 'v' && rest[0] != 'V' && !isASCIIDigit(rest[0])) {
			continue
		}
		if _, err := ParseVersion(rest); err == nil {
			split = i
			break
		}
	}
	if split < 0 {
		return fail("no valid version after a '-'")
	}
	sd.Name, sd.Version = stem[:split], stem[split+1:]
	if !ValidProjectName(sd.Name) {
		return fail("invalid project name %s", quoteShort(sd.Name))
	}
	return sd, nil
}

// SdistFilenameFor returns the file name PEP 625 requires for the sdist of
// the given project and version: the normalized name with '-' replaced by
// '_', a '-', the normalized version, and ".tar.gz". A version that is not
// valid PEP 440 is used as given.
func SdistFilenameFor(name, version string) string {
	if v, err := ParseVersion(version); err == nil {
		version = v.String()
	}
	return strings.ReplaceAll(NormalizeName(name), "-", "_") + "-" + version + ".tar.gz"
}

// maxFilenameLen is NAME_MAX on common file systems; longer names could not
// be stored as files anyway, and the bound keeps parsing cheap.
const maxFilenameLen = 255

// unsafeFilename returns why filename must not be accepted as the name of
// an uploaded file, or "" if it is acceptable. Distribution file names are
// used as storage keys and URL path segments, so anything that could walk a
// path or confuse a header is refused before any PEP-specific parsing.
func unsafeFilename(filename string) string {
	switch {
	case filename == "":
		return "empty file name"
	case len(filename) > maxFilenameLen:
		return fmt.Sprintf("file name longer than %d bytes", maxFilenameLen)
	case strings.ContainsAny(filename, `/\`):
		return "file name must not contain a path separator"
	case strings.Contains(filename, ".."):
		return `file name must not contain ".."`
	case !onlyBytes(filename, func(c byte) bool { return '!' <= c && c <= '~' }):
		return "file name must contain only printable ASCII and no whitespace"
	}
	return ""
}

// isEscapedName reports whether name is a valid PEP 427 escaped
// distribution name.
func isEscapedName(name string) bool {
	return ValidProjectName(name) && !strings.Contains(name, "__") &&
		onlyBytes(name, func(c byte) bool { return isASCIIAlnum(c) || c == '_' || c == '.' })
}

func isWheelBuildByte(c byte) bool { return isASCIIAlnum(c) || c == '_' || c == '.' }

func isTagByte(c byte) bool { return isASCIIAlnum(c) || c == '_' }

func onlyBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
