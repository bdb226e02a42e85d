package main

// Trusted publishing end to end: what pypa/gh-action-pypi-publish does in a
// GitHub Actions job, against the real server serving HTTPS on its own
// listener (--tls-cert; the action and uv build https://<host>/_/oidc/… with
// the scheme hard-coded):
// fetch the audience, get an ID token from the job's token endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL, here served by the local issuer that
// stands in for GitHub), mint, upload with Debian's twine, install with
// pip. The first exchange goes through a pending publisher and creates the
// project; later ones use the project's publisher, once with exactly the
// HTTP calls uv makes for `uv publish --trusted-publishing always`.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/attest/attesttest"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

func TestE2ETrustedPublishing(t *testing.T) {
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) { e2eTrustedPublishing(t, dialect) })
	}
}

// tpTLS is a certificate authority the test makes, and a certificate it
// signed for localhost and 127.0.0.1.
type tpTLS struct {
	caFile string
	pool   *x509.CertPool
	// certFile and keyFile hold the certificate chain and its key as PEM,
	// for Gatehouse's --tls-cert and --tls-key.
	certFile, keyFile string
}

func tpNewTLS(t *testing.T) tpTLS {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gatehouse test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tpTLS{caFile: caFile, pool: pool, certFile: certFile, keyFile: keyFile}
}

// tpExchangeScript makes the action's HTTP calls with Python's requests,
// as oidc-exchange.py does: the audience from https://<domain>/_/oidc/audience,
// the ID token from ACTIONS_ID_TOKEN_REQUEST_URL with ?audience= and a
// bearer token (the `id` package's GitHub detector), then a JSON POST to
// mint-token. It prints the ID token and the minted token, or the error
// body and exits 2.
const tpExchangeScript = `
import json, os, sys
import requests

domain = sys.argv[1]
resp = requests.get(f"https://{domain}/_/oidc/audience", timeout=5)
resp.raise_for_status()
audience = resp.json()["audience"]

resp = requests.get(
    os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"],
    params={"audience": audience},
    headers={"Authorization": f"bearer {os.environ['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
    timeout=30,
)
resp.raise_for_status()
oidc_token = resp.json()["value"]

resp = requests.post(f"https://{domain}/_/oidc/mint-token", json={"token": oidc_token}, timeout=5)
body = resp.json()
if not resp.ok:
    print(json.dumps(body))
    sys.exit(2)
print(oidc_token)
print(body["token"])
`

func e2eTrustedPublishing(t *testing.T, dialect string) {
	tools := e2eTools(t)
	certs := tpNewTLS(t)

	issuer := oidctest.New(t)
	// A virtual Sigstore signs the attestations; the server trusts it.
	sigstore, err := attesttest.New()
	if err != nil {
		t.Fatal(err)
	}
	sigstoreRoot, err := sigstore.WriteTrustedRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ghAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/users/octo" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"login": "octo", "id": 1001, "type": "Organization"}`)
	}))
	t.Cleanup(ghAPI.Close)

	// Gatehouse serves HTTPS itself (--tls-cert), as a deployment
	// without a proxy does: the exchange runs against what users run.
	env := acctStart(t, dialect, acctOpts{tlsCert: certs.certFile, tlsKey: certs.keyFile, tlsPool: certs.pool,
		extra: []string{"--oidc-github-issuer", issuer.URL, "--github-api-url", ghAPI.URL, "--oidc-fetch-timeout", "2s",
			"--sigstore-trusted-root", sigstoreRoot},
		allowWarn: []string{"trusted publishing issuer unavailable"}})
	public := env.base
	domain := strings.TrimPrefix(public, "https://")
	if !strings.HasPrefix(public, "https://localhost:") {
		t.Fatalf("the server's base URL is %s, want https://localhost:PORT", public)
	}
	https := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.pool}, Proxy: nil}}

	// The audience, as the action reads it.
	var aud struct{ Audience string }
	tpGetJSON(t, https, public+"/_/oidc/audience", &aud)
	if aud.Audience != domain {
		t.Fatalf("audience %q, want the base URL's host %q", aud.Audience, domain)
	}

	// Alice, with a verified address and an authentication app, registers
	// a pending publisher for the project her CI job will create.
	alice := env.browser(acctFirefox)
	alice.mustRegisterVerified(t, "alice", "correct horse battery staple 7")
	alice.enrolTOTP(t)
	form := url.Values{"provider": {"github"}, "project_name": {"tp-demo"}, "owner": {"octo"}, "repository": {"widget"},
		"workflow": {"release.txt"}, "environment": {"pypi"}}
	r := alice.post(t, "/manage/account/publishing/", form)
	acctWant(t, r, http.StatusBadRequest, "Workflow: enter the workflow")
	if n := env.queryInt(t, `SELECT count(*) FROM pending_publishers`); n != 0 {
		t.Fatalf("a refused form stored %d pending publishers", n)
	}
	form.Set("workflow", "release.yml")
	r = alice.post(t, "/manage/account/publishing/", form)
	acctWantRedirect(t, r, "/manage/account/publishing/")
	acctWant(t, alice.follow(t, r), http.StatusOK, "Pending trusted publisher added for tp-demo", "GitHub: octo/widget, workflow release.yml, environment pypi")

	// The job's token endpoint: GitHub's claims for octo/widget's
	// release.yml in the pypi environment, for the audience asked.
	var lastJWT string
	requestURL := issuer.ActionsEndpoint("actions-request-token", func(audience string) string {
		c := oidctest.GitHub(audience, "octo/widget", "1001", "release.yml", time.Now())
		c["environment"] = "pypi"
		lastJWT = issuer.Sign(c)
		return lastJWT
	})
	freshJWT := func() string {
		c := oidctest.GitHub(domain, "octo/widget", "1001", "release.yml", time.Now())
		c["environment"] = "pypi"
		return issuer.Sign(c)
	}

	// An issuer that is down: a 503 with the error shape and a message.
	issuer.SetDown(true)
	code, refusal := tpMint(t, https, public+"/_/oidc/mint-token", `{"token": "`+freshJWT()+`"}`, "application/json")
	if code != http.StatusServiceUnavailable || refusal.code() != "issuer-unavailable" || !strings.Contains(refusal.description(), issuer.URL) {
		t.Fatalf("issuer down: %d %+v, want 503 issuer-unavailable naming the issuer", code, refusal)
	}
	issuer.SetDown(false)
	// A key set that cannot be reached (discovery names a closed port), and
	// an issuer that accepts connections and never answers: the same 503,
	// within the fetch timeout. The stalled issuer is released only after
	// the answer has come, so the answer cannot have waited for it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer.SetJWKSURI("http://" + l.Addr().String() + "/jwks")
	l.Close()
	code, refusal = tpMint(t, https, public+"/_/oidc/mint-token", `{"token": "`+freshJWT()+`"}`, "application/json")
	if code != http.StatusServiceUnavailable || refusal.code() != "issuer-unavailable" {
		t.Fatalf("key set unreachable: %d %+v, want 503 issuer-unavailable", code, refusal)
	}
	issuer.SetJWKSURI("")
	issuer.Stall()
	type answer struct {
		status int
		body   []byte
		err    error
	}
	stalled := make(chan answer, 1)
	stalledJWT := freshJWT()
	go func() { // no t.Fatal here: this is not the test's goroutine
		resp, err := https.Post(public+"/_/oidc/mint-token", "application/json", strings.NewReader(`{"token": "`+stalledJWT+`"}`))
		if err != nil {
			stalled <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		stalled <- answer{status: resp.StatusCode, body: b, err: err}
	}()
	a := <-stalled
	issuer.Release()
	if a.err != nil || a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), `"code":"issuer-unavailable"`) {
		t.Fatalf("stalled issuer: %d %s %v, want 503 issuer-unavailable", a.status, a.body, a.err)
	}

	// Bad requests: 422 with Warehouse's shape, nothing minted.
	for _, c := range []struct{ body, ctype, wantCode, wantDesc string }{
		{"not json", "application/json", "invalid-payload", "not a JSON object"},
		{`{"token": 5}`, "application/json", "invalid-payload", "token: Input should be a valid string"},
		{`{}`, "", "invalid-payload", "token: Field required"},
		{`{"token": "abc.def"}`, "application/json", "invalid-payload", "malformed JWT"},
		{`{"token": "` + strings.Repeat("A", 1<<20) + `"}`, "application/json", "invalid-payload", "larger than 64 KiB"},
	} {
		code, refusal := tpMint(t, https, public+"/_/oidc/mint-token", c.body, c.ctype)
		if code != http.StatusUnprocessableEntity || refusal.Message != "Token request failed" || refusal.code() != c.wantCode || !strings.Contains(refusal.description(), c.wantDesc) {
			t.Errorf("mint %.40q: %d %+v, want 422 %s %q", c.body, code, refusal, c.wantCode, c.wantDesc)
		}
	}
	if n := env.queryInt(t, `SELECT count(*) FROM oidc_tokens`) + env.queryInt(t, `SELECT count(*) FROM oidc_jtis`) + env.queryInt(t, `SELECT count(*) FROM projects`); n != 0 {
		t.Fatalf("bad requests and an unavailable issuer left %d tokens, jti records and projects", n)
	}

	// The action's exchange, then twine. The pending publisher creates
	// tp-demo, owned by alice.
	work := t.TempDir()
	script := filepath.Join(work, "oidc_exchange.py")
	if err := os.WriteFile(script, []byte(tpExchangeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	jobEnv := e2eEnv(work, "ACTIONS_ID_TOKEN_REQUEST_URL="+requestURL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN=actions-request-token",
		"REQUESTS_CA_BUNDLE="+certs.caFile, "GITHUB_ACTIONS=true")
	out := e2eMustExec(t, work, jobEnv, tools.python, script, domain)
	lines := strings.Fields(out)
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "pypi-") {
		t.Fatalf("exchange printed %q, want the ID token and a pypi- token", out)
	}
	idToken, minted := lines[0], lines[1]
	env.secrets.add("minted upload token", minted)

	dist := filepath.Join(work, "dist")
	os.MkdirAll(dist, 0o755)
	whl := filepath.Join(dist, e2eWheelName("tp-demo", "1.0"))
	if err := os.WriteFile(whl, e2eWheel(t, "tp-demo", "1.0", e2eMetadata("tp-demo", "1.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	twineEnv := append(jobEnv, "TWINE_USERNAME=__token__", "TWINE_PASSWORD="+minted)
	out = e2eMustExec(t, work, twineEnv, tools.twine, "upload", "--non-interactive", "--repository-url", public+"/legacy/", whl)
	if !strings.Contains(out, "tp_demo-1.0-py3-none-any.whl") {
		t.Errorf("twine output:\n%s", out)
	}
	if role := env.queryString(t, `SELECT r.role FROM roles r JOIN projects p ON p.id = r.project_id JOIN users u ON u.id = r.user_id
		WHERE p.normalized_name = 'tp-demo' AND u.username = 'alice'`); role != "Owner" {
		t.Fatalf("alice's role on tp-demo: %q", role)
	}
	env.mail.take(t, "alice@example.com", "Trusted publisher created project tp-demo")
	add := env.queryString(t, `SELECT e.additional FROM events e JOIN projects p ON p.id = e.project_id
		WHERE p.normalized_name = 'tp-demo' AND e.tag = 'account:short_lived_api_token:added'`)
	for _, want := range []string{`"repository":"octo/widget"`, `"job_workflow_ref":"octo/widget/.github/workflows/release.yml@refs/heads/main"`, `"ref":"refs/heads/main"`, `"sha":"0123456789abcdef`} {
		if !strings.Contains(add, want) {
			t.Errorf("the mint's audit event %s lacks %s", add, want)
		}
	}
	if by := env.queryString(t, `SELECT submitted_by FROM journal WHERE action LIKE 'add py3 file %'`); !strings.Contains(by, "GitHub: octo/widget") {
		t.Errorf("the upload's journal entry names %q, want the publisher", by)
	}

	// Issue 10: the same job uploads the next version with attestations.
	e2eAttestedUpload(t, https, public, minted, issuer.URL, sigstore)

	// pip installs it over HTTPS.
	venv, err := e2eVenv(tools, work)
	if err != nil {
		t.Fatal(err)
	}
	out = e2eMustExec(t, work, e2eEnv(work), filepath.Join(venv, "bin", "pip"), "install", "--cert", certs.caFile, "--index-url", public+"/simple/", "tp-demo==1.0")
	if !strings.Contains(out, "Successfully installed tp-demo-1.0") {
		t.Errorf("pip output:\n%s", out)
	}

	// The ID token again: refused, already used.
	code, refusal = tpMint(t, https, public+"/_/oidc/mint-token", `{"token": "`+idToken+`"}`, "application/json")
	if code != http.StatusUnprocessableEntity || refusal.code() != "invalid-reuse-token" {
		t.Fatalf("replayed ID token: %d %+v, want 422 invalid-reuse-token", code, refusal)
	}

	// uv publish --trusted-publishing always: the same three requests,
	// made as uv makes them (crates/uv-publish/src/trusted_publishing/pypi.rs:
	// https://<authority>/_/oidc/…, the mint body as JSON), the upload with
	// __token__ basic auth, then the token burned at /_/oidc/burn-token.
	var uvAud struct{ Audience string }
	tpGetJSON(t, https, "https://"+domain+"/_/oidc/audience", &uvAud)
	u, _ := url.Parse(requestURL)
	q := u.Query()
	q.Add("audience", uvAud.Audience)
	u.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
	req.Header.Set("Authorization", "bearer actions-request-token")
	resp, err := https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var oidcTok struct{ Value string }
	json.NewDecoder(resp.Body).Decode(&oidcTok)
	resp.Body.Close()
	code, mintResp := tpMint(t, https, "https://"+domain+"/_/oidc/mint-token", `{"token":"`+oidcTok.Value+`"}`, "application/json")
	if code != http.StatusOK || !mintResp.Success || !strings.HasPrefix(mintResp.Token, "pypi-") || mintResp.Expires-time.Now().Unix() > 900 {
		t.Fatalf("uv's mint: %d %+v", code, mintResp)
	}
	env.secrets.add("uv's minted token", mintResp.Token)
	body, ctype, _ := e2eWheelForm("tp-demo", "1.1", e2eWheelName("tp-demo", "1.1"), e2eWheel(t, "tp-demo", "1.1", e2eMetadata("tp-demo", "1.1"))).encode()
	req, _ = http.NewRequest(http.MethodPost, public+"/legacy/", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.SetBasicAuth("__token__", mintResp.Token)
	resp, err = https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload with uv's minted token: %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodPost, "https://"+domain+"/_/oidc/burn-token", strings.NewReader(`{"token":"`+mintResp.Token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("uv's burn-token: %s, want 202", resp.Status)
	}
	burned := env.upload(t, mintResp.Token, e2eWheelForm("tp-demo", "1.1.1", e2eWheelName("tp-demo", "1.1.1"), e2eWheel(t, "tp-demo", "1.1.1", e2eMetadata("tp-demo", "1.1.1"))))
	if burned.code != http.StatusForbidden {
		t.Fatalf("upload with the burned token: %d %q, want 403", burned.code, burned.status)
	}

	// The legacy alias mints too; older uv sent the body without a
	// Content-Type, which is not needed.
	code, mintResp = tpMint(t, https, public+"/_/oidc/github/mint-token", `{"token": "`+freshJWT()+`"}`, "")
	if code != http.StatusOK || !mintResp.Success {
		t.Fatalf("legacy alias: %d %+v", code, mintResp)
	}
	env.secrets.add("alias minted token", mintResp.Token)

	// Environment hardening: a second publisher, with no environment, used
	// by a job that runs in one. Alice gets one email, follows its link and
	// limits the publisher to that environment; a job outside it is then
	// refused.
	r = alice.post(t, "/manage/project/tp-demo/settings/publishing/", url.Values{"provider": {"github"}, "owner": {"octo"},
		"repository": {"widget"}, "workflow": {"nightly.yml"}})
	acctWantRedirect(t, r, "/manage/project/tp-demo/settings/publishing/")
	env.mail.take(t, "alice@example.com", "Trusted publisher added to tp-demo")
	nightly := func(environment string) string {
		c := oidctest.GitHub(domain, "octo/widget", "1001", "nightly.yml", time.Now())
		if environment != "" {
			c["environment"] = environment
		}
		return issuer.Sign(c)
	}
	for range 2 {
		code, mintResp = tpMint(t, https, public+"/_/oidc/mint-token", `{"token": "`+nightly("release")+`"}`, "application/json")
		if code != http.StatusOK {
			t.Fatalf("nightly mint: %d %+v", code, mintResp)
		}
		env.secrets.add("nightly minted token", mintResp.Token)
	}
	hint := env.mail.take(t, "alice@example.com", "Trusted Publisher for project tp-demo can be made more secure")
	var constrain *url.URL
	for _, l := range hint.links() {
		if u, err := url.Parse(l); err == nil && u.Query().Get("constrain_publisher_id") != "" {
			constrain = u
		}
	}
	if constrain == nil || constrain.Query().Get("constrain_environment") != "release" {
		t.Fatalf("the hardening email has no link to limit the publisher to release:\n%s", hint.Text)
	}
	acctWant(t, alice.get(t, constrain.RequestURI()), http.StatusOK, "Limit a publisher to an environment", "GitHub: octo/widget, workflow nightly.yml")
	r = alice.post(t, "/manage/project/tp-demo/settings/publishing/constrain/",
		url.Values{"publisher_id": {constrain.Query().Get("constrain_publisher_id")}, "environment": {"release"}})
	acctWantRedirect(t, r, "/manage/project/tp-demo/settings/publishing/")
	acctWant(t, alice.follow(t, r), http.StatusOK, "GitHub: octo/widget, workflow nightly.yml, environment release")
	env.mail.take(t, "alice@example.com", "Trusted publisher removed from tp-demo")
	code, refusal = tpMint(t, https, public+"/_/oidc/mint-token", `{"token": "`+nightly("")+`"}`, "application/json")
	if code != http.StatusUnprocessableEntity || refusal.code() != "invalid-publisher" {
		t.Fatalf("a job outside the environment after the change: %d %+v, want 422 invalid-publisher", code, refusal)
	}
	env.mail.take(t, "alice@example.com", "Trusted publisher added to tp-demo") // the limited one
	if n := env.queryInt(t, `SELECT count(*) FROM outbox WHERE template = 'environment-ignored-in-trusted-publisher'`); n != 1 {
		t.Errorf("%d hardening emails queued for two jobs, want 1", n)
	}

	// A long-lived API token uploading to a project with a publisher: the
	// owners are told.
	apiToken := env.token(t, "alice", "laptop")
	env.mustUpload(t, apiToken, e2eWheelForm("tp-demo", "1.1.2", e2eWheelName("tp-demo", "1.1.2"), e2eWheel(t, "tp-demo", "1.1.2", e2eMetadata("tp-demo", "1.1.2"))))
	env.mail.take(t, "alice@example.com", "API token used to upload to project tp-demo despite Trusted Publishing enabled")

	// Trusted publishing only: alice turns it on; her long-lived API token
	// is then refused with a message naming the publisher.
	page := alice.get(t, "/manage/project/tp-demo/settings/publishing/")
	acctWant(t, page, http.StatusOK, "GitHub: octo/widget, workflow release.yml, environment pypi", "Turn on: refuse API tokens")
	r = alice.post(t, "/manage/project/tp-demo/settings/publishing/only/", url.Values{"only": {"on"}})
	acctWantRedirect(t, r, "/manage/project/tp-demo/settings/publishing/")
	acctWant(t, alice.follow(t, r), http.StatusOK, "Trusted publishing only is on")
	reply := env.upload(t, apiToken, e2eWheelForm("tp-demo", "1.2", e2eWheelName("tp-demo", "1.2"), e2eWheel(t, "tp-demo", "1.2", e2eMetadata("tp-demo", "1.2"))))
	if reply.code != http.StatusForbidden || !strings.Contains(reply.status, "accepts uploads only from its trusted publishers") || !strings.Contains(reply.status, "GitHub: octo/widget") {
		t.Fatalf("API token upload with trusted publishing only: %q", reply.status)
	}
	// The publisher still can.
	code, mintResp = tpMint(t, https, public+"/_/oidc/mint-token", `{"token": "`+freshJWT()+`"}`, "application/json")
	if code != http.StatusOK {
		t.Fatalf("mint: %d %+v", code, mintResp)
	}
	env.secrets.add("third minted token", mintResp.Token)
	env.mustUpload(t, mintResp.Token, e2eWheelForm("tp-demo", "1.2", e2eWheelName("tp-demo", "1.2"), e2eWheel(t, "tp-demo", "1.2", e2eMetadata("tp-demo", "1.2"))))

	acctNoSecretsLeaked(t, env)
}

type tpMintReply struct {
	Success bool   `json:"success"`
	Token   string `json:"token"`
	Expires int64  `json:"expires"`
	Message string `json:"message"`
	Errors  []struct {
		Code        string `json:"code"`
		Description string `json:"description"`
	} `json:"errors"`
}

func (r tpMintReply) code() string {
	if len(r.Errors) != 1 {
		return fmt.Sprintf("(%d errors)", len(r.Errors))
	}
	return r.Errors[0].Code
}

func (r tpMintReply) description() string {
	if len(r.Errors) != 1 {
		return ""
	}
	return r.Errors[0].Description
}

// tpMint posts a mint request; ctype "" sends none, as uv does.
func tpMint(t *testing.T, c *http.Client, u, body, ctype string) (int, tpMintReply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var r tpMintReply
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("POST %s: %s, not JSON: %q", u, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("POST %s: Content-Type %q", u, ct)
	}
	return resp.StatusCode, r
}

func tpGetJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
