package web

// Uploads to the S3 store, on a real S3 server (versitygw): the bytes go
// to the bucket in parts while the request body is still arriving, nothing
// is written to local disk, and an upload cut off half-way leaves no row,
// no object and no unfinished multipart upload.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// s3Events signals what the store asked the S3 server, as it happens: the
// test waits on these instead of polling the bucket.
type s3Events struct {
	next      http.RoundTripper
	mu        sync.Mutex
	partsSent chan struct{} // a part upload was answered 200
	aborted   chan struct{} // a multipart upload was aborted
}

func newS3Events() *s3Events {
	return &s3Events{next: http.DefaultTransport, partsSent: make(chan struct{}, 64), aborted: make(chan struct{}, 64)}
}

func (e *s3Events) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber") && resp.StatusCode == http.StatusOK:
		e.partsSent <- struct{}{}
	case r.Method == http.MethodDelete && q.Has("uploadId") && resp.StatusCode < 300:
		e.aborted <- struct{}{}
	}
	return resp, nil
}

// wait waits for one event on c, failing the test after a generous bound
// (a hung upload must fail, not hang the suite).
func wait(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// pipeUpload starts an upload of d whose file part the test feeds: it
// returns the writer for the file's bytes, and a function that closes the
// form and returns the server's answer.
func pipeUpload(t *testing.T, in *instance, tok string, d *dist) (io.Writer, func(cut error) (int, string)) {
	t.Helper()
	pr, pw := io.Pipe()
	// A test that fails half-way must not leave the server waiting for
	// the rest of the body.
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequest("POST", in.url+"/legacy/", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", basicToken(tok))
	type answer struct {
		code   int
		reason string
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := in.client.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		done <- answer{code: resp.StatusCode, reason: resp.Status}
	}()
	for _, f := range d.form() {
		if err := mw.WriteField(f.name, f.value); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("content", d.Filename)
	if err != nil {
		t.Fatal(err)
	}
	return fw, func(cut error) (int, string) {
		if cut != nil {
			pw.CloseWithError(cut)
		} else {
			mw.Close()
			pw.Close()
		}
		a := <-done
		if a.err != nil {
			return 0, a.err.Error()
		}
		return a.code, a.reason
	}
}

func TestUploadsStreamToS3(t *testing.T) {
	// Nothing may be written to local disk: the temp dir is one of the
	// test's own (versitygw, started first, keeps its objects elsewhere),
	// and no file may appear in it while the upload is in flight.
	srv := s3test.Versitygw(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		bucket := srv.NewBucket(t)
		ev := newS3Events()
		opts := srv.Options(bucket, "files") // 5 MiB parts
		opts.Transport = ev
		store, err := blob.NewS3(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		f := newFixtureWith(t, d, fixtureConfig{store: store})
		w := wheel(t, meta{Name: "big", Version: "1.0", Payload: incompressible(12 << 20)})
		if len(w.Content) < 11<<20 {
			t.Fatalf("the test wheel is %d bytes, want over two 5 MiB parts", len(w.Content))
		}

		before := localFiles(t, tmp)
		fw, finish := pipeUpload(t, f.instance, f.token, w)
		if _, err := fw.Write(w.Content[:6<<20]); err != nil {
			t.Fatal(err)
		}
		wait(t, ev.partsSent, "the first part to reach S3")
		// Mid-upload: the first part is in the bucket's multipart upload,
		// no object is visible, and nothing is on local disk.
		if ups := srv.Uploads(t, bucket); len(ups) != 1 || !strings.HasPrefix(ups[0], "files/"+blob.TempPrefix) {
			t.Fatalf("multipart uploads while the body arrives = %q, want one of a temporary object", ups)
		}
		if objs := srv.Objects(t, bucket); len(objs) != 0 {
			t.Fatalf("objects while the body arrives = %q, want none", objs)
		}
		if now := localFiles(t, tmp); !slices.Equal(now, before) {
			t.Fatalf("files on local disk during an upload to S3: %q, before it %q", now, before)
		}
		if _, err := fw.Write(w.Content[6<<20:]); err != nil {
			t.Fatal(err)
		}
		if code, reason := finish(nil); code != http.StatusOK {
			t.Fatalf("upload of %d bytes to S3: %d %s, want 200", len(w.Content), code, reason)
		}
		key := "files/" + strings.TrimSuffix(strings.TrimPrefix(f.fileURL(w), f.url+"/packages/"), "/"+w.Filename)
		if got := srv.Objects(t, bucket); len(got) != 2 || got[0] != key || got[1] != key+".metadata" {
			t.Fatalf("objects after the upload = %q, want %s and its .metadata only", got, key)
		}
		if ups := srv.Uploads(t, bucket); len(ups) != 0 {
			t.Fatalf("unfinished multipart uploads after the upload: %q", ups)
		}
		// The object is the wheel, byte for byte, on the server's disk.
		if b, err := os.ReadFile(srv.Dir + "/" + bucket + "/" + key); err != nil || !bytes.Equal(b, w.Content) {
			t.Fatalf("the object on versitygw's disk: %d bytes, %v; want the %d bytes uploaded", len(b), err, len(w.Content))
		}
		// Downloaded through Gatehouse, whole and in a range.
		if r := f.getOK(t, f.fileURL(w)); !bytes.Equal(r.body, w.Content) {
			t.Fatalf("download: %d bytes, want the %d uploaded", len(r.body), len(w.Content))
		}
		rng := f.get(t, f.fileURL(w), "Range", "bytes=5242000-5243999")
		if rng.code != http.StatusPartialContent || !bytes.Equal(rng.body, w.Content[5242000:5244000]) {
			t.Fatalf("a range across the first part's end: %d, %d bytes; want 206 and 2000 bytes", rng.code, len(rng.body))
		}

		// An upload cut off after its first part: the server aborts the
		// multipart upload, records nothing and leaves no object.
		// (The first upload's parts were all answered before its 200.)
		for len(ev.partsSent) > 0 {
			<-ev.partsSent
		}
		other := wheel(t, meta{Name: "cut", Version: "1.0", Payload: incompressible(12 << 20)})
		fw, finish = pipeUpload(t, f.instance, f.token, other)
		if _, err := fw.Write(other.Content[:6<<20]); err != nil {
			t.Fatal(err)
		}
		wait(t, ev.partsSent, "the cut upload's first part to reach S3")
		if code, _ := finish(fmt.Errorf("the client went away")); code == http.StatusOK {
			t.Fatal("a cut-off upload was accepted")
		}
		wait(t, ev.aborted, "the cut upload's multipart upload to be aborted")
		if ups := srv.Uploads(t, bucket); len(ups) != 0 {
			t.Fatalf("unfinished multipart uploads after a cut-off upload: %q", ups)
		}
		if got := srv.Objects(t, bucket); len(got) != 2 {
			t.Fatalf("objects after a cut-off upload = %q, want only the first wheel's two", got)
		}
		var n int
		if err := d.QueryRow(`SELECT count(*) FROM files`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("file rows after a cut-off upload: %d, %v; want the first wheel's only", n, err)
		}
	})
}

// localFiles lists the regular files under dir.
func localFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
