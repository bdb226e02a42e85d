package main

// A private index (--read-access authenticated), end to end on both
// databases: twine uploads with an upload token; pip installs with a read
// token in the index URL and with ~/.netrc, and fails without one, with a
// wrong one, and for a project a limited token does not cover; the HTTP
// requests uv makes for UV_INDEX_<NAME>_USERNAME/_PASSWORD (uv is not on
// this machine) read pages and files; twine with the read token is refused;
// the read token appears in no file URL and no log line.

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			for _, tok := range []string{read, onlyDep, up} {
				if strings.Contains(srv.log.String(), tok) {
					t.Error("the server log holds a token")
				}
			}
		})
	}
}
