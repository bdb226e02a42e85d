package web

import (
	"errors"
	"io"
	"net/http"
	"os"
)

// burnToken is POST /_/oidc/burn-token: {"token": "pypi-…"}, a token minted
// for a trusted publisher, which stops working at once. uv sends it after
// its uploads (and warns, without failing, when an index lacks it); PyPI
// added it in 2026. The answer is 202 whatever became of the token, as on
// PyPI, so that it tells nobody whether a value was a live token; only a
// body that is not {"token": "<string>"} is refused, in the mint's shape.
func (s *Server) burnToken(w http.ResponseWriter, r *http.Request) error {
	if s.tp == nil {
		return writeJSONResponse(w, http.StatusForbidden, notEnabled)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMintBody+1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return writeMintRefusal(w, invalidPayload("the request body did not arrive in time"))
	case err != nil:
		return writeMintRefusal(w, invalidPayload("the request body could not be read"))
	case len(body) > maxMintBody:
		w.Header().Set("Connection", "close")
		return writeMintRefusal(w, invalidPayload(`the request body is larger than 64 KiB; send {"token": "<the upload token to revoke>"}`))
	}
	liftReadDeadline(w)
	raw, msg := parseTokenBody(body, "the upload token to revoke")
	if msg != "" {
		return writeMintRefusal(w, invalidPayload(msg))
	}
	burned, err := s.tokens.BurnPublisherToken(r.Context(), raw)
	if err != nil {
		return err
	}
	if burned {
		s.log.Info("trusted publishing token burned by its holder")
	}
	return writeJSONResponse(w, http.StatusAccepted, map[string]string{"message": "Accepted. If this was a live token minted for a trusted publisher, it no longer works."})
}
