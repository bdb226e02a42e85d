package login

import (
	"context"
	"errors"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// Current is the rule that decides whether a loaded session still signs
// its user in: the user exists, is not disabled, and has not changed
// password since the session began (a password change or reset ends every
// session made before it). A session that outlived its reason to exist is
// ended, and Current returns ok=false. An anonymous session is fine and has
// no user.
func (s *Service) Current(ctx context.Context, sess *session.Session) (u *account.User, ok bool, err error) {
	if sess.UserID == 0 {
		return nil, true, nil
	}
	u, err = s.accounts.ByID(ctx, sess.UserID)
	if err != nil && !errors.Is(err, derrors.NotFound) {
		return nil, false, err
	}
	if err != nil || u.Disabled || !u.PasswordDate.Equal(sess.PasswordDate) {
		return nil, false, s.sessions.End(ctx, sess.IDHash)
	}
	return u, true, nil
}
