package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/gatehouse-index/gatehouse/internal/failpoint"
)

// Stage implements [Store.Stage]. The staged blob is a temporary file at the
// top of the root, so Commit is a rename on the same filesystem.
func (s *FS) Stage(ctx context.Context) (Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: stage: %w", err)
	}
	st, err := s.stage()
	if err != nil {
		return nil, fmt.Errorf("blob: stage: %w", err)
	}
	return st, nil
}

func (s *FS) stage() (*fsStaged, error) {
	f, tmp, err := s.createTemp()
	if err != nil {
		return nil, err
	}
	return &fsStaged{s: s, f: f, tmp: tmp}, nil
}

// writebackEvery is how many bytes a staged blob accumulates before their
// writeback to disk is started (see startWriteback).
const writebackEvery = 8 << 20

// fsStaged is the filesystem store's [Staged]: an open temporary file.
type fsStaged struct {
	s       *FS
	f       *os.File // nil once committed or discarded
	tmp     string   // root-relative name of the temporary file
	size    int64
	written int64 // bytes whose writeback has been started
}

func (st *fsStaged) Write(p []byte) (int, error) {
	if st.f == nil {
		return 0, fmt.Errorf("blob: write: %w", ErrStagedDone)
	}
	n, err := st.f.Write(p)
	st.size += int64(n)
	if st.size-st.written >= writebackEvery {
		startWriteback(st.f, st.written, st.size-st.written)
		st.written = st.size
	}
	return n, err
}

// ReadFrom lets io.Copy hand a file or a socket to (*os.File).ReadFrom,
// which copies in the kernel (copy_file_range, splice).
func (st *fsStaged) ReadFrom(r io.Reader) (int64, error) {
	if st.f == nil {
		return 0, fmt.Errorf("blob: write: %w", ErrStagedDone)
	}
	n, err := st.f.ReadFrom(r)
	st.size += n
	return n, err
}

func (st *fsStaged) ReadAt(p []byte, off int64) (int, error) {
	if st.f == nil {
		return 0, fmt.Errorf("blob: read: %w", ErrStagedDone)
	}
	return st.f.ReadAt(p, off)
}

func (st *fsStaged) Size() int64 { return st.size }

// Sync fsyncs the temporary file. The fsync in commit then finds nothing
// left to write.
func (st *fsStaged) Sync() error {
	if st.f == nil {
		return fmt.Errorf("blob: sync: %w", ErrStagedDone)
	}
	return st.f.Sync()
}

func (st *fsStaged) Commit(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		st.Discard()
		return err
	}
	if err := st.commit(ctx, key); err != nil {
		return fmt.Errorf("blob: commit %q: %w", key, err)
	}
	return nil
}

// commit is Commit for a valid key: fsync, parent directories, rename,
// directory fsync (see the package documentation). It ends st either way.
func (st *fsStaged) commit(ctx context.Context, key string) (err error) {
	if st.f == nil {
		return ErrStagedDone
	}
	defer func() {
		if err != nil {
			st.Discard()
		}
		st.f = nil
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := st.f.Sync(); err != nil {
		return err
	}
	failpoint.Hit("blob-temp-written")
	dir := path.Dir(key)
	if err := st.s.mkdirAll(ctx, dir); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := st.f.Close(); err != nil {
		return err
	}
	if err := st.s.root.Rename(st.tmp, filepath.FromSlash(key)); err != nil {
		return err
	}
	// The blob is now published; what remains is making the rename itself
	// durable. There is no temporary file left to remove.
	st.tmp = ""
	return st.s.syncDir(dir)
}

func (st *fsStaged) Discard() error {
	if st.f == nil {
		return nil
	}
	st.f.Close() // an error if commit closed it already; nothing to lose
	st.f = nil
	if st.tmp == "" {
		return nil
	}
	err := st.s.root.Remove(st.tmp)
	st.tmp = ""
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blob: discard: %w", err)
	}
	return nil
}
