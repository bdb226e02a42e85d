package web

// File downloads from the S3 store: streamed through the server, and, with
// --storage-redirect, as a redirect to a presigned URL. Both with ranges.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestFileDownloadsFromS3(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		srv := s3test.Fake(t)
		bucket := srv.NewBucket(t)
		store, err := blob.NewS3(context.Background(), srv.Options(bucket, "files"))
		if err != nil {
			t.Fatal(err)
		}
		f := newFixtureWith(t, d, fixtureConfig{store: store})
		m := meta{Name: "demo", Version: "1.0", Summary: "downloads", Payload: strings.Repeat("x = 1\n", 200)}
		w := wheel(t, m)
		f.mustUpload(t, w)

		// Only the wheel and its metadata are in the bucket: the upload
		// left no temporary object and no unfinished multipart upload.
		key := "files/" + strings.TrimPrefix(f.fileURL(w), f.url+"/packages/")
		key = strings.TrimSuffix(key, "/"+w.Filename)
		if got := srv.Objects(t, bucket); len(got) != 2 || got[0] != key || got[1] != key+".metadata" {
			t.Fatalf("objects after the upload = %q, want %s and its .metadata", got, key)
		}
		if got := srv.Uploads(t, bucket); len(got) != 0 {
			t.Fatalf("unfinished multipart uploads: %q", got)
		}

		// Streamed, as from a directory.
		r := f.getOK(t, f.fileURL(w))
		if !bytes.Equal(r.body, w.Content) || r.header.Get("ETag") != `"`+blake2Hex(w.Content)+`"` {
			t.Fatalf("streamed download: %d bytes, ETag %q; want the upload's bytes and its digest", len(r.body), r.header.Get("ETag"))
		}
		tail := f.get(t, f.fileURL(w), "Range", "bytes=-22")
		if tail.code != http.StatusPartialContent || !bytes.Equal(tail.body, w.Content[len(w.Content)-22:]) {
			t.Fatalf("streamed suffix range: %d, %d bytes; want 206 and the last 22 bytes", tail.code, len(tail.body))
		}
		mid := f.get(t, f.fileURL(w), "Range", "bytes=100-199")
		if mid.code != http.StatusPartialContent || !bytes.Equal(mid.body, w.Content[100:200]) {
			t.Fatalf("streamed range: %d, %d bytes; want 206 and bytes 100-199", mid.code, len(mid.body))
		}
		if nm := f.get(t, f.fileURL(w), "If-None-Match", r.header.Get("ETag")); nm.code != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d, want 304", nm.code)
		}

		// Redirected: the same checks first, then a presigned URL.
		red := newInstance(t, d, fixtureConfig{store: store, downloadRedirect: time.Minute})
		for _, c := range []struct {
			path, ctype string
			want        []byte
		}{
			{red.fileURL(w), "application/zip", w.Content},
			{red.fileURL(w) + ".metadata", "text/plain; charset=utf-8", m.metadataFile()},
		} {
			resp := red.get(t, c.path)
			loc := resp.header.Get("Location")
			if resp.code != http.StatusFound || !strings.HasPrefix(loc, srv.Endpoint+"/"+bucket+"/files/") {
				t.Fatalf("GET %s with redirects: %d to %q; want 302 to the bucket", c.path, resp.code, loc)
			}
			if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("the redirect's Cache-Control = %q, want no-store (the URL expires)", cc)
			}
			got := fetch(t, loc, "")
			if got.code != http.StatusOK || !bytes.Equal(got.body, c.want) {
				t.Fatalf("the presigned URL of %s: %d, %d bytes; want 200 and %d bytes", c.path, got.code, len(got.body), len(c.want))
			}
			if ct := got.header.Get("Content-Type"); ct != c.ctype {
				t.Errorf("the presigned URL's Content-Type = %q, want %q", ct, c.ctype)
			}
			part := fetch(t, loc, "bytes=-10")
			if part.code != http.StatusPartialContent || !bytes.Equal(part.body, c.want[len(c.want)-10:]) {
				t.Fatalf("the presigned URL with a suffix range: %d, %d bytes; want 206 and the last 10 bytes", part.code, len(part.body))
			}
		}
		// No file, no redirect.
		if nf := red.get(t, strings.Replace(red.fileURL(w), w.Filename, "other-1.0-py3-none-any.whl", 1)); nf.code != http.StatusNotFound {
			t.Fatalf("a name that is not the file's: %d, want 404 and no redirect", nf.code)
		}
	})
}

func fetch(t *testing.T, u, rng string) response {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}
