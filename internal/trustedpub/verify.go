package trustedpub

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// MaxTokenLen bounds the ID token an exchange accepts. Real ones (GitHub's
// carry some thirty claims) are one or two kilobytes.
const MaxTokenLen = 16 << 10

// Error codes of a refused exchange, Warehouse's (spec §3.1), plus
// issuer-unavailable for the 503 when an issuer cannot be asked.
const (
	CodeInvalidPayload          = "invalid-payload"
	CodeNotEnabled              = "not-enabled"
	CodeInvalidToken            = "invalid-token"
	CodeInvalidPendingPublisher = "invalid-pending-publisher"
	CodeInvalidReuseToken       = "invalid-reuse-token"
	CodeInvalidPublisher        = "invalid-publisher"
	CodeIssuerUnavailable       = "issuer-unavailable"
)

// Error is a refused exchange: the code and description of the answer's
// errors list. Unavailable marks the issuer-down case, answered 503 instead
// of 422.
type Error struct {
	Code        string
	Description string
	Unavailable bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

func invalidToken(reason string) *Error {
	return refuse(CodeInvalidToken, "malformed or invalid token: %s", reason)
}

// claims is a verified token's payload.
type claims map[string]any

// str returns a claim that is a string, and whether it is one.
func (c claims) str(name string) (string, bool) {
	s, ok := c[name].(string)
	return s, ok
}

// verifiedToken is an ID token whose signature, issuer, audience and times
// hold.
type verifiedToken struct {
	issuer *issuer
	claims claims
	jti    string
	exp    time.Time
}

// verify checks an ID token (G1–G3). The unverified payload only routes the
// token to its issuer; every claim used afterwards comes from the payload
// go-oidc returns once the signature holds.
func (s *Service) verify(ctx context.Context, raw string) (*verifiedToken, *Error) {
	if len(raw) > MaxTokenLen {
		return nil, refuse(CodeInvalidPayload, "malformed JWT: the token is longer than %d bytes", MaxTokenLen)
	}
	header, payload, ok := splitJWT(raw)
	if !ok {
		return nil, refuse(CodeInvalidPayload, "malformed JWT")
	}
	iss, _ := payload["iss"].(string)
	if iss == "" {
		return nil, refuse(CodeInvalidPayload, "malformed JWT")
	}
	is, known, err := s.issuerFor(ctx, iss)
	if err != nil {
		return nil, &Error{Code: CodeIssuerUnavailable, Description: "the issuer list could not be read; try again", Unavailable: true}
	}
	if !known {
		return nil, refuse(CodeInvalidPayload, "unknown trusted publishing issuer")
	}
	if !is.enabled {
		return nil, refuse(CodeNotEnabled, "%s trusted publishing functionality not enabled", ProviderName(is.kind))
	}

	// The header: RS256 and a key id, nothing that points at keys of the
	// token's choosing. go-oidc would refuse other algorithms too; checking
	// here gives the reason.
	if alg, _ := header["alg"].(string); alg != "RS256" {
		return nil, invalidToken(fmt.Sprintf("the signing algorithm must be RS256, not %q", header["alg"]))
	}
	for _, h := range []string{"jku", "jwk", "x5u", "x5c", "crit"} {
		if _, ok := header[h]; ok {
			return nil, invalidToken(fmt.Sprintf("the %q header is not accepted: keys come only from the issuer's key set", h))
		}
	}
	kid, _ := header["kid"].(string)
	if kid == "" {
		return nil, invalidToken("the header has no key id (kid)")
	}
	key, err := s.keys.key(ctx, is.url, kid)
	var unavailable *unavailableError
	switch {
	case errors.As(err, &unavailable):
		s.log.Warn("trusted publishing issuer unavailable", "issuer", is.url, "err", err)
		return nil, &Error{Code: CodeIssuerUnavailable, Unavailable: true,
			Description: fmt.Sprintf("the issuer %s could not be reached to check the token's signature; try again in a minute", is.url)}
	case err != nil:
		return nil, invalidToken("the token is not signed with a key of the issuer")
	}

	verifier := oidc.NewVerifier(is.url, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key}}, &oidc.Config{
		// Audience and times are checked below: strict single audience and
		// Warehouse's leeway, which go-oidc does not offer.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: []string{oidc.RS256},
	})
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		if strings.Contains(err.Error(), "unmarshal claims") {
			// Signed, but a standard claim (exp, iat, nbf, aud, iss) is
			// not of its JSON type.
			return nil, invalidToken("a standard claim (exp, iat, nbf, aud) has the wrong type")
		}
		return nil, invalidToken("the signature or issuer does not match")
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, invalidToken("the claims are not a JSON object")
	}
	vt := &verifiedToken{issuer: is, claims: c}
	if e := s.checkStandardClaims(vt); e != nil {
		return nil, e
	}
	return vt, nil
}

// checkStandardClaims applies the JWT rules every provider shares.
func (s *Service) checkStandardClaims(vt *verifiedToken) *Error {
	c := vt.claims
	switch aud := c["aud"].(type) {
	case string:
		if aud != vt.issuer.audience {
			return invalidToken(fmt.Sprintf("the audience is %q; request the token for %q", aud, vt.issuer.audience))
		}
	case nil:
		return invalidToken("the token has no audience (aud)")
	default:
		// An array, even one holding ours: a token meant for several
		// parties could be replayed by any of them (strict audience).
		return invalidToken(fmt.Sprintf("the audience must be the single string %q", vt.issuer.audience))
	}
	now := s.now()
	exp, ok := numericDate(c, "exp")
	if !ok {
		return invalidToken("the token has no expiry (exp)")
	}
	iat, ok := numericDate(c, "iat")
	if !ok {
		return invalidToken("the token has no issue time (iat)")
	}
	// Warehouse's (PyJWT's) rules: expired when exp <= now - leeway; not
	// yet valid when iat or nbf > now + leeway.
	if !now.Add(-Leeway).Before(exp) {
		return invalidToken("the token has expired")
	}
	if iat.After(now.Add(Leeway)) {
		return invalidToken("the token's issue time (iat) is in the future")
	}
	if _, present := c["nbf"]; present {
		nbf, ok := numericDate(c, "nbf")
		if !ok {
			return invalidToken("the not-before time (nbf) is not a number")
		}
		if nbf.After(now.Add(Leeway)) {
			return invalidToken("the token is not valid yet (nbf)")
		}
	}
	jti, _ := c.str("jti")
	if jti == "" || len(jti) > 255 {
		return invalidToken("the token has no id (jti), so it could be replayed")
	}
	vt.jti, vt.exp = jti, exp
	return nil
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(c claims, name string) (time.Time, bool) {
	f, ok := c[name].(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// splitJWT decodes a compact JWS's header and payload without checking
// anything: enough to route it. ok is false for anything that is not three
// base64url parts with JSON objects in the first two.
func splitJWT(raw string) (header, payload map[string]any, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[2] == "" {
		return nil, nil, false
	}
	decode := func(s string) (map[string]any, bool) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, false
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		if dec.Decode(&m) != nil || m == nil || dec.More() {
			return nil, false
		}
		return m, true
	}
	if header, ok = decode(parts[0]); !ok {
		return nil, nil, false
	}
	if payload, ok = decode(parts[1]); !ok {
		return nil, nil, false
	}
	return header, payload, true
}
