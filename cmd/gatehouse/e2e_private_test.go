package main

// A private index (--read-access authenticated), end to end on both
// databases: twine uploads with an upload token; pip installs with a read
// token in the index URL and with ~/.netrc, and fails without one, with a
// wrong one, with an expired one, and for a project a limited token does
// not cover; the HTTP requests uv makes for UV_INDEX_<NAME>_USERNAME/
// _PASSWORD (uv is not on this machine) resolve pages, metadata and files;
// twine with the read token, an expired upload token and a wrong one is
// refused;
// the read token appears in no file URL and no log line.

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/token"
)

func TestE2EPrivateIndex(t *testing.T) {
	tools := e2eTools(t)
	fx := e2eFixtureSet(t)
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			srv := e2eStartServer(t, dialect, "--read-access", "authenticated")
			srv.createUser(t, "alice")
			up := srv.createToken(t, "alice", "uploads")
			readTok := func(desc string, projects ...string) string {
				t.Helper()
				args := []string{"token", "create", "--user", "alice", "--description", desc, "--read"}
				for _, p := range projects {
					args = append(args, "--project", p)
				}
				raw, _, _ := strings.Cut(srv.admin(t, args...), "\n")
				if raw = strings.TrimSpace(raw); !strings.HasPrefix(raw, token.Prefix) {
					t.Fatalf("token create --read: %q", raw)
				}
				return raw
			}
			home := t.TempDir()
			dep, pkg := fx.dists["demo-dep"], fx.dists["demo-pkg"]
			e2eMustExec(t, home, e2eEnv(home), tools.twine, "upload", "--repository-url", srv.URL+"/legacy/", "-u", "__token__", "-p", up,
				"--non-interactive", "--disable-progress-bar", dep.wheel, pkg.wheel, pkg.sdist)
			read := readTok("ci reads")
			onlyDep := readTok("dep only", "demo-dep")
			u, _ := url.Parse(srv.URL)

			venv, err := e2eVenv(tools, home)
			if err != nil {
				t.Fatal(err)
			}
			pip := filepath.Join(venv, "bin", "pip")
			install := func(env []string, index string, args ...string) (string, error) {
				return e2eExec(home, env, pip, append([]string{"install", "--no-input", "--index-url", index}, args...)...)
			}
			withToken := func(tok string) string { return "http://__token__:" + tok + "@" + u.Host + "/simple/" }

			// Without credentials pip is refused (it cannot ask: --no-input).
			if out, err := install(e2eEnv(home), srv.URL+"/simple/", "demo-pkg"); err == nil {
				t.Fatalf("pip install without credentials succeeded:\n%s", out)
			}
			// (What pip was answered: a 401 with a Basic challenge, which
			// it would turn into a prompt without --no-input.)
			if resp, err := e2eClient.Get(srv.URL + "/simple/demo-pkg/"); err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("GET /simple/demo-pkg/ without credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			}
			// A wrong token likewise.
			if out, err := install(e2eEnv(home), withToken("pypi-notarealtoken"), "demo-pkg"); err == nil {
				t.Fatalf("pip install with a wrong token succeeded:\n%s", out)
			}
			// An expired read token likewise, with the very answer a token
			// that never existed gets. (Its lifetime is the shortest the CLI
			// makes; the wait is for the server's refusal, not a fixed time.)
			expired, _, _ := strings.Cut(srv.admin(t, "token", "create", "--user", "alice", "--description", "short", "--read", "--expires", "1s"), "\n")
			expired = strings.TrimSpace(expired)
			expiredUp, _, _ := strings.Cut(srv.admin(t, "token", "create", "--user", "alice", "--description", "short upload", "--expires", "1s"), "\n")
			expiredUp = strings.TrimSpace(expiredUp)
			basicGet := func(tok string) (int, []byte) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/simple/demo-pkg/", nil)
				req.SetBasicAuth("__token__", tok)
				resp, err := e2eClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, b
			}
			for deadline := time.Now().Add(10 * time.Second); ; {
				if code, _ := basicGet(expired); code == http.StatusUnauthorized {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("a token made with --expires 1s still reads after 10 s")
				}
				time.Sleep(50 * time.Millisecond)
			}
			wrongCode, wrongBody := basicGet("pypi-notarealtoken")
			if code, body := basicGet(expired); code != wrongCode || !bytes.Equal(body, wrongBody) {
				t.Errorf("an expired token got %d %q; a wrong one %d %q: they must not be told apart", code, body, wrongCode, wrongBody)
			}
			if out, err := install(e2eEnv(home), withToken(expired), "demo-pkg"); err == nil {
				t.Fatalf("pip install with an expired token succeeded:\n%s", out)
			}
			// The read token in the URL installs the graph.
			out := e2eMustExec(t, home, e2eEnv(home), pip, "install", "--no-input", "--index-url", withToken(read), "demo-pkg")
			if !strings.Contains(out, "demo-dep-0.3") || !strings.Contains(out, "demo-pkg-1.0") {
				t.Errorf("pip install with the read token in the URL:\n%s", out)
			}
			e2eMustExec(t, home, e2eEnv(home), pip, "uninstall", "-y", "demo-pkg", "demo-dep")
			// And from ~/.netrc, with a plain index URL.
			netrcHome := t.TempDir()
			if err := os.WriteFile(filepath.Join(netrcHome, ".netrc"), []byte("machine "+u.Hostname()+"\nlogin __token__\npassword "+read+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err = install(e2eEnv(netrcHome), srv.URL+"/simple/", "demo-pkg")
			if err != nil || !strings.Contains(out, "demo-pkg-1.0") {
				t.Errorf("pip install with ~/.netrc: %v\n%s", err, out)
			}
			e2eMustExec(t, home, e2eEnv(home), pip, "uninstall", "-y", "demo-pkg", "demo-dep")
			// A token limited to demo-dep cannot install demo-pkg, which to
			// it does not exist.
			if out, err := install(e2eEnv(home), withToken(onlyDep), "demo-pkg"); err == nil {
				t.Fatalf("pip install demo-pkg with a token for demo-dep only succeeded:\n%s", out)
			} else if !strings.Contains(out, "No matching distribution") && !strings.Contains(out, "404") {
				t.Errorf("pip with the limited token:\n%s", out)
			}
			if out, err := install(e2eEnv(home), withToken(onlyDep), "demo-dep"); err != nil {
				t.Errorf("pip install demo-dep with the token for it: %v\n%s", err, out)
			}

			// uv with UV_INDEX_PRIVATE_USERNAME=__token__ and
			// _PASSWORD=<read token>: pages, metadata and wheels, and
			// without the token its first request is a 401 with a challenge.
			got := uvClient{t: t, index: srv.URL + "/simple/", token: read}.install("demo-pkg")
			if got["demo-pkg"] != "1.0" || got["demo-dep"] != "0.3" {
				t.Errorf("uv with the read token resolved %v; want demo-pkg 1.0 and demo-dep 0.3", got)
			}
			if resp, _ := (uvClient{t: t, index: srv.URL + "/simple/"}).get(srv.URL+"/simple/demo-pkg/", uvAccept); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("uv without credentials: %d, WWW-Authenticate %q; want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}

			// twine with the read token: refused, with why.
			out, err = e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", srv.URL+"/legacy/", "-u", "__token__", "-p", read,
				"--non-interactive", "--disable-progress-bar", dep.wheel)
			if err == nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "read-only") {
				t.Errorf("twine with a read token: %v\n%s", err, out)
			}
			// twine with an expired upload token and with a wrong one:
			// refused, with why.
			for name, c := range map[string]struct{ tok, want string }{
				"expired": {expiredUp, "Invalid API Token: token is expired"},
				"wrong":   {"pypi-notarealtoken", "Invalid or non-existent authentication information"},
			} {
				out, err = e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", srv.URL+"/legacy/", "-u", "__token__", "-p", c.tok,
					"--non-interactive", "--disable-progress-bar", dep.wheel)
				if err == nil || !strings.Contains(strings.Join(strings.Fields(out), " "), c.want) {
					t.Errorf("twine with the %s upload token: %v\n%s", name, err, out)
				}
			}
			for _, tok := range []string{read, onlyDep, up} {
				if strings.Contains(srv.log.String(), tok) {
					t.Error("the server log holds a token")
				}
			}
		})
	}
}
