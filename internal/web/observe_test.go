package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
)

// scrape returns m's text exposition.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// sample is the value of one series in a scrape, -1 when it is absent.
func sample(t *testing.T, text, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: value %q", series, v)
			}
			return f
		}
	}
	return -1
}

// TestRequestMetrics: requests count under their route pattern and status,
// with a latency observation each; uploads by outcome with their bytes;
// sign-in steps by factor and outcome; the page cache's hits and misses
// once registered.
func TestRequestMetrics(t *testing.T) {
	m := metrics.New()
	f := newFixtureWith(t, dbtest.NewSQLite(t), fixtureConfig{metrics: m})
	w := wheel(t, meta{Name: "counted", Version: "1.0", Summary: "counted"})
	f.mustUpload(t, w)
	if res := f.upload(t, w); res.code != http.StatusOK {
		t.Fatalf("the same file again: %s, want 200 (a duplicate)", res)
	}
	if res := f.uploadAs(t, "pypi-nonsense", w.form(), w); res.code != http.StatusForbidden {
		t.Fatalf("upload with a bad token: %s, want 403", res)
	}
	f.getOK(t, "/simple/counted/")
	f.getOK(t, "/simple/counted/")
	if r := f.get(t, "/simple/no-such-project/"); r.code != http.StatusNotFound {
		t.Fatalf("GET /simple/no-such-project/: %d, want 404", r.code)
	}
	if r := f.get(t, "/no/route/here"); r.code != http.StatusNotFound {
		t.Fatalf("GET /no/route/here: %d, want 404", r.code)
	}
	resp, err := f.client.PostForm(f.url+"/account/login/", url.Values{"username": {"alice"}, "password": {"not her password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := m.WatchPageCache(func() metrics.CacheStats {
		st := f.srv.PageCacheStats()
		return metrics.CacheStats{Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions}
	}); err != nil {
		t.Fatal(err)
	}

	text := scrape(t, m)
	want := map[string]float64{
		`gatehouse_http_requests_total{code="200",route="GET /simple/{project}/{$}"}`:      2,
		`gatehouse_http_requests_total{code="404",route="GET /simple/{project}/{$}"}`:      1,
		`gatehouse_http_requests_total{code="404",route="/"}`:                              1,
		`gatehouse_http_requests_total{code="200",route="POST /legacy/{$}"}`:               2,
		`gatehouse_http_requests_total{code="403",route="POST /legacy/{$}"}`:               1,
		`gatehouse_http_request_duration_seconds_count{route="GET /simple/{project}/{$}"}`: 3,
		`gatehouse_uploads_total{outcome="accepted"}`:                                      1,
		`gatehouse_uploads_total{outcome="duplicate"}`:                                     1,
		`gatehouse_uploads_total{outcome="refused"}`:                                       1,
		`gatehouse_uploads_total{outcome="failed"}`:                                        0,
		`gatehouse_login_attempts_total{factor="password",outcome="refused"}`:              1,
		`gatehouse_login_attempts_total{factor="password",outcome="ok"}`:                   0,
		`gatehouse_login_attempts_total{factor="totp",outcome="refused"}`:                  0,
	}
	for series, v := range want {
		if got := sample(t, text, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	// The login page answered 400 with the form and its message: the
	// request counts under its route, the step as refused (above).
	if got := sample(t, text, `gatehouse_http_requests_total{code="400",route="POST /account/login/{$}"}`); got != 1 {
		t.Errorf("the refused login POST counted %v times under its route, want 1:\n%s", got, grepLines(text, "requests_total"))
	}
	// Bytes: at least the file itself, for the accepted and the duplicate.
	for _, o := range []string{"accepted", "duplicate", "refused"} {
		if got := sample(t, text, `gatehouse_upload_bytes_total{outcome="`+o+`"}`); got < float64(len(w.Content)) {
			t.Errorf("upload bytes (%s) = %v, want at least the file's %d", o, got, len(w.Content))
		}
	}
	if got := sample(t, text, `gatehouse_simple_cache_hits_total`); got < 1 {
		t.Errorf("simple cache hits = %v, want at least the second GET", got)
	}
	if got := sample(t, text, `gatehouse_simple_cache_misses_total`); got < 1 {
		t.Errorf("simple cache misses = %v, want at least the first render", got)
	}
}

func grepLines(text, s string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestRequestIDs: every answer carries an X-Request-Id, a new one each
// time; the request's log line carries the same id; a trusted proxy's own
// id is kept (one id through both logs), anyone else's is replaced.
func TestRequestIDs(t *testing.T) {
	logs := &signalBuffer{wrote: make(chan struct{}, 1)}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f := newFixtureWith(t, dbtest.NewSQLite(t), fixtureConfig{log: log, proxies: []string{"127.0.0.1/32"}})
	idRE := regexp.MustCompile(`^[0-9a-f]{20}$`)
	seen := map[string]bool{}
	for range 3 {
		id := f.get(t, "/simple/").header.Get("X-Request-Id")
		if !idRE.MatchString(id) {
			t.Fatalf("X-Request-Id %q, want 20 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("X-Request-Id %q twice", id)
		}
		seen[id] = true
	}
	// An upload is logged at info: its line has the id of its answer.
	req, _ := http.NewRequest(http.MethodPost, f.url+"/legacy/", strings.NewReader(""))
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if !idRE.MatchString(id) {
		t.Fatalf("refused upload: X-Request-Id %q (the hand-written answer must carry it too)", id)
	}
	// The line is written once the handler returns, which for a refused
	// upload is after the client has its answer: wait for it.
	if !logs.await(`"request_id":"` + id + `"`) {
		t.Errorf("the log has no line with request_id %s:\n%s", id, logs)
	}

	// The proxy (127.0.0.1 is trusted here) sent its id: kept.
	if got := f.get(t, "/simple/", "X-Request-Id", "nginx-0f3a9c").header.Get("X-Request-Id"); got != "nginx-0f3a9c" {
		t.Errorf("a trusted proxy's X-Request-Id: answered with %q, want it kept", got)
	}
	// One that could pass for something else in a log is not.
	for _, bad := range []string{`a" "b`, strings.Repeat("a", 65), "a\tb"} {
		if got := f.get(t, "/simple/", "X-Request-Id", bad).header.Get("X-Request-Id"); !idRE.MatchString(got) {
			t.Errorf("proxy X-Request-Id %q: answered with %q, want a new id", bad, got)
		}
	}

	// Without trusted proxies no client picks its id.
	g := newFixture(t, dbtest.NewSQLite(t))
	if got := g.get(t, "/simple/", "X-Request-Id", "chosen-by-client").header.Get("X-Request-Id"); !idRE.MatchString(got) {
		t.Errorf("an untrusted client's X-Request-Id was kept: %q", got)
	}
}

// TestHealthAndReadiness: /healthz answers 200 while the process serves;
// /readyz answers 503 with the reason while the instance cannot serve, 200
// once it can.
func TestHealthAndReadiness(t *testing.T) {
	var notReady error = errors.New("the database does not answer")
	f := newFixtureWith(t, dbtest.NewSQLite(t), fixtureConfig{ready: func(context.Context) error { return notReady }})
	if r := f.get(t, "/healthz"); r.code != http.StatusOK {
		t.Errorf("/healthz while not ready: %d, want 200 (liveness looks at nothing else)", r.code)
	}
	r := f.get(t, "/readyz")
	if r.code != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "the database does not answer") {
		t.Errorf("/readyz while not ready: %d %q, want 503 naming the reason", r.code, r.body)
	}
	notReady = nil
	if r := f.get(t, "/readyz"); r.code != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("/readyz when ready: %d (Cache-Control %q), want 200, not cached", r.code, r.header.Get("Cache-Control"))
	}
}

// signalBuffer is a log that says when it was written to.
type signalBuffer struct {
	lockedBuffer
	wrote chan struct{}
}

func (b *signalBuffer) Write(p []byte) (int, error) {
	n, err := b.lockedBuffer.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// await reports whether s appears in the log within ten seconds.
func (b *signalBuffer) await(s string) bool {
	deadline := time.After(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		select {
		case <-b.wrote:
		case <-deadline:
			return false
		}
	}
	return true
}
