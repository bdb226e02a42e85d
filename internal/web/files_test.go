package web

// File downloads: /packages/<ab>/<cd>/<blake2b-256>/<filename> and the PEP
// 658 metadata next to it.

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestFileDownloads(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		m := meta{Name: "demo", Version: "1.0", Summary: "downloads", Payload: strings.Repeat("x = 1\n", 200)}
		w, s := wheel(t, m), sdist(t, m)
		f.mustUpload(t, w)
		f.mustUpload(t, s)

		for _, tt := range []struct {
			d        *dist
			wantType string
		}{
			{w, "application/zip"},
			{s, "application/gzip"},
		} {
			t.Run(tt.d.Filename, func(t *testing.T) {
				url := f.fileURL(tt.d)
				size := len(tt.d.Content)
				etag := `"` + blake2Hex(tt.d.Content) + `"`

				r := f.getOK(t, url)
				if !bytes.Equal(r.body, tt.d.Content) {
					t.Fatalf("body: got %d bytes, want the uploaded %d bytes", len(r.body), size)
				}
				if got, want := sha256Hex(r.body), sha256Hex(tt.d.Content); got != want {
					t.Errorf("sha256: got %s, want %s", got, want)
				}
				for k, want := range map[string]string{
					"Content-Type":                tt.wantType,
					"Content-Encoding":            "", // a .tar.gz is not gzip-encoded content
					"Content-Length":              strconv.Itoa(size),
					"ETag":                        etag,
					"Accept-Ranges":               "bytes",
					"Cache-Control":               "max-age=31536000, public, immutable",
					"Content-Disposition":         `attachment; filename="` + tt.d.Filename + `"`,
					"X-Content-Type-Options":      "nosniff",
					"Access-Control-Allow-Origin": "*",
				} {
					if got := r.header.Get(k); got != want {
						t.Errorf("%s: got %q, want %q", k, got, want)
					}
				}

				for _, rt := range []struct {
					name, rangeHeader string
					from, to          int // inclusive
				}{
					{"first ten bytes", "bytes=0-9", 0, 9},
					{"suffix range", "bytes=-16", size - 16, size - 1},
					{"open-ended range", fmt.Sprintf("bytes=%d-", size-5), size - 5, size - 1},
				} {
					r := f.get(t, url, "Range", rt.rangeHeader)
					if r.code != http.StatusPartialContent {
						t.Errorf("%s (%s): got status %d, want 206", rt.name, rt.rangeHeader, r.code)
						continue
					}
					if want := tt.d.Content[rt.from : rt.to+1]; !bytes.Equal(r.body, want) {
						t.Errorf("%s (%s): got bytes %x, want %x", rt.name, rt.rangeHeader, r.body, want)
					}
					if got, want := r.header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", rt.from, rt.to, size); got != want {
						t.Errorf("%s (%s): Content-Range %q, want %q", rt.name, rt.rangeHeader, got, want)
					}
				}

				r = f.get(t, url, "If-None-Match", etag)
				if r.code != http.StatusNotModified || len(r.body) != 0 {
					t.Errorf("If-None-Match %s: got status %d with %d bytes, want 304 and no body", etag, r.code, len(r.body))
				}
				if r := f.get(t, url, "If-None-Match", `"0000"`); r.code != http.StatusOK {
					t.Errorf("If-None-Match with another ETag: got status %d, want 200", r.code)
				}
			})
		}

		t.Run("wheel metadata", func(t *testing.T) {
			r := f.getOK(t, f.fileURL(w)+".metadata")
			if !bytes.Equal(r.body, w.Metadata) {
				t.Errorf("body: got %q, want the wheel's METADATA %q", r.body, w.Metadata)
			}
			if got, want := r.header.Get("ETag"), `"`+sha256Hex(w.Metadata)+`"`; got != want {
				t.Errorf("ETag: got %q, want %q", got, want)
			}
			if got, want := r.header.Get("Content-Type"), "text/plain; charset=utf-8"; got != want {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
		})

		t.Run("not found", func(t *testing.T) {
			wb, sb := blake2Hex(w.Content), blake2Hex(s.Content)
			other := strings.Repeat("ab", 32)
			for _, tt := range []struct{ name, path string }{
				{"sdist has no metadata file", "/packages/" + sb[:2] + "/" + sb[2:4] + "/" + sb + "/" + s.Filename + ".metadata"},
				{"another file's name", "/packages/" + wb[:2] + "/" + wb[2:4] + "/" + wb + "/" + s.Filename},
				{"another name", "/packages/" + wb[:2] + "/" + wb[2:4] + "/" + wb + "/evil.whl"},
				{"unknown digest", "/packages/ab/ab/" + other + "/" + w.Filename},
				{"prefix does not match digest", "/packages/" + wb[2:4] + "/" + wb[:2] + "/" + wb + "/" + w.Filename},
				{"short digest", "/packages/" + wb[:2] + "/" + wb[2:4] + "/" + wb[:63] + "/" + w.Filename},
				{"sha256 instead of blake2", "/packages/" + sha256Hex(w.Content)[:2] + "/" + sha256Hex(w.Content)[2:4] + "/" + sha256Hex(w.Content) + "/" + w.Filename},
			} {
				if r := f.get(t, tt.path); r.code != http.StatusNotFound {
					t.Errorf("%s: GET %s: got status %d, want 404", tt.name, tt.path, r.code)
				}
			}
		})
	})
}
