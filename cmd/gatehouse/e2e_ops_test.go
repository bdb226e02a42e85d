package main

// Observability as deployed (issue 11 §4): /metrics on its own listener,
// /healthz and /readyz, and the request id shared by an answer and its log
// line.

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestE2EMetricsAndReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped with -short")
	}
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			srv := e2eStartServer(t, dialect, "--metrics-listen", "127.0.0.1:0", "--log-level", "debug")
			line := srv.log.waitFor(t, 0, regexp.MustCompile(`msg="serving metrics" url=(\S+)`))
			metricsURL := strings.TrimPrefix(regexp.MustCompile(`url=(\S+)`).FindString(line), "url=")

			get := func(u string) (*http.Response, string) {
				t.Helper()
				resp, err := e2eClient.Get(u)
				if err != nil {
					t.Fatalf("GET %s: %v", u, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, string(b)
			}
			if resp, body := get(srv.URL + "/readyz"); resp.StatusCode != http.StatusOK || body != "ready\n" {
				t.Errorf("/readyz: %d %q, want 200 ready", resp.StatusCode, body)
			}
			if resp, _ := get(srv.URL + "/healthz"); resp.StatusCode != http.StatusOK {
				t.Errorf("/healthz: %d, want 200", resp.StatusCode)
			}
			resp, _ := get(srv.URL + "/simple/")
			id := resp.Header.Get("X-Request-Id")
			if id == "" {
				t.Fatal("GET /simple/: no X-Request-Id")
			}
			srv.log.waitFor(t, 0, regexp.MustCompile(`msg=request method=GET path=/simple/ status=200 [^\n]*request_id=`+id))

			// The index does not serve its metrics; the metrics listener
			// serves nothing else.
			if resp, _ := get(srv.URL + "/metrics"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("/metrics on the index's listener: %d, want 404", resp.StatusCode)
			}
			if resp, _ := get(strings.TrimSuffix(metricsURL, "/metrics") + "/simple/"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("/simple/ on the metrics listener: %d, want 404", resp.StatusCode)
			}
			resp, text := get(metricsURL)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", metricsURL, resp.StatusCode)
			}
			for _, want := range []string{
				`gatehouse_http_requests_total{code="200",route="GET /simple/{$}"} 1`,
				`gatehouse_http_requests_total{code="200",route="GET /readyz"} 1`,
				`gatehouse_http_request_duration_seconds_bucket{route="GET /simple/{$}",le="+Inf"} 1`,
				`gatehouse_outbox_pending `,
				`gatehouse_outbox_up 1`,
				`gatehouse_simple_cache_hits_total `,
				`go_sql_open_connections{db_name="gatehouse"} `,
				`gatehouse_uploads_total{outcome="accepted"} 0`,
				`gatehouse_login_attempts_total{factor="passkey",outcome="ok"} 0`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			if t.Failed() {
				t.Logf("/metrics:\n%s", text)
			}
		})
	}
}
