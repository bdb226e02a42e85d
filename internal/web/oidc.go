package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

// The trusted-publishing exchange, as pypa/gh-action-pypi-publish and
// `uv publish --trusted-publishing` speak it (spec §3.1): they build the
// URLs as https://<host>/_/oidc/…, so a real deployment serves them over
// HTTPS (docs/trusted-publishing.md).

// maxMintBody bounds the mint request: {"token": "<a JWT of a few KB>"}.
const maxMintBody = 64 << 10

// notEnabled is Warehouse's answer when trusted publishing is off.
var notEnabled = map[string]string{"message": "Trusted publishing functionality not enabled"}

// oidcAudience is GET /_/oidc/audience: the audience CI jobs request their
// ID tokens for.
func (s *Server) oidcAudience(w http.ResponseWriter, r *http.Request) error {
	if s.tp == nil {
		return writeJSONResponse(w, http.StatusForbidden, notEnabled)
	}
	aud, on := s.tp.Audience()
	if !on {
		return writeJSONResponse(w, http.StatusForbidden, notEnabled)
	}
	return writeJSONResponse(w, http.StatusOK, map[string]string{"audience": aud})
}

type mintError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// writeMintRefusal answers a refused exchange in Warehouse's shape: 422,
// or 503 when the issuer could not be asked.
func writeMintRefusal(w http.ResponseWriter, e *trustedpub.Error) error {
	status := http.StatusUnprocessableEntity
	if e.Unavailable {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "60")
	}
	return writeJSONResponse(w, status, map[string]any{
		"message": "Token request failed",
		"errors":  []mintError{{Code: e.Code, Description: e.Description}},
	})
}

// mintToken is POST /_/oidc/mint-token (and the legacy
// /_/oidc/github/mint-token): {"token": "<ID token>"} in, a 15-minute
// upload token out. No Content-Type is required: uv sends the JSON without
// one. The body is bounded; the issuer's share of the work is bounded by
// trustedpub's fetch timeout.
func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) error {
	if s.tp == nil {
		return writeJSONResponse(w, http.StatusForbidden, notEnabled)
	}
	raw, bad := readTokenBody(w, r, "the OIDC ID token")
	if bad != nil {
		return writeMintRefusal(w, bad)
	}
	m, refusal, err := s.tp.Exchange(r.Context(), raw, account.Client{IP: s.clientIP(r), UserAgent: r.UserAgent()})
	if err != nil {
		return err
	}
	if refusal != nil {
		s.log.Info("trusted publishing exchange refused", "code", refusal.Code, "reason", refusal.Description)
		return writeMintRefusal(w, refusal)
	}
	if m.CreatedProject != "" {
		s.simple.invalidate(m.CreatedProject)
	}
	s.mailKick()
	s.log.Info("trusted publishing token minted", "publisher", m.Publisher, "projects", m.Projects)
	return writeJSONResponse(w, http.StatusOK, map[string]any{"success": true, "token": m.Token, "expires": m.Expires.Unix()})
}

func invalidPayload(msg string) *trustedpub.Error {
	return &trustedpub.Error{Code: trustedpub.CodeInvalidPayload, Description: msg}
}

// readTokenBody reads the bounded body {"token": "<what>"} of the OIDC
// endpoints (mint and burn), or says what is wrong with it in Warehouse's
// (pydantic's) words. A body over the bound is not read to its end: the
// connection is closed after the answer.
func readTokenBody(w http.ResponseWriter, r *http.Request, what string) (string, *trustedpub.Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMintBody+1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "", invalidPayload("the request body did not arrive in time")
	case err != nil:
		return "", invalidPayload("the request body could not be read")
	case len(body) > maxMintBody:
		w.Header().Set("Connection", "close")
		return "", invalidPayload(`the request body is larger than 64 KiB; send {"token": "<` + what + `>"}`)
	}
	liftReadDeadline(w)
	raw, msg := parseTokenBody(body, what)
	if msg != "" {
		return "", invalidPayload(msg)
	}
	return raw, nil
}

// parseTokenBody reads {"token": "<string>"}, returning what is wrong with
// it in Warehouse's (pydantic's) words otherwise; what names the token
// expected, for the message.
func parseTokenBody(body []byte, what string) (string, string) {
	var v map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil || dec.More() {
		return "", `the request body is not a JSON object; send {"token": "<` + what + `>"}`
	}
	t, ok := v["token"]
	if !ok {
		return "", "token: Field required"
	}
	var raw string
	if err := json.Unmarshal(t, &raw); err != nil {
		return "", "token: Input should be a valid string"
	}
	return raw, ""
}
