package blob

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// Stage implements [Store.Stage]. The bytes stream to the object store as
// they arrive: a blob smaller than one part stays in memory and is PUT to
// its key at Commit; a larger one goes, part by part, into a multipart
// upload of a temporary object, which Commit copies to the key on the
// server (no byte passes through this process twice) and then removes.
// Nothing is ever written to local disk.
func (s *S3) Stage(ctx context.Context) (Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: stage: %w", err)
	}
	temp := s.newTempName()
	return &s3Staged{s: s, temp: temp, up: s.newUpload(ctx, temp)}, nil
}

// s3Staged is the S3 store's [Staged].
type s3Staged struct {
	s    *S3
	temp string    // the temporary object a large blob goes to
	up   *s3Upload // nil once committed or discarded

	// Once ReadAt needs bytes already sent, the multipart upload is
	// completed into the temporary object (written is then final) and read
	// back with ranged GETs, a block at a time. The last, unsent piece
	// stays in memory (tail), which is where a zip's central directory is.
	completed bool
	tail      []byte
	tailOff   int64
	blocks    blockCache
}

func (st *s3Staged) Write(p []byte) (int, error) {
	if st.up == nil {
		return 0, fmt.Errorf("blob: write: %w", ErrStagedDone)
	}
	if st.completed {
		return 0, fmt.Errorf("blob: write after ReadAt: %w", ErrStagedDone)
	}
	n, err := st.up.write(p)
	if err != nil {
		err = fmt.Errorf("blob: write: %w", err)
	}
	return n, err
}

func (st *s3Staged) Size() int64 {
	if st.up == nil {
		return 0
	}
	if st.completed {
		return st.tailOff + int64(len(st.tail))
	}
	return st.up.size()
}

func (st *s3Staged) ReadAt(p []byte, off int64) (int, error) {
	if st.up == nil {
		return 0, fmt.Errorf("blob: read: %w", ErrStagedDone)
	}
	if off < 0 {
		return 0, fmt.Errorf("blob: read: negative offset %d", off)
	}
	// Once completed the upload is no longer multipart (finish ended it),
	// but its bytes are in the temporary object and the tail.
	if !st.completed && !st.up.multipart() {
		return readAtBytes(st.up.buf, p, off)
	}
	if !st.completed {
		st.tail, st.tailOff = st.up.buf, st.up.sent
		if err := st.up.finish(st.up.ctx, st.temp); err != nil {
			st.up = nil
			return 0, fmt.Errorf("blob: read: complete the staged upload: %w", err)
		}
		st.completed = true
	}
	size := st.Size()
	n := 0
	for n < len(p) && off+int64(n) < size {
		at := off + int64(n)
		if at >= st.tailOff {
			k, _ := readAtBytes(st.tail, p[n:], at-st.tailOff)
			n += k
			continue
		}
		b, boff, err := st.blocks.get(at, func(boff int64) ([]byte, error) {
			return st.s.readRange(st.up.ctx, st.temp, "", boff, min(boff+s3BlockSize, st.tailOff))
		})
		if err != nil {
			return n, fmt.Errorf("blob: read: %w", err)
		}
		n += copy(p[n:min(len(p), n+int(boff+int64(len(b))-at))], b[at-boff:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readAtBytes is ReadAt on b.
func readAtBytes(b, p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (st *s3Staged) Commit(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		st.Discard()
		return err
	}
	if st.up == nil {
		return fmt.Errorf("blob: commit %q: %w", key, ErrStagedDone)
	}
	err := st.commit(ctx, key)
	st.Discard()
	if err != nil {
		return fmt.Errorf("blob: commit %q: %w", key, err)
	}
	return nil
}

// Sync completes a multipart upload into the staged temporary object, the
// slow part of a Commit, so that the Commit (run under the project's
// transaction) only copies it server-side. A small upload still held in
// memory is sent by Commit itself, in one PUT to its key.
func (st *s3Staged) Sync() error {
	if st.up == nil {
		return fmt.Errorf("blob: sync: %w", ErrStagedDone)
	}
	if st.completed || !st.up.multipart() {
		return nil
	}
	if err := st.up.finish(context.Background(), st.temp); err != nil {
		return fmt.Errorf("blob: sync: %w", err)
	}
	st.completed = true
	return nil
}

// maxS3Copy is the largest object one CopyObject may copy; beyond it the
// copy goes in parts (ComposeObject).
const maxS3Copy = 5 << 30

func (st *s3Staged) commit(ctx context.Context, key string) error {
	up := st.up
	if !st.completed && !up.multipart() {
		// One PUT to the key; nothing is left for Discard to remove.
		return up.finish(ctx, st.s.object(key))
	}
	if !st.completed {
		if err := up.finish(ctx, st.temp); err != nil {
			return err
		}
		st.completed = true
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dst := minio.CopyDestOptions{Bucket: st.s.bucket, Object: st.s.object(key)}
	src := minio.CopySrcOptions{Bucket: st.s.bucket, Object: st.temp}
	var err error
	if st.Size() <= maxS3Copy {
		_, err = st.s.client.CopyObject(ctx, dst, src)
	} else {
		_, err = st.s.client.ComposeObject(ctx, dst, src)
	}
	return err
}

func (st *s3Staged) Discard() error {
	up := st.up
	if up == nil {
		return nil
	}
	st.up, st.tail = nil, nil
	if !st.completed {
		up.abort()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(up.ctx), 30*time.Second)
	defer cancel()
	if err := st.s.client.RemoveObject(ctx, st.s.bucket, st.temp, minio.RemoveObjectOptions{}); err != nil && !isS3NotFound(err) {
		return fmt.Errorf("blob: discard: %w", err)
	}
	return nil
}
