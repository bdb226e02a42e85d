package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"sync"
	"testing"
)

const testDistInfo = "demo_pkg-1.0.dist-info"

var (
	testMetadata = []byte("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\nSummary: a demo\n\nLong description.\n")
	testPkgInfo  = []byte("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
)

// zfile describes one zip member for buildZip.
type zfile struct {
	name   string
	body   []byte
	stored bool        // use zip.Store instead of zip.Deflate
	mode   fs.FileMode // applied with SetMode when non-zero
	// raw, if set, is written with CreateRaw: body is then the already
	// compressed data and raw's sizes and CRC are used as given.
	raw *zip.FileHeader
}

// buildZip writes files into a zip archive with archive/zip. Deflate uses
// flate.BestSpeed so that large test members build quickly.
func buildZip(t testing.TB, files []zfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	for _, f := range files {
		var (
			w   io.Writer
			err error
		)
		if f.raw != nil {
			h := *f.raw
			if h.Name == "" {
				h.Name = f.name
			}
			w, err = zw.CreateRaw(&h)
		} else {
			h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
			if f.stored {
				h.Method = zip.Store
			}
			if f.mode != 0 {
				h.SetMode(f.mode)
			}
			w, err = zw.CreateHeader(h)
		}
		if err != nil {
			t.Fatalf("zip create %q: %v", f.name, err)
		}
		if _, err := w.Write(f.body); err != nil {
			t.Fatalf("zip write %q: %v", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("zip close: %v", err)
	}
	return buf.Bytes()
}

// wheelFiles is a minimal valid wheel.
func wheelFiles() []zfile {
	return []zfile{
		{name: "demo_pkg/", stored: true},
		{name: "demo_pkg/__init__.py", body: []byte("print('hello')\n")},
		{name: testDistInfo + "/METADATA", body: testMetadata},
		{name: testDistInfo + "/WHEEL", body: []byte("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
		{name: testDistInfo + "/RECORD", body: []byte("demo_pkg/__init__.py,,\n")},
	}
}

// sdistZipFiles is a minimal valid zip sdist.
func sdistZipFiles() []zfile {
	return []zfile{
		{name: "demo_pkg-1.0/", stored: true},
		{name: "demo_pkg-1.0/PKG-INFO", body: testPkgInfo},
		{name: "demo_pkg-1.0/setup.py", body: []byte("from setuptools import setup\nsetup()\n")},
	}
}

// without returns files minus the member called name.
func without(files []zfile, name string) []zfile {
	var out []zfile
	for _, f := range files {
		if f.name != name {
			out = append(out, f)
		}
	}
	return out
}

// deflate compresses b with raw deflate.
func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// rawDeflated returns a CreateRaw member whose header is filled from body,
// then adjusted by edit.
func rawDeflated(t testing.TB, name string, body []byte, edit func(*zip.FileHeader)) zfile {
	comp := deflate(t, body)
	h := &zip.FileHeader{
		Name:               name,
		Method:             zip.Deflate,
		CRC32:              crc32.ChecksumIEEE(body),
		CompressedSize64:   uint64(len(comp)),
		UncompressedSize64: uint64(len(body)),
	}
	if edit != nil {
		edit(h)
	}
	return zfile{name: name, body: comp, raw: h}
}

// patchCentral finds the central directory header of member name in a
// zip built by buildZip and lets edit modify it in place.
func patchCentral(t testing.TB, data []byte, name string, edit func(h []byte)) []byte {
	t.Helper()
	out := bytes.Clone(data)
	sig := []byte{'P', 'K', 1, 2}
	for i := 0; ; {
		j := bytes.Index(out[i:], sig)
		if j < 0 {
			t.Fatalf("central header for %q not found", name)
		}
		h := out[i+j:]
		n := int(binary.LittleEndian.Uint16(h[28:]))
		if len(h) >= 46+n && string(h[46:46+n]) == name {
			edit(h)
			return out
		}
		i += j + 1
	}
}

// tentry is one member for buildTarGz; Size and Typeflag default from body.
type tentry struct {
	hdr  tar.Header
	body []byte
}

func treg(name string, body []byte) tentry {
	return tentry{hdr: tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}, body: body}
}

func tdir(name string) tentry {
	return tentry{hdr: tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}}
}

// buildTar writes entries with archive/tar.
func buildTar(t testing.TB, entries []tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("tar write %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar close: %v", err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, flate.BestSpeed)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatalf("gzip: %v", err)
	}
	return buf.Bytes()
}

func buildTarGz(t testing.TB, entries []tentry) []byte {
	t.Helper()
	return gzipBytes(t, buildTar(t, entries))
}

// sdistEntries is a minimal valid tar.gz sdist.
func sdistEntries() []tentry {
	return []tentry{
		tdir("demo_pkg-1.0/"),
		treg("demo_pkg-1.0/PKG-INFO", testPkgInfo),
		treg("demo_pkg-1.0/setup.py", []byte("from setuptools import setup\nsetup()\n")),
	}
}

// rawTarHeader builds a USTAR header block by hand, for member kinds that
// archive/tar refuses to write. edit may change the block before the
// checksum is computed.
func rawTarHeader(name string, typeflag byte, size int64, edit func(blk []byte)) []byte {
	blk := make([]byte, 512)
	copy(blk[0:100], name)
	copy(blk[100:], "0000644\x00")
	copy(blk[108:], "0000000\x00")
	copy(blk[116:], "0000000\x00")
	copy(blk[124:], fmt.Sprintf("%011o\x00", size))
	copy(blk[136:], "00000000000\x00")
	blk[156] = typeflag
	copy(blk[257:], "ustar\x0000")
	if edit != nil {
		edit(blk)
	}
	setTarChecksum(blk)
	return blk
}

func setTarChecksum(blk []byte) {
	copy(blk[148:156], "        ")
	var sum int64
	for _, c := range blk[:512] {
		sum += int64(c)
	}
	copy(blk[148:], fmt.Sprintf("%06o\x00 ", sum))
}

// tarBlocks concatenates header blocks and data, padding data to 512.
func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecord formats one PAX extended header record.
func paxRecord(k, v string) string {
	rec := fmt.Sprintf(" %s=%s\n", k, v)
	n := len(rec)
	for {
		s := fmt.Sprintf("%d%s", n, rec)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// countingReaderAt records every range read from the underlying data.
type countingReaderAt struct {
	r      io.ReaderAt
	mu     sync.Mutex
	ranges [][2]int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.mu.Lock()
	c.ranges = append(c.ranges, [2]int64{off, off + int64(n)})
	c.mu.Unlock()
	return n, err
}

// touched reports whether any read overlapped [start, end).
func (c *countingReaderAt) touched(start, end int64) bool {
	for _, r := range c.ranges {
		if r[0] < end && start < r[1] {
			return true
		}
	}
	return false
}

// failingReaderAt fails every read, simulating broken storage.
type failingReaderAt struct{ err error }

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

// pseudoRandom returns n incompressible, deterministic bytes.
func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func bytesSection(b []byte) *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))
}
