package token

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
)

// TokenUsername is the basic-auth username that says "the password is an
// API token". twine, uv and pip's keyring integration all send it.
const TokenUsername = "__token__"

// ErrPasswordAuth is returned by FromRequest for basic auth with a username
// other than __token__: an attempt at username/password upload, which PyPI
// no longer supports. Callers answer with Service.PasswordAuthError.
var ErrPasswordAuth = errors.New("username/password authentication is not supported")

// FromRequest returns the raw token a request carries, in any of the forms
// Warehouse accepts:
//
//	Authorization: Basic base64("__token__:" + token)
//	Authorization: Bearer <token>
//	Authorization: Token <token>
//
// Surrounding whitespace is trimmed from the token (copy-pasted tokens often
// carry a newline). ok is false when there are no credentials, or they
// cannot be read (bad base64, an empty token); callers then treat the
// request as unauthenticated. Basic auth with another username returns
// ErrPasswordAuth.
func FromRequest(r *http.Request) (raw string, ok bool, err error) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, rest, found := strings.Cut(auth, " ")
	if !found {
		return "", false, nil
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "basic":
		data, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false, nil
		}
		user, password, found := strings.Cut(string(data), ":")
		if !found {
			return "", false, nil
		}
		if user != TokenUsername {
			return "", false, ErrPasswordAuth
		}
		raw = strings.TrimSpace(password)
	case "bearer", "token":
		raw = rest
	default:
		return "", false, nil
	}
	if raw == "" {
		return "", false, nil
	}
	return raw, true, nil
}
