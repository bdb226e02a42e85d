package archive

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
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
// mostly producing gzip checksum failures. The seeds (fuzz_seeds_test.go)
// are checked to still do what they were made for, then fuzzed along with
// every refusal of TestInspectTarGzRejects.
func FuzzInspectTarGz(f *testing.F) {
	for _, s := range tarSeeds(f) {
		_, err := inspectBytes(fuzzTarGzInput(f, s.data), SdistTarGz, testDistInfo, fuzzLimits())
		switch {
		case s.want == "" && err != nil:
			f.Errorf("seed %q: got %v, want it accepted", s.name, err)
		case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
			f.Errorf("seed %q: got %v, want an error containing %q", s.name, err, s.want)
		}
		f.Add(s.data)
	}
	for _, r := range tarRejections(f) {
		if len(r.data) > 64<<10 {
			continue // the bombs: too slow to mutate
		}
		data := r.data
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if tarData, err := io.ReadAll(zr); err == nil {
				data = tarData // mutate the tar stream, not the gzip
			}
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInspect(t, fuzzTarGzInput(t, data), SdistTarGz)
	})
}
