// Package blobtest is the conformance suite every blob.Store implementation
// must pass. A Store's test calls [Run] with a constructor for fresh stores:
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) blob.Store { return newTestStore(t) })
//	}
//
// The suite uses only keys that are valid for every backend (it never stores
// both "a" and "a/b", which a filesystem cannot represent), and only
// checks behaviour promised by the blob.Store documentation.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
)

const mib = 1 << 20

// Run runs the conformance suite against the store returned by newStore
// (called once per subtest, each with a fresh empty store).
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"ValidKeys", testValidKeys},
		{"ReadAtSeek", testReadAtSeek},
		{"Stat", testStat},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"ListCallbackError", testListCallbackError},
		{"InvalidKeys", testInvalidKeys},
		{"FailingReader", testFailingReader},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentPutSameKey", testConcurrentPutSameKey},
		{"ConcurrentPutOpen", testConcurrentPutOpen},
		{"StageCommit", testStageCommit},
		{"StageDiscard", testStageDiscard},
		{"StageOverwrite", testStageOverwrite},
		{"StageFailedCommit", testStageFailedCommit},
		{"StageCancelled", testStageCancelled},
		{"ConcurrentStage", testConcurrentStage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// data returns n deterministic pseudo-random bytes, different for each seed.
func data(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(b)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// readBack opens key and returns its whole content.
func readBack(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	f, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

func checkContent(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	got := readBack(t, s, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: got %d bytes, want %d bytes (equal length: %v, but bytes differ)",
			key, len(got), len(want), len(got) == len(want))
	}
}

func checkNotFound(t *testing.T, s blob.Store, key string) {
	t.Helper()
	f, err := s.Open(t.Context(), key)
	if err == nil {
		f.Close()
		t.Fatalf("Open(%q) succeeded, want ErrNotFound", key)
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open(%q) = %v, want error wrapping ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) = %v, want error wrapping ErrNotFound", key, err)
	}
}

type listed struct {
	key  string
	size int64
}

func list(t *testing.T, s blob.Store, prefix string) []listed {
	t.Helper()
	var out []listed
	err := s.List(t.Context(), prefix, func(key string, info blob.Info) error {
		out = append(out, listed{key, info.Size})
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func checkEmpty(t *testing.T, s blob.Store) {
	t.Helper()
	if got := list(t, s, ""); len(got) != 0 {
		t.Fatalf("store should be empty, List returned %v", got)
	}
}

func testRoundTrip(t *testing.T, s blob.Store) {
	cases := []struct {
		name, key string
		data      []byte
	}{
		{"small", "ab/cd/0123456789abcdef/pkg-1.0-py3-none-any.whl", []byte("hello, wheel")},
		{"empty", "ab/cd/0123456789abcdef/pkg-1.0.tar.gz", []byte{}},
		{"3MiB", "ef/01/fedcba9876543210/big-2.0-py3-none-any.whl", data(3*mib, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			put(t, s, c.key, c.data)
			checkContent(t, s, c.key, c.data)
			info, err := s.Stat(t.Context(), c.key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if info.Size != int64(len(c.data)) {
				t.Fatalf("Stat size = %d, want %d", info.Size, len(c.data))
			}
		})
	}
}

// testValidKeys checks that unusual but valid keys work.
func testValidKeys(t *testing.T, s blob.Store) {
	keys := []string{
		"top-level-file",
		"ab/cd/é/naïve-1.0.tar.gz",
		"a/.hidden",
		"a/..dots",
		"a/...",
		"a/.tmp",
		"a/x.tmp-y",
		"a/with space.whl",
		"a/b/pkg-1.0-py3-none-any.whl.metadata",
		// Exactly MaxKeyLen bytes, in filesystem-friendly segments.
		strings.Repeat(strings.Repeat("x", 100)+"/", 10) + strings.Repeat("y", blob.MaxKeyLen-1010),
	}
	for i, k := range keys {
		if err := blob.ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", k, err)
			continue
		}
		b := data(100+i, uint64(i))
		put(t, s, k, b)
		checkContent(t, s, k, b)
	}
	got := list(t, s, "")
	var gotKeys []string
	for _, l := range got {
		gotKeys = append(gotKeys, l.key)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(gotKeys, want) {
		t.Fatalf("List = %q, want %q", gotKeys, want)
	}
}

func testReadAtSeek(t *testing.T, s blob.Store) {
	const key = "ra/file.whl"
	b := data(10000, 2)
	put(t, s, key, b)
	f, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	buf := make([]byte, 100)
	if n, err := f.ReadAt(buf, 1234); n != len(buf) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(buf, b[1234:1334]) {
		t.Fatal("ReadAt returned wrong bytes")
	}
	// ReadAt at the tail must report io.EOF with a short count.
	if n, err := f.ReadAt(buf, int64(len(b)-10)); n != 10 || err != io.EOF {
		t.Fatalf("ReadAt near end = %d, %v; want 10, io.EOF", n, err)
	}

	if pos, err := f.Seek(5000, io.SeekStart); pos != 5000 || err != nil {
		t.Fatalf("Seek(5000, start) = %d, %v", pos, err)
	}
	if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, b[5000:5100]) {
		t.Fatalf("read after Seek: %v / wrong bytes", err)
	}
	if pos, err := f.Seek(100, io.SeekCurrent); pos != 5200 || err != nil {
		t.Fatalf("Seek(100, current) = %d, %v", pos, err)
	}
	if pos, err := f.Seek(0, io.SeekEnd); pos != int64(len(b)) || err != nil {
		t.Fatalf("Seek(0, end) = %d, %v; want size %d", pos, err, len(b))
	}
	if pos, err := f.Seek(-20, io.SeekEnd); pos != int64(len(b)-20) || err != nil {
		t.Fatalf("Seek(-20, end) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, b[len(b)-20:]) {
		t.Fatalf("read to end after Seek: %v / wrong bytes", err)
	}
	if pos, err := f.Seek(0, io.SeekStart); pos != 0 || err != nil {
		t.Fatalf("Seek(0, start) = %d, %v", pos, err)
	}
	all, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(all, b) {
		t.Fatalf("re-read from start: %v / wrong bytes", err)
	}
}

func testStat(t *testing.T, s blob.Store) {
	const key = "st/x/file.tar.gz"
	before := time.Now()
	put(t, s, key, data(4321, 3))
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 4321 {
		t.Fatalf("Size = %d, want 4321", info.Size)
	}
	if info.ModTime.IsZero() {
		t.Fatal("ModTime is zero")
	}
	// Generous bounds: only catches nonsense (e.g. epoch) while tolerating
	// coarse timestamps and clock skew of remote stores.
	if d := info.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
		t.Fatalf("ModTime %v is implausibly far from now (%v)", info.ModTime, before)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	const key = "ow/pkg.whl"
	first, second := data(5000, 4), data(3000, 5)
	put(t, s, key, first)
	put(t, s, key, second)
	checkContent(t, s, key, second)
	if info, err := s.Stat(t.Context(), key); err != nil || info.Size != int64(len(second)) {
		t.Fatalf("Stat after overwrite = %+v, %v; want size %d", info, err, len(second))
	}
	if got := list(t, s, ""); len(got) != 1 || got[0] != (listed{key, int64(len(second))}) {
		t.Fatalf("List after overwrite = %v", got)
	}
	// Same content again (the content-addressed case).
	put(t, s, key, second)
	checkContent(t, s, key, second)
}

func testMissing(t *testing.T, s blob.Store) {
	checkNotFound(t, s, "no/such/key.whl")

	put(t, s, "dir/sub/file", []byte("x"))
	// Prefixes of stored keys are not blobs.
	checkNotFound(t, s, "dir")
	checkNotFound(t, s, "dir/sub")
	// Nor is anything "below" a blob.
	checkNotFound(t, s, "dir/sub/file/below")
	checkNotFound(t, s, "dir/sub/other")
	// And deleting a non-blob prefix deletes nothing.
	if err := s.Delete(t.Context(), "dir/sub"); err != nil {
		t.Fatalf("Delete of a key prefix: %v", err)
	}
	checkContent(t, s, "dir/sub/file", []byte("x"))
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := t.Context()
	const key, other = "de/l/file.whl", "de/l/file.whl.metadata"
	put(t, s, key, []byte("doomed"))
	put(t, s, other, []byte("survivor"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkNotFound(t, s, key)
	checkContent(t, s, other, []byte("survivor"))
	if got := list(t, s, ""); len(got) != 1 || got[0].key != other {
		t.Fatalf("List after Delete = %v, want only %q", got, other)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete of missing key: %v", err)
	}
	// A deleted key can be written again.
	put(t, s, key, []byte("reborn"))
	checkContent(t, s, key, []byte("reborn"))
}

func testList(t *testing.T, s blob.Store) {
	// Chosen so that a naive directory walk gets the order wrong:
	// "ab-file" < "ab/..." < "ab0/..." and "ab/c/..." < "ab/cd-x/..." <
	// "ab/cd/..." in byte order.
	keys := []string{
		"ab/cd/ef/pkg-1.0-py3-none-any.whl",
		"ab/cd/ef/pkg-1.0-py3-none-any.whl.metadata",
		"ab/cd-x/y",
		"ab/c/z",
		"ab-file",
		"ab0/q",
		"b/x",
		"zz",
	}
	sizes := map[string]int64{}
	for i, k := range keys {
		b := data(10+i*7, uint64(i))
		put(t, s, k, b)
		sizes[k] = int64(len(b))
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)

	expect := func(prefix string) []listed {
		var out []listed
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				out = append(out, listed{k, sizes[k]})
			}
		}
		return out
	}
	for _, prefix := range []string{"", "a", "ab", "ab/", "ab/c", "ab/cd", "ab/cd/", "ab/cd/ef/pkg-1.0-py3-none-any.whl", "b/", "z", "nomatch", "ab/cd/ef/x"} {
		got := list(t, s, prefix)
		if want := expect(prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) =\n  %v\nwant\n  %v", prefix, got, want)
		}
	}

	// ModTime is reported.
	err := s.List(t.Context(), "zz", func(key string, info blob.Info) error {
		if info.ModTime.IsZero() {
			t.Errorf("List: ModTime of %q is zero", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListCallbackError(t *testing.T, s blob.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("cb/%d", i), []byte("x"))
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(t.Context(), "", func(key string, info blob.Info) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List returned %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Fatalf("callback called %d times after returning an error at call 2", calls)
	}
}

// InvalidKeys are keys every Store must reject with ErrInvalidKey.
var InvalidKeys = []string{
	"",
	"../x",
	"a/../../x",
	"..",
	".",
	"/abs",
	"a//b",
	"a/",
	"a/./b",
	"a/..",
	`a\b`,
	`..\x`,
	"a\x00b",
	"a\nb",
	"a\x7fb",
	"bad\xffutf8",
	".tmp-x",
	"ab/.tmp-123/file",
	"ab/cd/.tmp-abc",
	strings.Repeat("a", 2000),
	strings.Repeat("a/", 600) + "a",
}

// invalidPrefixes are the members of InvalidKeys that no key can start
// with, so List must reject them too.
var invalidPrefixes = []string{
	"../x",
	"a/../../x",
	"/abs",
	"a//b",
	"a/./b",
	`a\b`,
	`..\x`,
	"a\x00b",
	"a\nb",
	"a\x7fb",
	"bad\xffutf8",
	".tmp-x",
	"ab/.tmp-123/file",
	"ab/cd/.tmp-abc",
	strings.Repeat("a", 2000),
	strings.Repeat("a/", 600) + "a",
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	ctx := t.Context()
	put(t, s, "sentinel", []byte("ok")) // something that must survive
	for _, key := range InvalidKeys {
		if err := blob.ValidKey(key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Put(ctx, key, strings.NewReader("data")); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if f, err := s.Open(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			if err == nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
		if !slices.Contains(invalidPrefixes, key) {
			continue // e.g. "" means everything, "a/" is a fine prefix
		}
		err := s.List(ctx, key, func(string, blob.Info) error {
			t.Errorf("List(%q) called back", key)
			return nil
		})
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := list(t, s, ""); len(got) != 1 || got[0].key != "sentinel" {
		t.Fatalf("after invalid-key calls, List = %v, want only the sentinel", got)
	}
	checkContent(t, s, "sentinel", []byte("ok"))
}

// failingReader yields n bytes, then fails with err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = byte(i)
	}
	r.n -= len(p)
	return len(p), nil
}

func testFailingReader(t *testing.T, s blob.Store) {
	ctx := t.Context()
	boom := errors.New("client went away")
	const key = "fr/ab/pkg.whl"

	err := s.Put(ctx, key, &failingReader{n: mib, err: boom})
	if err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	if !errors.Is(err, boom) {
		t.Errorf("Put error %v does not wrap the reader's error", err)
	}
	checkNotFound(t, s, key)
	checkEmpty(t, s)

	// A failed overwrite leaves the previous blob intact.
	old := data(2*mib, 6)
	put(t, s, key, old)
	if err := s.Put(ctx, key, &failingReader{n: mib, err: boom}); err == nil {
		t.Fatal("overwriting Put with a failing reader succeeded")
	}
	checkContent(t, s, key, old)
	if got := list(t, s, ""); len(got) != 1 || got[0] != (listed{key, int64(len(old))}) {
		t.Fatalf("List after failed overwrite = %v", got)
	}
}

func testCancelledContext(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	const key = "cc/pkg.whl"
	err := s.Put(ctx, key, bytes.NewReader(data(mib, 7)))
	if err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put error %v does not wrap context.Canceled", err)
	}
	checkNotFound(t, s, key)
	checkEmpty(t, s)
}

func testConcurrentPutSameKey(t *testing.T, s blob.Store) {
	const writers = 8
	// Several rounds with fresh keys (and fresh parent "directories") so
	// that racing creations of parents are exercised too.
	for round := range 3 {
		key := fmt.Sprintf("c%d/d%d/e%d/pkg-1.0-py3-none-any.whl", round, round, round)
		b := data(mib+round, uint64(100+round))
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				if err := s.Put(t.Context(), key, bytes.NewReader(b)); err != nil {
					t.Errorf("concurrent Put(%q): %v", key, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		checkContent(t, s, key, b)
	}
	if got := list(t, s, ""); len(got) != 3 {
		t.Fatalf("List after concurrent Puts = %v, want 3 keys", got)
	}
}

func testConcurrentPutOpen(t *testing.T, s blob.Store) {
	const (
		key     = "po/ab/cd/pkg-1.0.tar.gz"
		readers = 4
		puts    = 10
	)
	b := data(mib/2, 8)
	var done atomic.Bool
	var reads, found atomic.Int64
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for {
				// Check done before reading so at least one read happens
				// after the last Put.
				last := done.Load()
				reads.Add(1)
				f, err := s.Open(t.Context(), key)
				if err != nil {
					if !errors.Is(err, blob.ErrNotFound) {
						t.Errorf("concurrent Open: %v", err)
						return
					}
				} else {
					got, err := io.ReadAll(f)
					f.Close()
					if err != nil {
						t.Errorf("concurrent read: %v", err)
						return
					}
					if !bytes.Equal(got, b) {
						t.Errorf("reader saw partial or corrupt content: %d bytes, want %d", len(got), len(b))
						return
					}
					found.Add(1)
				}
				if last {
					return
				}
			}
		})
	}
	for range puts {
		if err := s.Put(t.Context(), key, bytes.NewReader(b)); err != nil {
			t.Errorf("Put: %v", err)
			break
		}
	}
	done.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	if found.Load() == 0 {
		t.Fatalf("no reader ever saw the blob (%d reads)", reads.Load())
	}
	checkContent(t, s, key, b)
}

// stage writes b to a new staged blob in pieces of uneven sizes, the way an
// upload arrives.
func stage(t *testing.T, s blob.Store, b []byte) blob.Staged {
	t.Helper()
	st, err := s.Stage(t.Context())
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	for rest, n := b, 1; len(rest) > 0; n = n*7 + 3 {
		k := min(n, len(rest))
		if w, err := st.Write(rest[:k]); w != k || err != nil {
			st.Discard()
			t.Fatalf("Write of %d bytes = %d, %v", k, w, err)
		}
		rest = rest[k:]
	}
	return st
}

// checkStaged reads st back with ReadAt and compares it with want.
func checkStaged(t *testing.T, st blob.Staged, want []byte) {
	t.Helper()
	if st.Size() != int64(len(want)) {
		t.Fatalf("Size = %d, want %d", st.Size(), len(want))
	}
	got := make([]byte, len(want))
	if n, err := st.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt of the whole staged blob = %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("ReadAt returned other bytes than were written")
	}
	if len(want) < 20 {
		return
	}
	buf := make([]byte, 10)
	if n, err := st.ReadAt(buf, 7); n != 10 || err != nil || !bytes.Equal(buf, want[7:17]) {
		t.Fatalf("ReadAt(10 bytes at 7) = %d, %v (bytes equal: %v)", n, err, bytes.Equal(buf, want[7:17]))
	}
	if n, err := st.ReadAt(buf, int64(len(want)-4)); n != 4 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v; want 4, io.EOF", n, err)
	}
}

func testStageCommit(t *testing.T, s blob.Store) {
	cases := []struct {
		name, key string
		data      []byte
	}{
		{"small", "sc/ab/0123/pkg-1.0-py3-none-any.whl", []byte("a staged wheel")},
		{"empty", "sc/ab/4567/pkg-1.0.tar.gz", []byte{}},
		{"3MiB", "sc/cd/89ab/big-2.0-py3-none-any.whl", data(3*mib, 20)},
		{"top level", "sc-top", []byte("no directory")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := list(t, s, "")
			st := stage(t, s, c.data)
			defer st.Discard()
			checkStaged(t, st, c.data)
			// Staged bytes are nobody's business until committed.
			checkNotFound(t, s, c.key)
			if got := list(t, s, ""); !slices.Equal(got, before) {
				t.Fatalf("List while staged = %v, want %v as before", got, before)
			}
			// Sync ahead of Commit publishes nothing either.
			if err := st.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			checkNotFound(t, s, c.key)
			checkStaged(t, st, c.data)
			if err := st.Commit(t.Context(), c.key); err != nil {
				t.Fatalf("Commit(%q): %v", c.key, err)
			}
			checkContent(t, s, c.key, c.data)
			if info, err := s.Stat(t.Context(), c.key); err != nil || info.Size != int64(len(c.data)) {
				t.Fatalf("Stat after Commit = %+v, %v; want size %d", info, err, len(c.data))
			}
			if got := list(t, s, c.key); len(got) != 1 || got[0] != (listed{c.key, int64(len(c.data))}) {
				t.Fatalf("List(%q) after Commit = %v", c.key, got)
			}
			// Commit ends the staged blob.
			if err := st.Discard(); err != nil {
				t.Fatalf("Discard after Commit = %v, want nil", err)
			}
			checkContent(t, s, c.key, c.data)
			if err := st.Commit(t.Context(), c.key+"-again"); !errors.Is(err, blob.ErrStagedDone) {
				t.Fatalf("second Commit = %v, want ErrStagedDone", err)
			}
			checkNotFound(t, s, c.key+"-again")
			if _, err := st.Write([]byte("more")); !errors.Is(err, blob.ErrStagedDone) {
				t.Fatalf("Write after Commit = %v, want ErrStagedDone", err)
			}
			if err := st.Sync(); !errors.Is(err, blob.ErrStagedDone) {
				t.Fatalf("Sync after Commit = %v, want ErrStagedDone", err)
			}
			checkContent(t, s, c.key, c.data)
		})
	}
}

func testStageDiscard(t *testing.T, s blob.Store) {
	put(t, s, "sd/keep", []byte("untouched"))
	st := stage(t, s, data(mib, 21))
	if err := st.Discard(); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	if err := st.Discard(); err != nil {
		t.Fatalf("second Discard = %v, want nil", err)
	}
	if err := st.Commit(t.Context(), "sd/late"); !errors.Is(err, blob.ErrStagedDone) {
		t.Fatalf("Commit after Discard = %v, want ErrStagedDone", err)
	}
	checkNotFound(t, s, "sd/late")
	if got := list(t, s, ""); len(got) != 1 || got[0].key != "sd/keep" {
		t.Fatalf("List after Discard = %v, want only sd/keep", got)
	}
	checkContent(t, s, "sd/keep", []byte("untouched"))
}

func testStageOverwrite(t *testing.T, s blob.Store) {
	const key = "so/pkg.whl"
	first, second := data(5000, 22), data(3000, 23)
	put(t, s, key, first)
	st := stage(t, s, second)
	defer st.Discard()
	// The old blob is served until the new one is committed.
	checkContent(t, s, key, first)
	if err := st.Commit(t.Context(), key); err != nil {
		t.Fatalf("Commit over an existing blob: %v", err)
	}
	checkContent(t, s, key, second)
	if got := list(t, s, ""); len(got) != 1 || got[0] != (listed{key, int64(len(second))}) {
		t.Fatalf("List after overwrite = %v", got)
	}
}

func testStageFailedCommit(t *testing.T, s blob.Store) {
	put(t, s, "sf/keep", []byte("untouched"))
	for _, key := range InvalidKeys {
		st := stage(t, s, []byte("data"))
		if err := st.Commit(t.Context(), key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Commit(%q) = %v, want ErrInvalidKey", key, err)
		}
		// The failed Commit ended it: the bytes are gone, not committable.
		if err := st.Commit(t.Context(), "sf/retry"); !errors.Is(err, blob.ErrStagedDone) {
			t.Errorf("Commit after a failed Commit = %v, want ErrStagedDone", err)
		}
		if err := st.Discard(); err != nil {
			t.Errorf("Discard after a failed Commit = %v, want nil", err)
		}
	}
	checkNotFound(t, s, "sf/retry")
	if got := list(t, s, ""); len(got) != 1 || got[0].key != "sf/keep" {
		t.Fatalf("after failed Commits, List = %v, want only sf/keep", got)
	}
	checkContent(t, s, "sf/keep", []byte("untouched"))
}

func testStageCancelled(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if st, err := s.Stage(ctx); err == nil {
		st.Discard()
		t.Fatal("Stage with a cancelled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("Stage error %v does not wrap context.Canceled", err)
	}

	// Cancelled after the bytes were written: nothing is published.
	const key = "sx/pkg.whl"
	st := stage(t, s, data(mib, 24))
	defer st.Discard()
	err := st.Commit(ctx, key)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context = %v, want context.Canceled", err)
	}
	checkNotFound(t, s, key)
	checkEmpty(t, s)
}

func testConcurrentStage(t *testing.T, s blob.Store) {
	const writers = 8
	// Half commit to one shared key (identical bytes, as identical uploads
	// do), half to keys of their own; one in four discards instead.
	shared := data(mib/4, 30)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			b, key := shared, "cs/ab/shared.whl"
			if i%2 == 1 {
				b, key = data(mib/4+i, uint64(31+i)), fmt.Sprintf("cs/%d/own.whl", i)
			}
			st, err := s.Stage(t.Context())
			if err != nil {
				t.Errorf("Stage: %v", err)
				return
			}
			defer st.Discard()
			if _, err := st.Write(b); err != nil {
				t.Errorf("Write: %v", err)
				return
			}
			if i%4 == 3 {
				return // discarded
			}
			if err := st.Commit(t.Context(), key); err != nil {
				t.Errorf("concurrent Commit(%q): %v", key, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkContent(t, s, "cs/ab/shared.whl", shared)
	var keys []string
	for _, l := range list(t, s, "") {
		keys = append(keys, l.key)
	}
	if want := []string{"cs/1/own.whl", "cs/5/own.whl", "cs/ab/shared.whl"}; !slices.Equal(keys, want) {
		t.Fatalf("List after concurrent staged writes = %q, want %q", keys, want)
	}
}
