package login

import (
	"context"
	"database/sql"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// ChangePassword sets a new password for the signed-in user of b, who
// knows the current one. In one transaction: the password and its email,
// every other session ended, every remembered browser forgotten ("revoked on
// password or 2FA change"), and this browser's session replaced by a fresh
// one at the same assurance level. The Result carries the new cookie.
func (s *Service) ChangePassword(ctx context.Context, b Browser, current, pw, confirm string) (*Result, error) {
	cur := b.Session
	pc, err := s.accounts.PreparePasswordChange(ctx, cur.UserID, current, pw, confirm, b.Client)
	if err != nil {
		return nil, err
	}
	res := &Result{Outcome: SignedIn}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := s.accounts.ApplyPasswordChange(ctx, tx, pc, b.Client)
		if err != nil {
			return err
		}
		if err := s.mfa.ForgetRememberedDevices(ctx, tx, u.ID); err != nil {
			return err
		}
		res.User = u
		res.Session = &session.Session{UserID: u.ID, Level: cur.Level, PasswordDate: u.PasswordDate, ReauthAt: s.now().UTC(),
			IP: b.Client.IP, UserAgent: b.Client.UserAgent}
		if res.Cookie, err = s.sessions.Rotate(ctx, tx, cur, res.Session); err != nil {
			return err
		}
		_, err = s.sessions.EndAllForUser(ctx, tx, u.ID, res.Session.IDHash)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ResetPassword sets a new password through an emailed reset link, which it
// uses up. In one transaction: the password and its email, every session of
// the user ended, every remembered browser forgotten. It does not sign
// anyone in, and second factors stay, so the next login still asks for one
// (spec E2).
func (s *Service) ResetPassword(ctx context.Context, b Browser, token, pw, confirm string) (*account.User, error) {
	pc, err := s.accounts.PrepareReset(ctx, token, pw, confirm)
	if err != nil {
		return nil, err
	}
	var u *account.User
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if u, err = s.accounts.ApplyPasswordChange(ctx, tx, pc, b.Client); err != nil {
			return err
		}
		if _, err := s.sessions.EndAllForUser(ctx, tx, u.ID, ""); err != nil {
			return err
		}
		return s.mfa.ForgetRememberedDevices(ctx, tx, u.ID)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
