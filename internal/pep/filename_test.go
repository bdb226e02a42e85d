package pep

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseWheelFilename(t *testing.T) {
	tests := []struct {
		in   string
		want WheelFilename
	}{
		{"requests-2.31.0-py3-none-any.whl", WheelFilename{
			Name: "requests", Version: "2.31.0",
			PythonTags: []string{"py3"}, ABITags: []string{"none"}, PlatformTags: []string{"any"},
		}},
		{"six-1.16.0-py2.py3-none-any.whl", WheelFilename{
			Name: "six", Version: "1.16.0",
			PythonTags: []string{"py2", "py3"}, ABITags: []string{"none"}, PlatformTags: []string{"any"},
		}},
		{"numpy-1.26.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", WheelFilename{
			Name: "numpy", Version: "1.26.0",
			PythonTags: []string{"cp311"}, ABITags: []string{"cp311"},
			PlatformTags: []string{"manylinux_2_17_x86_64", "manylinux2014_x86_64"},
		}},
		{"zope.interface-6.0-1-cp39-cp39-win_amd64.whl", WheelFilename{
			Name: "zope.interface", Version: "6.0", Build: "1",
			PythonTags: []string{"cp39"}, ABITags: []string{"cp39"}, PlatformTags: []string{"win_amd64"},
		}},
		{"My_Pkg-1.0_post_2-20240101.abc_1-py3-none-any.whl", WheelFilename{
			Name: "My_Pkg", Version: "1.0_post_2", Build: "20240101.abc_1",
			PythonTags: []string{"py3"}, ABITags: []string{"none"}, PlatformTags: []string{"any"},
		}},
		{"pkg-1!2.0+local.1-py3-none-any.whl", WheelFilename{
			Name: "pkg", Version: "1!2.0+local.1",
			PythonTags: []string{"py3"}, ABITags: []string{"none"}, PlatformTags: []string{"any"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWheelFilename(tt.in)
			if err != nil {
				t.Fatalf("ParseWheelFilename(%q): got error %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseWheelFilename(%q):\ngot  %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestWheelTags(t *testing.T) {
	w, err := ParseWheelFilename("x-1-py2.py3-none-any.macosx_11_0_arm64.whl")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"py2-none-any", "py2-none-macosx_11_0_arm64", "py3-none-any", "py3-none-macosx_11_0_arm64"}
	if got := w.Tags(); !reflect.DeepEqual(got, want) {
		t.Errorf("Tags: got %q, want %q", got, want)
	}
}

func TestParseWheelFilenameErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // substring of the error
	}{
		{"", "empty file name"},
		{"requests-2.31.0-py3-none-any.zip", "extension must be .whl"},
		{"requests-2.31.0-py3-none-any.WHL", "extension must be .whl"},
		{"requests-2.31.0-py3-any.whl", "got 4"},
		{"re-quests-2.31.0-1-py3-none-any.whl", "got 7"},
		{"requests-2.31.0-foo-py3-none-any.whl", "build tag"},
		{"requests-2.31.0--py3-none-any.whl", "build tag"},
		{"requests-one-py3-none-any.whl", `invalid version: "one"`},
		{"foo__bar-1.0-py3-none-any.whl", "invalid distribution name"},
		{"_foo-1.0-py3-none-any.whl", "invalid distribution name"},
		{"foo+bar-1.0-py3-none-any.whl", "invalid distribution name"},
		{"foo-1.0-py3.-none-any.whl", "invalid compatibility tag"},
		{"foo-1.0-py3-none-any!.whl", "invalid compatibility tag"},
		{"../foo-1.0-py3-none-any.whl", "path separator"},
		{"..-1.0-py3-none-any.whl", `".."`},
		{"foo-1.0-py3-none-any..whl", `".."`},
		{`dir\foo-1.0-py3-none-any.whl`, "path separator"},
		{"foo-1.0-py3-none-any.whl\x00.txt", "printable ASCII"},
		{"foo-1.0-py3-none-any .whl", "printable ASCII"},
		{"föo-1.0-py3-none-any.whl", "printable ASCII"},
		{"foo-1.0-py3-none-" + strings.Repeat("any.", 60) + "any.whl", "longer than 255 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWheelFilename(tt.in)
			if err == nil {
				t.Fatalf("ParseWheelFilename(%q): got %+v, want error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseWheelFilename(%q): got error %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "invalid wheel filename ") {
				t.Errorf("got error %q, want prefix %q", err, "invalid wheel filename ")
			}
		})
	}
}

func TestParseSdistFilename(t *testing.T) {
	tests := []struct {
		in   string
		want SdistFilename
	}{
		{"my_project-1.0.tar.gz", SdistFilename{"my_project", "1.0", ".tar.gz"}},
		{"Django-1.0.tar.gz", SdistFilename{"Django", "1.0", ".tar.gz"}},
		{"zope.interface-4.0.zip", SdistFilename{"zope.interface", "4.0", ".zip"}},
		{"name-with-dashes-1.0.tar.gz", SdistFilename{"name-with-dashes", "1.0", ".tar.gz"}},
		{"foo-1.0-dev.tar.gz", SdistFilename{"foo", "1.0-dev", ".tar.gz"}},
		{"foo-1.0-rc.tar.gz", SdistFilename{"foo", "1.0-rc", ".tar.gz"}},
		// Ambiguous: "1" parses, so the last dash wins and the name keeps
		// what could have been part of the version.
		{"foo-1.0-rc-1.tar.gz", SdistFilename{"foo-1.0-rc", "1", ".tar.gz"}},
		{"foo-2-1.tar.gz", SdistFilename{"foo-2", "1", ".tar.gz"}},
		{"foo-1!2.0+local.tar.gz", SdistFilename{"foo", "1!2.0+local", ".tar.gz"}},
		{"pkg-V1.0PREVIEW3.zip", SdistFilename{"pkg", "V1.0PREVIEW3", ".zip"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSdistFilename(tt.in)
			if err != nil {
				t.Fatalf("ParseSdistFilename(%q): got error %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseSdistFilename(%q): got %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSdistFilenameErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "empty file name"},
		{"foo-1.0.tar.bz2", "extension"},
		{"foo-1.0.TAR.GZ", "extension"},
		{"foo-1.0.whl", "extension"},
		{"foo.tar.gz", "no valid version"},
		{"foo-bar.tar.gz", "no valid version"},
		{"foo-.tar.gz", "no valid version"},
		{"-1.0.tar.gz", "invalid project name"},
		{"foo_-1.0.tar.gz", "invalid project name"},
		{"../foo-1.0.tar.gz", "path separator"},
		{"foo/../../etc-1.0.tar.gz", "path separator"},
		{"..-1.0.tar.gz", `".."`},
		{"foo-1.0..tar.gz", `".."`},
		{"foo-1.0\x00.tar.gz", "printable ASCII"},
		{"foo-1.0 .tar.gz", "printable ASCII"},
		{"foo-1.0\n.tar.gz", "printable ASCII"},
		{strings.Repeat("a", 250) + "-1.0.tar.gz", "longer than 255 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSdistFilename(tt.in)
			if err == nil {
				t.Fatalf("ParseSdistFilename(%q): got %+v, want error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSdistFilename(%q): got error %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x00") {
				t.Errorf("error %q contains characters unsafe for an HTTP status line", err)
			}
		})
	}
}

func TestSdistFilenameFor(t *testing.T) {
	tests := []struct{ name, version, want string }{
		{"my-project", "1.0", "my_project-1.0.tar.gz"},
		{"Zope.Interface", "v4.0-1", "zope_interface-4.0.post1.tar.gz"},
		{"Foo__Bar", "1.0PREVIEW3", "foo_bar-1.0rc3.tar.gz"},
		{"legacy", "not-pep440", "legacy-not-pep440.tar.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := SdistFilenameFor(tt.name, tt.version); got != tt.want {
				t.Errorf("SdistFilenameFor(%q, %q): got %q, want %q", tt.name, tt.version, got, tt.want)
			}
		})
	}
}

// TestWheelFilenameAgainstPackaging checks that every wheel name accepted
// here is accepted by packaging.utils.parse_wheel_filename with the same
// name, version, build tag and tags.
func TestWheelFilenameAgainstPackaging(t *testing.T) {
	names := []string{
		"requests-2.31.0-py3-none-any.whl",
		"six-1.16.0-py2.py3-none-any.whl",
		"numpy-1.26.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		"zope.interface-6.0-1-cp39-cp39-win_amd64.whl",
		"My_Pkg-1.0_post_2-20240101.abc_1-py3-none-any.whl",
		"pkg-1!2.0+local.1-py3-none-any.whl",
		"Foo.Bar-V1.0RC1-0-py2.py3-cp27mu.none-macosx_10_9_x86_64.linux_i686.whl",
	}
	const script = `
import json, sys
from packaging.utils import parse_wheel_filename
out = []
for n in json.load(sys.stdin):
    name, version, build, tags = parse_wheel_filename(n)
    out.append({"name": name, "version": str(version),
                "build": "%d%s" % build if build else "",
                "tags": sorted(str(t) for t in tags)})
json.dump(out, sys.stdout)
`
	var want []struct {
		Name, Version, Build string
		Tags                 []string
	}
	runPython(t, script, names, &want)
	for i, n := range names {
		t.Run(n, func(t *testing.T) {
			w, err := ParseWheelFilename(n)
			if err != nil {
				t.Fatalf("ParseWheelFilename: got error %v", err)
			}
			v, err := ParseVersion(w.Version)
			if err != nil {
				t.Fatal(err)
			}
			tags := w.Tags()
			slices.Sort(tags)
			got := []string{NormalizeName(w.Name), v.String(), strings.TrimLeft(w.Build, "0")}
			exp := []string{want[i].Name, want[i].Version, strings.TrimLeft(want[i].Build, "0")}
			if !slices.Equal(got, exp) {
				t.Errorf("name, version, build: got %q, want %q", got, exp)
			}
			if !slices.Equal(tags, want[i].Tags) {
				t.Errorf("tags: got %q, want %q", tags, want[i].Tags)
			}
		})
	}
}
