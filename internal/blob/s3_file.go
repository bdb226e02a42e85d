package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/minio/minio-go/v7"
)

// s3File is an open S3 blob. Read streams one GET from the current offset
// to the end, opened on the first Read and again after a Seek elsewhere;
// ReadAt asks for exactly the range it reads. Every GET names the ETag
// Open saw, so a blob replaced meanwhile (which a content-addressed caller
// never does with other bytes) fails the read rather than mixing versions.
type s3File struct {
	s      *S3
	ctx    context.Context
	object string
	key    string
	size   int64
	etag   string

	pos    int64
	body   io.ReadCloser // open GET, positioned at bodyAt; nil when none
	bodyAt int64
	closed bool
}

func (f *s3File) Read(p []byte) (int, error) {
	if f.closed {
		return 0, fmt.Errorf("blob: read %q: file already closed", f.key)
	}
	if f.pos >= f.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if f.body != nil && f.bodyAt != f.pos {
		f.body.Close()
		f.body = nil
	}
	if f.body == nil {
		body, err := f.s.get(f.ctx, f.object, f.etag, f.pos, -1)
		if err != nil {
			return 0, f.s.wrapErr("read", f.key, err)
		}
		f.body, f.bodyAt = body, f.pos
	}
	n, err := f.body.Read(p)
	f.pos += int64(n)
	f.bodyAt = f.pos
	if err == io.EOF {
		f.body.Close()
		f.body = nil
		if f.pos < f.size {
			return n, fmt.Errorf("blob: read %q: %w", f.key, io.ErrUnexpectedEOF)
		}
		return n, io.EOF
	}
	if err != nil {
		return n, fmt.Errorf("blob: read %q: %w", f.key, err)
	}
	return n, nil
}

func (f *s3File) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.size + offset
	default:
		return f.pos, fmt.Errorf("blob: seek %q: invalid whence %d", f.key, whence)
	}
	if abs < 0 {
		return f.pos, fmt.Errorf("blob: seek %q: negative position", f.key)
	}
	f.pos = abs // the open GET, if any, is dropped by the next Read if need be
	return abs, nil
}

func (f *s3File) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, fmt.Errorf("blob: read %q: file already closed", f.key)
	}
	if off < 0 {
		return 0, fmt.Errorf("blob: read %q: negative offset", f.key)
	}
	if off >= f.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), f.size)
	b, err := f.s.readRange(f.ctx, f.object, f.etag, off, end)
	n := copy(p, b)
	if err != nil {
		return n, f.s.wrapErr("read", f.key, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *s3File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.body != nil {
		f.body.Close()
		f.body = nil
	}
	return nil
}

// get opens a GET of object from start to end (inclusive; -1 for the end),
// requiring etag when it is set.
func (s *S3) get(ctx context.Context, object, etag string, start, end int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, err
		}
	}
	switch {
	case start > 0 && end < 0:
		// minio-go spells "from start to the end" (bytes=N-) with end 0.
		if err := opts.SetRange(start, 0); err != nil {
			return nil, err
		}
	case end >= 0:
		if err := opts.SetRange(start, end); err != nil {
			return nil, err
		}
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, object, opts)
	if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed {
		return nil, errS3Changed
	}
	return body, err
}

// readRange reads the bytes [start, end) of object (requiring etag if set).
func (s *S3) readRange(ctx context.Context, object, etag string, start, end int64) ([]byte, error) {
	if end <= start {
		return nil, nil
	}
	body, err := s.get(ctx, object, etag, start, end-1)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b := make([]byte, end-start)
	n, err := io.ReadFull(body, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return b[:n], io.ErrUnexpectedEOF
	}
	return b[:n], err
}

// s3BlockSize is how much a staged blob's ReadAt fetches at once: the
// archive checks read with many small ReadAt calls, mostly in order.
const s3BlockSize = 1 << 20

// blockCache keeps the few blocks read last.
type blockCache struct {
	blocks [4]struct {
		off  int64
		data []byte
	}
	next int
}

// get returns the cached block holding off (and its offset), or fetches
// the block starting at off's block boundary.
func (c *blockCache) get(off int64, fetch func(boff int64) ([]byte, error)) ([]byte, int64, error) {
	for _, b := range c.blocks {
		if b.data != nil && off >= b.off && off < b.off+int64(len(b.data)) {
			return b.data, b.off, nil
		}
	}
	boff := off - off%s3BlockSize
	data, err := fetch(boff)
	if err != nil {
		return nil, 0, err
	}
	if off >= boff+int64(len(data)) {
		return nil, 0, io.ErrUnexpectedEOF
	}
	c.blocks[c.next].off, c.blocks[c.next].data = boff, data
	c.next = (c.next + 1) % len(c.blocks)
	return data, boff, nil
}
