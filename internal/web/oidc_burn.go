package web

import "net/http"

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
	raw, bad := readTokenBody(w, r, "the upload token to revoke")
	if bad != nil {
		return writeMintRefusal(w, bad)
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
