package web

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
)

// hotWriter is the least a ResponseWriter can be, reused between
// requests, so that what testing.AllocsPerRun counts is the handler chain's
// own allocations and not a recorder's.
type hotWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *hotWriter) Header() http.Header         { return w.h }
func (w *hotWriter) WriteHeader(code int)        { w.status = code }
func (w *hotWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

// SetReadDeadline is what net/http's own ResponseWriter offers; noBody
// calls it on every GET.
func (w *hotWriter) SetReadDeadline(time.Time) error { return nil }

func (w *hotWriter) reset() {
	clear(w.h)
	w.status = 0
	w.body.Reset()
}

// TestSimpleHotPathAllocations: a warm /simple/<project>/ and its 304, the
// requests pip sends most, go through the whole tool chain (mux, recoverer,
// request log, nosniff, deadline, error adapter, cache, headers) with at
// most the allocations of net/http's own pattern matching. Each header
// value is built once per rendered page; nothing per request is boxed,
// split or formatted. Issue 15 item 5; the benchmark suite shows the
// allocations per request beside a bare net/http handler's.
//
// It runs with metrics on, the costlier case: the request counters, the
// latency histogram, the status recorder and the request id must add no
// allocation either (issue 11).
func TestSimpleHotPathAllocations(t *testing.T) {
	m := metrics.New()
	f := newFixtureWith(t, dbtest.NewSQLite(t), fixtureConfig{metrics: m})
	seedFooBar(t, f)
	const pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
	get := func(headers ...string) (*http.Request, *hotWriter) {
		r, err := http.NewRequest(http.MethodGet, f.url+"/simple/foo-bar/", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r, &hotWriter{h: http.Header{}}
	}
	r, w := get("Accept", pip)
	f.srv.ServeHTTP(w, r) // renders the page into the cache
	if w.status != http.StatusOK || w.h.Get("ETag") == "" {
		t.Fatalf("GET /simple/foo-bar/: status %d, ETag %q; want 200 with an ETag", w.status, w.h.Get("ETag"))
	}
	etag := w.h.Get("ETag")
	r304, w304 := get("Accept", pip, "If-None-Match", etag)

	// ServeMux's matching of "/simple/{project}/" allocates for the
	// wildcard; that is net/http's, and the bound.
	const maxAllocs = 1
	for _, c := range []struct {
		name   string
		r      *http.Request
		w      *hotWriter
		status int
	}{{"200 JSON", r, w, http.StatusOK}, {"304", r304, w304, http.StatusNotModified}} {
		allocs := testing.AllocsPerRun(200, func() {
			c.w.reset()
			f.srv.ServeHTTP(c.w, c.r)
		})
		if c.w.status != c.status {
			t.Fatalf("%s: status %d, want %d", c.name, c.w.status, c.status)
		}
		t.Logf("%s: %.1f allocations per request", c.name, allocs)
		if allocs > maxAllocs {
			t.Errorf("%s: %.1f allocations per request, want at most %d", c.name, allocs, maxAllocs)
		}
	}
	// The answer is still complete: the headers the other tests check,
	// from values made once.
	for _, k := range []string{"ETag", "Content-Type", "Content-Length", "X-Pypi-Last-Serial", "Vary", "Cache-Control", "X-Content-Type-Options", "X-Request-Id"} {
		if w.h.Get(k) == "" {
			t.Errorf("200: no %s header", k)
		}
	}
	// And the requests were counted: the allocations above are those of
	// the instrumented path, not of a path that skipped it.
	text := scrape(t, m)
	for code, min := range map[string]float64{"200": 200, "304": 200} {
		series := `gatehouse_http_requests_total{code="` + code + `",route="GET /simple/{project}/{$}"}`
		if got := sample(t, text, series); got < min {
			t.Errorf("%s = %v, want at least %v", series, got, min)
		}
	}
}
