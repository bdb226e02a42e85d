package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const (
	msgResetInvalid         = "Invalid password reset link. Request a new one."
	msgResetExpired         = "This password reset link has expired. Request a new one."
	msgResetUsed            = "This password reset link has already been used. Request a new one."
	msgResetLoggedInSince   = "This password reset link is no longer valid because you have logged in since it was sent."
	msgResetPasswordChanged = "This password reset link is no longer valid because your password has been changed since it was sent."
)

// ChangePassword sets a new password for a signed-in user who knows the
// current one, on its own. The sign-in flow (internal/login) uses
// PreparePasswordChange and ApplyPasswordChange instead, to end sessions and
// forget remembered browsers in the same transaction.
func (s *Service) ChangePassword(ctx context.Context, userID int64, current, pw, confirm string, c Client) error {
	pc, err := s.PreparePasswordChange(ctx, userID, current, pw, confirm, c)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := s.ApplyPasswordChange(ctx, tx, pc, c)
		return err
	})
}

// PasswordChange is a new password that passed every check and is hashed,
// ready to be written in the caller's transaction. Hashing takes tens of
// milliseconds, so it is done before the transaction, not inside it.
type PasswordChange struct {
	userID    int64
	hash      string
	resetLink string // the raw reset token, for a reset; "" for a change
}

// PreparePasswordChange checks the current password and the new one.
func (s *Service) PreparePasswordChange(ctx context.Context, userID int64, current, pw, confirm string, c Client) (*PasswordChange, error) {
	if err := s.CheckPassword(ctx, userID, current, c); err != nil {
		return nil, err
	}
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := s.CheckNewPassword(ctx, pw, confirm, u); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return nil, s.setPasswordErr(err)
	}
	return &PasswordChange{userID: userID, hash: hash}, nil
}

// PrepareReset checks a reset link and the new password.
func (s *Service) PrepareReset(ctx context.Context, raw, pw, confirm string) (*PasswordChange, error) {
	u, err := s.CheckResetToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := s.CheckNewPassword(ctx, pw, confirm, u); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return nil, s.setPasswordErr(err)
	}
	return &PasswordChange{userID: u.ID, hash: hash, resetLink: raw}, nil
}

// ApplyPasswordChange writes a prepared change in tx: the password and its
// new date (which ends every session made before it), the audit event and
// the email; for a reset, the link is used up. It returns the user as
// changed.
func (s *Service) ApplyPasswordChange(ctx context.Context, tx *sql.Tx, pc *PasswordChange, c Client) (*User, error) {
	now := s.clock()
	tag := audit.PasswordChange
	if pc.resetLink != "" {
		// Checked again: the link may have been used or outdated while the
		// password was being hashed.
		t, _, err := resetTarget(ctx, tx, pc.resetLink, now)
		if err != nil {
			return nil, err
		}
		if err := t.consume(ctx, tx, now); err != nil {
			if errors.Is(err, errTokenRace) {
				return nil, derrors.New(derrors.Invalid, msgResetUsed)
			}
			return nil, err
		}
		if err := s.lim.passwordReset.Clear(ctx, tx, idKey(pc.userID)); err != nil {
			return nil, err
		}
		tag = audit.PasswordReset
	}
	if err := setPassword(ctx, tx, now, pc.userID, pc.hash); err != nil {
		return nil, err
	}
	u, err := s.ByIDTx(ctx, tx, pc.userID)
	if err != nil {
		return nil, err
	}
	e := selfEvent(u, tag, nil)
	if pc.resetLink != "" {
		e = audit.Event{UserID: u.ID, Tag: tag}
	}
	if err := SendNotice(ctx, tx, s.notifier, now, c, Notice{Event: e, Template: "password-change", Data: map[string]any{"Username": u.Username}}); err != nil {
		return nil, err
	}
	return u, nil
}

func setPassword(ctx context.Context, tx *sql.Tx, now time.Time, userID int64, hash string) error {
	_, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, password_date = $2 WHERE id = $3`, hash, now, userID)
	return err
}

// RequestPasswordReset emails a reset link for a username or any address of
// an account. It never reveals whether an account exists: an unknown name
// returns nil and sends nothing. A link goes only to a verified address;
// an unverified one gets a note saying so instead (spec §1.1).
//
// Administrators get links too, unlike on PyPI: on a self-hosted index
// there is no support team to recover their accounts.
func (s *Service) RequestPasswordReset(ctx context.Context, usernameOrEmail string, c Client) error {
	in := strings.TrimSpace(usernameOrEmail)
	if in == "" {
		return derrors.New(derrors.Invalid, "Enter your username or email address.")
	}
	// A per-IP cap stops one client from spraying reset emails at many
	// accounts (spec E3). It counts every request, matched or not, so its
	// answer says nothing about which accounts exist.
	if err := s.lim.resetIP.Enforce(ctx, c.IP, "Too many password reset requests from your network. Try again later.", s.onLimitErr); err != nil {
		return err
	}
	if err := s.lim.resetIP.Hit(ctx, nil, c.IP); err != nil {
		return err
	}
	var (
		u      *User
		to     string
		toOK   bool
		lookup error
	)
	if strings.Contains(in, "@") {
		var userID int64
		lookup = s.db.QueryRowContext(ctx, `SELECT user_id, email, verified FROM user_emails WHERE email_key = $1`, emailKey(in)).Scan(&userID, &to, &toOK)
		if lookup == nil {
			u, lookup = s.ByID(ctx, userID)
		}
	} else {
		u, lookup = s.ByUsername(ctx, in)
		if lookup == nil {
			to, toOK = u.PrimaryEmail, u.PrimaryVerified
		}
	}
	if errors.Is(lookup, sql.ErrNoRows) || errors.Is(lookup, derrors.NotFound) {
		return nil
	}
	if lookup != nil {
		return lookup
	}
	if err := s.lim.passwordReset.Enforce(ctx, idKey(u.ID),
		"Too many password resets have been requested for this account without completing them. Check your inbox and follow the verification links.",
		s.onLimitErr); err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		anon := audit.Event{UserID: u.ID, Additional: map[string]any{"email": to}}
		switch {
		case to == "":
			// No address to write to: nothing can be sent.
			anon.Tag, anon.Additional = audit.PasswordResetAttempt, map[string]any{"reason": "no_email"}
		case !toOK:
			anon.Tag = audit.PasswordResetAttempt
			if err := s.notify(ctx, tx, "password-reset-unverified", u.ID, to, map[string]any{"Email": to}); err != nil {
				return err
			}
		default:
			anon.Tag = audit.PasswordResetRequest
			// The link dies when the user logs in or the password changes,
			// whichever comes first (bound_json is compared on use).
			bound := map[string]string{"last_login": timeString(u.LastLogin), "password_date": timeString(u.PasswordDate)}
			raw, err := s.newToken(ctx, tx, now, purposeResetPassword, u.ID, 0, bound)
			if err != nil {
				return err
			}
			err = s.notify(ctx, tx, "password-reset", u.ID, to, map[string]any{
				"Username": u.Username, "Link": s.link(s.links.ResetPassword, raw), "ExpiresIn": tokenExpiresIn,
			})
			if err != nil {
				return err
			}
		}
		if err := record(ctx, tx, now, c, anon); err != nil {
			return err
		}
		return s.lim.passwordReset.Hit(ctx, tx, idKey(u.ID))
	})
}

// timeString is the bound_json form of a time: RFC 3339 with nanoseconds,
// "" for none.
func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// sameTime compares a bound_json time with the current one.
func sameTime(bound string, t time.Time) bool {
	if bound == "" {
		return t.IsZero()
	}
	b, err := time.Parse(time.RFC3339Nano, bound)
	return err == nil && b.Equal(t)
}

// resetTarget checks a reset token through q and returns it with its user.
func resetTarget(ctx context.Context, q querier, raw string, now time.Time) (*oneTime, *User, error) {
	t, err := loadToken(ctx, q, raw)
	if err != nil {
		return nil, nil, err
	}
	if t == nil || t.purpose != purposeResetPassword {
		return nil, nil, derrors.New(derrors.Invalid, msgResetInvalid)
	}
	if t.used {
		return nil, nil, derrors.New(derrors.Invalid, msgResetUsed)
	}
	if t.expired(now) {
		return nil, nil, derrors.New(derrors.Invalid, msgResetExpired)
	}
	u, _, err := userByID(ctx, q, t.userID)
	if errors.Is(err, errNoUser) {
		return nil, nil, derrors.New(derrors.Invalid, msgResetInvalid)
	}
	if err != nil {
		return nil, nil, err
	}
	if !sameTime(t.bound["last_login"], u.LastLogin) {
		return nil, nil, derrors.New(derrors.Invalid, msgResetLoggedInSince)
	}
	if !sameTime(t.bound["password_date"], u.PasswordDate) {
		return nil, nil, derrors.New(derrors.Invalid, msgResetPasswordChanged)
	}
	return t, u, nil
}

// CheckResetToken validates a reset link before the form is shown.
func (s *Service) CheckResetToken(ctx context.Context, raw string) (*User, error) {
	_, u, err := resetTarget(ctx, s.db, raw, s.clock())
	return u, err
}

// ResetPassword sets a new password through a reset link, which it uses
// up, on its own. It does not sign the user in, and second factors stay
// (spec E2). The sign-in flow uses PrepareReset and ApplyPasswordChange.
func (s *Service) ResetPassword(ctx context.Context, raw, pw, confirm string, c Client) (*User, error) {
	pc, err := s.PrepareReset(ctx, raw, pw, confirm)
	if err != nil {
		return nil, err
	}
	var u *User
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err = s.ApplyPasswordChange(ctx, tx, pc, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	}
	return u, nil
}
