package main

// The reverse-proxy snippets of docs/operations.md, run as written (issue
// 11 §3): Debian's nginx-light and Caddy terminate TLS in front of
// Gatehouse with --trusted-proxies; twine uploads and pip installs through
// them, a refusal reaches twine, the client address Gatehouse records is
// the client's (not the proxy's, nor one the client wrote into
// X-Forwarded-For), and the proxy's request id is the request's.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

// e2eDocSnippet returns the fenced block of docs/operations.md in lang.
func e2eDocSnippet(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/operations.md has no ```%s block", lang)
	}
	return string(m[1])
}

func e2eFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// e2eProxy is a proxy configuration to run: the program, its config, and
// the log line that says it listens.
type e2eProxy struct {
	name   string
	prog   string
	config func(t *testing.T, dir string, port, upstream int, cert, key string) []string // the command's arguments
	ready  *regexp.Regexp
	// keepsReason: the proxy passes Gatehouse's reason phrase, which
	// twine prints.
	keepsReason bool
	requestID   *regexp.Regexp // the proxy's X-Request-Id
}

var e2eProxies = []e2eProxy{
	{
		name: "nginx", prog: "/usr/sbin/nginx",
		config: func(t *testing.T, dir string, port, upstream int, cert, key string) []string {
			snippet := e2eDocSnippet(t, "nginx")
			r := strings.NewReplacer(
				"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", port),
				"server_name pypi.example.com;", "server_name localhost;",
				"/etc/ssl/pypi.example.com/fullchain.pem", cert,
				"/etc/ssl/pypi.example.com/privkey.pem", key,
				"http://127.0.0.1:8080", fmt.Sprintf("http://127.0.0.1:%d", upstream))
			user := ""
			if os.Geteuid() == 0 {
				user = "user root;" // the worker must read our temp dir
			}
			temps := fmt.Sprintf("    client_body_temp_path %[1]s/body;\n    proxy_temp_path %[1]s/proxy;\n    fastcgi_temp_path %[1]s/fastcgi;\n"+
				"    uwsgi_temp_path %[1]s/uwsgi;\n    scgi_temp_path %[1]s/scgi;\n", dir)
			conf := fmt.Sprintf("%s\nworker_processes 1;\npid %s/nginx.pid;\nerror_log stderr notice;\nevents { worker_connections 128; }\nhttp {\n    access_log off;\n%s%s}\n",
				user, dir, temps, r.Replace(snippet))
			path := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"-p", dir + "/", "-e", "stderr", "-c", path, "-g", "daemon off;"}
		},
		ready:       regexp.MustCompile(`start worker process`),
		keepsReason: true,
		requestID:   regexp.MustCompile(`^[0-9a-f]{32}$`),
	},
	{
		name: "caddy", prog: "/usr/bin/caddy",
		config: func(t *testing.T, dir string, port, upstream int, cert, key string) []string {
			snippet := e2eDocSnippet(t, "caddy")
			r := strings.NewReplacer(
				"pypi.example.com {", fmt.Sprintf("localhost:%d {", port),
				"/etc/ssl/pypi.example.com/fullchain.pem", cert,
				"/etc/ssl/pypi.example.com/privkey.pem", key,
				"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", upstream))
			// The test's own global options: no admin endpoint, no
			// redirect listener on port 80, nothing in the system trust
			// store. (Its storage is under HOME, the test's dir.)
			global := "{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n}\n\n"
			path := filepath.Join(dir, "Caddyfile")
			if err := os.WriteFile(path, []byte(global+r.Replace(snippet)), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"run", "--adapter", "caddyfile", "--config", path}
		},
		ready:     regexp.MustCompile(`serving initial configuration`),
		requestID: regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`),
	},
}

func TestE2EReverseProxies(t *testing.T) {
	tools := e2eTools(t)
	work := t.TempDir()
	ca := newE2ECA(t)
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(work, "cert.pem"), filepath.Join(work, "key.pem")
	ca.issue(t, 1, certFile, keyFile)
	venv, err := e2eVenv(tools, work)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range e2eProxies {
		t.Run(p.name, func(t *testing.T) {
			if _, err := os.Stat(p.prog); err != nil {
				e2eSkipOrFail(t, "%s is not installed (scripts/test installs it)", p.prog)
			}
			e2eProxyScenario(t, p, tools, ca, caFile, certFile, keyFile, venv)
		})
	}
}

func e2eProxyScenario(t *testing.T, p e2eProxy, tools e2eToolSet, ca *e2eCA, caFile, certFile, keyFile, venv string) {
	dir := t.TempDir()
	port, upstream := e2eFreePort(t), e2eFreePort(t)
	public := fmt.Sprintf("https://localhost:%d", port)
	srv := e2eStartServer(t, "sqlite", "--listen", fmt.Sprintf("127.0.0.1:%d", upstream), "--base-url", public,
		"--trusted-proxies", "127.0.0.1/32")
	srv.createUser(t, "alice")
	tok := srv.createToken(t, "alice", "through "+p.name)

	args := p.config(t, dir, port, upstream, certFile, keyFile)
	plog := newE2ELog()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, p.prog, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin", "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	cmd.Stdout, cmd.Stderr = plog, plog
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, waited := make(chan error, 1), make(chan struct{})
	go func() { exited <- cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		cancel()
		<-waited
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, plog.String())
		}
	})
	if _, err := plog.await(0, p.ready, exited); err != nil {
		t.Fatalf("%s: %v\n%s", p.name, err, plog.String())
	}

	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	wheel := filepath.Join(dir, e2eWheelName("proxied-pkg", "1.0"))
	if err := os.WriteFile(wheel, e2eWheel(t, "proxied-pkg", "1.0", e2eMetadata("proxied-pkg", "1.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	twine := func(pass, file string) (string, error) {
		return e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", public+"/legacy/", "--cert", caFile,
			"-u", "__token__", "-p", pass, "--non-interactive", "--disable-progress-bar", file)
	}
	if out, err := twine(tok, wheel); err != nil {
		t.Fatalf("twine upload through %s: %v\n%s", p.name, err, out)
	}
	other := filepath.Join(dir, e2eWheelName("proxied-pkg", "1.1"))
	if err := os.WriteFile(other, e2eWheel(t, "proxied-pkg", "1.1", e2eMetadata("proxied-pkg", "1.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := twine("pypi-not-a-token", other)
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("twine with a bad token through %s: %v, want a 403; output:\n%s", p.name, err, out)
	}
	const reason = "Invalid or non-existent authentication information"
	if got := strings.Contains(out, reason); got != p.keepsReason {
		t.Errorf("through %s, twine shows Gatehouse's reason %q: %v, want %v (docs/operations.md says which proxies keep it); output:\n%s",
			p.name, reason, got, p.keepsReason, out)
	}

	pip := filepath.Join(venv, "bin", "pip")
	out = e2eMustExec(t, dir, e2eEnv(home, "PIP_CERT="+caFile), pip, "download", "--no-deps", "--dest", filepath.Join(dir, "dl"),
		"--index-url", public+"/simple/", "proxied-pkg")
	if !strings.Contains(out, "proxied_pkg-1.0-py3-none-any.whl") {
		t.Errorf("pip download through %s:\n%s", p.name, out)
	}
	if got, want := e2eSHA256File(t, filepath.Join(dir, "dl", filepath.Base(wheel))), e2eSHA256File(t, wheel); got != want {
		t.Errorf("the wheel pip downloaded through %s has sha256 %s, want %s", p.name, got, want)
	}

	// A client on 127.0.0.2, which is not a trusted proxy, writes its own
	// X-Forwarded-For: Gatehouse records 127.0.0.2.
	c := ca.client()
	c.Transport.(*http.Transport).DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext
	form := url.Values{"username": {"alice"}, "password": {"a wrong password"}}
	req, err := http.NewRequest(http.MethodPost, public+"/account/login/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Request-Id", "chosen-by-the-client")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); !p.requestID.MatchString(id) {
		t.Errorf("X-Request-Id through %s: %q, want the proxy's own id (%s)", p.name, id, p.requestID)
	}
	d, err := db.Open(context.Background(), srv.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var ip string
	if err := d.QueryRow(`SELECT ip FROM events WHERE tag = 'account:login:failure' ORDER BY id DESC LIMIT 1`).Scan(&ip); err != nil {
		t.Fatalf("the failed login through %s left no event: %v", p.name, err)
	}
	if ip != "127.0.0.2" {
		t.Errorf("the failed login through %s is recorded from %q, want the client's 127.0.0.2", p.name, ip)
	}
}
