package archive

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"
)

func TestInspectTarGzRejects(t *testing.T) {
	runRejections(t, tarRejections(t))
}

// tarRejections are tar.gz sdists Inspect must refuse, one per check; they
// also seed FuzzInspectTarGz.
func tarRejections(t testing.TB) []rejection {
	good := buildTarGz(t, sdistEntries())
	with := func(extra ...tentry) []byte { return buildTarGz(t, append(sdistEntries(), extra...)) }
	special := func(name string, typeflag byte, link string) tentry {
		return tentry{hdr: tar.Header{Name: name, Typeflag: typeflag, Linkname: link, Mode: 0o644}}
	}
	// raw builds a tar.gz of the valid sdist followed by hand-made blocks.
	raw := func(blocks ...[]byte) []byte {
		tarData := buildTar(t, sdistEntries())
		tarData = tarData[:len(tarData)-1024] // drop end-of-archive marker
		for _, b := range blocks {
			tarData = append(tarData, b...)
		}
		return gzipBytes(t, append(tarData, make([]byte, 1024)...))
	}

	oldSparse := rawTarHeader("demo_pkg-1.0/sparse", tar.TypeGNUSparse, 5, func(blk []byte) {
		copy(blk[257:], "ustar  \x00")                          // GNU magic
		copy(blk[386:], "00000000000\x00")                      // sparse[0].offset
		copy(blk[398:], "00000000005\x00")                      // sparse[0].numbytes
		copy(blk[483:], fmt.Sprintf("%011o\x00", int64(1<<30))) // realsize
	})
	paxSparseRecords := paxRecord("GNU.sparse.numblocks", "1") +
		paxRecord("GNU.sparse.map", "0,5") +
		paxRecord("GNU.sparse.size", "1073741824") +
		paxRecord("GNU.sparse.name", "demo_pkg-1.0/big")
	paxSparse := [][]byte{
		rawTarHeader("demo_pkg-1.0/PaxHeaders.0/big", tar.TypeXHeader, int64(len(paxSparseRecords)), nil),
		padBlock([]byte(paxSparseRecords)),
		rawTarHeader("demo_pkg-1.0/GNUSparseFile.0/big", tar.TypeReg, 5, nil),
		padBlock([]byte("hello")),
	}

	trailing := buildTar(t, sdistEntries())
	trailing = gzipBytes(t, append(trailing, padBlock([]byte("hidden member"))...))

	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-8] ^= 0xff

	return []rejection{
		{name: "missing PKG-INFO", kind: SdistTarGz, data: buildTarGz(t, without2(sdistEntries(), "demo_pkg-1.0/PKG-INFO")), want: "sdist is missing PKG-INFO"},
		{name: "PKG-INFO is a directory", kind: SdistTarGz, data: buildTarGz(t, append(without2(sdistEntries(), "demo_pkg-1.0/PKG-INFO"), tdir("demo_pkg-1.0/PKG-INFO/"))), want: "sdist is missing PKG-INFO"},
		{name: "empty archive", kind: SdistTarGz, data: buildTarGz(t, nil), want: "sdist is missing PKG-INFO"},
		{name: "two top-level dirs", kind: SdistTarGz, data: with(treg("other-1.0/PKG-INFO", testPkgInfo)), want: "more than one top-level directory"},
		{name: "top-level file", kind: SdistTarGz, data: with(treg("setup.py", nil)), want: "outside its top-level directory"},
		{name: "PKG-INFO too large", kind: SdistTarGz, data: good, lim: Limits{MaxMetadataSize: 10}, want: "PKG-INFO is larger than 10 bytes"},

		{name: "parent traversal", kind: SdistTarGz, data: with(treg("../x", nil)), want: "Archive member path escapes the archive: ../x"},
		{name: "nested traversal", kind: SdistTarGz, data: with(treg("demo_pkg-1.0/../../x", nil)), want: "escapes the archive"},
		{name: "absolute path", kind: SdistTarGz, data: with(treg("/abs", nil)), want: "absolute"},
		{name: "drive letter", kind: SdistTarGz, data: with(treg(`C:\x`, nil)), want: "drive letter"},
		{name: "backslash", kind: SdistTarGz, data: with(treg(`demo_pkg-1.0\x`, nil)), want: "backslash"},
		{name: "symlink", kind: SdistTarGz, data: with(special("demo_pkg-1.0/link", tar.TypeSymlink, "/etc/passwd")), want: "Archive contains a link: demo_pkg-1.0/link"},
		{name: "hardlink", kind: SdistTarGz, data: with(special("demo_pkg-1.0/hard", tar.TypeLink, "demo_pkg-1.0/setup.py")), want: "Archive contains a link: demo_pkg-1.0/hard"},
		{name: "char device", kind: SdistTarGz, data: with(special("demo_pkg-1.0/null", tar.TypeChar, "")), want: "special file"},
		{name: "fifo", kind: SdistTarGz, data: with(special("demo_pkg-1.0/fifo", tar.TypeFifo, "")), want: "special file"},
		{name: "contiguous file type", kind: SdistTarGz, data: with(special("demo_pkg-1.0/cont", tar.TypeCont, "")), want: "unsupported member type"},
		{name: "old GNU sparse member", kind: SdistTarGz, data: raw(oldSparse, padBlock([]byte("hello"))), want: "sparse file"},
		{name: "PAX sparse member", kind: SdistTarGz, data: raw(paxSparse...), want: "sparse file: demo_pkg-1.0/big"},
		{name: "directory with data", kind: SdistTarGz, data: raw(rawTarHeader("demo_pkg-1.0/d/", tar.TypeDir, 512, nil), make([]byte, 512)), want: "Directory entry has data"},
		{name: "global header with path", kind: SdistTarGz, data: buildTarGz(t, append([]tentry{{hdr: tar.Header{
			Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"path": "evil"}}}}, sdistEntries()...)),
			want: "unsupported global header"},
		{name: "regular file named like a dir", kind: SdistTarGz, data: raw(rawTarHeader("demo_pkg-1.0/sub/", tar.TypeReg, 1, nil), padBlock([]byte("x"))), want: "does not match its name"},
		{name: "duplicate name", kind: SdistTarGz, data: with(treg("demo_pkg-1.0/setup.py", []byte("evil"))), want: "duplicate member: demo_pkg-1.0/setup.py"},
		{name: "file and dir with same name", kind: SdistTarGz, data: with(tdir("demo_pkg-1.0/setup.py/")), want: "duplicate member"},
		{name: "too many entries", kind: SdistTarGz, data: good, lim: Limits{MaxEntries: 2}, want: "Archive has too many entries"},
		{name: "data after end of archive", kind: SdistTarGz, data: trailing, want: "data after the end of the tar stream"},
		{name: "uncompressed size cap", kind: SdistTarGz, data: with(treg("demo_pkg-1.0/blob", pseudoRandom(2<<20))),
			lim: Limits{MaxUncompressed: 1 << 20}, want: "maximum uncompressed size of 1048576 bytes"},
		{name: "ratio guard with low floor", kind: SdistTarGz, data: with(treg("demo_pkg-1.0/zeros", make([]byte, 4<<20))),
			lim: Limits{RatioFloor: 1 << 20}, want: "File exceeds compression ratio of 50"},

		{name: "truncated near end", kind: SdistTarGz, data: good[:len(good)-4], want: "Truncated archive"},
		{name: "truncated in the middle", kind: SdistTarGz, data: good[:len(good)/2], want: "Truncated archive"},
		{name: "bad gzip checksum", kind: SdistTarGz, data: badCRC, want: "Archive is corrupt"},
		{name: "garbage", kind: SdistTarGz, data: []byte("this is not a gzip file, it is a sentence"), want: "Not a valid gzip file"},
		{name: "empty file", kind: SdistTarGz, data: nil, want: "Truncated archive"},
		{name: "gzip of garbage", kind: SdistTarGz, data: gzipBytes(t, bytes.Repeat([]byte("garbage!"), 200)), want: "Not a valid tar file"},
		{name: "zip given as tar.gz", kind: SdistTarGz, data: buildZip(t, sdistZipFiles()), want: "Archive is both a zip and a tar file"},
	}
}

func without2(entries []tentry, name string) []tentry {
	var out []tentry
	for _, e := range entries {
		if e.hdr.Name != name {
			out = append(out, e)
		}
	}
	return out
}

// TestTarBomb streams 300 MiB of zeros (about 380 KiB compressed) and
// checks that the ratio guard stops it with default limits.
func TestTarBomb(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, flate.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, e := range sdistEntries() {
		h := e.hdr
		tw.WriteHeader(&h)
		tw.Write(e.body)
	}
	const size = 300 << 20
	if err := tw.WriteHeader(&tar.Header{Name: "demo_pkg-1.0/zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for range size / len(zero) {
		tw.Write(zero)
	}
	tw.Close()
	zw.Close()

	runRejections(t, []rejection{
		{name: "zeros", kind: SdistTarGz, data: buf.Bytes(), lim: DefaultLimits(), want: "File exceeds compression ratio of 50"},
	})
}

func TestTarManyEntries(t *testing.T) {
	entries := sdistEntries()
	for i := range 50 {
		entries = append(entries, treg(fmt.Sprintf("demo_pkg-1.0/f%d.py", i), nil))
	}
	data := buildTarGz(t, entries)
	if _, err := inspectBytes(data, SdistTarGz, "", Limits{MaxEntries: len(entries)}); err != nil {
		t.Fatalf("got %v at exactly MaxEntries, want nil", err)
	}
	_, err := inspectBytes(data, SdistTarGz, "", Limits{MaxEntries: len(entries) - 1})
	if err == nil || !strings.Contains(err.Error(), "too many entries") {
		t.Errorf("got %v, want too many entries", err)
	}
}
