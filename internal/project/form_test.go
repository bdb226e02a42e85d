package project

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const see = " See " + coreMetadataHelp + " for more information."

// validFields is the form of a valid wheel upload, as Sanitize returns it.
func validFields() map[string][]string {
	return map[string][]string{
		":action":          {"file_upload"},
		"protocol_version": {"1"},
		"metadata_version": {"2.1"},
		"name":             {"Demo.Pkg"},
		"version":          {"1.0"},
		"filetype":         {"bdist_wheel"},
		"pyversion":        {"py3"},
		"sha256_digest":    {strings.Repeat("ab", 32)},
	}
}

// TestParseForm checks each rule of spec §4.2 steps 5 to 7 with its
// message. Cases with two faults show which rule is checked first.
func TestParseForm(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string // "" deletes the field
		want string            // error message; "" for success
	}{
		{"valid", nil, ""},
		{"no protocol_version means 1", map[string]string{"protocol_version": ""}, ""},
		{"unknown protocol_version", map[string]string{"protocol_version": "2"}, "Unknown protocol version."},
		{"protocol before name", map[string]string{"protocol_version": "2", "name": ""}, "Unknown protocol version."},
		{"missing name", map[string]string{"name": ""}, "Invalid value for name. Error: This field is required."},
		{"invalid name", map[string]string{"name": "demo-"}, "'demo-' is an invalid value for Name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'." + see},
		{"non-ASCII name", map[string]string{"name": "déjà"}, "'déjà' is an invalid value for Name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'." + see},
		{"name before version", map[string]string{"name": "-", "version": ""}, "'-' is an invalid value for Name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'." + see},
		{"missing version", map[string]string{"version": ""}, "Invalid value for version. Error: This field is required."},
		{"missing filetype", map[string]string{"filetype": ""}, "Invalid value for filetype. Error: Use a known file type."},
		{"unknown filetype", map[string]string{"filetype": "bdist_egg"}, "Invalid value for filetype. Error: Use a known file type."},
		{"filetype before digests", map[string]string{"filetype": "egg", "sha256_digest": ""}, "Invalid value for filetype. Error: Use a known file type."},
		{"wheel without pyversion", map[string]string{"pyversion": ""}, "Invalid value for pyversion. Error: Python version is required for binary distribution uploads."},
		{"sdist with a python version", map[string]string{"filetype": "sdist", "pyversion": "py3"}, "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist."},
		{"sdist without pyversion", map[string]string{"filetype": "sdist", "pyversion": ""}, ""},
		{"md5 too short", map[string]string{"md5_digest": "abc"}, "Invalid value for md5_digest. Error: Use a valid, hex-encoded, MD5 message digest."},
		{"sha256 not hex", map[string]string{"sha256_digest": strings.Repeat("zz", 32)}, "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest."},
		{"blake2 too long", map[string]string{"blake2_256_digest": strings.Repeat("a", 66)}, "Invalid value for blake2_256_digest. Error: Use a valid, hex-encoded, Blake2b message digest."},
		{"only md5", map[string]string{"sha256_digest": "", "md5_digest": strings.Repeat("0", 32)}, ""},
		{"no digest", map[string]string{"sha256_digest": ""}, "Include at least one message digest."},
		{"digest before metadata version", map[string]string{"sha256_digest": "", "metadata_version": "9.9"}, "Include at least one message digest."},
		{"missing metadata version", map[string]string{"metadata_version": ""}, "'' is an invalid value for Metadata-Version. Error: Use a known metadata version." + see},
		{"unknown metadata version", map[string]string{"metadata_version": "3.0"}, "'3.0' is an invalid value for Metadata-Version. Error: Use a known metadata version." + see},
		{"metadata version before version", map[string]string{"metadata_version": "3.0", "version": "x"}, "'3.0' is an invalid value for Metadata-Version. Error: Use a known metadata version." + see},
		{"invalid version", map[string]string{"version": "1.0 beta"}, "'1.0 beta' is an invalid value for Version. Error: Use PEP 440 versioning." + see},
		{"local version", map[string]string{"version": "1.0+ubuntu.1"}, "The use of local versions in '1.0+ubuntu.1' is not allowed." + see},
		{"summary of 512 characters", map[string]string{"summary": strings.Repeat("é", 512)}, ""},
		{"summary of 513 characters", map[string]string{"summary": strings.Repeat("é", 513)}, "'summary' field must be 512 characters or less." + see},
		{"two-line summary", map[string]string{"summary": "one\ntwo"}, "'summary' must be a single line." + see},
		{"markdown with parameters", map[string]string{"description_content_type": "text/markdown; charset=UTF-8; variant=GFM"}, ""},
		{"unknown description type", map[string]string{"description_content_type": "text/html"}, "Invalid description content type: 'text/html'. Use text/plain, text/x-rst or text/markdown." + see},
		{"direct dependency", map[string]string{"requires_dist": "evil @ https://example.com/evil.whl"}, "Can't have direct dependency: 'evil @ https://example.com/evil.whl'." + see},
		{"dependency with a marker containing @", map[string]string{"requires_dist": `x; platform_machine == "@"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := validFields()
			for k, v := range tt.set {
				if v == "" {
					delete(fields, k)
				} else {
					fields[k] = []string{v}
				}
			}
			f, err := ParseForm(fields)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got error %q, want none", err)
				}
				if f.Name != fields["name"][0] {
					t.Errorf("Name: got %q, want %q", f.Name, fields["name"][0])
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !errors.Is(err, derrors.Invalid) {
				t.Errorf("error %v is not derrors.Invalid", err)
			}
			if got, _ := derrors.Message(err); got != tt.want {
				t.Errorf("message:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseFormValues(t *testing.T) {
	fields := validFields()
	fields["filetype"] = []string{"sdist"}
	delete(fields, "pyversion")
	fields["sha256_digest"] = []string{strings.Repeat("AB", 32)}
	fields["version"] = []string{"1.0.0RC1"}
	fields["summary"] = []string{"A demo"}
	fields["requires_python"] = []string{">=3.9"}
	f, err := ParseForm(fields)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"PyVersion", f.PyVersion, "source"},
		{"SHA256", f.SHA256, strings.Repeat("ab", 32)},
		{"MD5", f.MD5, ""},
		{"Version", f.Version.String(), "1.0.0rc1"},
		{"Version canonical", f.Version.Canonical(), "1rc1"},
		{"Summary", f.Summary, "A demo"},
		{"RequiresPython", f.RequiresPython, ">=3.9"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	got, err := Sanitize(map[string][]string{
		"name":        {"demo"},
		"summary":     {"UNKNOWN"},
		"license":     {"UNKNOWN"},
		"classifiers": {"A :: B", "UNKNOWN", "C :: D"},
		"keywords":    {"x", "y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"name":        {"demo"},
		"classifiers": {"A :: B", "C :: D"},
		"keywords":    {"x", "y"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	_, err = Sanitize(map[string][]string{"version": {"1.0", "2.0"}})
	if msg, _ := derrors.Message(err); msg != "version: Field given more than once; send it once." {
		t.Errorf("single-use field twice: got %v, want %q", err, "version: Field given more than once; send it once.")
	}
}

// TestSanitizeSpellings checks that each client's spelling of a
// multiple-use field lands under one name, and that unknown fields are left
// out rather than refused.
func TestSanitizeSpellings(t *testing.T) {
	got, err := Sanitize(map[string][]string{
		"name":              {"demo"},
		"provides_extras":   {"a", "b"}, // twine 4
		"provides_extra":    {"b", "c"}, // uv, twine 6
		"license_file":      {"LICENSE", "NOTICE"},
		"platforms":         {"linux"},
		"some_future_field": {"x", "y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"name":           {"demo"},
		"provides_extra": {"b", "c", "a"},
		"license_files":  {"LICENSE", "NOTICE"},
		"platform":       {"linux"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, f := range []string{"provides_extras", "provides_extra", "license_file", "license_files", "classifiers",
		"requires_dist", "project_urls", "platform", "supported_platform", "requires_external", "provides_dist",
		"obsoletes_dist", "dynamic"} {
		if !IsMultiUse(f) {
			t.Errorf("IsMultiUse(%q) = false, want true", f)
		}
	}
	for _, f := range []string{"name", "version", "summary", "requires_python", "metadata_version", "sha256_digest"} {
		if IsMultiUse(f) {
			t.Errorf("IsMultiUse(%q) = true, want false", f)
		}
	}
}
