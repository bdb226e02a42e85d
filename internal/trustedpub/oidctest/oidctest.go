// Package oidctest is a local OpenID Connect issuer for tests: a discovery
// document, a JWKS with RSA keys that can be rotated, and RS256 ID tokens
// with whatever claims a test needs. It stands in for GitHub Actions,
// GitLab CI and Google in the trusted-publishing tests, and can play an
// issuer that is down or does not answer.
//
// It also serves a GitHub Actions ID-token endpoint (what
// ACTIONS_ID_TOKEN_REQUEST_URL points at), so that a test can fetch a
// token the way pypa/gh-action-pypi-publish and uv do.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Key is one signing key.
type Key struct {
	ID      string
	Private *rsa.PrivateKey
}

// Issuer is a running test issuer.
type Issuer struct {
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	published []*Key // in the JWKS
	signing   *Key
	down      bool
	stalled   chan struct{} // non-nil: requests wait for it to close
	jwksURI   string        // "": its own /jwks
	jwksHits  int
	discHits  int
	nextKey   int
	requestTk string // the bearer token the Actions endpoint wants
	// actionsMint makes the Actions endpoint's token for an audience.
	actionsMint func(audience string) string
}

// New starts an issuer with one signing key, closed when t ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /jwks", is.jwks)
	mux.HandleFunc("GET /actions/token", is.actionsToken)
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	t.Cleanup(func() {
		is.Release()
		is.srv.Close()
	})
	is.Rotate(false)
	return is
}

func (is *Issuer) newKey() *Key {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	is.nextKey++
	// Unique across issuers, so that a key id never names another
	// issuer's key by accident.
	var tag [4]byte
	rand.Read(tag[:])
	return &Key{ID: fmt.Sprintf("%x-key-%d", tag, is.nextKey), Private: k}
}

// Rotate makes a new signing key and publishes it. With keepOld the
// previous keys stay in the JWKS (an issuer's usual overlap); without, the
// JWKS holds only the new key.
func (is *Issuer) Rotate(keepOld bool) *Key {
	k := is.newKey()
	is.mu.Lock()
	defer is.mu.Unlock()
	if !keepOld {
		is.published = nil
	}
	is.published = append(is.published, k)
	is.signing = k
	return k
}

// UnpublishedKey returns a fresh key that is not in the JWKS.
func (is *Issuer) UnpublishedKey() *Key {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.newKey()
}

// SigningKey is the key Sign uses.
func (is *Issuer) SigningKey() *Key {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.signing
}

// SetDown makes the discovery and JWKS endpoints answer 503.
func (is *Issuer) SetDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.down = down
}

// SetJWKSURI makes the discovery document name another key set URL (""
// restores the issuer's own): a key set that cannot be reached while
// discovery works.
func (is *Issuer) SetJWKSURI(u string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwksURI = u
}

// Stall makes every request wait until Release (or the end of the test):
// an issuer that accepts connections and never answers.
func (is *Issuer) Stall() {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.stalled == nil {
		is.stalled = make(chan struct{})
	}
}

// Release ends a Stall.
func (is *Issuer) Release() {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.stalled != nil {
		close(is.stalled)
		is.stalled = nil
	}
}

// JWKSFetches is how many times the JWKS was requested.
func (is *Issuer) JWKSFetches() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.jwksHits
}

// gate applies Stall and SetDown; it reports whether to go on.
func (is *Issuer) gate(w http.ResponseWriter, r *http.Request) bool {
	is.mu.Lock()
	stalled, down := is.stalled, is.down
	is.mu.Unlock()
	if stalled != nil {
		select {
		case <-stalled:
		case <-r.Context().Done():
			return false
		}
	}
	if down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return false
	}
	return true
}

func (is *Issuer) discovery(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	is.discHits++
	jwksURI := is.jwksURI
	is.mu.Unlock()
	if !is.gate(w, r) {
		return
	}
	if jwksURI == "" {
		jwksURI = is.URL + "/jwks"
	}
	writeJSON(w, map[string]any{
		"issuer":                                is.URL,
		"jwks_uri":                              jwksURI,
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"id_token"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "repository"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	is.jwksHits++
	keys := append([]*Key(nil), is.published...)
	is.mu.Unlock()
	if !is.gate(w, r) {
		return
	}
	var out []map[string]any
	for _, k := range keys {
		out = append(out, JWK(k))
	}
	// A key the server must skip: not RSA.
	out = append(out, map[string]any{"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"})
	writeJSON(w, map[string]any{"keys": out})
}

// JWK is a key's public half as a JWK.
func JWK(k *Key) map[string]any {
	pub := k.Private.PublicKey
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.ID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Sign returns an RS256 ID token with the claims, signed with the current
// key and naming it in kid. iss is filled in if absent.
func (is *Issuer) Sign(claims map[string]any) string {
	k := is.SigningKey()
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = is.URL
	}
	return SignRS256(map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.ID}, claims, k.Private)
}

// SignRS256 signs header and claims with key, whatever the header says.
func SignRS256(header, claims map[string]any, key *rsa.PrivateKey) string {
	return SignWith(header, claims, func(input []byte) []byte {
		sum := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	})
}

// SignWith builds a compact JWS with the signature sign returns, for
// forged tokens (alg none, HS256 with the public key, …).
func SignWith(header, claims map[string]any, sign func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	return input + "." + b64(sign([]byte(input)))
}

// Claims is a set of claims for one token.
type Claims map[string]any

// GitHub returns the claims GitHub Actions gives a job in repository
// (owner/name) running workflow (a file in .github/workflows) at refs/heads/main,
// for audience aud at time now.
func GitHub(aud, repository, ownerID, workflow string, now time.Time) Claims {
	owner, _, _ := strings.Cut(repository, "/")
	ref := "refs/heads/main"
	wref := repository + "/.github/workflows/" + workflow + "@" + ref
	return Claims{
		"aud": aud, "sub": "repo:" + repository + ":ref:" + ref,
		"jti": newJTI(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"repository": repository, "repository_owner": owner, "repository_owner_id": ownerID,
		"repository_id": "4242", "repository_visibility": "public",
		"workflow": "Release", "workflow_ref": wref, "job_workflow_ref": wref,
		"workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"ref":          ref, "ref_type": "branch", "sha": "0123456789abcdef0123456789abcdef01234567",
		"event_name": "push", "actor": owner, "actor_id": ownerID, "run_id": "1", "run_number": "1", "run_attempt": "1",
		"runner_environment": "github-hosted",
	}
}

// GitLab returns GitLab CI's claims for project path ns/project running
// file (the CI config path) on main, from issuer host.
func GitLab(aud, host, projectPath, file string, now time.Time) Claims {
	ns, _, _ := cutLast(projectPath, "/")
	return Claims{
		"aud": aud, "sub": "project_path:" + projectPath + ":ref_type:branch:ref:main",
		"jti": newJTI(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"namespace_path": ns, "project_path": projectPath, "project_id": "77", "namespace_id": "7",
		"ref": "main", "ref_type": "branch", "ref_path": "refs/heads/main",
		"ci_config_ref_uri": host + "/" + projectPath + "//" + file + "@refs/heads/main",
		"ci_config_sha":     "89abcdef0123456789abcdef0123456789abcdef",
		"sha":               "89abcdef0123456789abcdef0123456789abcdef", "pipeline_id": "9", "pipeline_source": "push",
	}
}

// newJTI is a fresh token id: every token a test makes is distinct unless
// the test reuses one on purpose.
func newJTI() string {
	var b [12]byte
	rand.Read(b[:])
	return "jti-" + b64(b[:])
}

func cutLast(s, sep string) (string, string, bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// Google returns a Google service account's claims.
func Google(aud, email, sub string, now time.Time) Claims {
	return Claims{
		"aud": aud, "sub": sub, "email": email, "email_verified": true, "azp": sub,
		"jti": newJTI(),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// ActionsEndpoint makes the issuer serve GitHub's ID-token request
// endpoint: GET <URL>/actions/token?api-version=2.0&audience=<aud> with
// "Authorization: bearer <requestToken>" answers {"value": <token>}, the
// token made by mint for the audience asked. It returns the URL to put in
// ACTIONS_ID_TOKEN_REQUEST_URL (with its query, to which clients append
// &audience=).
func (is *Issuer) ActionsEndpoint(requestToken string, mint func(audience string) string) string {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.requestTk = requestToken
	is.actionsMint = mint
	return is.URL + "/actions/token?api-version=2.0"
}

func (is *Issuer) actionsToken(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	want, mint := is.requestTk, is.actionsMint
	is.mu.Unlock()
	if mint == nil || want == "" || r.Header.Get("Authorization") != "bearer "+want && r.Header.Get("Authorization") != "Bearer "+want {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" || r.URL.Query().Get("api-version") == "" {
		http.Error(w, `{"message":"audience and api-version are required"}`, http.StatusBadRequest)
		return
	}
	writeJSON(w, map[string]any{"count": 1, "value": mint(aud)})
}
