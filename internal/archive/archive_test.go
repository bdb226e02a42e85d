package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func inspectBytes(data []byte, kind Kind, distInfo string, lim Limits) (Result, error) {
	return Inspect(bytes.NewReader(data), int64(len(data)), kind, distInfo, lim)
}

func TestInspectValid(t *testing.T) {
	normalized := wheelFiles()
	for i := range normalized {
		normalized[i].name = strings.Replace(normalized[i].name, testDistInfo, "Demo.Pkg-1.0.dist-info", 1)
	}
	stored := wheelFiles()
	for i := range stored {
		stored[i].stored = true
	}
	noDescriptor := []zfile{
		rawDeflated(t, testDistInfo+"/METADATA", testMetadata, nil),
		rawDeflated(t, testDistInfo+"/WHEEL", []byte("Wheel-Version: 1.0\n"), nil),
		rawDeflated(t, testDistInfo+"/RECORD", nil, nil),
	}
	withComment := sdistEntries()
	withComment = append([]tentry{{hdr: tar.Header{
		Typeflag:   tar.TypeXGlobalHeader,
		Name:       "pax_global_header",
		PAXRecords: map[string]string{"comment": "0123456789abcdef"},
	}}}, withComment...)
	longName := append(sdistEntries(), treg("demo_pkg-1.0/"+strings.Repeat("d/", 80)+"f.py", []byte("x = 1\n")))

	tests := []struct {
		name     string
		kind     Kind
		data     []byte
		wantPath string
		wantMeta []byte
	}{
		{"wheel", Wheel, buildZip(t, wheelFiles()), testDistInfo + "/METADATA", testMetadata},
		{"wheel stored", Wheel, buildZip(t, stored), testDistInfo + "/METADATA", testMetadata},
		{"wheel without data descriptors", Wheel, buildZip(t, noDescriptor), testDistInfo + "/METADATA", testMetadata},
		{"wheel with normalized dist-info name", Wheel, buildZip(t, normalized), "Demo.Pkg-1.0.dist-info/METADATA", testMetadata},
		{"sdist tar.gz", SdistTarGz, buildTarGz(t, sdistEntries()), "demo_pkg-1.0/PKG-INFO", testPkgInfo},
		{"sdist tar.gz without dir entries", SdistTarGz, buildTarGz(t, sdistEntries()[1:]), "demo_pkg-1.0/PKG-INFO", testPkgInfo},
		{"sdist tar.gz with git archive comment", SdistTarGz, buildTarGz(t, withComment), "demo_pkg-1.0/PKG-INFO", testPkgInfo},
		{"sdist tar.gz with long PAX name", SdistTarGz, buildTarGz(t, longName), "demo_pkg-1.0/PKG-INFO", testPkgInfo},
		{"sdist zip", SdistZip, buildZip(t, sdistZipFiles()), "demo_pkg-1.0/PKG-INFO", testPkgInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := inspectBytes(tt.data, tt.kind, testDistInfo, DefaultLimits())
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if res.MetadataPath != tt.wantPath {
				t.Errorf("got MetadataPath %q, want %q", res.MetadataPath, tt.wantPath)
			}
			if !bytes.Equal(res.Metadata, tt.wantMeta) {
				t.Errorf("got Metadata %q, want %q", res.Metadata, tt.wantMeta)
			}
		})
	}
}

// rejection is one invalid-file case: Inspect must fail with an error
// wrapping ErrInvalid whose message contains want.
type rejection struct {
	name string
	kind Kind
	data []byte
	lim  Limits
	want string
}

func runRejections(t *testing.T, tests []rejection) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inspectBytes(tt.data, tt.kind, testDistInfo, tt.lim)
			if err == nil {
				t.Fatalf("got nil error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("got error %v not wrapping ErrInvalid, want it wrapped", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestInspectIOErrorIsNotInvalid(t *testing.T) {
	ioErr := errors.New("disk on fire")
	for _, kind := range []Kind{Wheel, SdistTarGz, SdistZip} {
		t.Run(kind.String(), func(t *testing.T) {
			_, err := Inspect(failingReaderAt{ioErr}, 4096, kind, testDistInfo, Limits{})
			if !errors.Is(err, ioErr) {
				t.Errorf("got %v, want %v", err, ioErr)
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("got error wrapping ErrInvalid, want a plain I/O error")
			}
		})
	}
}

func TestInspectBadArguments(t *testing.T) {
	data := buildZip(t, wheelFiles())
	tests := []struct {
		name     string
		size     int64
		kind     Kind
		distInfo string
	}{
		{"negative size", -1, SdistZip, ""},
		{"empty distInfo", int64(len(data)), Wheel, ""},
		{"distInfo with slash", int64(len(data)), Wheel, "a/b.dist-info"},
		{"distInfo without suffix", int64(len(data)), Wheel, "demo_pkg-1.0"},
		{"unknown kind", int64(len(data)), Kind(42), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(bytes.NewReader(data), tt.size, tt.kind, tt.distInfo, Limits{})
			if err == nil || errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want a non-ErrInvalid argument error", err)
			}
		})
	}
}

func TestLimitsDefaults(t *testing.T) {
	if got, want := (Limits{}).withDefaults(), DefaultLimits(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	custom := Limits{MaxUncompressed: 1, MaxRatio: 2, RatioFloor: 3, MaxEntries: 4, MaxMetadataSize: 5}
	if got := custom.withDefaults(); got != custom {
		t.Errorf("got %+v, want %+v", got, custom)
	}
}

func TestNormalizeDistInfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"demo_pkg-1.0.dist-info", "demo_pkg_1_0_dist_info"},
		{"Demo.Pkg-1.0.dist-info", "demo_pkg_1_0_dist_info"},
		{"demo--_.pkg-1.0.dist-info", "demo_pkg_1_0_dist_info"},
		{"-x-", "_x_"},
	}
	for _, tt := range tests {
		if got := normalizeDistInfo(tt.in); got != tt.want {
			t.Errorf("normalizeDistInfo(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckMemberName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for valid
	}{
		{"pkg/mod.py", ""},
		{"pkg/", ""},
		{"a.b/c-d_e.txt", ""},
		{"pkg/ünïcode.txt", ""},
		{"", "empty name"},
		{"../x", "escapes the archive: ../x"},
		{"a/../../x", "escapes the archive"},
		{"a/..", "escapes the archive"},
		{"/abs", "absolute"},
		{"C:\\x", "drive letter"},
		{"c:x", "drive letter"},
		{"a\\b", "backslash"},
		{"a//b", "not canonical"},
		{"./a", "not canonical"},
		{"a/./b", "not canonical"},
		{"a//", "not canonical"},
		{"a\x00b", "control character"},
		{"a\nb", "control character"},
		{"a\x7fb", "control character"},
		{"\xff\xfe", "not valid UTF-8"},
		{strings.Repeat("a", maxNameLen+1), "too long"},
	}
	for _, tt := range tests {
		t.Run(showName(tt.name), func(t *testing.T) {
			err := checkMemberName(tt.name)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestShowName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pkg/a.py", "pkg/a.py"},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("x", 201), strings.Repeat("x", 200) + "..."},
	}
	for _, tt := range tests {
		if got := showName(tt.in); got != tt.want {
			t.Errorf("showName(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
