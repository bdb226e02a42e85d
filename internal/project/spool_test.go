package project

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/gatehouse-index/gatehouse/internal/blob"
)

func newStore(t testing.TB) (*blob.FS, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// stagedFiles lists the blob store's temporary files below dir.
func stagedFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), blob.TempPrefix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// pieces reads r at most n bytes at a time, as the multipart reader does,
// and counts what it read.
type pieces struct {
	r    io.Reader
	n    int
	read int64
}

func (p *pieces) Read(b []byte) (int, error) {
	n, err := p.r.Read(b[:min(len(b), p.n)])
	p.read += int64(n)
	return n, err
}

func TestSpoolDigestsAndStore(t *testing.T) {
	store, dir := newStore(t)
	ctx := t.Context()
	// Around the chunk size, and more chunks than may be in flight, so
	// chunks are reused while lanes still hold others.
	for i, size := range []int{0, 1, fanoutChunk - 1, fanoutChunk, fanoutChunk + 1, 3*fanoutChunk + 17, (fanoutChunks + 3) * fanoutChunk} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			b := randomBytes(size, uint64(i))
			sp, err := spool(ctx, store, &pieces{r: bytes.NewReader(b), n: 4096 - 7}, int64(size))
			if err != nil {
				t.Fatalf("spool: %v", err)
			}
			defer sp.Close()
			m, s, b2 := md5.Sum(b), sha256.Sum256(b), blake2b.Sum256(b)
			if sp.Size != int64(size) || sp.MD5 != hex.EncodeToString(m[:]) || sp.SHA256 != hex.EncodeToString(s[:]) || sp.Blake2_256 != hex.EncodeToString(b2[:]) {
				t.Fatalf("spooled %d bytes, md5 %s, sha256 %s, blake2b %s; want %d, %x, %x, %x", sp.Size, sp.MD5, sp.SHA256, sp.Blake2_256, size, m, s, b2)
			}
			got := make([]byte, size)
			if n, err := sp.ReadAt(got, 0); n != size || (err != nil && err != io.EOF) || !bytes.Equal(got, b) {
				t.Fatalf("ReadAt = %d, %v (bytes equal: %v)", n, err, bytes.Equal(got, b))
			}
			key := BlobKey(sp.Blake2_256)
			if err := sp.store(ctx, key); err != nil {
				t.Fatalf("store: %v", err)
			}
			f, err := store.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if stored, err := io.ReadAll(f); err != nil || !bytes.Equal(stored, b) {
				t.Fatalf("stored blob: %v (bytes equal: %v)", err, bytes.Equal(stored, b))
			}
			if tmp := stagedFiles(t, dir); len(tmp) != 0 {
				t.Fatalf("staged files left after store: %q", tmp)
			}
		})
	}
}

func TestSpoolLimit(t *testing.T) {
	store, dir := newStore(t)
	const limit = 3*fanoutChunk + 5
	b := randomBytes(limit+1, 1)

	sp, err := spool(t.Context(), store, bytes.NewReader(b[:limit]), limit)
	if err != nil {
		t.Fatalf("spool of exactly the limit: %v", err)
	}
	sp.Close()

	// Endless input: spool reads one byte past the limit and stops.
	r := &pieces{r: io.MultiReader(bytes.NewReader(b), strings.NewReader(strings.Repeat("x", 10*fanoutChunk))), n: 1 << 20}
	if _, err := spool(t.Context(), store, r, limit); !errors.Is(err, ErrSpoolTooLarge) {
		t.Fatalf("spool past the limit = %v, want ErrSpoolTooLarge", err)
	}
	if r.read != limit+1 {
		t.Errorf("spool read %d bytes of an oversized upload, want limit+1 = %d", r.read, limit+1)
	}
	if tmp := stagedFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("staged files left: %q", tmp)
	}
}

// failAfter yields n bytes, then fails with err.
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

func TestSpoolReadError(t *testing.T) {
	store, dir := newStore(t)
	// A multipart body cut short reports io.ErrUnexpectedEOF itself: that
	// is a failed upload, not the end of a shorter file.
	for _, readErr := range []error{io.ErrUnexpectedEOF, errors.New("connection reset")} {
		for _, n := range []int{0, 100, fanoutChunk, 5*fanoutChunk + 3} {
			_, err := spool(t.Context(), store, &failAfter{n: n, err: readErr}, 1<<30)
			if !errors.Is(err, readErr) {
				t.Errorf("spool of a body failing after %d bytes with %v = %v, want that error", n, readErr, err)
			}
			if errors.Is(err, ErrSpoolStore) {
				t.Errorf("a read error (%v) was blamed on the store", err)
			}
		}
	}
	if tmp := stagedFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("staged files left: %q", tmp)
	}
}

// failingStore is a real filesystem store whose staged blobs stop taking
// bytes after a while, like a full disk.
type failingStore struct {
	*blob.FS
	after int64
}

func (s failingStore) Stage(ctx context.Context) (blob.Staged, error) {
	st, err := s.FS.Stage(ctx)
	return &failingStaged{Staged: st, left: s.after}, err
}

type failingStaged struct {
	blob.Staged
	left int64
}

var errDiskFull = errors.New("no space left on device")

func (f *failingStaged) Write(p []byte) (int, error) {
	if int64(len(p)) > f.left {
		return 0, errDiskFull
	}
	f.left -= int64(len(p))
	return f.Staged.Write(p)
}

func TestSpoolStoreError(t *testing.T) {
	fsys, dir := newStore(t)
	store := failingStore{FS: fsys, after: 2 * fanoutChunk}
	const size = 64 << 20
	r := &pieces{r: io.LimitReader(zeros{}, size), n: 4096}
	_, err := spool(t.Context(), store, r, size)
	if !errors.Is(err, errDiskFull) || !errors.Is(err, ErrSpoolStore) {
		t.Fatalf("spool onto a full disk = %v, want the disk's error marked ErrSpoolStore", err)
	}
	// The rest of the upload is not read once the store has failed (the
	// chunks already in flight are).
	if max := int64(fanoutChunks+3) * fanoutChunk; r.read > max {
		t.Errorf("spool read %d bytes after the store failed, want at most %d", r.read, max)
	}
	if tmp := stagedFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("staged files left: %q", tmp)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// spoolSequential is how uploads were spooled before the hashes had
// goroutines of their own: one io.MultiWriter, the file side buffered. It
// is kept as the baseline of BenchmarkSpool.
func spoolSequential(ctx context.Context, store blob.Store, r io.Reader) (blob.Staged, error) {
	st, err := store.Stage(ctx)
	if err != nil {
		return nil, err
	}
	b2, _ := blake2b.New256(nil)
	m, s := md5.New(), sha256.New()
	buf := bufio.NewWriterSize(st, fanoutChunk)
	if _, err := io.Copy(io.MultiWriter(buf, m, s, b2), r); err != nil {
		return st, err
	}
	return st, buf.Flush()
}

// BenchmarkSpool compares ways of staging and hashing an upload: the bytes
// arrive in 4 KiB pieces, as the multipart reader hands them over, and go
// to a staged file in a real filesystem store (not fsynced: that is the
// commit's cost, the same for all). Run it on one core too, to see what
// the second one buys (-cpu 1 did not limit GOMAXPROCS here with Go 1.26):
//
//	go test ./internal/project/ -run '^$' -bench Spool
//	taskset -c 0 go test ./internal/project/ -run '^$' -bench Spool
func BenchmarkSpool(b *testing.B) {
	const size = 64 << 20
	src := randomBytes(size, 9)
	store, _ := newStore(b)
	ctx := b.Context()
	lanes := func(chunkSize int, group func(st io.Writer, m, s, b2 io.Writer) []io.Writer) func() (blob.Staged, error) {
		return func() (blob.Staged, error) {
			st, err := store.Stage(ctx)
			if err != nil {
				return nil, err
			}
			b2, _ := blake2b.New256(nil)
			m, s := md5.New(), sha256.New()
			_, err = copyFanout(&pieces{r: bytes.NewReader(src), n: 4096}, chunkSize, fanoutChunks, group(st, m, s, b2)...)
			return st, err
		}
	}
	apart := func(st, m, s, b2 io.Writer) []io.Writer { return []io.Writer{st, m, s, b2} }
	cases := []struct {
		name string
		run  func() (blob.Staged, error)
	}{
		{"sequential", func() (blob.Staged, error) {
			return spoolSequential(ctx, store, &pieces{r: bytes.NewReader(src), n: 4096})
		}},
		{"spool", func() (blob.Staged, error) {
			sp, err := spool(ctx, store, &pieces{r: bytes.NewReader(src), n: 4096}, size)
			if err != nil {
				return nil, err
			}
			return sp.staged, nil
		}},
		{"lanes=4/chunk=64K", lanes(64<<10, apart)},
		{"lanes=4/chunk=1M", lanes(1<<20, apart)},
		{"lanes=3/file+md5,sha256,blake2b", lanes(fanoutChunk, func(st, m, s, b2 io.Writer) []io.Writer {
			return []io.Writer{io.MultiWriter(st, m), s, b2}
		})},
		{"lanes=2/file+md5+sha256,blake2b", lanes(fanoutChunk, func(st, m, s, b2 io.Writer) []io.Writer {
			return []io.Writer{io.MultiWriter(st, m, s), b2}
		})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				st, err := c.run()
				if err != nil {
					b.Fatal(err)
				}
				st.Discard()
			}
		})
	}
}
