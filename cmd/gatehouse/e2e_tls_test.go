package main

// The server serving HTTPS itself (issue 11 §3): Debian's twine and pip
// against the TLS listener with a test CA and nothing but the index URL
// and the CA file (--cert, PIP_CERT); __Host- cookies and HSTS over it;
// and a certificate reload on SIGHUP that drops no connection.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eCA is a test certificate authority.
type e2eCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func newE2ECA(t *testing.T) *e2eCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Gatehouse test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &e2eCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: pool}
}

// issue writes a certificate for localhost with the given serial, and its
// key, to certFile and keyFile (by rename, as a deployment tool would).
func (ca *e2eCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path string, b *pem.Block) {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	write(certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// client trusts only the test CA and keeps connections alive.
func (ca *e2eCA) client() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// e2eGetTLS fetches u and reports the server certificate's serial and
// whether the request went over a connection used before.
func e2eGetTLS(t *testing.T, c *http.Client, u string) (resp *http.Response, serial int64, reused bool) {
	t.Helper()
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET %s: not over TLS", u)
	}
	return resp, resp.TLS.PeerCertificates[0].SerialNumber.Int64(), reused
}

func TestE2ETLS(t *testing.T) {
	tools := e2eTools(t)
	fx := e2eFixtureSet(t)
	work := t.TempDir()
	ca := newE2ECA(t)
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(work, "cert.pem"), filepath.Join(work, "key.pem")
	ca.issue(t, 100, certFile, keyFile)

	srv := e2eStartServer(t, "sqlite", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(srv.URL, "https://localhost:") {
		t.Fatalf("base URL %s, want https://localhost:<port> (the default with --tls-cert)", srv.URL)
	}
	srv.createUser(t, "alice")
	tok := srv.createToken(t, "alice", "tls uploads")

	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	dep, pkg := fx.dists["demo-dep"], fx.dists["demo-pkg"]
	t.Run("twine uploads with --cert and the index URL", func(t *testing.T) {
		e2eMustExec(t, home, e2eEnv(home), tools.twine, "upload", "--repository-url", srv.URL+"/legacy/", "--cert", caFile,
			"-u", "__token__", "-p", tok, "--non-interactive", "--disable-progress-bar", dep.wheel, pkg.wheel, pkg.sdist)
		// Without the CA, twine refuses the server: the test CA is what
		// made it work, not a check turned off.
		out, err := e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", srv.URL+"/legacy/",
			"-u", "__token__", "-p", tok, "--non-interactive", "--disable-progress-bar", dep.sdist)
		if err == nil || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("twine without --cert: %v, want a certificate verification failure; output:\n%s", err, out)
		}
	})
	t.Run("pip installs with PIP_CERT and the index URL", func(t *testing.T) {
		venv, err := e2eVenv(tools, work)
		if err != nil {
			t.Fatal(err)
		}
		py, pip := filepath.Join(venv, "bin", "python"), filepath.Join(venv, "bin", "pip")
		out := e2eMustExec(t, work, e2eEnv(home, "PIP_CERT="+caFile), pip, "install", "--index-url", srv.URL+"/simple/", "demo-pkg")
		if !strings.Contains(out, "demo-dep-0.3") || !strings.Contains(out, "demo-pkg-1.0") {
			t.Errorf("pip install output does not list demo-pkg and demo-dep as installed:\n%s", out)
		}
		if got := strings.TrimSpace(e2eMustExec(t, work, e2eEnv(home), py, "-c", "import demo_pkg; print(demo_pkg.ANSWER)")); got != "42" {
			t.Errorf("demo_pkg.ANSWER = %q, want 42", got)
		}
	})
	t.Run("pages send HSTS and the __Host- session cookie over TLS", func(t *testing.T) {
		c := ca.client()
		resp, _, _ := e2eGetTLS(t, c, srv.URL+"/")
		if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=31536000") {
			t.Errorf("GET /: Strict-Transport-Security %q, want max-age=31536000…", hsts)
		}
		pw := "Quartz-Lantern-Meadow-4217"
		var stdout, stderr strings.Builder
		if err := run(context.Background(), []string{"user", "create", "--username", "tlsuser", "--email", "tlsuser@example.com",
			"--email-verified", "--password-stdin", "--data-dir", srv.dataDir, "--database-url", srv.dbURL},
			e2eNoEnv, strings.NewReader(pw+"\n"), &stdout, &stderr); err != nil {
			t.Fatalf("user create: %v\n%s", err, stderr.String())
		}
		resp, err := c.PostForm(srv.URL+"/account/login/", url.Values{"username": {"tlsuser"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if strings.HasSuffix(ck.Name, "gatehouse_session") {
				session = ck
			}
		}
		if session == nil || session.Name != "__Host-gatehouse_session" || !session.Secure || session.Path != "/" || session.Domain != "" {
			t.Errorf("login over TLS: session cookie %+v, want __Host-gatehouse_session, Secure, Path=/, no Domain (status %d)", session, resp.StatusCode)
		}
	})
	t.Run("SIGHUP reloads the certificate without dropping a connection", func(t *testing.T) {
		old := ca.client()
		_, serial, _ := e2eGetTLS(t, old, srv.URL+"/healthz")
		if serial != 100 {
			t.Fatalf("certificate serial %d, want 100", serial)
		}
		ca.issue(t, 200, certFile, keyFile)
		from := srv.log.len()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		line := srv.log.waitFor(t, from, regexp.MustCompile(`msg="TLS certificate reloaded"[^\n]*`))
		if !strings.Contains(line, "serial=c8") { // 200
			t.Errorf("reload log line %q, want serial=c8 (200)", line)
		}
		// The open connection goes on, with the certificate it began with.
		_, serial, reused := e2eGetTLS(t, old, srv.URL+"/healthz")
		if !reused || serial != 100 {
			t.Errorf("after the reload, the open connection: reused %v, serial %d; want reused with serial 100", reused, serial)
		}
		// A new connection gets the new certificate.
		_, serial, reused = e2eGetTLS(t, ca.client(), srv.URL+"/healthz")
		if reused || serial != 200 {
			t.Errorf("a new connection after the reload: reused %v, serial %d; want a new connection with serial 200", reused, serial)
		}
	})
}
