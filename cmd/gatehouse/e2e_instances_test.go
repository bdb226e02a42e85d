package main

// Several instances (issue 11 §2): two gatehouse processes on one
// PostgreSQL and one S3 server (versitygw), with one public base URL and no
// sticky sessions, each serving HTTPS itself (--tls-cert) behind a load
// balancer that terminates TLS and connects to them over TLS again. The test
// alternates its requests between them.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestE2ETwoInstances(t *testing.T) {
	vgw := s3test.Versitygw(t)
	dbURL := dbtest.PostgresURL(t)
	if dbURL == "" {
		e2eSkipOrFail(t, "no PostgreSQL (GATEHOUSE_TEST_POSTGRES_URL)")
	}
	bucket := vgw.NewBucket(t)
	mb := acctStartSMTP(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	secretFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	// One certificate for localhost and 127.0.0.1, which both instances
	// serve and the load balancer shows its clients.
	certs := tpNewTLS(t)
	lbCert, err := tls.LoadX509KeyPair(certs.certFile, certs.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// The load balancer: one public https URL, each request to the next
	// instance in turn, no affinity.
	lbl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, lbPort, _ := net.SplitHostPort(lbl.Addr().String())
	var backends []*httputil.ReverseProxy
	var turn atomic.Uint64
	lb := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backends[turn.Add(1)%uint64(len(backends))].ServeHTTP(w, r)
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{lbCert}}}
	// The same settings for both, as a deployment gives them.
	opts := acctOpts{dbURL: dbURL, mail: mb, publicBase: "https://localhost:" + lbPort,
		tlsCert: certs.certFile, tlsKey: certs.keyFile, tlsPool: certs.pool, extra: []string{
			"--secret-key-file", secretFile,
			"--storage-url", "s3://" + bucket + "/index", "--storage-endpoint", vgw.Endpoint, "--storage-region", "us-east-1",
			"--storage-path-style", "on", "--storage-access-key", vgw.AccessKey, "--storage-secret-key", vgw.SecretKey,
		}}
	a := acctStart(t, "postgres", opts)
	b := acctStart(t, "postgres", opts)
	for _, env := range []*acctEnv{a, b} {
		u, _ := url.Parse(env.URL)
		if u.Scheme != "https" {
			t.Fatalf("instance at %s, want https", env.URL)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.pool}}
		backends = append(backends, p)
	}
	go lb.ServeTLS(lbl, "", "")
	t.Cleanup(func() { lb.Close() })
	// The commands of the helpers run with A's data dir: there, too, the
	// one secret.
	if err := os.WriteFile(filepath.Join(a.dataDir, "secret.key"), []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	a.secrets.add("S3 secret key", vgw.SecretKey)
	b.secrets.add("S3 secret key", vgw.SecretKey)
	// Both are the one public URL; the test's load balancer is which
	// listener it sends each request to.
	if a.base != b.base {
		t.Fatalf("instances at %s and %s, want one base URL", a.base, b.base)
	}
	on := func(br *acctBrowser, env *acctEnv) *acctBrowser { c := *br; c.env = env; return &c }
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		full := append(args, "--data-dir", a.dataDir, "--database-url", dbURL, "--secret-key-file", secretFile)
		if err := run(context.Background(), full, e2eNoEnv, strings.NewReader(""), &out, &errb); err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}

	t.Run("a login on A is a session on B, and its email is sent once", func(t *testing.T) {
		onA := a.browser(acctFirefox)
		onA.mustRegister(t, "carol", "carol-long-password-1")
		onB := on(onA, b)
		if !onB.signedIn(t) {
			t.Fatal("signed in on A, not signed in on B")
		}
		// The verification email, queued by A, is sent by one of the two
		// workers, once; its link works on B.
		a.waitOutboxSent(t)
		onB.verify(t, "carol@example.com")
		if n := len(mailTo(mb, "carol@example.com")); n != 1 {
			t.Fatalf("carol got %d emails, want the one verification email", n)
		}
	})

	t.Run("every outbox email is sent exactly once", func(t *testing.T) {
		const n = 30
		for i := range n {
			a.exec(t, `INSERT INTO outbox (template, to_addr, subject, text_body, created_at, next_attempt_at) VALUES ('test', $1, 'Two instances', 'hello', now(), 0)`,
				fmt.Sprintf("many%02d@example.com", i))
		}
		a.waitOutboxSent(t)
		for i := range n {
			addr := fmt.Sprintf("many%02d@example.com", i)
			if got := len(mailTo(mb, addr)); got != 1 {
				t.Fatalf("%s got %d emails from two workers, want 1", addr, got)
			}
		}
	})

	t.Run("rate limits count across both", func(t *testing.T) {
		attacker := a.browser(acctChrome)
		for i := range 10 {
			env := a
			if i%2 == 1 {
				env = b
			}
			acctWant(t, on(attacker, env).login(t, acctName("nosuchuser", i), "password-from-a-dump"), 400, msgInvalidLogin)
		}
		for _, env := range []*acctEnv{a, b} {
			acctWant(t, on(attacker, env).login(t, "nosuchuser10", "password-from-a-dump"), http.StatusTooManyRequests, msgTooManyLogins)
		}
	})

	dave := mfaNewUser(t, a, "dave", true, false)
	rp := virtualwebauthn.RelyingParty{ID: "localhost", Name: "Gatehouse", Origin: a.base}
	key, cred := virtualwebauthn.NewAuthenticator(), e2eWebAuthnCredential()
	t.Run("a WebAuthn ceremony started on A finishes on B", func(t *testing.T) {
		u := dave
		onA := a.browser(acctFirefox)
		onA.mustLogin(t, u.name, u.pw)
		u.generateCodes(t, onA)
		u.confirmCodes(t, on(onA, b))
		opts := onA.post(t, "/manage/account/webauthn-provision/options/", nil)
		if opts.Code != http.StatusOK {
			t.Fatalf("registration options from A: %s", opts)
		}
		o, err := virtualwebauthn.ParseAttestationOptions(opts.Body)
		if err != nil {
			t.Fatalf("registration options from A: %v\n%s", err, opts.Body)
		}
		att := virtualwebauthn.CreateAttestationResponse(rp, key, cred, *o)
		done := on(onA, b).post(t, "/manage/account/webauthn-provision/validate/", url.Values{"label": {"desk key"}, "credential": {att}})
		if done.Code != http.StatusOK || !strings.Contains(done.Body, `"redirect"`) {
			t.Fatalf("finishing on B the registration begun on A: %s", done)
		}
		if n := a.queryInt(t, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, u.id); n != 1 {
			t.Fatalf("dave has %d security keys after the ceremony, want 1", n)
		}
	})

	t.Run("a login with the security key: password on A, key challenged by B, answered on A", func(t *testing.T) {
		nb := a.browser(acctSafari)
		r := nb.login(t, dave.name, dave.pw)
		acctWantRedirect(t, r, "/account/two-factor/")
		opts := on(nb, b).post(t, "/account/webauthn-authenticate/options/", nil)
		if opts.Code != http.StatusOK {
			t.Fatalf("login options from B: %s", opts)
		}
		o, err := virtualwebauthn.ParseAssertionOptions(opts.Body)
		if err != nil {
			t.Fatalf("login options from B: %v\n%s", err, opts.Body)
		}
		cred.Counter++
		done := nb.post(t, "/account/webauthn-authenticate/validate/", url.Values{"credential": {virtualwebauthn.CreateAssertionResponse(rp, key, cred, *o)}})
		if done.Code != http.StatusOK || !strings.Contains(done.Body, `"redirect"`) {
			t.Fatalf("answering on A the login challenge B made: %s", done)
		}
		if !on(nb, b).signedIn(t) || !nb.signedIn(t) {
			t.Fatal("after the security-key login, not signed in on both instances")
		}
		if m := dave.lastLoginMethod(t); m != "webauthn" {
			t.Errorf("the login's method is %q, want webauthn", m)
		}
	})

	t.Run("a token deleted on A's page is refused by B at once", func(t *testing.T) {
		onA := a.browser(acctFirefox)
		acctWantRedirect(t, onA.login(t, dave.name, dave.pw), "/account/two-factor/")
		// The key is the second factor from a new browser.
		opts := onA.post(t, "/account/webauthn-authenticate/options/", nil)
		o, err := virtualwebauthn.ParseAssertionOptions(opts.Body)
		if err != nil {
			t.Fatalf("login options: %v\n%s", err, opts.Body)
		}
		cred.Counter++
		if done := onA.post(t, "/account/webauthn-authenticate/validate/", url.Values{"credential": {virtualwebauthn.CreateAssertionResponse(rp, key, cred, *o)}}); done.Code != http.StatusOK {
			t.Fatalf("login with the key: %s", done)
		}
		page := onA.post(t, "/manage/account/token/", url.Values{"description": {"dave's laptop"}, "scope": {"user"}})
		m := regexp.MustCompile(`<code id="new-token" class="secret token">([^<]+)</code>`).FindStringSubmatch(page.Body)
		if page.Code != http.StatusOK || m == nil {
			t.Fatalf("token made on A's page: %s", page)
		}
		tok := html.UnescapeString(m[1])
		a.secrets.add("dave's token", tok)
		b.secrets.add("dave's token", tok)
		b.mustUpload(t, tok, e2eWheelForm("daves", "1.0", e2eWheelName("daves", "1.0"), e2eWheel(t, "daves", "1.0", e2eMetadata("daves", "1.0"))))
		list := onA.get(t, "/manage/account/token/")
		id := regexp.MustCompile(`name="token_id" value="([^"]+)"`).FindStringSubmatch(list.Body)
		if id == nil {
			t.Fatalf("no delete form on A's token page:\n%s", list.Body)
		}
		r := onA.post(t, "/manage/account/token/delete/", url.Values{"token_id": {id[1]}})
		if r.Code != http.StatusSeeOther {
			t.Fatalf("deleting the token on A's page: %s", r)
		}
		got := b.upload(t, tok, e2eWheelForm("daves", "1.1", e2eWheelName("daves", "1.1"), e2eWheel(t, "daves", "1.1", e2eMetadata("daves", "1.1"))))
		if got.code != http.StatusForbidden && got.code != http.StatusUnauthorized {
			t.Fatalf("B, with the token deleted on A's page: %s, want 401 or 403", got.status)
		}
	})

	t.Run("an upload through A is served by B, twine and pip work through the balancer, a token revoked on A is refused by B", func(t *testing.T) {
		cli("user", "create", "--username", "alice", "--email", "alice@example.com", "--email-verified", "--no-password")
		a.giveSecondFactor(t, "alice")
		out := cli("token", "create", "--user", "alice", "--description", "ci")
		tok := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
		a.secrets.add("alice's token", tok)
		b.secrets.add("alice's token", tok)
		whl := e2eWheel(t, "twoinst", "1.0", e2eMetadata("twoinst", "1.0"))
		before := len(vgw.Objects(t, bucket))
		a.mustUpload(t, tok, e2eWheelForm("twoinst", "1.0", e2eWheelName("twoinst", "1.0"), whl))
		if objs := vgw.Objects(t, bucket); len(objs) != before+2 { // the wheel and its .metadata
			t.Fatalf("objects in the shared bucket after an upload through A: %q, want the wheel and its metadata", objs)
		}
		files, _ := b.simpleJSON(t, "twoinst")
		if len(files) != 1 {
			t.Fatalf("B lists %d files of the project uploaded through A, want 1", len(files))
		}
		u := files[0].URL
		if i := strings.Index(u, "/packages/"); i >= 0 {
			u = b.URL + u[i:]
		}
		resp, err := b.http().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, whl) {
			t.Fatalf("B serves the file uploaded through A: %d, %d bytes; want 200 and the %d uploaded", resp.StatusCode, len(got), len(whl))
		}
		// Through B too, while the token lives.
		b.mustUpload(t, tok, e2eWheelForm("twoinst", "1.1", e2eWheelName("twoinst", "1.1"), e2eWheel(t, "twoinst", "1.1", e2eMetadata("twoinst", "1.1"))))

		// B's page cache: the page B has served is refreshed once A takes
		// an upload, within the --cache-poll of B's change watcher
		// (200ms here): B is asked until the new version shows, for at most
		// 50 polls' worth.
		if _, versions := b.simpleJSON(t, "twoinst"); strings.Join(versions, " ") != "1.0 1.1" {
			t.Fatalf("B's page before: versions %q", versions)
		}
		a.mustUpload(t, tok, e2eWheelForm("twoinst", "1.3", e2eWheelName("twoinst", "1.3"), e2eWheel(t, "twoinst", "1.3", e2eMetadata("twoinst", "1.3"))))
		deadline := time.Now().Add(50 * 200 * time.Millisecond)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, versions := b.simpleJSON(t, "twoinst"); strings.Join(versions, " ") == "1.0 1.1 1.3" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B still serves its old page of twoinst 10s after A took 1.3")
			}
			<-tick.C
		}

		// twine and pip through the load balancer: their requests go to A
		// and B in turn.
		tools := e2eTools(t)
		fx := e2eFixtureSet(t)
		home := t.TempDir()
		dep, pkg := fx.dists["demo-dep"], fx.dists["demo-pkg"]
		e2eMustExec(t, home, e2eEnv(home), tools.twine, "upload", "--repository-url", a.base+"/legacy/", "--cert", certs.caFile,
			"-u", "__token__", "-p", tok, "--non-interactive", "--disable-progress-bar", dep.wheel, pkg.wheel, pkg.sdist)
		venv, err := e2eVenv(tools, home)
		if err != nil {
			t.Fatal(err)
		}
		out = e2eMustExec(t, home, e2eEnv(home), filepath.Join(venv, "bin", "pip"), "install", "--cert", certs.caFile, "--index-url", a.base+"/simple/", "demo-pkg")
		if !strings.Contains(out, "demo-dep-0.3") || !strings.Contains(out, "demo-pkg-1.0") {
			t.Errorf("pip install through the load balancer does not list demo-pkg and demo-dep as installed:\n%s", out)
		}
		if turn.Load() < 4 {
			t.Errorf("the load balancer passed on %d requests, want twine's and pip's on both instances", turn.Load())
		}

		cli("token", "delete", "--user", "alice", "--description", "ci")
		for _, env := range []*acctEnv{a, b} {
			r := env.upload(t, tok, e2eWheelForm("twoinst", "1.2", e2eWheelName("twoinst", "1.2"), e2eWheel(t, "twoinst", "1.2", e2eMetadata("twoinst", "1.2"))))
			if r.code != http.StatusForbidden && r.code != http.StatusUnauthorized {
				t.Fatalf("an upload with the deleted token: %s, want 401 or 403", r.status)
			}
		}
	})
}

// mailTo is every message the mailbox received for addr.
func mailTo(mb *acctMailbox, addr string) []*acctMail {
	var out []*acctMail
	for _, m := range mb.all() {
		if m.sentTo(addr) {
			out = append(out, m)
		}
	}
	return out
}

// e2eWebAuthnCredential is a new EC2 credential whose coordinates are 32
// bytes long each, as go-webauthn insists (a random point lacks that once in
// 128 tries).
func e2eWebAuthnCredential() virtualwebauthn.Credential {
	for {
		cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
		k, err := x509.ParsePKCS8PrivateKey(cred.Key.Data)
		if err != nil {
			panic(err)
		}
		pt, err := k.(*ecdsa.PrivateKey).PublicKey.Bytes()
		if err != nil {
			panic(err)
		}
		if pt[1] != 0 && pt[33] != 0 {
			return cred
		}
	}
}
