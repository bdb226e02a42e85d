package archive

import (
	"archive/tar"
	"errors"
	"testing"
)

// fuzzLimits keeps each fuzz execution cheap.
func fuzzLimits() Limits {
	return Limits{
		MaxUncompressed: 1 << 20,
		MaxRatio:        50,
		RatioFloor:      1 << 16,
		MaxEntries:      64,
		MaxMetadataSize: 1 << 16,
	}
}

// checkInspect runs Inspect on data and checks the invariants that must
// hold for any input: no panic, every failure wraps ErrInvalid (the reader
// never fails), and a success returns metadata within limits.
func checkInspect(t *testing.T, data []byte, kind Kind) {
	lim := fuzzLimits()
	res, err := inspectBytes(data, kind, testDistInfo, lim)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v: got error %v not wrapping ErrInvalid", kind, err)
		}
		if err.Error() == "" {
			t.Fatalf("%v: got an empty error message", kind)
		}
		return
	}
	if res.MetadataPath == "" {
		t.Fatalf("%v: got success with empty MetadataPath", kind)
	}
	if int64(len(res.Metadata)) > lim.MaxMetadataSize {
		t.Fatalf("%v: got %d bytes of metadata, want at most %d", kind, len(res.Metadata), lim.MaxMetadataSize)
	}
}

func FuzzInspectZip(f *testing.F) {
	f.Add(buildZip(f, wheelFiles()))
	f.Add(buildZip(f, sdistZipFiles()))
	f.Add(buildZip(f, []zfile{
		rawDeflated(f, testDistInfo+"/METADATA", testMetadata, nil),
		rawDeflated(f, testDistInfo+"/WHEEL", []byte("Wheel-Version: 1.0\n"), nil),
		rawDeflated(f, testDistInfo+"/RECORD", nil, nil),
	}))
	f.Add(buildZip(f, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInspect(t, data, Wheel)
		checkInspect(t, data, SdistZip)
	})
}

// FuzzInspectTarGz feeds gzip data as is; anything else is gzipped first,
// so that the fuzzer can also mutate the tar stream itself rather than
// mostly producing gzip checksum failures.
func FuzzInspectTarGz(f *testing.F) {
	f.Add(buildTarGz(f, sdistEntries()))
	f.Add(buildTar(f, sdistEntries()))
	f.Add(buildTar(f, append(sdistEntries(), tentry{hdr: tar.Header{
		Name: "demo_pkg-1.0/x", Typeflag: tar.TypeReg, Size: 3,
		PAXRecords: map[string]string{"path": "demo_pkg-1.0/long/name.py", "comment": "c"},
	}, body: []byte("abc")})))
	f.Add(append(rawTarHeader("demo_pkg-1.0/PKG-INFO", tar.TypeReg, 3, nil), padBlock([]byte("abc"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
			data = gzipBytes(t, data)
		}
		checkInspect(t, data, SdistTarGz)
	})
}
