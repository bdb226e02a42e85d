package trustedpub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

// G1: algorithms and keys.
func TestG1AlgorithmsAndKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		key := f.gh.SigningKey()
		good := func() oidctest.Claims { return f.ghClaims() }

		// The honest token works, so each refusal below is the attack's.
		f.mustMint(t, f.gh.Sign(good()))

		// alg none, with an empty and with a junk signature.
		none := oidctest.SignWith(map[string]any{"alg": "none", "kid": key.ID}, good(), func([]byte) []byte { return []byte("x") })
		f.wantRefused(t, none, CodeInvalidToken, "RS256")

		// HS256 "signed" with the issuer's public key as the HMAC secret.
		pubDER, _ := x509.MarshalPKIXPublicKey(&key.Private.PublicKey)
		hs := oidctest.SignWith(map[string]any{"alg": "HS256", "kid": key.ID}, good(), func(in []byte) []byte {
			m := hmac.New(sha256.New, pubDER)
			m.Write(in)
			return m.Sum(nil)
		})
		f.wantRefused(t, hs, CodeInvalidToken, "RS256")

		// Other RSA algorithms are refused too.
		ps := oidctest.SignRS256(map[string]any{"alg": "RS512", "kid": key.ID}, good(), key.Private)
		f.wantRefused(t, ps, CodeInvalidToken, "RS256")

		// A token that brings its own key: jwk, jku, x5u, x5c headers.
		attacker := f.gh.UnpublishedKey()
		for _, h := range []string{"jwk", "jku", "x5u", "x5c"} {
			hdr := map[string]any{"alg": "RS256", "kid": attacker.ID}
			switch h {
			case "jwk":
				hdr[h] = oidctest.JWK(attacker)
			case "x5c":
				hdr[h] = []string{"MIIB"}
			default:
				hdr[h] = "https://evil.example/keys"
			}
			f.wantRefused(t, oidctest.SignRS256(hdr, good(), attacker.Private), CodeInvalidToken, "not accepted")
		}

		// Signed with a key the issuer never published, under a made-up
		// kid, and under the real kid.
		f.wantRefused(t, oidctest.SignRS256(map[string]any{"alg": "RS256", "kid": attacker.ID}, good(), attacker.Private), CodeInvalidToken, "not signed with a key of the issuer")
		f.wantRefused(t, oidctest.SignRS256(map[string]any{"alg": "RS256", "kid": key.ID}, good(), attacker.Private), CodeInvalidToken, "signature")
		// No kid at all.
		f.wantRefused(t, oidctest.SignRS256(map[string]any{"alg": "RS256"}, good(), key.Private), CodeInvalidToken, "key id")

		// A tampered payload under a genuine signature.
		genuine := f.gh.Sign(good())
		parts := strings.Split(genuine, ".")
		c := good()
		c["repository"] = "octo/other"
		forged := strings.Split(oidctest.SignWith(map[string]any{}, c, func([]byte) []byte { return nil }), ".")[1]
		f.wantRefused(t, parts[0]+"."+forged+"."+parts[2], CodeInvalidToken, "signature")
	})
}

// G1: an unknown kid refreshes the key set at most once a minute, and a
// rotated key is picked up by that refresh.
func TestG1UnknownKidRefreshLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		f.mustMint(t, f.gh.Sign(f.ghClaims()))
		if n := f.gh.JWKSFetches(); n != 1 {
			t.Fatalf("JWKS fetched %d times for the first token, want 1", n)
		}
		// Made-up key ids within the minute: no fetch at all.
		for i := range 5 {
			k := f.gh.UnpublishedKey()
			f.wantRefused(t, oidctest.SignRS256(map[string]any{"alg": "RS256", "kid": fmt.Sprint("made-up-", i)}, f.ghClaims(), k.Private),
				CodeInvalidToken, "not signed with a key of the issuer")
		}
		if n := f.gh.JWKSFetches(); n != 1 {
			t.Fatalf("JWKS fetched %d times, want still 1: unknown key ids must not refresh within a minute", n)
		}
		// The issuer rotates (old key gone). Within the minute the new key
		// is not known yet; a minute later one refresh finds it.
		f.gh.Rotate(false)
		f.clock.Advance(30 * time.Second)
		f.wantRefused(t, f.gh.Sign(f.ghClaims()), CodeInvalidToken, "not signed with a key of the issuer")
		if n := f.gh.JWKSFetches(); n != 1 {
			t.Fatalf("JWKS fetched %d times 30 s after the first fetch, want 1", n)
		}
		f.clock.Advance(31 * time.Second)
		f.mustMint(t, f.gh.Sign(f.ghClaims()))
		if n := f.gh.JWKSFetches(); n != 2 {
			t.Fatalf("JWKS fetched %d times after a minute, want 2", n)
		}
		// A burst of unknown kids right after: still one refresh a minute.
		for i := range 3 {
			f.wantRefused(t, oidctest.SignRS256(map[string]any{"alg": "RS256", "kid": fmt.Sprint("burst-", i)}, f.ghClaims(), f.gh.UnpublishedKey().Private),
				CodeInvalidToken, "not signed")
		}
		if n := f.gh.JWKSFetches(); n != 2 {
			t.Fatalf("JWKS fetched %d times after a burst, want 2", n)
		}
		// The old key was dropped by the issuer: tokens under it now fail.
		if n := f.tp.keys.fetchCount(f.gh.URL); n != 2 {
			t.Fatalf("cache counted %d fetches, want 2", n)
		}
	})
}

// G2: issuer and audience.
func TestG2IssuerAndAudience(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		// An issuer we do not trust at all.
		c := f.ghClaims()
		c["iss"] = "https://token.actions.evil.example"
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidPayload, "unknown trusted publishing issuer")
		// Signed by the GitHub stand-in but claiming to be the Google one:
		// routed to Google, whose keys do not verify it.
		c = f.ghClaims()
		c["iss"] = f.google.URL
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidToken, "not signed with a key of the issuer")
		// Another audience.
		c = f.ghClaims()
		c["aud"] = "pypi"
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidToken, `the audience is "pypi"`)
		// An array holding ours and another: strict single audience.
		c = f.ghClaims()
		c["aud"] = []string{testAudience, "other.example"}
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidToken, "single string")
		// Even an array holding only ours.
		c = f.ghClaims()
		c["aud"] = []string{testAudience}
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidToken, "single string")
		c = f.ghClaims()
		delete(c, "aud")
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidToken, "no audience")
		// Not a JWT, or no iss.
		f.wantRefused(t, "not.a.jwt", CodeInvalidPayload, "malformed JWT")
		f.wantRefused(t, "eyJhbGciOiJSUzI1NiJ9", CodeInvalidPayload, "malformed JWT")
		c = f.ghClaims()
		delete(c, "iss")
		f.wantRefused(t, oidctest.SignRS256(map[string]any{"alg": "RS256", "kid": f.gh.SigningKey().ID}, c, f.gh.SigningKey().Private), CodeInvalidPayload, "malformed JWT")
		f.wantRefused(t, strings.Repeat("a", MaxTokenLen+1), CodeInvalidPayload, "longer than")
	})
}

// G3: time claims at the leeway's edges, with the injected clock.
func TestG3TimeClaims(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		now := f.clock.Now().Unix()
		leeway := int64(Leeway / time.Second)
		n := 0
		with := func(mod func(c oidctest.Claims)) string {
			c := f.ghClaims()
			n++
			c["jti"] = fmt.Sprint("g3-", n)
			mod(c)
			return f.gh.Sign(c)
		}
		// exp: accepted until exp + leeway, refused from then on.
		f.mustMint(t, with(func(c oidctest.Claims) { c["exp"] = now - leeway + 1 }))
		f.wantRefused(t, with(func(c oidctest.Claims) { c["exp"] = now - leeway }), CodeInvalidToken, "expired")
		f.wantRefused(t, with(func(c oidctest.Claims) { c["exp"] = now - leeway - 1 }), CodeInvalidToken, "expired")
		// nbf and iat: accepted up to now + leeway, refused one second later.
		f.mustMint(t, with(func(c oidctest.Claims) { c["nbf"] = now + leeway }))
		f.wantRefused(t, with(func(c oidctest.Claims) { c["nbf"] = now + leeway + 1 }), CodeInvalidToken, "not valid yet")
		f.mustMint(t, with(func(c oidctest.Claims) { c["iat"] = now + leeway }))
		f.wantRefused(t, with(func(c oidctest.Claims) { c["iat"] = now + leeway + 1 }), CodeInvalidToken, "issue time")
		// Missing iat, exp, jti; non-numeric times.
		f.wantRefused(t, with(func(c oidctest.Claims) { delete(c, "iat") }), CodeInvalidToken, "no issue time")
		f.wantRefused(t, with(func(c oidctest.Claims) { delete(c, "exp") }), CodeInvalidToken, "no expiry")
		f.wantRefused(t, with(func(c oidctest.Claims) { delete(c, "jti") }), CodeInvalidToken, "no id (jti)")
		f.wantRefused(t, with(func(c oidctest.Claims) { c["exp"] = "tomorrow" }), CodeInvalidToken, "wrong type")
		f.wantRefused(t, with(func(c oidctest.Claims) { c["nbf"] = "now" }), CodeInvalidToken, "wrong type")
	})
}

// An issuer that is down, or does not answer, gets a 503-class refusal,
// and the exchange comes back within the fetch timeout: the stalled
// issuer is never released before the exchange returns.
func TestIssuerUnavailable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixtureWith(t, d, fixtureOpts{fetchTimeout: 200 * time.Millisecond})
		f.addGitHub(t)
		f.gh.SetDown(true)
		_, refusal := f.exchange(t, f.gh.Sign(f.ghClaims()))
		if refusal == nil || !refusal.Unavailable || refusal.Code != CodeIssuerUnavailable || !strings.Contains(refusal.Description, f.gh.URL) {
			t.Fatalf("issuer down: got %+v, want an issuer-unavailable refusal naming the issuer", refusal)
		}
		f.gh.SetDown(false)
		f.gh.Stall()
		done := make(chan *Error, 1)
		go func() {
			_, refusal, _ := f.tp.Exchange(context.Background(), f.gh.Sign(f.ghClaims()), testClient())
			done <- refusal
		}()
		refusal = <-done
		f.gh.Release()
		if refusal == nil || !refusal.Unavailable {
			t.Fatalf("stalled issuer: got %+v, want issuer-unavailable", refusal)
		}
		if n := f.count(t, `SELECT count(*) FROM oidc_jtis`); n != 0 {
			t.Fatalf("%d jti records after refusals, want 0", n)
		}
		// Back up: the next exchange fetches again (failures are not cached).
		f.mustMint(t, f.gh.Sign(f.ghClaims()))
	})
}

// Trusted publishing off, or one provider off.
func TestNotEnabled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixtureWith(t, d, fixtureOpts{providers: []string{KindGitLab}})
		f.wantRefused(t, f.gh.Sign(f.ghClaims()), CodeNotEnabled, "GitHub trusted publishing functionality not enabled")
		if _, err := f.tp.AddToProject(context.Background(), actor(f.alice, "alice"), f.widget, githubInput()); err == nil || !strings.Contains(err.Error(), "not enabled") {
			t.Fatalf("adding a GitHub publisher with GitHub off: %v", err)
		}
		g := newFixtureWith(t, dbtest.NewSQLite(t), fixtureOpts{disabled: true})
		g.wantRefused(t, g.gh.Sign(g.ghClaims()), CodeNotEnabled, "Trusted publishing functionality not enabled")
		if _, on := g.tp.Audience(); on {
			t.Fatal("Audience says enabled")
		}
	})
}

// Issue 9 item 9: a key set that cannot be reached (discovery answers, the
// JWKS URL it names refuses connections) is the same 503-class refusal,
// recording nothing; the failure is not cached.
func TestJWKSUnreachable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + l.Addr().String() + "/jwks"
		l.Close()
		f.gh.SetJWKSURI(closed)
		_, refusal := f.exchange(t, f.gh.Sign(f.ghClaims()))
		if refusal == nil || !refusal.Unavailable || refusal.Code != CodeIssuerUnavailable || !strings.Contains(refusal.Description, f.gh.URL) {
			t.Fatalf("unreachable key set: got %+v, want an issuer-unavailable refusal naming the issuer", refusal)
		}
		if n := f.count(t, `SELECT count(*) FROM oidc_jtis`) + f.count(t, `SELECT count(*) FROM oidc_tokens`); n != 0 {
			t.Fatalf("%d jti records and tokens after the refusal, want 0", n)
		}
		f.gh.SetJWKSURI("")
		f.mustMint(t, f.gh.Sign(f.ghClaims()))
	})
}
