package trustedpub

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// maxIssuerDocument bounds a discovery document or JWKS: real ones are a
// few kilobytes.
const maxIssuerDocument = 1 << 20

// errUnknownKey is a key id the issuer's key set does not hold (after a
// refresh, or within the minute after one).
var errUnknownKey = errors.New("the token's key id is not in the issuer's key set")

// unavailableError is an issuer that could not be asked: down, slow, or
// answering something that is not a discovery document or key set.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// keyCache holds each issuer's signing keys. Discovery
// (/.well-known/openid-configuration, via go-oidc, which checks that the
// document names the same issuer) gives the JWKS URL; the JWKS gives the
// keys. Both are fetched on first use and kept. A key id the set does not
// hold causes a refresh, at most once per keyRefreshEvery per issuer: a
// stream of tokens with made-up key ids cannot make us hammer the issuer,
// and a rotated key is picked up within a minute. Concurrent requests that
// need a refresh share one fetch. A failed fetch is not cached: the next
// exchange tries again.
type keyCache struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

type issuerKeys struct {
	jwksURL   string
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time // last successful fetch; zero: none yet
	lastErr   error     // of the last fetch, nil after a success
	inflight  chan struct{}
	// fetches counts JWKS fetches, for tests of the refresh limit.
	fetches int
}

func newKeyCache(client *http.Client, now func() time.Time) *keyCache {
	return &keyCache{client: client, now: now, issuers: map[string]*issuerKeys{}}
}

// key returns the issuer's key with this id, fetching or refreshing the
// key set as the rules above allow. Its errors are errUnknownKey or an
// *unavailableError.
func (c *keyCache) key(ctx context.Context, issuerURL, kid string) (*rsa.PublicKey, error) {
	c.mu.Lock()
	ik := c.issuers[issuerURL]
	if ik == nil {
		ik = &issuerKeys{}
		c.issuers[issuerURL] = ik
	}
	for {
		if k, ok := ik.keys[kid]; ok {
			c.mu.Unlock()
			return k, nil
		}
		if ik.inflight == nil {
			break
		}
		// Someone is fetching: wait for that fetch, then look again.
		ch := ik.inflight
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, &unavailableError{ctx.Err()}
		}
		c.mu.Lock()
		if _, ok := ik.keys[kid]; ok {
			continue
		}
		err := ik.lastErr
		c.mu.Unlock()
		if err != nil {
			return nil, &unavailableError{err}
		}
		return nil, errUnknownKey
	}
	if !ik.fetchedAt.IsZero() && c.now().Sub(ik.fetchedAt) < keyRefreshEvery {
		c.mu.Unlock()
		return nil, errUnknownKey
	}
	ch := make(chan struct{})
	ik.inflight = ch
	jwksURL := ik.jwksURL
	c.mu.Unlock()

	keys, jwksURL, err := c.fetch(ctx, issuerURL, jwksURL)

	c.mu.Lock()
	ik.inflight = nil
	ik.fetches++
	ik.lastErr = err
	if err == nil {
		ik.keys, ik.jwksURL, ik.fetchedAt = keys, jwksURL, c.now()
	}
	close(ch)
	k, ok := ik.keys[kid]
	c.mu.Unlock()
	switch {
	case err != nil:
		return nil, &unavailableError{err}
	case !ok:
		return nil, errUnknownKey
	}
	return k, nil
}

// fetchCount reports how many times the issuer's JWKS was fetched.
func (c *keyCache) fetchCount(issuerURL string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ik := c.issuers[issuerURL]; ik != nil {
		return ik.fetches
	}
	return 0
}

// fetch runs discovery (unless the JWKS URL is known) and reads the key set.
func (c *keyCache) fetch(ctx context.Context, issuerURL, jwksURL string) (map[string]*rsa.PublicKey, string, error) {
	if jwksURL == "" {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.boundedClient()), issuerURL)
		if err != nil {
			return nil, "", fmt.Errorf("discovery: %w", err)
		}
		var doc struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err := p.Claims(&doc); err != nil || doc.JWKSURL == "" {
			return nil, "", errors.New("discovery: the document has no jwks_uri")
		}
		jwksURL = doc.JWKSURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, "", fmt.Errorf("key set URL: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.boundedClient().Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("key set: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("key set: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("key set: %s answered %s", jwksURL, resp.Status)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, "", fmt.Errorf("key set from %s: %w", jwksURL, err)
	}
	return keys, jwksURL, nil
}

// parseJWKS keeps the RSA signing keys that have an id. Keys of other
// types, or for encryption, are skipped rather than failing the set: an
// issuer may publish them beside its RS256 keys.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("not a JSON key set")
	}
	keys := map[string]*rsa.PublicKey{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || k.KeyID == "" || (k.Use != "" && k.Use != "sig") || !k.Valid() {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.RS256) {
			continue
		}
		keys[k.KeyID] = pub
	}
	return keys, nil
}

// boundedClient is the HTTP client with every response body capped.
func (c *keyCache) boundedClient() *http.Client {
	cl := *c.client
	base := cl.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cl.Transport = boundedTransport{base}
	return &cl
}

type boundedTransport struct{ rt http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxIssuerDocument}
	return resp, nil
}

// cappedBody fails a read past the cap instead of truncating silently, so
// an oversized document is an error, not a parse of its first megabyte.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("document larger than %d bytes", maxIssuerDocument)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
