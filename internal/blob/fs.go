package blob

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	dirPerm  = 0o750
	filePerm = 0o640
)

// FS is the filesystem [Store] rooted at a directory. A key maps to the file
// at the same relative path below the root.
//
// All access goes through an [os.Root], so even a key that slipped past
// [ValidKey], or a symlink planted inside the tree, cannot reach a file
// outside the root. See the package documentation for the durability
// protocol used by Put.
//
// FS is safe for concurrent use by multiple goroutines. Blobs stay atomic
// if several processes share a root, but the bookkeeping that makes freshly
// created parent directories durable before a concurrent Put returns is per
// process, so one writing process per root is recommended.
type FS struct {
	root *os.Root

	// mkdirs tracks directories this process is creating, keyed by
	// slash-separated relative path, so that a concurrent Put which finds a
	// directory already present waits until its creator has made it durable
	// (see mkdir).
	mkdirs sync.Map // string -> *dirOp
}

// dirOp is one in-flight directory creation.
type dirOp struct {
	done chan struct{} // closed when the creation attempt is over
	err  error         // result; written before done is closed
}

var _ Store = (*FS)(nil)

// NewFS returns a filesystem Store rooted at root, creating the directory
// (mode 0o750, including missing parents) if it does not exist.
func NewFS(root string) (*FS, error) {
	if root == "" {
		return nil, errors.New("blob: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob: root %q: %w", root, err)
	}
	// Remember which directories are about to be created so their parents
	// can be synced, like FS.Put does for key directories.
	var created []string
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("blob: create root: %w", err)
	}
	for _, d := range created {
		if err := syncPath(filepath.Dir(d)); err != nil {
			return nil, fmt.Errorf("blob: create root: %w", err)
		}
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("blob: open root: %w", err)
	}
	return &FS{root: r}, nil
}

// Close releases the directory handle held by s. s must not be used
// afterwards.
func (s *FS) Close() error {
	return s.root.Close()
}

// Put implements [Store.Put] using the temp-file, fsync, rename,
// directory-fsync protocol described in the package documentation: it is a
// staged write whose key is known from the start.
func (s *FS) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	st, err := s.stage()
	if err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	defer st.Discard()
	// ReadFrom hands r to (*os.File).ReadFrom untouched, so that it can use
	// copy_file_range/splice when r is a file or socket.
	if _, err := st.ReadFrom(r); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	if err := st.commit(ctx, key); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	return nil
}

// createTemp creates a new, exclusive temporary file at the top of the root
// and returns it with its root-relative name.
func (s *FS) createTemp() (*os.File, string, error) {
	for range 10 {
		name := TempPrefix + rand.Text()
		f, err := s.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue // 128 random bits collided; astonishing, but retry
		}
		return f, name, err
	}
	return nil, "", errors.New("could not create a unique temporary file")
}

// mkdirAll creates dir (slash-separated, relative to the root) and its
// missing parents, syncing the parent of every directory it creates so the
// new entries survive a crash.
func (s *FS) mkdirAll(ctx context.Context, dir string) error {
	if dir == "." {
		return nil
	}
	// Directories are created one component at a time rather than with
	// Root.MkdirAll because we must know which ones are new.
	for i := 0; ; {
		j := strings.IndexByte(dir[i:], '/')
		if j < 0 {
			return s.mkdir(ctx, dir)
		}
		if err := s.mkdir(ctx, dir[:i+j]); err != nil {
			return err
		}
		i += j + 1
	}
}

// mkdir creates the single directory p unless it exists, and if it created
// it, syncs p's parent.
//
// A directory that already exists is assumed durable. That is only true if
// its creator has finished syncing the parent, so creations are tracked in
// s.mkdirs: at most one goroutine per path tries at a time, and the others
// wait for it. Without this, of two concurrent Puts into a new directory the
// one that lost the mkdir race could return before the winner's parent fsync
// and its "durable" blob could vanish with the directory on power loss.
func (s *FS) mkdir(ctx context.Context, p string) error {
	op := &dirOp{done: make(chan struct{})}
	for {
		v, loaded := s.mkdirs.LoadOrStore(p, op)
		if !loaded {
			break
		}
		other := v.(*dirOp)
		select {
		case <-other.done:
			if other.err != nil {
				return other.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		s.mkdirs.Delete(p)
		close(op.done)
	}()
	err := s.root.Mkdir(filepath.FromSlash(p), dirPerm)
	switch {
	case errors.Is(err, fs.ErrExist):
		// Already there (possibly as a file: the temp file creation will
		// then fail with a clear error).
		return nil
	case err != nil:
		op.err = err
		return err
	}
	op.err = s.syncDir(path.Dir(p))
	return op.err
}

// syncDir fsyncs the directory dir (slash-separated, relative to the root),
// persisting the creation, renaming or removal of entries in it.
func (s *FS) syncDir(dir string) error {
	d, err := s.root.Open(filepath.FromSlash(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}

// syncPath fsyncs the directory at an ordinary (non-root) path.
func syncPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements [Store.Open]. The returned [File] is an *os.File.
func (s *FS) Open(ctx context.Context, key string) (File, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", key, err)
	}
	f, err := s.root.Open(filepath.FromSlash(key))
	if err != nil {
		return nil, wrapErr("open", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, wrapErr("open", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notFound("open", key)
	}
	return f, nil
}

// Stat implements [Store.Stat].
func (s *FS) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, err)
	}
	fi, err := s.root.Stat(filepath.FromSlash(key))
	if err != nil {
		return Info{}, wrapErr("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, notFound("stat", key)
	}
	return Info{Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements [Store.Delete]. The removal is made durable by syncing
// the containing directory. Empty directories are left in place: removing
// them would race with a concurrent Put into the same directory.
func (s *FS) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	name := filepath.FromSlash(key)
	fi, err := s.root.Lstat(name)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil // no blob under this key
	}
	if err == nil {
		err = s.root.Remove(name)
		if isNotExist(err) {
			return nil // deleted concurrently
		}
	}
	if err == nil {
		err = s.syncDir(path.Dir(key))
	}
	if err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return nil
}

// List implements [Store.List]. Temporary files, and anything on disk that
// is not a regular file under a valid key, are skipped.
func (s *FS) List(ctx context.Context, prefix string, fn func(key string, info Info) error) error {
	if err := ValidPrefix(prefix); err != nil {
		return err
	}
	return s.listDir(ctx, "", prefix, fn)
}

// listDir lists the directory whose keys start with dir+"/" ("" is the
// root), recursing into subdirectories in key order.
func (s *FS) listDir(ctx context.Context, dir, prefix string, fn func(string, Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := "."
	if dir != "" {
		name = filepath.FromSlash(dir)
	}
	d, err := s.root.Open(name)
	if err != nil {
		if dir != "" && isNotExist(err) {
			return nil // removed while we were listing
		}
		return fmt.Errorf("blob: list: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("blob: list %q: %w", dir, err)
	}

	type item struct {
		key     string
		sortKey string // key, plus "/" for directories
		entry   fs.DirEntry
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		key := e.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		switch {
		case e.IsDir():
			// Descend only if some key below could match the prefix.
			k := key + "/"
			if !strings.HasPrefix(k, prefix) && !strings.HasPrefix(prefix, k) {
				continue
			}
			items = append(items, item{key, k, e})
		case e.Type().IsRegular():
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			items = append(items, item{key, key, e})
		}
	}
	// Sorting directories as "name/" makes the depth-first walk emit keys
	// in exact byte-wise order: "a-b" < "a/x" even though "a" < "a-b".
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.sortKey, b.sortKey) })

	for _, it := range items {
		if it.entry.IsDir() {
			if strings.HasPrefix(it.entry.Name(), TempPrefix) {
				continue
			}
			if err := s.listDir(ctx, it.key, prefix, fn); err != nil {
				return err
			}
			continue
		}
		// Skips temporary files and foreign files that no key can name.
		if ValidKey(it.key) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := it.entry.Info()
		if err != nil {
			if isNotExist(err) {
				continue // deleted while listing
			}
			return fmt.Errorf("blob: list %q: %w", it.key, err)
		}
		if err := fn(it.key, Info{Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Sweep removes temporary files (".tmp-*") whose modification time is more
// than olderThan in the past and returns how many it removed. Call it at
// startup to clean up after Puts interrupted by a crash; the age limit keeps
// it from deleting the temp file of a Put still in progress in another
// process sharing the root.
func (s *FS) Sweep(olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	err := fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // vanished during the walk
			}
			return err
		}
		if !strings.HasPrefix(d.Name(), TempPrefix) || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		if !fi.ModTime().Before(cutoff) {
			return nil
		}
		if err := s.root.Remove(filepath.FromSlash(p)); err != nil && !isNotExist(err) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("blob: sweep: %w", err)
	}
	return n, nil
}

// wrapErr turns a filesystem error for key into a Store error, mapping
// "does not exist" to ErrNotFound.
func wrapErr(op, key string, err error) error {
	if isNotExist(err) {
		return notFound(op, key)
	}
	return fmt.Errorf("blob: %s %q: %w", op, key, err)
}

func notFound(op, key string) error {
	return fmt.Errorf("blob: %s %q: %w", op, key, ErrNotFound)
}

// isNotExist reports whether err means the path does not exist, including
// the case where a parent component is a regular file (ENOTDIR), which for a
// key means the same thing.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
