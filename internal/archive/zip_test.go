package archive

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"strings"
	"testing"
)

func TestInspectZipRejects(t *testing.T) {
	wheel := buildZip(t, wheelFiles())
	with := func(extra ...zfile) []byte { return buildZip(t, append(wheelFiles(), extra...)) }
	big := bytes.Repeat([]byte("a"), 1<<20)

	secondDistInfo := with(zfile{name: "other-1.0.dist-info/METADATA", body: testMetadata})
	renamed := wheelFiles()
	for i := range renamed {
		renamed[i].name = strings.Replace(renamed[i].name, testDistInfo, "other-1.0.dist-info", 1)
	}

	// Two central directory entries pointing at the same local header:
	// the layout of a non-recursive (overlapping) zip bomb.
	overlap := patchCentral(t, wheel, testDistInfo+"/RECORD", func(h []byte) {
		binary.LittleEndian.PutUint32(h[42:], 0)
	})
	// Central directory claims a smaller size than the local header.
	cdLies := patchCentral(t, buildZip(t, append(wheelFiles(),
		rawDeflated(t, "demo_pkg/big.txt", big, nil))), "demo_pkg/big.txt", func(h []byte) {
		binary.LittleEndian.PutUint32(h[24:], 10)
	})
	// Local header name differs from the central directory name.
	localName := bytes.Replace(wheel, []byte("demo_pkg/__init__.py"), []byte("demo_pkg/__evil__.py"), 1)
	// Unix mode says directory but the name says file.
	dirMode := patchCentral(t, wheel, "demo_pkg/__init__.py", func(h []byte) {
		binary.LittleEndian.PutUint32(h[38:], 0o040755<<16)
	})

	tests := []rejection{
		{name: "missing METADATA", kind: Wheel, data: buildZip(t, without(wheelFiles(), testDistInfo+"/METADATA")), want: "Wheel is missing METADATA"},
		{name: "missing WHEEL", kind: Wheel, data: buildZip(t, without(wheelFiles(), testDistInfo+"/WHEEL")), want: "Wheel is missing WHEEL"},
		{name: "missing RECORD", kind: Wheel, data: buildZip(t, without(wheelFiles(), testDistInfo+"/RECORD")), want: "Wheel is missing RECORD"},
		{name: "no dist-info at all", kind: Wheel, data: buildZip(t, wheelFiles()[:2]), want: "Wheel is missing METADATA"},
		{name: "METADATA is a directory", kind: Wheel, data: buildZip(t, append(without(wheelFiles(), testDistInfo+"/METADATA"),
			zfile{name: testDistInfo + "/METADATA/", stored: true})), want: "Wheel is missing METADATA"},
		{name: "two dist-info dirs", kind: Wheel, data: secondDistInfo, want: "more than one .dist-info"},
		{name: "dist-info for another project", kind: Wheel, data: buildZip(t, renamed), want: "does not match the file name"},
		{name: "METADATA too large", kind: Wheel, data: wheel, lim: Limits{MaxMetadataSize: 10}, want: "METADATA is larger than 10 bytes"},
		{name: "sdist zip missing PKG-INFO", kind: SdistZip, data: buildZip(t, without(sdistZipFiles(), "demo_pkg-1.0/PKG-INFO")), want: "sdist is missing PKG-INFO"},
		{name: "sdist zip two top-level dirs", kind: SdistZip, data: buildZip(t, append(sdistZipFiles(), zfile{name: "other/x.py"})), want: "more than one top-level directory"},
		{name: "sdist zip top-level file", kind: SdistZip, data: buildZip(t, append(sdistZipFiles(), zfile{name: "setup.py"})), want: "outside its top-level directory"},
		{name: "sdist zip PKG-INFO only nested", kind: SdistZip, data: buildZip(t, []zfile{{name: "demo_pkg-1.0/sub/PKG-INFO", body: testPkgInfo}}), want: "sdist is missing PKG-INFO"},
		{name: "empty zip", kind: SdistZip, data: buildZip(t, nil), want: "sdist is missing PKG-INFO"},

		{name: "parent traversal", kind: Wheel, data: with(zfile{name: "../x"}), want: "Archive member path escapes the archive: ../x"},
		{name: "nested traversal", kind: Wheel, data: with(zfile{name: "demo_pkg/../../x"}), want: "escapes the archive"},
		{name: "absolute path", kind: Wheel, data: with(zfile{name: "/abs"}), want: "absolute: /abs"},
		{name: "drive letter", kind: Wheel, data: with(zfile{name: `C:\x`}), want: `drive letter: C:\x`},
		{name: "backslash", kind: Wheel, data: with(zfile{name: `demo_pkg\..\..\x`}), want: "backslash"},
		{name: "NUL in name", kind: Wheel, data: with(zfile{name: "demo_pkg/a\x00.py"}), want: "control character"},
		{name: "symlink", kind: Wheel, data: with(zfile{name: "demo_pkg/link", body: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}), want: "Archive contains a link: demo_pkg/link"},
		{name: "fifo", kind: Wheel, data: with(zfile{name: "demo_pkg/fifo", mode: fs.ModeNamedPipe | 0o644}), want: "special file"},
		{name: "dir mode on file", kind: Wheel, data: dirMode, want: "does not match its name"},
		{name: "duplicate name", kind: Wheel, data: with(zfile{name: "demo_pkg/__init__.py", body: []byte("evil")}), want: "duplicate member: demo_pkg/__init__.py"},
		{name: "file and dir with same name", kind: Wheel, data: with(zfile{name: "demo_pkg/__init__.py/", stored: true}), want: "duplicate member"},
		{name: "too many entries", kind: Wheel, data: wheel, lim: Limits{MaxEntries: 4}, want: "Archive has too many entries"},
		{name: "unsupported method", kind: Wheel, data: with(zfile{name: "demo_pkg/a.bz2", body: []byte("BZh9"),
			raw: &zip.FileHeader{Method: 12, CompressedSize64: 4, UncompressedSize64: 4}}), want: "Unsupported compression method"},
		{name: "encrypted member", kind: Wheel, data: with(rawDeflated(t, "demo_pkg/secret.py", []byte("x"), func(h *zip.FileHeader) {
			h.Flags |= 1
		})), want: "encrypted member"},
		{name: "stored sizes differ", kind: Wheel, data: with(zfile{name: "demo_pkg/s.txt", body: []byte("abcd"),
			raw: &zip.FileHeader{Method: zip.Store, CRC32: crc32.ChecksumIEEE([]byte("abcd")), CompressedSize64: 4, UncompressedSize64: 3}}),
			want: "sizes are inconsistent"},
		{name: "declared size smaller than data", kind: Wheel, data: with(rawDeflated(t, "demo_pkg/big.txt", big, func(h *zip.FileHeader) {
			h.UncompressedSize64 = 10
		})), want: "Archive member is larger than declared: demo_pkg/big.txt"},
		{name: "declared size larger than data", kind: Wheel, data: with(rawDeflated(t, "demo_pkg/a.txt", []byte("abc"), func(h *zip.FileHeader) {
			h.UncompressedSize64 = 1000
		})), want: "smaller than declared"},
		{name: "bad CRC", kind: Wheel, data: with(rawDeflated(t, "demo_pkg/a.txt", []byte("abc"), func(h *zip.FileHeader) {
			h.CRC32++
		})), want: "bad checksum: demo_pkg/a.txt"},
		{name: "zero CRC is still checked", kind: Wheel, data: with(rawDeflated(t, "demo_pkg/a.txt", []byte("abc"), func(h *zip.FileHeader) {
			h.CRC32 = 0
		})), want: "bad checksum"},
		{name: "corrupt deflate data", kind: Wheel, data: with(zfile{name: "demo_pkg/c.txt", body: []byte{0xff, 0xff, 0xff, 0xff},
			raw: &zip.FileHeader{Method: zip.Deflate, CompressedSize64: 4, UncompressedSize64: 4}}), want: "corrupt"},
		{name: "trailing compressed data", kind: Wheel, data: with(zfile{name: "demo_pkg/t.txt",
			body: append(deflate(t, []byte("abc")), "hidden"...),
			raw: &zip.FileHeader{Method: zip.Deflate, CRC32: crc32.ChecksumIEEE([]byte("abc")),
				CompressedSize64: uint64(len(deflate(t, []byte("abc")))) + 6, UncompressedSize64: 3}}),
			want: "trailing compressed data"},
		{name: "central directory lies about size", kind: Wheel, data: cdLies, want: "does not match central directory"},
		{name: "local header name differs", kind: Wheel, data: localName, want: "name does not match central directory"},
		{name: "overlapping members", kind: Wheel, data: overlap, want: "Archive members overlap"},
		{name: "declared total above cap", kind: Wheel, data: with(zfile{name: "demo_pkg/big.txt", body: big}),
			lim: Limits{MaxUncompressed: 1 << 19}, want: "maximum uncompressed size"},

		{name: "garbage", kind: Wheel, data: []byte("this is not a zip file at all, not even close"), want: "Not a valid zip file"},
		{name: "empty file", kind: Wheel, data: nil, want: "Not a valid zip file"},
		{name: "truncated end", kind: Wheel, data: wheel[:len(wheel)-10], want: "Not a valid zip file"},
		{name: "truncated half", kind: Wheel, data: wheel[:len(wheel)/2], want: "Not a valid zip file"},
		{name: "trailing data", kind: Wheel, data: append(bytes.Clone(wheel), "trailing"...), want: "data after its end record"},
		{name: "prepended data", kind: Wheel, data: append([]byte("#!/bin/sh\nexit 0\n"), wheel...), want: "unexpected data before"},
		{name: "tar.gz given as wheel", kind: Wheel, data: buildTarGz(t, sdistEntries()), want: "Not a valid zip file"},
	}
	runRejections(t, tests)
}

// TestZipBombRejectedBeforeInflating checks that a member declaring 200 MiB
// of zeros (a ~200 KiB deflate stream) is refused by the ratio guard from
// the central directory alone: its compressed data is never read.
func TestZipBombRejectedBeforeInflating(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	files := wheelFiles()
	for _, f := range files {
		w, _ := zw.Create(f.name)
		w.Write(f.body)
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "demo_pkg/zeros.bin", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for range 200 {
		w.Write(zero)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()

	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var start, end int64
	for _, f := range zr.File {
		if f.Name == "demo_pkg/zeros.bin" {
			start, _ = f.DataOffset()
			end = start + int64(f.CompressedSize64)
		}
	}
	// Reads of the first 512 bytes (polyglot check) and of the tail (end
	// records) may brush the edges of the data; its middle must stay
	// untouched.
	inner0, inner1 := start+1024, end-70*1024
	if inner1-inner0 < 64*1024 {
		t.Fatalf("bomb too small for the test: compressed data is %d bytes", end-start)
	}

	cr := &countingReaderAt{r: bytes.NewReader(data)}
	_, err = Inspect(cr, int64(len(data)), Wheel, testDistInfo, DefaultLimits())
	if want := "File exceeds compression ratio of 50"; err == nil || err.Error() != want {
		t.Fatalf("got error %v, want %q", err, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("got %v not wrapping ErrInvalid", err)
	}
	if cr.touched(inner0, inner1) {
		t.Errorf("got reads %v inside the bomb's data [%d, %d), want none", cr.ranges, inner0, inner1)
	}
}

// TestZipTarPolyglot builds a zip whose first 512 bytes are also a valid
// tar header: the first local header's extra field carries the tar fields.
func TestZipTarPolyglot(t *testing.T) {
	const name = testDistInfo + "/METADATA"
	extraLen := 512 - lenLocal - len(name)
	extra := make([]byte, extraLen)
	binary.LittleEndian.PutUint16(extra, 0xcafe) // private extra ID
	binary.LittleEndian.PutUint16(extra[2:], uint16(extraLen-4))

	// METADATA goes first, so that its local header is the tar header.
	files := append([]zfile{rawDeflated(t, name, testMetadata, func(h *zip.FileHeader) { h.Extra = extra })},
		without(wheelFiles(), name)...)

	plain := buildZip(t, files)
	if _, err := inspectBytes(plain, Wheel, testDistInfo, Limits{}); err != nil {
		t.Fatalf("got error %v for the zip without tar fields, want nil", err)
	}

	poly := bytes.Clone(plain)
	blk := poly[:512]
	copy(blk[100:], "0000644\x00")
	copy(blk[124:], "00000000000\x00")
	blk[156] = '0'
	copy(blk[257:], "ustar\x0000")
	setTarChecksum(blk)
	if !isTarHeader(bytesSection(poly)) {
		t.Fatalf("test bug: polyglot's first block is not a valid tar header")
	}
	_, err := inspectBytes(poly, Wheel, testDistInfo, Limits{})
	if want := "Archive is both a zip and a tar file"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// TestTarGzZipPolyglot appends a gzip member whose header extra field holds
// an end of central directory record: gzip readers accept the file, and so
// does archive/zip.
func TestTarGzZipPolyglot(t *testing.T) {
	eocd := make([]byte, lenEOCD)
	binary.LittleEndian.PutUint32(eocd, sigEOCD)
	var tail bytes.Buffer
	zw := gzip.NewWriter(&tail)
	zw.Extra = eocd
	zw.Close()
	data := append(buildTarGz(t, sdistEntries()), tail.Bytes()...)
	if _, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("test bug: archive/zip rejects the polyglot: %v", err)
	}
	_, err := inspectBytes(data, SdistTarGz, "", Limits{})
	if want := "Archive is both a zip and a tar file"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// TestZip64EndRecords checks an archive with more than 65535 members, for
// which archive/zip writes zip64 end records.
func TestZip64EndRecords(t *testing.T) {
	files := wheelFiles()
	for i := range 1 << 16 {
		files = append(files, zfile{name: fmt.Sprintf("demo_pkg/f%05d", i), stored: true})
	}
	data := buildZip(t, files)
	if !bytes.Contains(data, []byte{'P', 'K', 6, 6}) {
		t.Fatalf("test bug: no zip64 end record written")
	}
	res, err := inspectBytes(data, Wheel, testDistInfo, Limits{})
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if !bytes.Equal(res.Metadata, testMetadata) {
		t.Errorf("got metadata %q, want %q", res.Metadata, testMetadata)
	}
}

// TestMemberReaderGlobalCap exercises the archive-wide counter directly:
// the declared-size check normally fires first.
func TestMemberReaderGlobalCap(t *testing.T) {
	total := int64(90)
	lim := Limits{MaxUncompressed: 100}.withDefaults()
	mr := &memberReader{r: bytes.NewReader(make([]byte, 50)), declared: 50, total: &total, lim: lim, name: "x"}
	_, err := io.Copy(io.Discard, mr)
	if want := "File exceeds the maximum uncompressed size of 100 bytes"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
