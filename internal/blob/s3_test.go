package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/blob/blobtest"
	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// The conformance suite against a real S3 server.
func TestS3Conformance(t *testing.T) {
	srv := s3test.Versitygw(t)
	blobtest.Run(t, func(t *testing.T) blob.Store { return srv.Store(t, "") })
}

// And against the in-process fake, which the fast unit tests use.
func TestS3FakeConformance(t *testing.T) {
	srv := s3test.Fake(t)
	blobtest.Run(t, func(t *testing.T) blob.Store { return srv.Store(t, "") })
}

// s3Servers runs a test against both servers.
func s3Servers(t *testing.T, fn func(t *testing.T, srv *s3test.Server)) {
	t.Run("versitygw", func(t *testing.T) { fn(t, s3test.Versitygw(t)) })
	t.Run("gofakes3", func(t *testing.T) { fn(t, s3test.Fake(t)) })
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', '3'})
	r.Read(b)
	return b
}

// Keys live under the prefix, and nothing outside it is listed.
func TestS3Prefix(t *testing.T) {
	s3Servers(t, func(t *testing.T, srv *s3test.Server) {
		ctx := t.Context()
		bucket := srv.NewBucket(t)
		s, err := blob.NewS3(ctx, srv.Options(bucket, "/team/index/"))
		if err != nil {
			t.Fatal(err)
		}
		c := srv.Client(t)
		if _, err := c.PutObject(ctx, bucket, "elsewhere/ab/file.whl", strings.NewReader("not ours"), 8, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, bucket, "team/indexed/file.whl", strings.NewReader("not ours"), 8, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "ab/cd/file.whl", strings.NewReader("ours")); err != nil {
			t.Fatal(err)
		}
		got := srv.Objects(t, bucket)
		want := []string{"elsewhere/ab/file.whl", "team/index/ab/cd/file.whl", "team/indexed/file.whl"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("objects in the bucket = %q, want %q", got, want)
		}
		var listed []string
		if err := s.List(ctx, "", func(k string, _ blob.Info) error { listed = append(listed, k); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0] != "ab/cd/file.whl" {
			t.Fatalf("List = %q, want only the key under the prefix", listed)
		}
		if _, err := s.Stat(ctx, "file.whl"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat of an object outside the prefix = %v, want ErrNotFound", err)
		}
	})
}

// A staged blob of several parts: ReadAt across the parts already sent and
// the tail still in memory, then Commit; nothing temporary is left.
func TestS3StageMultipart(t *testing.T) {
	s3Servers(t, func(t *testing.T, srv *s3test.Server) {
		ctx := t.Context()
		bucket := srv.NewBucket(t)
		s, err := blob.NewS3(ctx, srv.Options(bucket, "p"))
		if err != nil {
			t.Fatal(err)
		}
		b := randomBytes(11<<20+12345, 1) // two full 5 MiB parts and a tail
		st, err := s.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Discard()
		for rest := b; len(rest) > 0; {
			k := min(len(rest), 300000)
			if _, err := st.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if got := srv.Objects(t, bucket); len(got) != 0 {
			t.Fatalf("objects while staging = %q, want none (parts of an unfinished upload only)", got)
		}
		for _, r := range []struct{ off, n int }{{0, 100}, {5<<20 - 10, 20}, {10<<20 - 7, 5000}, {len(b) - 50, 50}, {123, 3 << 20}} {
			p := make([]byte, r.n)
			n, err := st.ReadAt(p, int64(r.off))
			if n != r.n || (err != nil && err != io.EOF) || !bytes.Equal(p, b[r.off:r.off+r.n]) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v (bytes equal: %v)", r.n, r.off, n, err, bytes.Equal(p[:n], b[r.off:r.off+n]))
			}
		}
		p := make([]byte, 100)
		if n, err := st.ReadAt(p, int64(len(b)-40)); n != 40 || err != io.EOF {
			t.Fatalf("ReadAt past the end = %d, %v; want 40, io.EOF", n, err)
		}
		const key = "ab/cd/big-1.0.tar.gz"
		if err := st.Commit(ctx, key); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		f, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("committed blob: %d bytes, %v; want the %d staged bytes", len(got), err, len(b))
		}
		if got := srv.Objects(t, bucket); len(got) != 1 || got[0] != "p/"+key {
			t.Fatalf("objects after Commit = %q, want only p/%s", got, key)
		}
		if got := srv.Uploads(t, bucket); len(got) != 0 {
			t.Fatalf("unfinished multipart uploads after Commit: %q", got)
		}
	})
}

// A Put or a staged blob that fails half-way, after parts went out, or is
// discarded, leaves neither an object nor an unfinished upload.
func TestS3FailedWritesLeaveNothing(t *testing.T) {
	s3Servers(t, func(t *testing.T, srv *s3test.Server) {
		ctx := t.Context()
		bucket := srv.NewBucket(t)
		s, err := blob.NewS3(ctx, srv.Options(bucket, ""))
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("client went away")
		r := io.MultiReader(bytes.NewReader(randomBytes(12<<20, 2)), &failing{boom})
		if err := s.Put(ctx, "ab/big.whl", r); !errors.Is(err, boom) {
			t.Fatalf("Put with a reader failing after two parts = %v, want %v", err, boom)
		}

		for _, read := range []bool{false, true} {
			st, err := s.Stage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(randomBytes(7<<20, 3)); err != nil {
				t.Fatal(err)
			}
			if read { // completes the temporary object
				if _, err := st.ReadAt(make([]byte, 10), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Discard(); err != nil {
				t.Fatal(err)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		st, err := s.Stage(cctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(randomBytes(6<<20, 4)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := st.Commit(cctx, "ab/cancelled.whl"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Commit with a cancelled context = %v, want context.Canceled", err)
		}
		if got := srv.Objects(t, bucket); len(got) != 0 {
			t.Fatalf("objects left: %q", got)
		}
		if got := srv.Uploads(t, bucket); len(got) != 0 {
			t.Fatalf("unfinished multipart uploads left: %q", got)
		}
	})
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// What a dead process leaves (an unfinished multipart upload, a completed
// temporary object) is swept once old enough, and not before; blobs never.
func TestS3Sweep(t *testing.T) {
	srv := s3test.Versitygw(t)
	ctx := t.Context()
	bucket := srv.NewBucket(t)
	s, err := blob.NewS3(ctx, srv.Options(bucket, "p"))
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client(t)
	core := minio.Core{Client: c}
	if err := s.Put(ctx, "ab/kept.whl", strings.NewReader("a blob")); err != nil {
		t.Fatal(err)
	}
	id, err := core.NewMultipartUpload(ctx, bucket, "p/.tmp-deadwriter", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, bucket, "p/.tmp-deadwriter", id, 1, bytes.NewReader(randomBytes(5<<20, 5)), 5<<20, minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, bucket, "p/.tmp-completed", strings.NewReader("left by a crash"), 15, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// Fresh: they may belong to an upload in flight.
	if n, err := s.Sweep(ctx, time.Hour, time.Now()); err != nil || n != 0 {
		t.Fatalf("Sweep of fresh leftovers = %d, %v; want 0, nil", n, err)
	}
	if got := srv.Uploads(t, bucket); len(got) != 1 {
		t.Fatalf("unfinished uploads after the first sweep: %q, want the one", got)
	}
	// An hour and a bit later.
	if n, err := s.Sweep(ctx, time.Hour, time.Now().Add(61*time.Minute)); err != nil || n != 2 {
		t.Fatalf("Sweep of old leftovers = %d, %v; want 2, nil", n, err)
	}
	if got := srv.Uploads(t, bucket); len(got) != 0 {
		t.Fatalf("unfinished uploads after the sweep: %q", got)
	}
	if got := srv.Objects(t, bucket); len(got) != 1 || got[0] != "p/ab/kept.whl" {
		t.Fatalf("objects after the sweep = %q, want only the blob", got)
	}
}

// A presigned URL serves the blob, with ranges, the download headers, and
// only until it expires... which is the server's business; here only that
// it works and carries the headers.
func TestS3Presign(t *testing.T) {
	srv := s3test.Versitygw(t)
	ctx := t.Context()
	s := srv.Store(t, "p")
	b := randomBytes(100000, 6)
	if err := s.Put(ctx, "ab/cd/pkg-1.0-py3-none-any.whl", bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	u, err := s.Presign(ctx, "ab/cd/pkg-1.0-py3-none-any.whl", 5*time.Minute, "application/zip", `attachment; filename="pkg-1.0-py3-none-any.whl"`)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	req.Header.Set("Range", "bytes=-22")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, b[len(b)-22:]) {
		t.Fatalf("ranged GET of the presigned URL: %s, %d bytes; want 206 and the last 22 bytes", resp.Status, len(got))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type = %q, want application/zip", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "pkg-1.0-py3-none-any.whl") {
		t.Errorf("Content-Disposition = %q, want the filename", cd)
	}
}
