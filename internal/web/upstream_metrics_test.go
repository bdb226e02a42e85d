package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
)

// fakeUpstream is a PEP 691 index of one project, "lib", whose page lists
// a good file and one whose bytes do not match its digest, with an ETag
// it honours; "broken" answers 500.
type fakeUpstream struct {
	*httptest.Server
	good, bad []byte
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{good: []byte("the wheel's bytes"), bad: []byte("not what the page says")}
	goodSHA := sha256.Sum256(u.good)
	page := fmt.Sprintf(`{"meta":{"api-version":"1.1"},"name":"lib","versions":["1.0","2.0"],"files":[`+
		`{"filename":"lib-1.0-py3-none-any.whl","url":"/f/lib-1.0-py3-none-any.whl","hashes":{"sha256":%q},"upload-time":"2026-01-01T00:00:00Z"},`+
		`{"filename":"lib-2.0-py3-none-any.whl","url":"/f/lib-2.0-py3-none-any.whl","hashes":{"sha256":%q},"upload-time":"2026-01-02T00:00:00Z"}]}`,
		hex.EncodeToString(goodSHA[:]), "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/lib/":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
			io.WriteString(w, page)
		case "/simple/broken/":
			http.Error(w, "upstream trouble", http.StatusInternalServerError)
		case "/f/lib-1.0-py3-none-any.whl":
			w.Write(u.good)
		case "/f/lib-2.0-py3-none-any.whl":
			w.Write(u.bad)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// TestUpstreamMetrics: the pull-through cache's counters are on /metrics
// and move as the cache misses, hits, revalidates, fetches a file, refuses
// a tampered one, meets a failing upstream and serves a page stale.
func TestUpstreamMetrics(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		up := newFakeUpstream(t)
		m := metrics.New()
		f := newFixtureWith(t, d, fixtureConfig{upstreams: []string{up.URL + "/simple/"}, metrics: m})
		// As cmd/gatehouse's watch registers it.
		if err := m.WatchUpstream(func() metrics.UpstreamStats { return metrics.UpstreamStats(f.srv.upstream.Stats().Snapshot()) }); err != nil {
			t.Fatal(err)
		}
		expect := func(step string, want map[string]float64) {
			t.Helper()
			text := scrape(t, m)
			for name, v := range want {
				if got := sample(t, text, "gatehouse_upstream_"+name); got != v {
					t.Errorf("%s: gatehouse_upstream_%s = %v, want %v", step, name, got, v)
				}
			}
		}
		expect("at start", map[string]float64{"page_hits_total": 0, "page_misses_total": 0, "page_revalidations_total": 0,
			"page_stale_total": 0, "file_hits_total": 0, "file_fetches_total": 0, "fetched_bytes_total": 0,
			"digest_mismatches_total": 0, "errors_total": 0})

		r := f.getOK(t, "/simple/lib/", "Accept", "application/vnd.pypi.simple.v1+json")
		expect("first page", map[string]float64{"page_misses_total": 1, "page_hits_total": 0})
		f.getOK(t, "/simple/lib/", "Accept", "application/vnd.pypi.simple.v1+json")
		expect("second page", map[string]float64{"page_misses_total": 1, "page_hits_total": 1})

		var page struct {
			Files []struct{ Filename, URL string } `json:"files"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil || len(page.Files) != 2 {
			t.Fatalf("the page: %v %s", err, r.body)
		}
		good, bad := page.Files[0].URL, page.Files[1].URL
		if got := f.getOK(t, good); string(got.body) != string(up.good) {
			t.Fatalf("first download: %q", got.body)
		}
		expect("first download", map[string]float64{"file_fetches_total": 1, "fetched_bytes_total": float64(len(up.good)), "file_hits_total": 0})
		f.getOK(t, good)
		expect("second download", map[string]float64{"file_fetches_total": 1, "fetched_bytes_total": float64(len(up.good)), "file_hits_total": 1})

		// The tampered file: the download is cut off, then refused.
		if resp, err := f.client.Get(bad); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if r := f.get(t, bad); r.code != http.StatusBadGateway {
			t.Errorf("the tampered file again: %d, want 502", r.code)
		}
		expect("tampered file", map[string]float64{"file_fetches_total": 2, "digest_mismatches_total": 1,
			"fetched_bytes_total": float64(len(up.good) + len(up.bad))})

		// After the TTL the page is revalidated: upstream answers 304.
		f.clock.Advance(11 * time.Minute)
		f.getOK(t, "/simple/lib/")
		expect("after the TTL", map[string]float64{"page_revalidations_total": 1, "page_misses_total": 1, "page_hits_total": 1})

		if r := f.get(t, "/simple/broken/"); r.code != http.StatusServiceUnavailable {
			t.Errorf("a failing upstream, nothing cached: %d, want 503", r.code)
		}
		expect("failing upstream", map[string]float64{"errors_total": 1, "page_stale_total": 0})

		// Upstream down after the TTL: the cached page, stale.
		up.Close()
		f.clock.Advance(11 * time.Minute)
		if r := f.getOK(t, "/simple/lib/"); r.header.Get("X-Gatehouse-Upstream-Stale") == "" {
			t.Error("the stale page is not marked stale")
		}
		expect("upstream down", map[string]float64{"errors_total": 2, "page_stale_total": 1, "page_revalidations_total": 1})
	})
}
