package token

import (
	"context"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// BurnPublisherToken deletes a token minted for a trusted publisher, so
// that it stops working before its 15 minutes are up: uv calls
// POST /_/oidc/burn-token with the token once its uploads are done, as PyPI
// allows since 2026. Holding the value is the authority: whoever holds it
// could upload with it. burned is false for anything else (a user's token,
// a token already gone, a value that is not a token or whose signature does
// not match, so that nobody can burn a token by guessing its id); the
// endpoint answers the same either way.
func (s *Service) BurnPublisherToken(ctx context.Context, raw string) (burned bool, err error) {
	defer derrors.Wrap(&err, "token.BurnPublisherToken")
	m, err := parse(raw)
	if err != nil {
		return false, nil
	}
	id := string(m.Id())
	// The signature first: it needs no database, and a token that fails it
	// was never ours.
	if _, err := m.VerifySignature(rootKey(s.secret, id), nil); err != nil {
		return false, nil
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM oidc_tokens WHERE id = $1`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
