package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"strings"
)

// inspectTarGz validates a .tar.gz sdist in one streaming pass.
//
// Unlike zip, a tar.gz declares nothing up front that could be checked
// before decompressing, so the defences are continuous: every decompressed
// byte (headers and padding included) is counted against the size cap and
// the compression ratio guard as it is produced.
func inspectTarGz(src *io.SectionReader, size int64, lim Limits) (Result, error) {
	// A tar.gz that zip readers also accept (an end of central directory
	// record hidden in a trailing gzip member's extra field, say) could
	// be shown to a tool that sniffs the format and yield other files.
	if zr, err := zip.NewReader(src, size); err == nil || (zr != nil && errors.Is(err, zip.ErrInsecurePath)) {
		return Result{}, errPolyglot
	}

	gz, err := gzip.NewReader(bufio.NewReader(src))
	if err != nil {
		return Result{}, tarError(err, nil)
	}
	defer gz.Close()
	counter := &budgetReader{r: gz, compressed: size, lim: lim}
	tr := tar.NewReader(counter)

	var (
		entries int
		seen    = make(memberSet)
		layout  sdistLayout
		res     Result
	)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return Result{}, tarError(err, counter)
		}
		// ErrInsecurePath (only with GODEBUG=tarinsecurepath=0) comes
		// with a usable header; our own name checks are stricter.
		if entries++; entries > lim.MaxEntries {
			return Result{}, errTooManyEntries
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			if err := checkGlobalHeader(hdr); err != nil {
				return Result{}, err
			}
			continue
		}
		if err := checkTarEntry(hdr); err != nil {
			return Result{}, err
		}
		if err := seen.add(hdr.Name); err != nil {
			return Result{}, err
		}
		if err := layout.add(hdr.Name, hdr.Typeflag == tar.TypeDir); err != nil {
			return Result{}, err
		}
		if hdr.Typeflag != tar.TypeDir && hdr.Name == layout.pkgInfoPath() {
			if err := checkMetadataSize(hdr.Name, hdr.Size, lim); err != nil {
				return Result{}, err
			}
			buf := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, buf); err != nil {
				return Result{}, tarError(err, counter)
			}
			res = Result{Metadata: buf, MetadataPath: hdr.Name}
		}
		// Other members' content is consumed (and counted) by the next
		// call to Next.
	}

	// After the end-of-archive marker only zero padding may follow.
	// Anything else is content that GNU tar --ignore-zeros and similar
	// readers would go on to extract, but that we have not validated.
	if err := drainZeros(counter); err != nil {
		return Result{}, tarError(err, counter)
	}
	if res.MetadataPath == "" {
		return Result{}, errMissingPkgInfo
	}
	return res, nil
}

// checkTarEntry allows only regular files and directories with safe names.
// Links can point anywhere and let later members write through them;
// devices and FIFOs are never part of a source tree; sparse members expand
// holes to arbitrary sizes outside the decompression budget (archive/tar
// synthesizes the zeros itself), making them a bomb that the gzip counter
// cannot see.
func checkTarEntry(hdr *tar.Header) error {
	name := hdr.Name
	switch hdr.Typeflag {
	case tar.TypeReg: // archive/tar reports the legacy TypeRegA as TypeReg
		// Extractors disagree on a "file" named like a directory.
		if strings.HasSuffix(name, "/") {
			return invalidf("Archive member type does not match its name: %s", showName(name))
		}
	case tar.TypeDir:
		if hdr.Size != 0 {
			return invalidf("Directory entry has data: %s", showName(name))
		}
	case tar.TypeSymlink, tar.TypeLink:
		return invalidf("Archive contains a link: %s", showName(name))
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return invalidf("Archive contains a special file: %s", showName(name))
	case tar.TypeGNUSparse:
		return invalidf("Archive contains a sparse file: %s", showName(name))
	default:
		return invalidf("Archive contains an unsupported member type: %s", showName(name))
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return invalidf("Archive contains a sparse file: %s", showName(name))
		}
	}
	return checkMemberName(name)
}

// checkGlobalHeader allows PAX global headers only with a comment (as
// written by git archive). archive/tar ignores other global records, but
// Python's tarfile applies records such as "path" or "size" to later
// members, which would make the two see different archives.
func checkGlobalHeader(hdr *tar.Header) error {
	for k := range hdr.PAXRecords {
		if k != "comment" {
			return invalidf("Archive has an unsupported global header")
		}
	}
	return nil
}

// drainZeros reads r to its end, failing on any non-zero byte.
func drainZeros(r io.Reader) error {
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return invalidf("Archive has data after the end of the tar stream")
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// tarError maps a failure from the gzip or tar readers to a validation
// error. A budget violation recorded by counter takes precedence, since the
// tar reader may have transformed the error on its way out.
func tarError(err error, counter *budgetReader) error {
	if counter != nil && counter.err != nil {
		return counter.err
	}
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, ErrInvalid):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errTruncated
	case errors.Is(err, gzip.ErrHeader):
		return invalidf("Not a valid gzip file")
	case errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return invalidf("Archive is corrupt")
	case errors.Is(err, tar.ErrHeader):
		return invalidf("Not a valid tar file")
	}
	return invalidf("Not a valid tar file")
}

// budgetReader counts decompressed bytes and enforces the size cap and the
// compression ratio guard continuously, so a tar bomb is stopped after at
// most MaxUncompressed (or RatioFloor, for a highly compressed one) bytes.
type budgetReader struct {
	r          io.Reader
	n          int64
	compressed int64
	lim        Limits
	err        error
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Never ask for more than one byte past the cap.
	if room := b.lim.MaxUncompressed - b.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.lim.MaxUncompressed:
		b.err = b.lim.sizeError()
	case b.lim.exceedsRatio(b.n, b.compressed):
		b.err = b.lim.ratioError()
	}
	if b.err != nil {
		return 0, b.err
	}
	return n, err
}
