package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"gopkg.in/macaroon.v2"
)

// Prefix starts every raw token. It tells clients and secret scanners (such
// as GitHub's, whose PyPI matcher looks for "pypi-" followed by base64url)
// what the string is; without it a token is malformed, as on PyPI.
const Prefix = "pypi-"

// maxRawLen bounds the work spent on a presented token before any database
// access. A token with a hundred projects is a few kilobytes.
const maxRawLen = 32 << 10

// rootKeyLabel separates our root-key derivation from any other use of the
// server secret (sessions, CSRF, …): an HMAC under the same secret with a
// different label can never produce a token's root key.
const rootKeyLabel = "gatehouse api token v1\x00"

// errMalformed is what parse returns for anything that is not a token we
// could have issued. Its text never contains the token.
var errMalformed = errors.New("malformed API token")

// b64 is the token's base64 alphabet. Strict refuses non-zero padding bits,
// so one macaroon has exactly one text form, as pymacaroons writes it.
var b64 = base64.RawURLEncoding.Strict()

// rootKey returns the macaroon root key of token id:
//
//	HMAC-SHA256(server secret, "gatehouse api token v1\x00" + id)
//
// Warehouse keeps a random 32-byte key per token in its database; we derive
// it instead and store nothing, so that a copy of the database (a backup, a
// dump, read-only SQL injection) can neither verify nor mint tokens. The
// cost: rotating the server secret invalidates every token.
func rootKey(secret []byte, id string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(rootKeyLabel))
	h.Write([]byte(id))
	return h.Sum(nil)
}

// mint makes a version-2 macaroon exactly as Warehouse does with
// pymacaroons.Macaroon(location, identifier=id, key, version=MACAROON_V2)
// followed by add_first_party_caveat for each caveat, and returns its raw
// token.
func mint(key []byte, id, location string, caveats []string) (string, error) {
	m, err := macaroon.New(key, []byte(id), location, macaroon.V2)
	if err != nil {
		return "", err
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return "", err
		}
	}
	return encode(m)
}

// encode serializes m the way pymacaroons' serialize() does for V2
// macaroons (binary, base64url without padding) and adds the prefix.
func encode(m *macaroon.Macaroon) (string, error) {
	data, err := m.MarshalBinary()
	if err != nil {
		return "", err
	}
	return Prefix + b64.EncodeToString(data), nil
}

// parse decodes a raw token without checking its signature or caveats. It
// accepts only what we issue: the prefix, base64url (padding tolerated, as
// pymacaroons does), exactly one version-2 macaroon with a canonical UUID
// identifier and no third-party caveats (we never issue those, and there is
// no discharge service to satisfy them).
func parse(raw string) (*macaroon.Macaroon, error) {
	if len(raw) > maxRawLen {
		return nil, errMalformed
	}
	enc, ok := strings.CutPrefix(raw, Prefix)
	enc = strings.TrimRight(enc, "=")
	if !ok || enc == "" {
		return nil, errMalformed
	}
	// The decoder skips \r and \n; refuse them (and everything else outside
	// the alphabet) so that a token has a single spelling.
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, errMalformed
		}
	}
	data, err := b64.DecodeString(enc)
	if err != nil || len(data) == 0 || data[0] != 2 {
		return nil, errMalformed
	}
	// A Slice, not a single Macaroon: Macaroon.UnmarshalBinary ignores
	// bytes after the first macaroon, Slice parses them and so lets us
	// refuse them.
	var ms macaroon.Slice
	if err := ms.UnmarshalBinary(data); err != nil || len(ms) != 1 || ms[0].Version() != macaroon.V2 {
		return nil, errMalformed
	}
	m := ms[0]
	id := string(m.Id())
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return nil, errMalformed
	}
	for _, c := range m.Caveats() {
		if len(c.VerificationId) > 0 || c.Location != "" {
			return nil, errMalformed
		}
	}
	return m, nil
}

// Attenuate adds a first-party caveat to a raw token and returns the new raw
// token, like pypitoken's Token.restrict(). Anyone holding a token can do
// this without the server: a caveat can only narrow what the token allows,
// because every caveat must hold at verification. caveat is the JSON text,
// e.g. `[1,["sampleproject"]]` or `[0,1767225600,1735689600]`; it must be
// one the server understands, since an unknown caveat makes the token
// useless rather than narrower.
func Attenuate(raw string, caveat string) (string, error) {
	if _, err := parseCaveat([]byte(caveat)); err != nil {
		return "", fmt.Errorf("token.Attenuate: invalid caveat: %w", err)
	}
	return addCaveat(raw, caveat)
}

// addCaveat appends caveat to the token without checking it.
func addCaveat(raw string, caveat string) (string, error) {
	m, err := parse(raw)
	if err != nil {
		return "", fmt.Errorf("token.Attenuate: %w", err)
	}
	if err := m.AddFirstPartyCaveat([]byte(caveat)); err != nil {
		return "", fmt.Errorf("token.Attenuate: %w", err)
	}
	return encode(m)
}
