package main

// The pull-through cache end to end, on both databases, with no internet:
// the upstream is a second Gatehouse holding real wheels (Debian's build of
// the fixture projects) behind a proxy that counts requests, and a static
// PEP 691 page whose file does not match its digest. pip installs a graph
// that mixes local and upstream projects through one index URL; a higher
// upstream version of a local name is never served; with the upstream
// stopped, cached projects still install and pages are served marked
// stale; the tampered file is cut off, then refused with a 502, and nothing
// is stored; 20 parallel first downloads of one file make one upstream
// fetch.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countingProxy forwards to target and counts requests by path; stop makes
// it refuse connections, as an upstream that is down.
type countingProxy struct {
	ln    net.Listener
	srv   *http.Server
	mu    sync.Mutex
	hits  map[string]int
	down  atomic.Bool
	proxy *httputil.ReverseProxy
}

func newCountingProxy(t *testing.T, port int) *countingProxy {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, hits: map[string]int{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			// Hijack and close: as close to a dead upstream as a live
			// listener gets.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		p.hits[r.URL.Path]++
		p.mu.Unlock()
		p.proxy.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *countingProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

func TestE2EUpstream(t *testing.T) {
	tools := e2eTools(t)
	fx := e2eFixtureSet(t)
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			// The upstream: a real Gatehouse, reached only through the
			// counting proxy, whose address is its public base URL.
			upPort, proxyPort := e2eFreePort(t), e2eFreePort(t)
			proxy := newCountingProxy(t, proxyPort)
			upBase := fmt.Sprintf("http://localhost:%d", proxyPort)
			upstream := e2eStartServer(t, "sqlite", "--listen", fmt.Sprintf("127.0.0.1:%d", upPort), "--base-url", upBase)
			backend, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", upPort))
			proxy.proxy = httputil.NewSingleHostReverseProxy(backend)
			upstream.URL = upBase
			upstream.createUser(t, "pypi")
			upTok := upstream.createToken(t, "pypi", "uploads")
			home := t.TempDir()
			dep, pkg := fx.dists["demo-dep"], fx.dists["demo-pkg"]
			e2eMustExec(t, home, e2eEnv(home), tools.twine, "upload", "--repository-url", upBase+"/legacy/", "-u", "__token__", "-p", upTok,
				"--non-interactive", "--disable-progress-bar", dep.wheel, pkg.wheel, pkg.sdist)
			upstream.mustUpload(t, upTok, e2eWheelForm("internal-lib", "99.0", e2eWheelName("internal-lib", "99.0"), e2eWheel(t, "internal-lib", "99.0", e2eMetadata("internal-lib", "99.0"))))
			upstream.mustUpload(t, upTok, e2eWheelForm("many-fetch", "1.0", e2eWheelName("many-fetch", "1.0"), e2eWheel(t, "many-fetch", "1.0", e2eMetadata("many-fetch", "1.0"))))

			// A second upstream whose page lies about its file's digest.
			good := e2eWheel(t, "tampered-pkg", "1.0", e2eMetadata("tampered-pkg", "1.0"))
			bad := append([]byte(nil), good...)
			bad[len(bad)/2] ^= 0xff
			liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/simple/tampered-pkg/":
					w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
					fmt.Fprintf(w, `{"meta":{"api-version":"1.1"},"name":"tampered-pkg","files":[{"filename":%q,"url":"/files/t.whl","hashes":{"sha256":%q}}]}`,
						e2eWheelName("tampered-pkg", "1.0"), e2eSHA256(good))
				case "/files/t.whl":
					w.Write(bad)
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(liar.Close)

			// The index under test: internal-lib is local, everything else
			// comes through.
			local := e2eStartServer(t, dialect, "--upstream", upBase+"/simple/,"+liar.URL+"/simple/", "--upstream-ttl", "1ns")
			local.allowWarn = []string{"upstream page fetch failed", "upstream file does not match its digest"}
			local.createUser(t, "alice")
			tok := local.createToken(t, "alice", "uploads")
			local.mustUpload(t, tok, e2eWheelForm("internal-lib", "1.0", e2eWheelName("internal-lib", "1.0"), e2eWheel(t, "internal-lib", "1.0", e2eMetadata("internal-lib", "1.0"))))

			venv, err := e2eVenv(tools, home)
			if err != nil {
				t.Fatal(err)
			}
			pip := filepath.Join(venv, "bin", "pip")
			out := e2eMustExec(t, home, e2eEnv(home), pip, "install", "--no-input", "--index-url", local.URL+"/simple/", "demo-pkg", "internal-lib")
			for _, want := range []string{"demo-pkg-1.0", "demo-dep-0.3", "internal-lib-1.0"} {
				if !strings.Contains(out, want) {
					t.Errorf("pip install through one index URL does not show %s:\n%s", want, out)
				}
			}
			// uv through the same URL: the same graph, from PEP 691 pages
			// and PEP 658 metadata, upstream's files checked by their digest.
			got := uvClient{t: t, index: local.URL + "/simple/"}.install("demo-pkg", "internal-lib")
			if got["demo-pkg"] != "1.0" || got["demo-dep"] != "0.3" || got["internal-lib"] != "1.0" {
				t.Errorf("uv through one index URL resolved %v; want demo-pkg 1.0, demo-dep 0.3, internal-lib 1.0", got)
			}
			// The confusion test: upstream's internal-lib 99.0 is never served.
			files, versions := local.simpleJSON(t, "internal-lib")
			if len(files) != 1 || strings.Join(versions, " ") != "1.0" || strings.Contains(files[0].URL, "/upstream/") {
				t.Errorf("internal-lib's page: versions %q, files %+v; want the local 1.0 only", versions, files)
			}
			if n := proxy.count("/simple/internal-lib/"); n != 0 {
				t.Errorf("the upstream was asked for internal-lib %d times; a local name is never looked up", n)
			}
			if out, err := e2eExec(home, e2eEnv(home), pip, "install", "--no-input", "--index-url", local.URL+"/simple/", "internal-lib==99.0"); err == nil {
				t.Errorf("pip installed upstream's internal-lib 99.0:\n%s", out)
			}

			// 20 parallel first downloads of one file: one upstream fetch.
			mf, _ := local.simpleJSON(t, "many-fetch")
			if len(mf) != 1 {
				t.Fatalf("many-fetch through the cache: %+v", mf)
			}
			var wg sync.WaitGroup
			sums := make([]string, 20)
			for i := range sums {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					resp, err := e2eClient.Get(mf[0].URL)
					if err != nil {
						sums[i] = err.Error()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					sums[i] = fmt.Sprintf("%d %s", resp.StatusCode, e2eSHA256(b))
				}(i)
			}
			wg.Wait()
			for i, s := range sums {
				if s != "200 "+mf[0].Hashes["sha256"] {
					t.Errorf("download %d: %s, want 200 %s", i, s, mf[0].Hashes["sha256"])
				}
			}
			upFile := mf[0].URL[strings.Index(mf[0].URL, "/upstream/"):]
			_ = upFile
			fetched := 0
			for path, n := range proxy.hitsSnapshot() {
				if strings.HasPrefix(path, "/packages/") && strings.HasSuffix(path, e2eWheelName("many-fetch", "1.0")) {
					fetched += n
				}
			}
			if fetched != 1 {
				t.Errorf("20 parallel first downloads made %d upstream fetches, want 1", fetched)
			}

			// The tampered file: the first download is cut off, the next
			// ones get a 502 that says why, and nothing is stored.
			tf, _ := local.simpleJSON(t, "tampered-pkg")
			if len(tf) != 1 {
				t.Fatalf("tampered-pkg's page: %+v", tf)
			}
			if resp, err := e2eClient.Get(tf[0].URL); err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil && e2eSHA256(b) == tf[0].Hashes["sha256"] {
					t.Fatal("the tampered file was served whole")
				}
			}
			resp, err := e2eClient.Get(tf[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "different sha256") {
				t.Errorf("the tampered file again: %d %q, want a 502 saying why", resp.StatusCode, body)
			}
			snap := local.snapshot(t)
			var stored int
			if err := local.db.QueryRow(`SELECT count(*) FROM upstream_files WHERE filename = $1 AND stored_at IS NOT NULL`, e2eWheelName("tampered-pkg", "1.0")).Scan(&stored); err != nil || stored != 0 {
				t.Errorf("the tampered file is marked stored (%d, %v)", stored, err)
			}
			for _, b := range snap.Blobs {
				if strings.Contains(b, e2eSHA256(good)) {
					t.Errorf("a blob of the tampered file was stored: %s", b)
				}
			}

			// Upstream down: cached projects still install, pages marked stale.
			proxy.down.Store(true)
			venv2, err := e2eVenv(tools, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			out = e2eMustExec(t, home, e2eEnv(home), filepath.Join(venv2, "bin", "pip"), "install", "--no-input", "--index-url", local.URL+"/simple/", "demo-pkg")
			if !strings.Contains(out, "demo-pkg-1.0") || !strings.Contains(out, "demo-dep-0.3") {
				t.Errorf("pip install with the upstream down:\n%s", out)
			}
			r, err := e2eClient.Get(local.URL + "/simple/demo-pkg/")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != 200 || r.Header.Get("X-Gatehouse-Upstream-Stale") == "" {
				t.Errorf("demo-pkg's page with the upstream down: %d, stale header %q", r.StatusCode, r.Header.Get("X-Gatehouse-Upstream-Stale"))
			}
			// A name never cached: a 503 that says so.
			r, err = e2eClient.Get(local.URL + "/simple/never-seen/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "could not be reached") {
				t.Errorf("an uncached name with the upstream down: %d %q", r.StatusCode, b)
			}

			// Pruning: the stored copies go, the rows stay, and the next
			// download fetches the file again once the upstream is back.
			proxy.down.Store(false)
			storedCopies := func() (n int) {
				t.Helper()
				if err := local.db.QueryRow(`SELECT count(stored_at) + count(metadata_stored_at) FROM upstream_files`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			upBlobs := func() (n int) {
				for _, b := range local.snapshot(t).Blobs {
					if strings.HasPrefix(b, "upstream/") && strings.HasSuffix(b, " bytes)") {
						n++
					}
				}
				return n
			}
			copies, blobsBefore := storedCopies(), upBlobs()
			if copies == 0 || blobsBefore != copies {
				t.Fatalf("before pruning: %d stored copies, %d upstream blobs: %q", copies, blobsBefore, local.snapshot(t).Blobs)
			}
			if out := local.admin(t, "upstream", "prune", "--older-than", "30d"); !strings.Contains(out, "Removed 0 stored upstream file(s)") {
				t.Errorf("prune of copies older than 30 days: %q, want nothing removed", out)
			}
			if out := local.admin(t, "upstream", "prune", "--unused-for", "30d"); !strings.Contains(out, "Removed 0 stored upstream file(s)") || !strings.Contains(out, "not downloaded for 30d") {
				t.Errorf("prune of copies unused for 30 days: %q, want nothing removed", out)
			}
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"upstream", "prune", "--unused-for", "30d", "--older-than", "30d", "--data-dir", local.dataDir, "--database-url", local.dbURL},
				e2eNoEnv, strings.NewReader(""), &stdout, &stderr); err == nil || stdout.Len() != 0 || !strings.Contains(err.Error(), "not both") {
				t.Errorf("prune with both criteria: %v, stdout %q; want a refusal", err, stdout.String())
			}
			if out := local.admin(t, "upstream", "prune", "--older-than", "0s", "--dry-run"); !strings.Contains(out, fmt.Sprintf("Would remove %d stored upstream file(s)", copies)) {
				t.Errorf("prune --dry-run: %q, want %d", out, copies)
			}
			if storedCopies() != copies || upBlobs() != blobsBefore {
				t.Error("prune --dry-run removed something")
			}
			if out := local.admin(t, "upstream", "prune", "--older-than", "0s"); !strings.Contains(out, fmt.Sprintf("Removed %d stored upstream file(s)", copies)) {
				t.Errorf("prune: %q, want %d removed", out, copies)
			}
			if n, b := storedCopies(), upBlobs(); n != 0 || b != 0 {
				t.Errorf("after pruning: %d stored copies, %d upstream blobs, want none", n, b)
			}
			resp, err = e2eClient.Get(mf[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || e2eSHA256(b) != mf[0].Hashes["sha256"] {
				t.Errorf("a pruned file downloaded again: %d, sha256 %s", resp.StatusCode, e2eSHA256(b))
			}
			if n := storedCopies(); n != 1 {
				t.Errorf("after downloading a pruned file: %d stored copies, want 1", n)
			}
			// A stored copy removed by hand (its row still says stored) is
			// fetched again too, not a server error.
			for _, b := range local.snapshot(t).Blobs {
				if strings.HasPrefix(b, "upstream/") && strings.HasSuffix(b, " bytes)") {
					if err := os.Remove(filepath.Join(local.dataDir, "files", strings.Fields(b)[0])); err != nil {
						t.Fatal(err)
					}
				}
			}
			resp, err = e2eClient.Get(mf[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || e2eSHA256(b) != mf[0].Hashes["sha256"] {
				t.Errorf("a file whose stored copy was removed by hand: %d, sha256 %s", resp.StatusCode, e2eSHA256(b))
			}
			if n := upBlobs(); n != 1 {
				t.Errorf("after downloading it: %d upstream blobs, want 1", n)
			}
		})
	}
}

func (p *countingProxy) hitsSnapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.hits {
		out[k] = v
	}
	return out
}
