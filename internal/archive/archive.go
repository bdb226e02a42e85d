// Package archive validates uploaded Python distribution files (wheels and
// sdists) before the index accepts them, and extracts their core metadata
// file (METADATA or PKG-INFO).
//
// Uploads are hostile input. Everything here is written with a named threat
// in mind:
//
//   - decompression bombs (zip bombs, tar.gz bombs, overlapping zip members,
//     sparse tar members): declared sizes are checked before anything is
//     inflated, and every inflated byte is counted against hard caps;
//   - path traversal (../, absolute paths, drive letters, backslashes) and
//     links (symlinks, hardlinks, devices), which would let a later consumer
//     that extracts the archive write outside its target directory;
//   - parser confusion: zip files whose central directory and local headers
//     disagree, zips with prepended or appended data, zip/tar polyglots and
//     duplicate member names, where pip, the index and other tools would see
//     different contents in the same bytes.
//
// The package never writes archive members to disk; it only reads through
// the archive to verify it and keeps the metadata file in memory.
//
// The checks follow Warehouse (PyPI), forklift/legacy.py
// _is_valid_dist_file and utils/zipfiles.py, and are stricter where that was
// cheap.
package archive

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Kind is the type of distribution file being inspected. It is decided by
// the caller from the uploaded file name; Inspect never sniffs the format,
// because letting content pick the parser is itself a confusion vector.
type Kind int

const (
	// Wheel is a .whl file: a zip archive with a .dist-info directory.
	Wheel Kind = iota
	// SdistTarGz is a .tar.gz source distribution.
	SdistTarGz
	// SdistZip is a .zip source distribution.
	SdistZip
)

// String returns a short human name for the kind.
func (k Kind) String() string {
	switch k {
	case Wheel:
		return "wheel"
	case SdistTarGz:
		return "sdist (.tar.gz)"
	case SdistZip:
		return "sdist (.zip)"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Limits bounds the resources one Inspect call may consume. A zero field
// takes its value from DefaultLimits, so Limits{} is the default policy.
type Limits struct {
	// MaxUncompressed is a hard cap on the total number of bytes inflated
	// from the archive (default 1 GiB). For zips the sum of the declared
	// member sizes must also fit, so a bomb is refused before inflation.
	MaxUncompressed int64
	// MaxRatio is the largest accepted uncompressed/compressed size ratio
	// (default 50, as Warehouse).
	MaxRatio float64
	// RatioFloor is the uncompressed size above which MaxRatio is enforced
	// (default 64 MiB, as Warehouse), so small, highly compressible files
	// such as a tarball of text stay acceptable.
	RatioFloor int64
	// MaxEntries caps the number of archive members (default 100,000).
	MaxEntries int
	// MaxMetadataSize caps the size of METADATA / PKG-INFO (default 16 MiB).
	// The metadata is held in memory and parsed by the caller.
	MaxMetadataSize int64
}

// Default limit values.
const (
	DefaultMaxUncompressed int64   = 1 << 30
	DefaultMaxRatio        float64 = 50
	DefaultRatioFloor      int64   = 64 << 20
	DefaultMaxEntries      int     = 100_000
	DefaultMaxMetadataSize int64   = 16 << 20
)

// DefaultLimits returns the limits used for uploads unless configured
// otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxUncompressed: DefaultMaxUncompressed,
		MaxRatio:        DefaultMaxRatio,
		RatioFloor:      DefaultRatioFloor,
		MaxEntries:      DefaultMaxEntries,
		MaxMetadataSize: DefaultMaxMetadataSize,
	}
}

// withDefaults replaces zero (and nonsensical negative) fields with their
// defaults, so that a forgotten field can never mean "unlimited".
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = d.MaxUncompressed
	}
	if !(l.MaxRatio > 0) { // also catches NaN
		l.MaxRatio = d.MaxRatio
	}
	if l.RatioFloor <= 0 {
		l.RatioFloor = d.RatioFloor
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxMetadataSize <= 0 {
		l.MaxMetadataSize = d.MaxMetadataSize
	}
	return l
}

// exceedsRatio reports whether uncompressed bytes produced from compressed
// input bytes breach the compression ratio guard.
func (l Limits) exceedsRatio(uncompressed, compressed int64) bool {
	return uncompressed > l.RatioFloor &&
		float64(uncompressed) > l.MaxRatio*float64(compressed)
}

func (l Limits) ratioError() error {
	return invalidf("File exceeds compression ratio of %s",
		strconv.FormatFloat(l.MaxRatio, 'f', -1, 64))
}

func (l Limits) sizeError() error {
	return invalidf("File exceeds the maximum uncompressed size of %d bytes", l.MaxUncompressed)
}

// Result is what Inspect extracts from a valid distribution file.
type Result struct {
	// Metadata is the exact bytes of <name>-<version>.dist-info/METADATA
	// (wheel) or <top>/PKG-INFO (sdist).
	Metadata []byte
	// MetadataPath is the archive member path Metadata was read from.
	MetadataPath string
}

// ErrInvalid is wrapped by every error that Inspect returns because the
// file itself is unacceptable. Errors that do not wrap it come from reading
// the underlying io.ReaderAt (or from a misuse of the API) and are not the
// uploader's fault.
var ErrInvalid = errors.New("invalid distribution file")

// invalidError is a validation failure. Its message is a short sentence
// meant to follow "Invalid distribution file. " in a response to the
// uploader.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Common validation errors.
var (
	errTruncated       = &invalidError{"Truncated archive"}
	errNotZip          = &invalidError{"Not a valid zip file"}
	errPolyglot        = &invalidError{"Archive is both a zip and a tar file"}
	errTooManyEntries  = &invalidError{"Archive has too many entries"}
	errMultipleTopDirs = &invalidError{"sdist contains more than one top-level directory"}
	errMissingPkgInfo  = &invalidError{"sdist is missing PKG-INFO"}
)

// Inspect validates the archive in r, which is size bytes long, as a
// distribution file of the given kind, and returns its core metadata.
//
// For a wheel, distInfo is the "<name>-<version>.dist-info" directory name
// the caller derived from the wheel's file name (in its escaped form). The
// wheel must contain distInfo/METADATA, distInfo/WHEEL and distInfo/RECORD.
// The directory is matched exactly first; failing that, the wheel's single
// .dist-info directory is accepted if its name normalizes (lowercase, runs
// of "-", "_" and "." as "_") to the same value. distInfo is ignored for
// sdists.
//
// For an sdist, every member must live under one top-level directory, which
// must contain PKG-INFO.
//
// Every member is read in full (and checksummed, for zips), but nothing is
// written anywhere. Zips are read with many small ReadAt calls, so r should
// be a local file or memory rather than a remote object. Validation
// failures wrap ErrInvalid; any other error comes from r (or reports a
// misuse of the arguments).
func Inspect(r io.ReaderAt, size int64, kind Kind, distInfo string, lim Limits) (Result, error) {
	if size < 0 {
		return Result{}, fmt.Errorf("archive: negative size %d", size)
	}
	if kind == Wheel {
		if distInfo == "" || strings.ContainsAny(distInfo, "/\\") ||
			!strings.HasSuffix(distInfo, ".dist-info") {
			return Result{}, fmt.Errorf("archive: distInfo %q is not a .dist-info directory name", distInfo)
		}
	}
	lim = lim.withDefaults()
	g := &guardedReaderAt{r: r}
	src := io.NewSectionReader(g, 0, size)

	var (
		res Result
		err error
	)
	switch kind {
	case Wheel, SdistZip:
		res, err = inspectZip(src, size, kind, distInfo, lim)
	case SdistTarGz:
		res, err = inspectTarGz(src, size, lim)
	default:
		return Result{}, fmt.Errorf("archive: unknown kind %d", int(kind))
	}
	if err != nil {
		// A failing disk or network must not be reported to the
		// uploader as a broken file, nor a broken file as an outage.
		if g.err != nil {
			return Result{}, g.err
		}
		if !errors.Is(err, ErrInvalid) {
			// Parsers report malformed input in many ways; anything
			// that is not an I/O failure of r is the file's fault.
			err = &invalidError{"Archive is corrupt"}
		}
		return Result{}, err
	}
	return res, nil
}

// guardedReaderAt remembers the first real I/O error of the underlying
// reader, so that Inspect can tell "the file is broken" (which parsers
// report as io.EOF, io.ErrUnexpectedEOF or a format error) from "the
// storage is broken".
type guardedReaderAt struct {
	r   io.ReaderAt
	err error
}

func (g *guardedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.r.ReadAt(p, off)
	if err != nil && err != io.EOF && g.err == nil {
		g.err = err
	}
	return n, err
}

// checkMetadataSize rejects a metadata file too large to hold in memory
// and hand to the metadata parser.
func checkMetadataSize(path string, size int64, lim Limits) error {
	if size > lim.MaxMetadataSize {
		return invalidf("%s is larger than %d bytes", baseName(path), lim.MaxMetadataSize)
	}
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// findDistInfo picks the wheel's .dist-info directory among the member
// names. pip refuses wheels with more than one top-level .dist-info
// directory, and so do we: otherwise the index could read its metadata from
// a different directory than installers do.
func findDistInfo(names []string, want string) (string, error) {
	var found []string
	seen := make(map[string]bool)
	for _, n := range names {
		top, _, ok := strings.Cut(n, "/")
		if !ok || !strings.HasSuffix(top, ".dist-info") || seen[top] {
			continue
		}
		seen[top] = true
		found = append(found, top)
	}
	switch {
	case len(found) == 0:
		return "", invalidf("Wheel is missing METADATA")
	case len(found) > 1:
		return "", invalidf("Wheel contains more than one .dist-info directory")
	case found[0] == want:
		return want, nil
	case normalizeDistInfo(found[0]) == normalizeDistInfo(want):
		return found[0], nil
	}
	return "", invalidf("Wheel directory %s does not match the file name (expected %s)",
		showName(found[0]), showName(want))
}

// normalizeDistInfo lowercases s and collapses runs of "-", "_" and "." into
// a single "_", so that e.g. "Foo.Bar-1.0.dist-info" and
// "foo_bar-1.0.dist-info" compare equal.
func normalizeDistInfo(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('_')
	}
	return b.String()
}
