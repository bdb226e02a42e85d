package archive

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The seed corpus of FuzzInspectTarGz. A fuzzer started from one minimal
// sdist spends its time on gzip checksum failures and never builds a PAX
// header, a GNU long name or a sparse map; these seeds start it inside
// each of those parsers, on both sides of every check in tar.go.
//
// Each seed is a tar stream (the target gzips it, so that mutations hit
// the tar structure rather than the gzip checksum) or gzip data (for the
// gzip layer: header fields, several members, trailing bytes). Each also
// says what Inspect makes of it under fuzzLimits, and the target checks
// that before fuzzing, so a seed that stops reaching the code it was
// written for fails instead of silently thinning the corpus.

// tarSeed is one seed: want is "" when Inspect accepts it, otherwise a part
// of its refusal.
type tarSeed struct {
	name string
	data []byte
	want string
}

// seedTime has a sub-second part, which only PAX keeps (as Python's tarfile
// writes it: mtime=1772366400.123456789).
var seedTime = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// seedPkgInfo is a PKG-INFO as setuptools writes it for a package with an
// extra, entry points and a Markdown README.
func seedPkgInfo(description string) []byte {
	return []byte(`Metadata-Version: 2.1
Name: demo-pkg
Version: 1.0
Summary: a demo
Home-page: https://example.org/demo
Author: Some One
Author-email: someone@example.org
License: MIT
Project-URL: Source, https://example.org/demo/src
Classifier: Programming Language :: Python :: 3
Classifier: License :: OSI Approved :: MIT License
Requires-Python: >=3.8
Description-Content-Type: text/markdown
License-File: LICENSE
Provides-Extra: test
Requires-Dist: pytest; extra == "test"

` + description)
}

// seedTree is an sdist of the usual shape under top: directories, a src
// layout with a subpackage, tests, docs, and egg-info with its own PKG-INFO
// (which is not the one read).
func seedTree(top string, format tar.Format) []tentry {
	files := []tentry{
		tdir(top + "/"),
		treg(top+"/PKG-INFO", seedPkgInfo("# demo\n\nLong description.\n")),
		treg(top+"/LICENSE", []byte("MIT License\n\nCopyright (c) 2026 Some One\n")),
		treg(top+"/README.md", []byte("# demo\n\nLong description.\n")),
		treg(top+"/pyproject.toml", []byte("[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n")),
		treg(top+"/setup.cfg", []byte("[egg_info]\ntag_build = \ntag_date = 0\n\n")),
		tdir(top + "/src/"),
		tdir(top + "/src/demo_pkg/"),
		treg(top+"/src/demo_pkg/__init__.py", []byte("__version__ = \"1.0\"\n")),
		tdir(top + "/src/demo_pkg/sub/"),
		treg(top+"/src/demo_pkg/sub/__init__.py", nil),
		treg(top+"/src/demo_pkg/sub/mod.py", []byte("def f():\n    return 1\n")),
		tdir(top + "/src/demo_pkg.egg-info/"),
		treg(top+"/src/demo_pkg.egg-info/PKG-INFO", seedPkgInfo("")),
		treg(top+"/src/demo_pkg.egg-info/SOURCES.txt", []byte("LICENSE\nREADME.md\npyproject.toml\nsrc/demo_pkg/__init__.py\n")),
		treg(top+"/src/demo_pkg.egg-info/entry_points.txt", []byte("[console_scripts]\ndemo = demo_pkg.sub.mod:f\n")),
		tdir(top + "/tests/"),
		treg(top+"/tests/test_mod.py", []byte("def test_f():\n    assert True\n")),
	}
	for i := range files {
		h := &files[i].hdr
		h.Format, h.ModTime = format, seedTime
		h.Uid, h.Gid, h.Uname, h.Gname = 1000, 1000, "someone", "someone"
		if format == tar.FormatPAX || format == tar.FormatGNU {
			h.AccessTime, h.ChangeTime = seedTime, seedTime
		}
	}
	return files
}

func withFormat(format tar.Format, entries ...tentry) []tentry {
	for i := range entries {
		entries[i].hdr.Format = format
	}
	return entries
}

// rawTar is the minimal sdist followed by hand-made blocks and the end of
// the archive, for what archive/tar will not write.
func rawTar(t testing.TB, blocks ...[]byte) []byte {
	out := buildTar(t, sdistEntries())
	out = out[:len(out)-1024]
	for _, b := range blocks {
		out = append(out, b...)
	}
	return append(out, make([]byte, 1024)...)
}

// rawPAX is a local PAX header block with records, for the member after it.
func rawPAX(name string, records ...string) []byte {
	data := strings.Join(records, "")
	return append(rawTarHeader(name, tar.TypeXHeader, int64(len(data)), nil), padBlock([]byte(data))...)
}

func rawMember(name string, typeflag byte, body []byte, edit func([]byte)) []byte {
	return append(rawTarHeader(name, typeflag, int64(len(body)), edit), padBlock(body)...)
}

// v7 clears the USTAR magic: a pre-POSIX header, whose directories are
// marked by the trailing slash alone.
func v7(blk []byte) { clear(blk[257:265]) }

// gnuMagic marks a header as GNU tar's ("ustar  \0").
func gnuMagic(blk []byte) { copy(blk[257:], "ustar  \x00") }

// trimTarPadding drops the zero records after the end-of-archive marker
// (Python pads to 10 KiB), keeping the two zero blocks of the marker.
func trimTarPadding(b []byte) []byte {
	end := len(b)
	for end >= 512 && bytes.Count(b[end-512:end], []byte{0}) == 512 {
		end -= 512
	}
	return b[:min(end+1024, len(b))]
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// realSdists are sdists that Debian 12's build backends made of one small
// project (a src layout with a subpackage, tests, docs, a Markdown README,
// a license file, an extra and an entry point), with
// `python3 -m build --sdist --no-isolation`: setuptools 66.1.1,
// flit_core 3.8.0, poetry-core 1.4.0 and hatchling 1.12.2. They are what
// uploads look like: Python's tarfile in PAX format with sub-second mtimes,
// padded to 10 KiB, gzip with a file name in its header.
func realSdists(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "sdists", "*.tar.gz"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no sdists in testdata/sdists (%v)", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func tarSeeds(t testing.TB) []tarSeed {
	const top = "demo_pkg-1.0"
	tr := func(entries ...tentry) []byte { return buildTar(t, entries) }
	plus := func(format tar.Format, extra ...tentry) []byte {
		return tr(append(seedTree(top, format), withFormat(format, extra...)...)...)
	}
	long := func(n int) string { // a path of n bytes under top, in 50-byte directories
		var b strings.Builder
		b.WriteString(top)
		for i := 0; b.Len() < n-60; i++ {
			fmt.Fprintf(&b, "/%s%02d", strings.Repeat("d", 47), i)
		}
		b.WriteString("/")
		b.WriteString(strings.Repeat("f", n-b.Len()-3))
		b.WriteString(".py")
		return b.String()
	}
	special := func(name string, typeflag byte, link string) tentry {
		return tentry{hdr: tar.Header{Name: name, Typeflag: typeflag, Linkname: link, Mode: 0o644, Devmajor: 1, Devminor: 3}}
	}
	nested := tr(seedTree(top, tar.FormatPAX)...)

	var seeds []tarSeed
	add := func(name, want string, data []byte) { seeds = append(seeds, tarSeed{name, data, want}) }

	// Accepted, in every header format archive/tar reads.
	add("ustar minimal", "", tr(sdistEntries()...))
	add("ustar tree", "", tr(seedTree(top, tar.FormatUSTAR)...))
	add("pax tree", "", nested)
	add("gnu tree", "", tr(seedTree(top, tar.FormatGNU)...))
	add("v7 headers", "", append(append(append(
		rawTarHeader(top+"/", 0, 0, v7),
		rawMember(top+"/PKG-INFO", 0, testPkgInfo, v7)...),
		rawMember(top+"/setup.py", tar.TypeReg, []byte("from setuptools import setup\nsetup()\n"), v7)...),
		make([]byte, 1024)...))
	add("git archive global header", "", tr(append([]tentry{{hdr: tar.Header{
		Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"}}}}, seedTree(top, tar.FormatPAX)...)...))
	add("long name, ustar prefix", "", plus(tar.FormatUSTAR, treg(long(200), []byte("x = 1\n"))))
	add("long name, pax path", "", plus(tar.FormatPAX, treg(long(300), []byte("x = 1\n"))))
	add("long name, gnu L", "", plus(tar.FormatGNU, treg(long(300), []byte("x = 1\n"))))
	add("name just under the cap", "", plus(tar.FormatPAX, treg(long(maxNameLen), nil)))
	add("utf-8 names", "", plus(tar.FormatPAX, treg(top+"/src/données/日本語.py", []byte("# é\n")), tdir(top+"/src/ünï/")))
	add("gnu base-256 ids", "", tr(withFormat(tar.FormatGNU,
		tentry{hdr: tar.Header{Name: top + "/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1 << 30, Gid: 1 << 30}},
		tentry{hdr: tar.Header{Name: top + "/PKG-INFO", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1 << 30, Size: int64(len(testPkgInfo)),
			ModTime: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, body: testPkgInfo},
	)...))
	add("pax records of every kind", "", tr(withFormat(tar.FormatPAX, tdir(top+"/"),
		tentry{hdr: tar.Header{Name: top + "/PKG-INFO", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(testPkgInfo)),
			ModTime: seedTime, Uname: strings.Repeat("u", 40), Gname: "g", PAXRecords: map[string]string{
				"comment": "c", "SCHILY.xattr.user.mime_type": "text/plain", "LIBARCHIVE.creationtime": "1772366400"}}, body: testPkgInfo},
	)...))
	add("record-padded like Python", "", append(nested, make([]byte, 10240-len(nested)%10240)...))
	add("large PKG-INFO", "", tr(tdir(top+"/"),
		treg(top+"/PKG-INFO", seedPkgInfo(strings.Repeat("A long description, in Markdown, with `code` and *emphasis*.\n", 500)))))
	many := []tentry{tdir(top + "/"), treg(top+"/PKG-INFO", testPkgInfo)}
	for i := range 60 {
		many = append(many, treg(fmt.Sprintf("%s/src/m%02d.py", top, i), []byte("pass\n")))
	}
	add("60 entries", "", tr(many...))
	add("zero-length files", "", tr(tdir(top+"/"), treg(top+"/PKG-INFO", testPkgInfo), treg(top+"/empty", nil), treg(top+"/b", nil)))

	// The gzip layer, with the data as is.
	gzHeader := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, flate.BestCompression)
		zw.Header = gzip.Header{Name: top + ".tar", Comment: "seed", Extra: []byte("AB\x02\x00hi"), ModTime: seedTime, OS: 3}
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	add("gzip header fields", "", gzHeader(nested))
	add("gzip in two members", "", append(gzipBytes(t, nested[:1024]), gzipBytes(t, nested[1024:])...))
	add("gzip then garbage", "Not a valid gzip file", append(gzipBytes(t, nested), "garbage after the gzip member"...))
	add("gzip then a zip", "both a zip and a tar", append(gzipBytes(t, nested), buildZip(t, sdistZipFiles())...))

	// Real sdists, gzip as uploaded and their tar streams.
	for name, gz := range realSdists(t) {
		add(name, "", gz)
		add(name+" (tar)", "", trimTarPadding(gunzip(t, gz)))
	}

	// Refused: links, devices, sparse members and hostile names, through
	// every header format that can carry them.
	add("symlink, gnu long link", "Archive contains a link", plus(tar.FormatGNU, special(top+"/link", tar.TypeSymlink, "/"+long(200))))
	add("hardlink, pax linkpath", "Archive contains a link", plus(tar.FormatPAX, special(top+"/hard", tar.TypeLink, long(300))))
	add("block device", "special file", plus(tar.FormatUSTAR, special(top+"/sda", tar.TypeBlock, "")))
	add("char device, gnu", "special file", plus(tar.FormatGNU, special(top+"/null", tar.TypeChar, "")))
	add("fifo, pax", "special file", plus(tar.FormatPAX, special(top+"/fifo", tar.TypeFifo, "")))
	add("old gnu sparse", "sparse file", rawTar(t, rawMember(top+"/sparse", tar.TypeGNUSparse, []byte("hello"), func(blk []byte) {
		gnuMagic(blk)
		copy(blk[386:], "00000000000\x00")                      // sparse[0].offset
		copy(blk[398:], "00000000005\x00")                      // sparse[0].numbytes
		copy(blk[483:], fmt.Sprintf("%011o\x00", int64(1<<30))) // realsize
	})))
	add("old gnu sparse, extended map", "sparse file", rawTar(t, rawTarHeader(top+"/sparse2", tar.TypeGNUSparse, 5, func(blk []byte) {
		gnuMagic(blk)
		copy(blk[386:], "00000000000\x00")
		copy(blk[398:], "00000000001\x00")
		blk[482] = 1 // isextended: a sparse map block follows
		copy(blk[483:], fmt.Sprintf("%011o\x00", int64(1<<20)))
	}), padBlock(append([]byte("00000000010\x0000000000004\x00"), make([]byte, 504-24)...)), padBlock([]byte("hello"))))
	add("pax sparse 0.0", "sparse file", rawTar(t,
		rawPAX(top+"/PaxHeaders/s0", paxRecord("GNU.sparse.size", "1048576"), paxRecord("GNU.sparse.numblocks", "2"),
			paxRecord("GNU.sparse.offset", "0"), paxRecord("GNU.sparse.numbytes", "2"),
			paxRecord("GNU.sparse.offset", "1000"), paxRecord("GNU.sparse.numbytes", "3")),
		rawMember(top+"/s0", tar.TypeReg, []byte("hello"), nil)))
	add("pax sparse 0.1", "sparse file", rawTar(t,
		rawPAX(top+"/PaxHeaders/s1", paxRecord("GNU.sparse.size", "1048576"), paxRecord("GNU.sparse.numblocks", "2"),
			paxRecord("GNU.sparse.map", "0,2,1000,3"), paxRecord("GNU.sparse.name", top+"/s1")),
		rawMember(top+"/GNUSparseFile.0/s1", tar.TypeReg, []byte("hello"), nil)))
	add("pax sparse 1.0", "sparse file", rawTar(t,
		rawPAX(top+"/PaxHeaders/s2", paxRecord("GNU.sparse.major", "1"), paxRecord("GNU.sparse.minor", "0"),
			paxRecord("GNU.sparse.name", top+"/s2"), paxRecord("GNU.sparse.realsize", "1048576")),
		rawMember(top+"/GNUSparseFile.0/s2", tar.TypeReg, append(padBlock([]byte("2\n0\n2\n1000\n3\n")), "hello"...), nil)))
	add("pax path traversal", "escapes the archive", rawTar(t,
		rawPAX(top+"/PaxHeaders/x", paxRecord("path", top+"/../../../etc/cron.d/x")),
		rawMember(top+"/x", tar.TypeReg, []byte("* * * * * root sh\n"), nil)))
	add("gnu long name traversal", "escapes the archive", plus(tar.FormatGNU, treg(long(150)+"/../../../../../../../../x", nil)))
	add("pax path with escape sequence", "control character", rawTar(t,
		rawPAX(top+"/PaxHeaders/e", paxRecord("path", top+"/\x1b[31mred")),
		rawMember(top+"/e", tar.TypeReg, nil, nil)))
	add("pax path not utf-8", "not valid UTF-8", rawTar(t,
		rawPAX(top+"/PaxHeaders/u", paxRecord("path", top+"/\xff\xfe")),
		rawMember(top+"/u", tar.TypeReg, nil, nil)))
	add("pax path too long", "name is too long", plus(tar.FormatPAX, treg(long(maxNameLen+1), nil)))
	add("pax size beyond the data", "Truncated archive", rawTar(t,
		rawPAX(top+"/PaxHeaders/big", paxRecord("size", "999999")),
		rawMember(top+"/big", tar.TypeReg, []byte("small"), nil)))
	add("pax size on a directory", "Directory entry has data", rawTar(t,
		rawPAX(top+"/PaxHeaders/d", paxRecord("size", "512")),
		rawTarHeader(top+"/d/", tar.TypeDir, 0, nil), make([]byte, 512)))
	add("pax path duplicates a member", "duplicate member", rawTar(t,
		rawPAX(top+"/PaxHeaders/dup", paxRecord("path", top+"/setup.py")),
		rawMember(top+"/other.py", tar.TypeReg, []byte("evil"), nil)))
	add("gnu long name, second top dir", "more than one top-level directory",
		plus(tar.FormatGNU, treg("other-1.0/"+strings.Repeat("x", 150), nil)))
	add("gnu long name cut short", "Truncated archive", func() []byte {
		b := tr(withFormat(tar.FormatGNU, treg(long(700), nil))...)
		return b[:512+300] // the L header and part of its name
	}())
	add("global header with path", "unsupported global header", tr(append([]tentry{{hdr: tar.Header{
		Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", Format: tar.FormatPAX,
		PAXRecords: map[string]string{"path": "evil", "comment": "c"}}}}, seedTree(top, tar.FormatPAX)...)...))
	add("data after the end", "data after the end of the tar stream", append(bytes.Clone(nested), padBlock([]byte("hidden member"))...))
	return seeds
}

// fuzzTarGzInput is what FuzzInspectTarGz inspects for data: gzip data as
// is, anything else gzipped first.
func fuzzTarGzInput(t testing.TB, data []byte) []byte {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return gzipBytes(t, data)
	}
	return data
}

// TestInspectRealSdists: what the build backends make is accepted, with
// the top-level PKG-INFO.
func TestInspectRealSdists(t *testing.T) {
	for name, gz := range realSdists(t) {
		t.Run(name, func(t *testing.T) {
			res, err := inspectBytes(gz, SdistTarGz, "", Limits{})
			if err != nil {
				t.Fatalf("got %v, want it accepted", err)
			}
			top := strings.TrimSuffix(name, ".tar.gz")
			if res.MetadataPath != top+"/PKG-INFO" || !bytes.HasPrefix(res.Metadata, []byte("Metadata-Version: ")) {
				t.Errorf("got PKG-INFO %q:\n%s\nwant %s/PKG-INFO", res.MetadataPath, res.Metadata, top)
			}
		})
	}
}
