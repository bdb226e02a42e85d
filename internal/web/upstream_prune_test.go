package web

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
)

// TestUpstreamPruneUnused: a download of a stored upstream file notes
// when it happened, at most once a day, and pruning by --unused-for
// removes only the copies nobody downloaded since the cutoff, while
// --older-than goes by when they were stored. A pruned copy is fetched
// again on its next download.
func TestUpstreamPruneUnused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		files := map[string][]byte{"/f/lib-1.0-py3-none-any.whl": []byte("one's bytes"), "/f/lib-2.0-py3-none-any.whl": []byte("two's bytes")}
		var fetches [3]atomic.Int32
		sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/simple/lib/":
				w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
				fmt.Fprintf(w, `{"meta":{"api-version":"1.1"},"name":"lib","versions":["1.0","2.0"],"files":[`+
					`{"filename":"lib-1.0-py3-none-any.whl","url":"/f/lib-1.0-py3-none-any.whl","hashes":{"sha256":%q}},`+
					`{"filename":"lib-2.0-py3-none-any.whl","url":"/f/lib-2.0-py3-none-any.whl","hashes":{"sha256":%q}}]}`,
					sum(files["/f/lib-1.0-py3-none-any.whl"]), sum(files["/f/lib-2.0-py3-none-any.whl"]))
			case "/f/lib-1.0-py3-none-any.whl":
				fetches[1].Add(1)
				w.Write(files[r.URL.Path])
			case "/f/lib-2.0-py3-none-any.whl":
				fetches[2].Add(1)
				w.Write(files[r.URL.Path])
			default:
				http.NotFound(w, r)
			}
		}))
		defer up.Close()
		f := newFixtureWith(t, d, fixtureConfig{upstreams: []string{up.URL + "/simple/"}})
		var page struct {
			Files []struct{ Filename, URL string } `json:"files"`
		}
		if err := json.Unmarshal(f.getOK(t, "/simple/lib/", "Accept", "application/vnd.pypi.simple.v1+json").body, &page); err != nil || len(page.Files) != 2 {
			t.Fatalf("the page: %v %+v", err, page)
		}
		one, two := page.Files[0].URL, page.Files[1].URL
		download := func(u string, want []byte) {
			t.Helper()
			if r := f.getOK(t, u); string(r.body) != string(want) {
				t.Fatalf("GET %s: %q, want %q", u, r.body, want)
			}
		}
		downloadedAt := func(b []byte) time.Time {
			t.Helper()
			var at sql.NullTime
			if err := d.QueryRow(`SELECT downloaded_at FROM upstream_files WHERE sha256 = $1`, sum(b)).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at.Time
		}
		oneBytes, twoBytes := files["/f/lib-1.0-py3-none-any.whl"], files["/f/lib-2.0-py3-none-any.whl"]

		// Day 0: both fetched and stored; a first download is a download.
		download(one, oneBytes)
		download(two, twoBytes)
		if got := downloadedAt(oneBytes); !got.Equal(t0) {
			t.Errorf("after the first download: downloaded_at %v, want %v", got, t0)
		}
		// Day 20: one is downloaded again, from the store, and noted; an
		// hour later again, not noted (once a day is enough).
		f.clock.Advance(20 * 24 * time.Hour)
		day20 := f.clock.Now()
		download(one, oneBytes)
		f.clock.Advance(time.Hour)
		download(one, oneBytes)
		if got := downloadedAt(oneBytes); !got.Equal(day20) {
			t.Errorf("after downloads on day 20: downloaded_at %v, want %v", got, day20)
		}
		if got := downloadedAt(twoBytes); !got.Equal(t0) {
			t.Errorf("two, not downloaded since day 0: downloaded_at %v", got)
		}

		// Day 35: stored more than 30 days ago, both; unused for 30 days,
		// only two.
		f.clock.Advance(15 * 24 * time.Hour)
		cutoff := f.clock.Now().Add(-30 * 24 * time.Hour)
		ctx := context.Background()
		if res, err := f.srv.upstream.Prune(ctx, upstream.StoredBefore, cutoff, true); err != nil || res.Files != 2 {
			t.Errorf("dry run by storage age: %+v %v, want 2 files", res, err)
		}
		before := dbState(t, d)
		if res, err := f.srv.upstream.Prune(ctx, upstream.UnusedSince, cutoff, true); err != nil || res.Files != 1 || res.Projects != 1 {
			t.Errorf("dry run by last download: %+v %v, want 1 file", res, err)
		}
		if dbState(t, d) != before {
			t.Error("a dry run changed the database")
		}
		if res, err := f.srv.upstream.Prune(ctx, upstream.UnusedSince, cutoff, false); err != nil || res.Files != 1 {
			t.Fatalf("prune by last download: %+v %v, want 1 file", res, err)
		}
		// one is still served from the store; two is fetched again.
		download(one, oneBytes)
		download(two, twoBytes)
		if n1, n2 := fetches[1].Load(), fetches[2].Load(); n1 != 1 || n2 != 2 {
			t.Errorf("upstream fetches: one %d, two %d; want 1 and 2", n1, n2)
		}
	})
}
