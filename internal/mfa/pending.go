package mfa

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// New-browser confirmation (spec §1.3 "Unrecognized-login email
// confirmation", B8, product.md). A password plus a TOTP or recovery code
// can be phished in real time; a WebAuthn assertion cannot (it is bound to
// the origin). So a login with a phishable method from a browser the
// account does not know is held, and a single-use link is emailed to the
// owner. The link confirms only the pending login of the browser that
// started it (browser_hash, the hash of that browser's session id): opened
// in any other browser it confirms nothing and is not used up. So a phished
// victim who clicks the link in their own browser cannot approve the
// attacker's, and an attacker with the password and a code but without the
// mailbox cannot log in at all.
//
// Warehouse binds the confirmation to the IP address instead, which fails
// for users on VPNs, CGNAT and mobile networks (its top complaint) and
// approves an attacker who shares the victim's address.
const (
	MethodTOTP         = "totp"          // phishable: held for confirmation from a new browser
	MethodRecoveryCode = "recovery-code" // phishable too (spec §1.3)

	pendingTokenBytes  = 32
	pendingLifetime    = 6 * time.Hour // Warehouse's confirm_login token age
	pendingExpiresIn   = "6 hours"     // for the email text
	pendingResendEvery = 15 * time.Minute
)

const (
	msgConfirmInvalid      = "Invalid or expired login confirmation link."
	msgConfirmUsed         = "This login confirmation link has already been used."
	msgConfirmExpired      = "This login confirmation link has expired. Log in again to get a new one."
	msgConfirmWrongBrowser = "This link confirms a login only in the browser where you signed in. Open it in that browser (the one that shows “Check your email”). Nothing was confirmed."
	msgResendTooSoon       = "We already sent a confirmation email in the last 15 minutes. Check your inbox."
	msgNoPendingLogin      = "There is no login waiting for confirmation in this browser. Log in again."
)

// pendingLogin is a live pending_logins row.
type pendingLogin struct {
	id          int64
	method      string
	lastEmailAt time.Time
}

// livePendingLogin returns the unused, unexpired pending login of the user
// in the browser browserHash, or nil.
func livePendingLogin(ctx context.Context, tx *sql.Tx, userID int64, browserHash string, now time.Time) (*pendingLogin, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, method, expires_at, last_email_at FROM pending_logins
		WHERE user_id = $1 AND browser_hash = $2 AND used_at IS NULL ORDER BY id DESC`, userID, browserHash)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p pendingLogin
		var expires time.Time
		if err := rows.Scan(&p.id, &p.method, &expires, &p.lastEmailAt); err != nil {
			return nil, err
		}
		// Expiry compared here, not in SQL: SQLite keeps timestamps as text.
		if now.Before(expires) {
			p.lastEmailAt = p.lastEmailAt.UTC()
			return &p, rows.Err()
		}
	}
	return nil, rows.Err()
}

// newPendingToken returns a raw link token and its stored hash.
func (s *Service) newPendingToken() (raw, hash string, err error) {
	b, err := s.randomBytes(pendingTokenBytes)
	if err != nil {
		return "", "", err
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, sha256Hex(raw), nil
}

// StartPendingLogin holds a phishable login (method MethodTOTP or
// MethodRecoveryCode) from a browser the account does not know, and emails
// the confirmation link. browserHash identifies the browser holding the
// pending login (its session id hash); the web layer shows "Check your
// email" in it.
//
// Repeated attempts from one browser reuse the pending login: the email is
// sent again (with a new link; the old one stops working) only when the
// last one is at least 15 minutes old (Warehouse's repeat window), so
// retries cannot flood the mailbox. The email goes to the primary address
// even when it is unverified, or the owner could not log in at all.
func (s *Service) StartPendingLogin(ctx context.Context, userID int64, method, browserHash string, c account.Client) error {
	return s.HoldLogin(ctx, nil, userID, method, browserHash, c)
}

// HoldLogin is StartPendingLogin as part of tx (nil: on its own), so the
// sign-in flow can hold the login and update the browser's session in one
// transaction.
func (s *Service) HoldLogin(ctx context.Context, tx *sql.Tx, userID int64, method, browserHash string, c account.Client) error {
	// Security keys and passkeys are held only where a policy asks for
	// every login from a new device to be confirmed (internal/org).
	if method != MethodTOTP && method != MethodRecoveryCode && method != "webauthn" && method != "passkey" {
		return fmt.Errorf("mfa: method %q is not held for confirmation", method)
	}
	if browserHash == "" {
		return errors.New("mfa: pending login without a browser")
	}
	now := s.clock()
	return s.inTx(ctx, tx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		p, err := livePendingLogin(ctx, tx, userID, browserHash, now)
		if err != nil {
			return err
		}
		if p != nil {
			if now.Before(p.lastEmailAt.Add(pendingResendEvery)) {
				return nil
			}
			return s.resendPending(ctx, tx, u, p, method, c, now)
		}
		raw, hash, err := s.newPendingToken()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_logins (user_id, token_hash, browser_hash, method, ip, user_agent, created_at, expires_at, last_email_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)`,
			userID, hash, browserHash, method, c.IP, truncate(c.UserAgent, maxDeviceAgent), now, now.Add(pendingLifetime)); err != nil {
			return err
		}
		if err := record(ctx, tx, now, c, audit.Event{UserID: userID, Tag: audit.LoginNewDevice,
			Additional: map[string]any{"two_factor_method": method}}); err != nil {
			return err
		}
		return s.emailPending(ctx, tx, u, raw, c, now)
	})
}

// ResendPendingLogin sends the confirmation email of the browser's pending
// login again, with a new link, unless one went out in the last 15 minutes
// (then a derrors.RateLimited error says when to retry).
func (s *Service) ResendPendingLogin(ctx context.Context, userID int64, browserHash string, c account.Client) error {
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		p, err := livePendingLogin(ctx, tx, userID, browserHash, now)
		if err != nil {
			return err
		}
		if p == nil || browserHash == "" {
			return derrors.New(derrors.Invalid, msgNoPendingLogin)
		}
		if next := p.lastEmailAt.Add(pendingResendEvery); now.Before(next) {
			wait := next.Sub(now).Round(time.Second)
			return derrors.Limited(max(wait, time.Second), msgResendTooSoon)
		}
		return s.resendPending(ctx, tx, u, p, "", c, now)
	})
}

// resendPending gives the pending login a new link (only the hash is kept,
// so the old link cannot be sent again), a fresh lifetime, and emails it.
// method, when not "", replaces the recorded one.
func (s *Service) resendPending(ctx context.Context, tx *sql.Tx, u *subject, p *pendingLogin, method string, c account.Client, now time.Time) error {
	raw, hash, err := s.newPendingToken()
	if err != nil {
		return err
	}
	if method == "" {
		method = p.method
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pending_logins SET token_hash = $1, expires_at = $2, last_email_at = $3,
		method = $4, ip = $5, user_agent = $6 WHERE id = $7`,
		hash, now.Add(pendingLifetime), now, method, c.IP, truncate(c.UserAgent, maxDeviceAgent), p.id); err != nil {
		return err
	}
	return s.emailPending(ctx, tx, u, raw, c, now)
}

// emailPending queues the unrecognized-login email with the link for raw.
func (s *Service) emailPending(ctx context.Context, tx *sql.Tx, u *subject, raw string, c account.Client, now time.Time) error {
	return s.notice(ctx, tx, now, c, audit.Event{UserID: u.ID}, mail.TemplateUnrecognizedLogin, map[string]any{
		"Username":  u.Username,
		"IP":        orUnknown(c.IP),
		"Browser":   orUnknown(c.UserAgent),
		"Time":      now.UTC().Format(time.RFC1123),
		"Link":      s.links.With(s.links.ConfirmLogin, raw),
		"ExpiresIn": pendingExpiresIn,
	})
}

// ConfirmPendingLogin follows an emailed confirmation link (rawToken) in the
// browser browserHash. On success it returns the user and the method of the
// held login; the web layer then logs that browser in (method
// "email-confirmation") and marks it known. The link works once, for 6
// hours, and only in the browser that started the login: anywhere else it
// is refused without being used up, and the attempt is recorded, since it
// is what a phished victim clicking the attacker's link looks like.
func (s *Service) ConfirmPendingLogin(ctx context.Context, rawToken, browserHash string, c account.Client) (userID int64, method string, err error) {
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		userID, method, err = s.ConfirmPendingLoginIn(ctx, tx, rawToken, browserHash, c)
		return err
	})
	if errors.Is(err, ErrWrongBrowser) {
		if rerr := s.RecordWrongBrowser(ctx, userID, c); rerr != nil {
			return 0, "", rerr
		}
	}
	if err != nil {
		return 0, "", err
	}
	return userID, method, nil
}

// ConfirmPendingLoginIn is ConfirmPendingLogin as part of tx, so the sign-in
// flow can confirm and sign in in one transaction. A link opened in the
// wrong browser returns ErrWrongBrowser with the user it was for, and
// writes nothing; the caller records it with RecordWrongBrowser once its
// transaction is over.
func (s *Service) ConfirmPendingLoginIn(ctx context.Context, tx *sql.Tx, rawToken, browserHash string, c account.Client) (userID int64, method string, err error) {
	if rawToken == "" || len(rawToken) > 100 {
		return 0, "", derrors.New(derrors.Invalid, msgConfirmInvalid)
	}
	now := s.clock()
	var id int64
	var stored string
	var expires time.Time
	var used sql.NullTime
	err = tx.QueryRowContext(ctx, `SELECT id, user_id, browser_hash, method, expires_at, used_at FROM pending_logins WHERE token_hash = $1`,
		sha256Hex(rawToken)).Scan(&id, &userID, &stored, &method, &expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, "", derrors.New(derrors.Invalid, msgConfirmInvalid)
	case err != nil:
		return 0, "", err
	case used.Valid:
		return 0, "", derrors.New(derrors.Invalid, msgConfirmUsed)
	case !now.Before(expires):
		return 0, "", derrors.New(derrors.Invalid, msgConfirmExpired)
	case browserHash == "" || subtle.ConstantTimeCompare([]byte(stored), []byte(browserHash)) != 1:
		return userID, "", ErrWrongBrowser
	}
	r, err := tx.ExecContext(ctx, `UPDATE pending_logins SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, now, id)
	if err != nil {
		return 0, "", err
	}
	if n, err := r.RowsAffected(); err != nil {
		return 0, "", err
	} else if n != 1 {
		return 0, "", derrors.New(derrors.Invalid, msgConfirmUsed) // a concurrent click won
	}
	if err := record(ctx, tx, now, c, audit.Event{UserID: userID, Tag: audit.LoginConfirmed,
		Additional: map[string]any{"two_factor_method": method}}); err != nil {
		return 0, "", err
	}
	return userID, method, nil
}

// RecordWrongBrowser records a confirmation link opened in a browser other
// than the one holding the login: it is what a phished victim clicking the
// attacker's link looks like.
func (s *Service) RecordWrongBrowser(ctx context.Context, userID int64, c account.Client) error {
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		return record(ctx, tx, now, c, audit.Event{UserID: userID, Tag: audit.LoginFailure,
			Additional: map[string]any{"reason": reasonWrongBrowserConfirm}})
	})
}

// ErrWrongBrowser: the confirmation link was opened in a browser that does
// not hold the login.
var ErrWrongBrowser = derrors.New(derrors.Forbidden, msgConfirmWrongBrowser)

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a character
// (PostgreSQL refuses invalid UTF-8).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
