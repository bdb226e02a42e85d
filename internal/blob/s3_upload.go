package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// s3Upload streams a blob of unknown size to S3 with bounded memory. Bytes
// collect in buf; every full part goes out at once as a part of a
// multipart upload to object, which is started by the first full part.
// A blob smaller than one part never starts one: finish sends it in a
// single PUT, to whatever object it is finally meant for.
//
// Until finish completes it, a multipart upload is invisible to readers;
// abort (or a sweep, for a process that died) removes its parts.
type s3Upload struct {
	s      *S3
	ctx    context.Context // for the parts sent by write
	object string          // the multipart upload's object, once started

	uploadID string // "" until the first full part
	parts    []minio.CompletePart
	buf      []byte // bytes not sent yet; fewer than a part
	sent     int64  // bytes in parts
	err      error  // a failed part ends the upload
}

func (s *S3) newUpload(ctx context.Context, object string) *s3Upload {
	return &s3Upload{s: s, ctx: ctx, object: object}
}

func (u *s3Upload) size() int64 { return u.sent + int64(len(u.buf)) }

// write appends p, sending each part as soon as it is full.
func (u *s3Upload) write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	n := 0
	for len(p) > 0 {
		if u.buf == nil {
			u.buf = make([]byte, 0, u.s.partSize)
		}
		k := min(len(p), cap(u.buf)-len(u.buf))
		u.buf = append(u.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(u.buf) == cap(u.buf) {
			if err := u.sendPart(); err != nil {
				u.err = err
				return n - k, err
			}
		}
	}
	return n, nil
}

// readFrom reads r to its end into the upload.
func (u *s3Upload) readFrom(r io.Reader) error {
	for {
		if u.buf == nil {
			u.buf = make([]byte, 0, u.s.partSize)
		}
		k, err := r.Read(u.buf[len(u.buf):cap(u.buf)])
		u.buf = u.buf[:len(u.buf)+k]
		if len(u.buf) == cap(u.buf) {
			if perr := u.sendPart(); perr != nil {
				u.err = perr
				return perr
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

// sendPart sends buf as the next part and empties it.
func (u *s3Upload) sendPart() error {
	ctx := u.ctx
	if err := ctx.Err(); err != nil {
		return err
	}
	if u.uploadID == "" {
		id, err := u.s.core.NewMultipartUpload(ctx, u.s.bucket, u.object, minio.PutObjectOptions{})
		if err != nil {
			return err
		}
		u.uploadID = id
	}
	n := len(u.parts) + 1
	p, err := u.s.core.PutObjectPart(ctx, u.s.bucket, u.object, u.uploadID, n, bytes.NewReader(u.buf), int64(len(u.buf)), minio.PutObjectPartOptions{})
	if err != nil {
		return err
	}
	u.parts = append(u.parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
	u.sent += int64(len(u.buf))
	u.buf = u.buf[:0]
	return nil
}

// multipart reports whether parts have gone out, so that the blob lives in
// the multipart upload's object and not in buf alone.
func (u *s3Upload) multipart() bool { return u.uploadID != "" }

// finish publishes the upload. Without a multipart upload the buffered
// bytes are PUT to object; with one, object must be the upload's own and
// the rest goes out as the last part before it is completed. Either is
// atomic. ctx is checked before the moment of publication.
func (u *s3Upload) finish(ctx context.Context, object string) error {
	if u.err != nil {
		return u.err
	}
	if err := ctx.Err(); err != nil {
		u.abort()
		return err
	}
	if !u.multipart() {
		// minio-go signs a body over plain HTTP in aws-chunked encoding,
		// and sends an empty one with no Content-Length, which S3 refuses
		// (MissingContentLength); with nothing to sign there is no need.
		opts := minio.PutObjectOptions{DisableContentSha256: len(u.buf) == 0}
		_, err := u.s.core.PutObject(ctx, u.s.bucket, object, bytes.NewReader(u.buf), int64(len(u.buf)), "", "", opts)
		u.buf = nil
		return err
	}
	if object != u.object {
		u.abort()
		return errors.New("blob: internal error: a multipart upload finished under another name")
	}
	if len(u.buf) > 0 {
		if err := u.sendPart(); err != nil {
			u.abort()
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		u.abort()
		return err
	}
	_, err := u.s.core.CompleteMultipartUpload(ctx, u.s.bucket, u.object, u.uploadID, u.parts, minio.PutObjectOptions{})
	if err != nil {
		u.abort()
		return err
	}
	u.uploadID, u.buf = "", nil
	return nil
}

// abort drops the upload's parts, if any, even when the request that
// wrote them is gone. A failure leaves them for Sweep.
func (u *s3Upload) abort() {
	u.buf = nil
	if u.uploadID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 30*time.Second)
	defer cancel()
	u.s.core.AbortMultipartUpload(ctx, u.s.bucket, u.object, u.uploadID)
	u.uploadID = ""
}
