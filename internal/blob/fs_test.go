package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/blob/blobtest"
)

func newFS(t *testing.T, root string) *blob.FS {
	t.Helper()
	s, err := blob.NewFS(root)
	if err != nil {
		t.Fatalf("NewFS(%q): %v", root, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFSConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newFS(t, t.TempDir()) })
}

// tempFiles returns the slash-separated paths of all ".tmp-*" entries
// below dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), blob.TempPrefix) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type failAfter struct {
	n   int
	err error
}

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	p = p[:min(len(p), r.n)]
	clear(p)
	r.n -= len(p)
	return len(p), nil
}

// cancelAtEOF cancels a context when the wrapped reader is exhausted, so
// the whole body is copied and synced before Put notices cancellation.
type cancelAtEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

func TestFSNoTempFilesAfterFailedPut(t *testing.T) {
	root := t.TempDir()
	s := newFS(t, root)
	ctx := t.Context()

	boom := errors.New("boom")
	if err := s.Put(ctx, "ab/cd/ef/pkg.whl", &failAfter{n: 1 << 20, err: boom}); !errors.Is(err, boom) {
		t.Fatalf("Put with failing reader = %v, want %v", err, boom)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := s.Put(cctx, "ab/cd/gh/pkg.whl", &cancelAtEOF{strings.NewReader("whole body"), cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled before rename = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "ab/cd/gh/pkg.whl"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("blob published despite cancellation: Stat = %v", err)
	}

	// Rename onto a directory fails after the temp file was written.
	if err := s.Put(ctx, "dir/inner", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "dir", strings.NewReader("x")); err == nil {
		t.Fatal("Put over a directory succeeded")
	}
	// A parent component that is a file.
	if err := s.Put(ctx, "dir/inner/below", strings.NewReader("x")); err == nil {
		t.Fatal("Put below a file succeeded")
	}

	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("temp files left behind: %q", tmp)
	}
}

// TestFSStagedTempFiles checks where a staged blob lives (a temporary file
// at the top of the root, invisible to List) and that every way of ending
// it other than a crash leaves no temporary file behind.
func TestFSStagedTempFiles(t *testing.T) {
	root := t.TempDir()
	s := newFS(t, root)
	ctx := t.Context()
	if err := s.Put(ctx, "dir/inner", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	stage := func() blob.Staged {
		t.Helper()
		st, err := s.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte("staged bytes")); err != nil {
			t.Fatal(err)
		}
		tmp := tempFiles(t, root)
		if len(tmp) != 1 || strings.Contains(tmp[0], "/") {
			t.Fatalf("while staged, temp files = %q, want one at the top of the root", tmp)
		}
		return st
	}

	st := stage()
	if err := st.Discard(); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("temp files after Discard: %q", tmp)
	}

	for _, key := range []string{"dir", "dir/inner/below", ".tmp-x"} {
		st := stage()
		if err := st.Commit(ctx, key); err == nil {
			t.Fatalf("Commit(%q) succeeded", key)
		}
		if tmp := tempFiles(t, root); len(tmp) != 0 {
			t.Fatalf("temp files after failed Commit(%q): %q", key, tmp)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	st = stage()
	if err := st.Commit(cctx, "ab/cd/cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Commit = %v", err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("temp files after cancelled Commit: %q", tmp)
	}

	st = stage()
	if err := st.Commit(ctx, "ab/cd/done"); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("temp files after Commit: %q", tmp)
	}
	b, err := os.ReadFile(filepath.Join(root, "ab", "cd", "done"))
	if err != nil || string(b) != "staged bytes" {
		t.Fatalf("committed file = %q, %v", b, err)
	}

	// A staged blob abandoned by a crash is what Sweep removes.
	st = stage()
	if n, err := s.Sweep(0); n != 1 || err != nil {
		t.Fatalf("Sweep(0) with an abandoned staged blob = %d, %v; want 1, nil", n, err)
	}
	if err := st.Discard(); err != nil {
		t.Fatalf("Discard of a swept staged blob = %v, want nil", err)
	}
}

func TestFSSweep(t *testing.T) {
	root := t.TempDir()
	s := newFS(t, root)
	ctx := t.Context()
	if err := s.Put(ctx, "ab/cd/pkg.whl", strings.NewReader("keep me")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	write := func(rel string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if !mtime.IsZero() {
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(".tmp-old-top", old)
	write("ab/cd/.tmp-old-deep", old)
	write("ab/.tmp-new", time.Time{})
	write("ab/cd/.tmp-future", time.Now().Add(time.Hour))
	// An old file that merely looks similar is not a temp file.
	write("ab/cd/x.tmp-old", old)

	// Temp files are invisible while they exist.
	var keys []string
	err := s.List(ctx, "", func(key string, _ blob.Info) error {
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ab/cd/pkg.whl", "ab/cd/x.tmp-old"}; !slices.Equal(keys, want) {
		t.Fatalf("List = %q, want %q", keys, want)
	}

	n, err := s.Sweep(time.Hour)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != 2 {
		t.Errorf("Sweep removed %d files, want 2", n)
	}
	got := tempFiles(t, root)
	slices.Sort(got)
	if want := []string{"ab/.tmp-new", "ab/cd/.tmp-future"}; !slices.Equal(got, want) {
		t.Errorf("temp files after Sweep = %q, want %q", got, want)
	}
	for _, key := range []string{"ab/cd/pkg.whl", "ab/cd/x.tmp-old"} {
		if _, err := s.Stat(ctx, key); err != nil {
			t.Errorf("Sweep damaged %q: %v", key, err)
		}
	}
	if n, err := s.Sweep(time.Hour); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v; want 0, nil", n, err)
	}
	// Age zero removes everything not in the future.
	if n, err := s.Sweep(0); n != 1 || err != nil {
		t.Errorf("Sweep(0) = %d, %v; want 1, nil", n, err)
	}
}

func TestFSOpenReturnsOSFile(t *testing.T) {
	s := newFS(t, t.TempDir())
	if err := s.Put(t.Context(), "ab/pkg.whl", strings.NewReader("wheel")); err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(t.Context(), "ab/pkg.whl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*os.File); !ok {
		t.Fatalf("Open returned %T, want *os.File", f)
	}
}

func TestFSLayout(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	s := newFS(t, root)
	want := []byte("metadata")
	const key = "ab/cd/0123abcd/pkg-1.0-py3-none-any.whl.metadata"
	if err := s.Put(t.Context(), key, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "ab", "cd", "0123abcd", "pkg-1.0-py3-none-any.whl.metadata"))
	if err != nil {
		t.Fatalf("blob not at the key's path: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("on-disk content = %q, want %q", got, want)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "store" {
		t.Fatalf("store wrote outside its root: %v", entries)
	}
}

func TestFSRootConfinement(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newFS(t, root)
	ctx := t.Context()

	// Traversal keys never get past validation.
	for _, key := range []string{"../outside/secret", "../outside/new", "a/../../outside/new"} {
		if err := s.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Open(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
		}
	}

	// Symlinks planted in the tree pass key validation; os.Root must stop
	// them.
	abs := filepath.Join(root, "abs")
	rel := filepath.Join(root, "rel")
	if err := os.Symlink(outside, abs); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("symlinks unavailable: %v", err)
		}
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "outside"), rel); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"abs", "rel"} {
		if err := s.Put(ctx, dir+"/new", strings.NewReader("escaped")); err == nil {
			t.Errorf("Put through symlink %q succeeded", dir)
		}
		if err := s.Put(ctx, dir+"/sub/new", strings.NewReader("escaped")); err == nil {
			t.Errorf("Put through symlink %q (with mkdir) succeeded", dir)
		}
		if f, err := s.Open(ctx, dir+"/secret"); err == nil {
			f.Close()
			t.Errorf("Open through symlink %q succeeded", dir)
		}
		if _, err := s.Stat(ctx, dir+"/secret"); err == nil {
			t.Errorf("Stat through symlink %q succeeded", dir)
		}
		if err := s.Delete(ctx, dir+"/secret"); err == nil {
			// Acceptable only if the secret is still there (checked below).
			t.Logf("Delete through symlink %q returned nil", dir)
		}
	}
	err := s.List(ctx, "", func(key string, _ blob.Info) error {
		t.Errorf("List reported %q (followed a symlink?)", key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secret" {
		t.Fatalf("outside directory modified: %v", entries)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "secret" {
		t.Fatalf("secret damaged: %q, %v", b, err)
	}
}

func TestNewFSCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "blobs")
	s := newFS(t, root)
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() {
		t.Fatalf("root is %v, want a directory", fi.Mode())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("root mode %v is world-accessible, want 0o750 (minus umask)", fi.Mode().Perm())
	}
	if err := s.Put(t.Context(), "x", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	// Reopening an existing root works and sees the data.
	s2 := newFS(t, root)
	if info, err := s2.Stat(t.Context(), "x"); err != nil || info.Size != 1 {
		t.Fatalf("Stat via second FS = %+v, %v", info, err)
	}
}

func TestNewFSRootIsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := blob.NewFS(p); err == nil {
		s.Close()
		t.Fatal("NewFS on a regular file succeeded")
	}
}

func TestValidPrefix(t *testing.T) {
	for _, p := range []string{"", "a", "ab/", "ab/c", ".", "..", "a/.", "a/.tmp", strings.Repeat("a", blob.MaxKeyLen)} {
		if err := blob.ValidPrefix(p); err != nil {
			t.Errorf("ValidPrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "a//", "../", "a/../", ".tmp-", "a/.tmp-", "a\\", "a\x00", strings.Repeat("a", blob.MaxKeyLen+1)} {
		if err := blob.ValidPrefix(p); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidPrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}
