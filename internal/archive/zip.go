package archive

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"strings"
)

// Zip record signatures and fixed sizes (APPNOTE.TXT 4.3).
const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigEOCD       = 0x06054b50
	sigEOCD64     = 0x06064b50
	sigLocator64  = 0x07064b50
	sigDescriptor = 0x08074b50

	lenLocal     = 30
	lenCentral   = 46
	lenEOCD      = 22
	lenEOCD64    = 56
	lenLocator64 = 20

	extraZip64       = 0x0001
	extraUnicodePath = 0x7075

	// flagEncrypted, flagStrongEncryption and flagMaskedDirectory mark
	// content we cannot verify; flagDescriptor means sizes and CRC follow
	// the data; flagUTF8 changes how names are decoded.
	flagEncrypted        = 1 << 0
	flagDescriptor       = 1 << 3
	flagStrongEncryption = 1 << 6
	flagUTF8             = 1 << 11
	flagMaskedDirectory  = 1 << 13

	// Unix file type bits, found in the upper 16 bits of the external
	// attributes.
	unixTypeMask = 0o170000
	unixTypeDir  = 0o040000
	unixTypeReg  = 0o100000
	unixTypeLink = 0o120000

	u32max = math.MaxUint32
)

// zipEntry is one member as described by the central directory, parsed by
// this package independently of archive/zip.
type zipEntry struct {
	name      string
	flags     uint16
	method    uint16
	crc       uint32
	csize     uint64
	usize     uint64
	offset    int64 // of the local file header
	external  uint32
	dataStart int64 // set by checkZipLayout
}

// inspectZip validates a wheel or zip sdist.
//
// The archive is parsed twice: once by a strict parser in this file and
// once by archive/zip, and the two must agree exactly. Zip is full of
// redundancy (local headers vs central directory, 32- vs 64-bit fields) that
// tools resolve differently; demanding one unambiguous reading defeats
// attacks that show the index one set of files and an installer another.
func inspectZip(src *io.SectionReader, size int64, kind Kind, distInfo string, lim Limits) (Result, error) {
	if isTarHeader(src) {
		// A file that tar tools would also accept could be handed to
		// one (e.g. Python's tarfile.is_tarfile-based sniffing) and
		// yield entirely different content.
		return Result{}, errPolyglot
	}
	entries, cdOffset, err := readCentralDirectory(src, size, lim)
	if err != nil {
		return Result{}, err
	}

	// Zip bomb guard, from declared sizes only, before a single byte is
	// inflated. Members whose real size exceeds the declared one are
	// caught while inflating.
	var total uint64
	for _, e := range entries {
		if total += e.usize; total < e.usize {
			total = math.MaxUint64 // saturate on overflow
		}
	}
	if total > uint64(math.MaxInt64) || lim.exceedsRatio(int64(total), size) {
		return Result{}, lim.ratioError()
	}
	if int64(total) > lim.MaxUncompressed {
		return Result{}, lim.sizeError()
	}

	seen := make(memberSet, len(entries))
	var layout sdistLayout
	for _, e := range entries {
		if err := checkZipEntry(e); err != nil {
			return Result{}, err
		}
		if err := seen.add(e.name); err != nil {
			return Result{}, err
		}
		if kind == SdistZip {
			if err := layout.add(e.name, strings.HasSuffix(e.name, "/")); err != nil {
				return Result{}, err
			}
		}
	}

	order, err := checkZipLayout(src, entries, cdOffset)
	if err != nil {
		return Result{}, err
	}

	zr, err := zip.NewReader(src, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// Our parser accepted what archive/zip did not.
		return Result{}, errNotZip
	}
	if err := crossCheck(zr, entries); err != nil {
		return Result{}, err
	}

	// Locate the metadata before inflating, so a missing file fails fast.
	index := make(map[string]int, len(entries))
	for i, e := range entries {
		index[e.name] = i
	}
	var metaPath string
	if kind == Wheel {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.name
		}
		dir, err := findDistInfo(names, distInfo)
		if err != nil {
			return Result{}, err
		}
		for _, f := range []string{"METADATA", "WHEEL", "RECORD"} {
			if _, ok := index[dir+"/"+f]; !ok {
				return Result{}, invalidf("Wheel is missing %s", f)
			}
		}
		metaPath = dir + "/METADATA"
	} else {
		metaPath = layout.pkgInfoPath()
		if _, ok := index[metaPath]; !ok {
			return Result{}, errMissingPkgInfo
		}
	}
	metaIdx := index[metaPath]
	if err := checkMetadataSize(metaPath, int64(entries[metaIdx].usize), lim); err != nil {
		return Result{}, err
	}

	var (
		inflated int64
		meta     []byte
		inf      inflater
	)
	for _, i := range order {
		var sink *bytes.Buffer
		if i == metaIdx {
			sink = bytes.NewBuffer(make([]byte, 0, entries[i].usize))
		}
		if err := verifyZipMember(zr.File[i], entries[i], &inf, &inflated, lim, sink); err != nil {
			return Result{}, err
		}
		if sink != nil {
			meta = sink.Bytes()
		}
	}
	return Result{Metadata: meta, MetadataPath: metaPath}, nil
}

// isTarHeader reports whether the first 512 bytes form a tar header with a
// valid checksum. The ustar magic is not required: Python's tarfile accepts
// old V7 headers on the checksum alone.
func isTarHeader(src *io.SectionReader) bool {
	var blk [512]byte
	if _, err := src.ReadAt(blk[:], 0); err != nil {
		return false
	}
	field := strings.Trim(string(blk[148:156]), " \x00")
	if field == "" {
		return false
	}
	var want int64
	for _, c := range []byte(field) {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	var unsigned, signed int64
	for i, c := range blk {
		if 148 <= i && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}

// readAtExact reads n bytes at off, failing if they are not all inside the
// file.
func readAtExact(src *io.SectionReader, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > src.Size() || n > src.Size()-off {
		return nil, errNotZip
	}
	buf := make([]byte, n)
	if _, err := src.ReadAt(buf, off); err != nil {
		return nil, errTruncated
	}
	return buf, nil
}

// findEOCD locates the end of central directory record the same way
// archive/zip does (last signature in the final 1 KiB, else the final
// 65 KiB), and then insists that the record and its comment end exactly at
// the end of the file. Appended data is how zip/other-format polyglots are
// built and lets readers that scan differently find a different directory.
func findEOCD(src *io.SectionReader, size int64) (int64, []byte, error) {
	for i, n := range []int64{1024, 65 * 1024} {
		if n > size {
			n = size
		}
		buf, err := readAtExact(src, size-n, n)
		if err != nil {
			return 0, nil, err
		}
		for p := len(buf) - lenEOCD; p >= 0; p-- {
			if binary.LittleEndian.Uint32(buf[p:]) != sigEOCD {
				continue
			}
			commentLen := int(binary.LittleEndian.Uint16(buf[p+20:]))
			if p+lenEOCD+commentLen > len(buf) {
				return 0, nil, errNotZip
			}
			if p+lenEOCD+commentLen != len(buf) {
				return 0, nil, invalidf("Zip file has data after its end record")
			}
			return size - n + int64(p), buf[p : p+lenEOCD], nil
		}
		if i == 1 || n == size {
			break
		}
	}
	return 0, nil, errNotZip
}

// readCentralDirectory parses the end records and the central directory.
// It rejects multi-disk archives, prepended data, gaps and any
// disagreement between the 32-bit and zip64 end records.
func readCentralDirectory(src *io.SectionReader, size int64, lim Limits) ([]zipEntry, int64, error) {
	if size < lenEOCD {
		return nil, 0, errNotZip
	}
	eocdOff, rec, err := findEOCD(src, size)
	if err != nil {
		return nil, 0, err
	}
	le := binary.LittleEndian
	disk, cdDisk := le.Uint16(rec[4:]), le.Uint16(rec[6:])
	entriesDisk, entries16 := le.Uint16(rec[8:]), le.Uint16(rec[10:])
	cdSize32, cdOffset32 := le.Uint32(rec[12:]), le.Uint32(rec[16:])
	if disk != 0 || cdDisk != 0 || entriesDisk != entries16 {
		return nil, 0, invalidf("Multi-disk zip files are not supported")
	}
	count, cdSize, cdOffset := uint64(entries16), uint64(cdSize32), uint64(cdOffset32)
	cdEnd := eocdOff

	// A zip64 locator, when present, takes precedence in most readers
	// (Python's zipfile always looks for one), so its values must agree
	// with every unsaturated 32-bit field.
	if eocdOff >= lenLocator64 {
		loc, err := readAtExact(src, eocdOff-lenLocator64, lenLocator64)
		if err != nil {
			return nil, 0, err
		}
		if le.Uint32(loc) == sigLocator64 {
			if le.Uint32(loc[4:]) != 0 || le.Uint32(loc[16:]) != 1 {
				return nil, 0, invalidf("Multi-disk zip files are not supported")
			}
			locOff := eocdOff - lenLocator64
			z64 := le.Uint64(loc[8:])
			if z64 > uint64(locOff) || uint64(locOff)-z64 < lenEOCD64 {
				return nil, 0, errNotZip
			}
			r64, err := readAtExact(src, int64(z64), lenEOCD64)
			if err != nil {
				return nil, 0, err
			}
			if le.Uint32(r64) != sigEOCD64 || le.Uint64(r64[4:]) != uint64(locOff)-z64-12 {
				return nil, 0, errNotZip
			}
			if le.Uint32(r64[16:]) != 0 || le.Uint32(r64[20:]) != 0 || le.Uint64(r64[24:]) != le.Uint64(r64[32:]) {
				return nil, 0, invalidf("Multi-disk zip files are not supported")
			}
			c64, s64, o64 := le.Uint64(r64[32:]), le.Uint64(r64[40:]), le.Uint64(r64[48:])
			if (entries16 != 0xffff && uint64(entries16) != c64) ||
				(cdSize32 != u32max && uint64(cdSize32) != s64) ||
				(cdOffset32 != u32max && uint64(cdOffset32) != o64) {
				return nil, 0, invalidf("Zip end records disagree")
			}
			count, cdSize, cdOffset = c64, s64, o64
			cdEnd = int64(z64)
		}
	}

	if count > uint64(lim.MaxEntries) {
		return nil, 0, errTooManyEntries
	}
	// The directory must sit immediately before the end records, and
	// offsets are absolute: data before the first member (a "self
	// extracting" stub or another format's header) is refused.
	if cdSize > uint64(cdEnd) || cdOffset != uint64(cdEnd)-cdSize {
		return nil, 0, invalidf("Zip file has unexpected data before its central directory")
	}
	if count*lenCentral > cdSize {
		return nil, 0, errNotZip
	}
	cd, err := readAtExact(src, int64(cdOffset), int64(cdSize))
	if err != nil {
		return nil, 0, err
	}

	out := make([]zipEntry, 0, count)
	for i := uint64(0); i < count; i++ {
		e, n, err := parseCentralHeader(cd)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
		cd = cd[n:]
	}
	if len(cd) != 0 {
		return nil, 0, invalidf("Zip central directory has unexpected data")
	}
	return out, int64(cdOffset), nil
}

// parseCentralHeader parses one central directory header from b and
// returns it with its encoded length.
func parseCentralHeader(b []byte) (zipEntry, int, error) {
	le := binary.LittleEndian
	if len(b) < lenCentral || le.Uint32(b) != sigCentral {
		return zipEntry{}, 0, errNotZip
	}
	nameLen, extraLen, commentLen := int(le.Uint16(b[28:])), int(le.Uint16(b[30:])), int(le.Uint16(b[32:]))
	n := lenCentral + nameLen + extraLen + commentLen
	if len(b) < n {
		return zipEntry{}, 0, errNotZip
	}
	e := zipEntry{
		flags:    le.Uint16(b[8:]),
		method:   le.Uint16(b[10:]),
		crc:      le.Uint32(b[16:]),
		csize:    uint64(le.Uint32(b[20:])),
		usize:    uint64(le.Uint32(b[24:])),
		external: le.Uint32(b[38:]),
		name:     string(b[lenCentral : lenCentral+nameLen]),
	}
	if le.Uint16(b[34:]) != 0 {
		return zipEntry{}, 0, invalidf("Multi-disk zip files are not supported")
	}
	offset := uint64(le.Uint32(b[42:]))

	// Zip64 values appear in a fixed order, only for saturated fields.
	// As in archive/zip, a saturated uncompressed size without a zip64
	// field is taken literally (old zip32 writers), the others are not.
	needU, needC, needO := e.usize == u32max, e.csize == u32max, offset == u32max
	extra := b[lenCentral+nameLen : lenCentral+nameLen+extraLen]
	fields, err := parseExtra(extra)
	if err != nil {
		return zipEntry{}, 0, err
	}
	if z, ok := fields[extraZip64]; ok {
		take := func(need *bool, dst *uint64) bool {
			if !*need {
				return true
			}
			*need = false
			if len(z) < 8 {
				return false
			}
			*dst, z = le.Uint64(z), z[8:]
			return true
		}
		if !take(&needU, &e.usize) || !take(&needC, &e.csize) || !take(&needO, &offset) {
			return zipEntry{}, 0, errNotZip
		}
	}
	if needC || needO {
		return zipEntry{}, 0, errNotZip
	}
	if offset > math.MaxInt64 {
		return zipEntry{}, 0, errNotZip
	}
	e.offset = int64(offset)
	if err := checkUnicodePath(fields, e.name); err != nil {
		return zipEntry{}, 0, err
	}
	return e, n, nil
}

// parseExtra splits a well-formed extra field into its records. Python's
// zipfile rejects malformed extra fields, so an installer could not read an
// archive with one; duplicated zip64 or Unicode path records are rejected
// (as Warehouse does) because readers pick different copies.
func parseExtra(b []byte) (map[uint16][]byte, error) {
	fields := make(map[uint16][]byte)
	le := binary.LittleEndian
	for len(b) > 0 {
		if len(b) < 4 || len(b)-4 < int(le.Uint16(b[2:])) {
			return nil, invalidf("Zip extra field is malformed")
		}
		id, n := le.Uint16(b), int(le.Uint16(b[2:]))
		if _, dup := fields[id]; dup && (id == extraZip64 || id == extraUnicodePath) {
			return nil, invalidf("Zip extra field is duplicated")
		}
		fields[id] = b[4 : 4+n]
		b = b[4+n:]
	}
	return fields, nil
}

// checkUnicodePath rejects an Info-ZIP Unicode Path record naming a
// different file: Info-ZIP and 7-Zip extract under that name, while pip and
// this package use the header name, so a member could pass validation as
// "pkg/x.py" and be extracted as "../../x".
func checkUnicodePath(fields map[uint16][]byte, name string) error {
	up, ok := fields[extraUnicodePath]
	if !ok {
		return nil
	}
	if len(up) < 5 || string(up[5:]) != name {
		return invalidf("Zip member has a conflicting Unicode path: %s", showName(name))
	}
	return nil
}

// checkZipEntry applies the per-member rules that need only the central
// directory.
func checkZipEntry(e zipEntry) error {
	if err := checkMemberName(e.name); err != nil {
		return err
	}
	if e.flags&(flagEncrypted|flagStrongEncryption|flagMaskedDirectory) != 0 {
		return invalidf("Archive contains an encrypted member: %s", showName(e.name))
	}
	switch e.method {
	case zip.Store:
		if e.csize != e.usize {
			return invalidf("Zip member sizes are inconsistent: %s", showName(e.name))
		}
	case zip.Deflate:
	default:
		return invalidf("Unsupported compression method: %s", showName(e.name))
	}
	isDir := strings.HasSuffix(e.name, "/")
	// Unix mode bits live in the upper half of the external attributes.
	// Every common writer fills them in regardless of the "made by"
	// host, and extractors honour them, so they are checked for all
	// hosts: a symlink member can point anywhere, and a later member
	// written "through" it escapes the extraction directory.
	switch mode := e.external >> 16; mode & unixTypeMask {
	case 0, unixTypeReg:
	case unixTypeDir:
		if !isDir {
			return invalidf("Zip member type does not match its name: %s", showName(e.name))
		}
	case unixTypeLink:
		return invalidf("Archive contains a link: %s", showName(e.name))
	default:
		return invalidf("Archive contains a special file: %s", showName(e.name))
	}
	if isDir && e.usize != 0 {
		return invalidf("Directory entry has data: %s", showName(e.name))
	}
	return nil
}

// checkZipLayout reads every local file header and requires the members
// to tile the file exactly: the first at offset 0, each one starting where
// the previous one (and its data descriptor) ends, the last one ending
// where the central directory starts. This rules out
//   - overlapping members, the basis of non-recursive zip bombs that reuse
//     one compressed stream for many entries;
//   - data hidden between members, which streaming readers (that walk
//     local headers) would see as extra files;
//   - prepended data, used for zip polyglots.
//
// Each local header must also agree with the central directory on name,
// method and the flags that change interpretation, and on CRC and sizes
// where it records them. It returns entry indices in file order.
func checkZipLayout(src *io.SectionReader, entries []zipEntry, cdOffset int64) ([]int, error) {
	le := binary.LittleEndian
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return entries[order[a]].offset < entries[order[b]].offset })

	var cursor int64
	for k, i := range order {
		e := &entries[i]
		if e.offset != cursor {
			if e.offset < cursor {
				return nil, invalidf("Archive members overlap: %s", showName(e.name))
			}
			return nil, invalidf("Zip file has unexpected data before member: %s", showName(e.name))
		}
		if cdOffset-e.offset < lenLocal {
			return nil, errNotZip
		}
		h, err := readAtExact(src, e.offset, lenLocal)
		if err != nil {
			return nil, err
		}
		if le.Uint32(h) != sigLocal {
			return nil, invalidf("Zip local header is missing for: %s", showName(e.name))
		}
		flags, method := le.Uint16(h[6:]), le.Uint16(h[8:])
		crc, csize, usize := le.Uint32(h[14:]), uint64(le.Uint32(h[18:])), uint64(le.Uint32(h[22:]))
		nameLen, extraLen := int64(le.Uint16(h[26:])), int64(le.Uint16(h[28:]))
		if cdOffset-e.offset-lenLocal < nameLen+extraLen {
			return nil, errNotZip
		}
		ne, err := readAtExact(src, e.offset+lenLocal, nameLen+extraLen)
		if err != nil {
			return nil, err
		}
		if string(ne[:nameLen]) != e.name {
			return nil, invalidf("Zip local header name does not match central directory: %s", showName(e.name))
		}
		const interpFlags = flagEncrypted | flagDescriptor | flagUTF8
		if method != e.method || flags&interpFlags != e.flags&interpFlags {
			return nil, invalidf("Zip local header does not match central directory: %s", showName(e.name))
		}
		// Local extras are only consulted, never required to be well
		// formed: Python's zipfile skips them entirely.
		lfields, _ := parseExtra(ne[nameLen:])
		if err := checkUnicodePath(lfields, e.name); err != nil {
			return nil, err
		}

		e.dataStart = e.offset + lenLocal + nameLen + extraLen
		if e.csize > uint64(cdOffset-e.dataStart) {
			return nil, invalidf("Zip member data overruns the archive: %s", showName(e.name))
		}
		dataEnd := e.dataStart + int64(e.csize)

		next := cdOffset
		if k+1 < len(order) {
			next = entries[order[k+1]].offset
		}
		mismatch := invalidf("Zip local header does not match central directory: %s", showName(e.name))
		if e.flags&flagDescriptor == 0 {
			if csize == u32max || usize == u32max {
				z := lfields[extraZip64]
				if len(z) < 16 {
					return nil, mismatch
				}
				usize, csize = le.Uint64(z), le.Uint64(z[8:])
			}
			if crc != e.crc || csize != e.csize || usize != e.usize {
				return nil, mismatch
			}
			cursor = dataEnd
			continue
		}
		end, err := checkDescriptor(src, *e, dataEnd, next)
		if err != nil {
			return nil, err
		}
		cursor = end
	}
	if cursor != cdOffset {
		return nil, invalidf("Zip file has unexpected data before its central directory")
	}
	return order, nil
}

// checkDescriptor validates the data descriptor that follows a member's
// data and returns where it ends. Its layout is ambiguous (optional
// signature, 32- or 64-bit sizes), so the form that ends exactly where the
// next record begins is chosen, and its values must match the central
// directory: streaming readers trust the descriptor.
func checkDescriptor(src *io.SectionReader, e zipEntry, dataEnd, next int64) (int64, error) {
	le := binary.LittleEndian
	n := next - dataEnd
	if n < 12 || n > 24 {
		return 0, invalidf("Zip data descriptor does not match central directory: %s", showName(e.name))
	}
	d, err := readAtExact(src, dataEnd, n)
	if err != nil {
		return 0, err
	}
	if n == 16 || n == 24 {
		if le.Uint32(d) != sigDescriptor {
			return 0, invalidf("Zip data descriptor does not match central directory: %s", showName(e.name))
		}
		d = d[4:]
	}
	var crc uint32
	var csize, usize uint64
	switch len(d) {
	case 12:
		crc, csize, usize = le.Uint32(d), uint64(le.Uint32(d[4:])), uint64(le.Uint32(d[8:]))
	case 20:
		crc, csize, usize = le.Uint32(d), le.Uint64(d[4:]), le.Uint64(d[12:])
	default:
		return 0, invalidf("Zip data descriptor does not match central directory: %s", showName(e.name))
	}
	if crc != e.crc || csize != e.csize || usize != e.usize {
		return 0, invalidf("Zip data descriptor does not match central directory: %s", showName(e.name))
	}
	return next, nil
}

// crossCheck requires archive/zip to have read exactly what our own parser
// read. Any difference means the file is ambiguous.
func crossCheck(zr *zip.Reader, entries []zipEntry) error {
	ambiguous := invalidf("Zip central directory is ambiguous")
	if len(zr.File) != len(entries) {
		return ambiguous
	}
	for i, f := range zr.File {
		e := entries[i]
		if f.Name != e.name || f.Method != e.method || f.Flags != e.flags || f.CRC32 != e.crc ||
			f.CompressedSize64 != e.csize || f.UncompressedSize64 != e.usize || f.ExternalAttrs != e.external {
			return ambiguous
		}
		if off, err := f.DataOffset(); err != nil || off != e.dataStart {
			return ambiguous
		}
	}
	return nil
}

// verifyZipMember inflates one member in full, without trusting its
// declared size: the inflated byte count is capped at the declared size
// (a lying central directory is the classic way around a ratio check) and
// at the global limit. The CRC is always compared, unlike archive/zip which
// skips the check when the recorded CRC is zero. If sink is non-nil the
// member's bytes are also written to it.
func verifyZipMember(f *zip.File, e zipEntry, inf *inflater, inflated *int64, lim Limits, sink *bytes.Buffer) error {
	raw, err := f.OpenRaw()
	if err != nil {
		return errNotZip
	}
	var (
		src io.Reader = raw
		br  *bufio.Reader
	)
	if e.method == zip.Deflate {
		src, br = inf.reset(raw)
	}
	mr := &memberReader{r: src, declared: e.usize, total: inflated, lim: lim, name: e.name}
	h := crc32.NewIEEE()
	var w io.Writer = h
	if sink != nil {
		w = io.MultiWriter(h, sink)
	}
	if _, err := io.Copy(w, mr); err != nil {
		if mr.err != nil {
			return mr.err
		}
		return invalidf("Archive member is corrupt: %s", showName(e.name))
	}
	if mr.n != e.usize {
		return invalidf("Archive member is smaller than declared: %s", showName(e.name))
	}
	if h.Sum32() != e.crc {
		return invalidf("Archive member has a bad checksum: %s", showName(e.name))
	}
	if br != nil {
		// Bytes after the end of the deflate stream are invisible to
		// us but not necessarily to every inflater.
		if _, err := br.ReadByte(); err != io.EOF {
			return invalidf("Archive member has trailing compressed data: %s", showName(e.name))
		}
	}
	return nil
}

// inflater is a reusable deflate decompressor. Allocating a fresh one
// (tens of KiB) per member would let an archive of many tiny members cost
// far more memory churn than its size suggests.
type inflater struct {
	br *bufio.Reader
	fr io.ReadCloser
}

// reset points the inflater at a new compressed stream. The returned
// bufio.Reader is an io.ByteReader, so flate consumes exactly the
// compressed bytes it needs and any excess stays observable.
func (in *inflater) reset(r io.Reader) (io.Reader, *bufio.Reader) {
	if in.br == nil {
		in.br = bufio.NewReader(r)
		in.fr = flate.NewReader(in.br)
		return in.fr, in.br
	}
	in.br.Reset(r)
	if err := in.fr.(flate.Resetter).Reset(in.br, nil); err != nil {
		// Reset of a flate reader never fails; fall back to a new one.
		in.fr = flate.NewReader(in.br)
	}
	return in.fr, in.br
}

// memberReader is the hard counter on inflated bytes. It never asks the
// decompressor for more than one byte beyond the declared size, so a
// member that lies about its size costs at most that much work.
type memberReader struct {
	r        io.Reader
	n        uint64 // bytes produced for this member
	declared uint64
	total    *int64 // bytes produced for the whole archive
	lim      Limits
	name     string
	err      error
}

func (m *memberReader) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if room := m.declared - m.n + 1; uint64(len(p)) > room {
		p = p[:room]
	}
	n, err := m.r.Read(p)
	m.n += uint64(n)
	*m.total += int64(n)
	switch {
	case m.n > m.declared:
		m.err = invalidf("Archive member is larger than declared: %s", showName(m.name))
	case *m.total > m.lim.MaxUncompressed:
		m.err = m.lim.sizeError()
	}
	if m.err != nil {
		return 0, m.err
	}
	return n, err
}
