package login

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// hold turns the handoff into a held login: the emailed link, opened in
// this browser, completes it. The pending-login row, its email and the
// browser's session change in one transaction.
func (s *Service) hold(ctx context.Context, b Browser, u *account.User, m Method) (*Result, error) {
	if b.Session == nil {
		return nil, ErrHandoffExpired
	}
	sess := b.Session
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.mfa.HoldLogin(ctx, tx, u.ID, string(m), sess.IDHash, b.Client); err != nil {
			return err
		}
		// The handoff is spent; what remains is the held login, which only
		// the emailed link can complete, and only in this browser. Where to
		// go afterwards is kept.
		delete(sess.Data, keyHandoffUser)
		delete(sess.Data, keyHandoffExpires)
		sess.Data[keyHeldUser] = strconv.FormatInt(u.ID, 10)
		return s.sessions.SaveDataIn(ctx, tx, sess)
	})
	if err != nil {
		return nil, err
	}
	return &Result{Outcome: Held, Session: sess}, nil
}

// Waiting reports whether the browser holds a login waiting for its email
// confirmation.
func Waiting(sess *session.Session) bool { return heldUser(sess) != 0 }

func heldUser(sess *session.Session) int64 {
	if sess == nil {
		return 0
	}
	id, _ := strconv.ParseInt(sess.Data[keyHeldUser], 10, 64)
	return id
}

// ConfirmEmail follows the emailed confirmation link (token) in this
// browser. Only the browser holding the login can complete it: opened
// anywhere else, the link confirms nothing, is not used up, and says where
// to open it, so a phished victim who clicks it does not let the attacker
// in. Confirming and signing in are one transaction.
func (s *Service) ConfirmEmail(ctx context.Context, b Browser, token string) (*Result, error) {
	browser, next := "", ""
	if b.Session != nil {
		browser, next = b.Session.IDHash, b.Session.Data[keyHandoffNext]
	}
	var res *Result
	var uid int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if uid, _, err = s.mfa.ConfirmPendingLoginIn(ctx, tx, token, browser, b.Client); err != nil {
			return err
		}
		u, err := s.accounts.ByIDTx(ctx, tx, uid)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		// The held login's own method is in the account:login:confirmed
		// event; the login itself is by email confirmation (spec §2.1).
		res, err = s.signInTx(ctx, tx, b, u, session.TwoFactor, MethodEmail, false, next)
		return err
	})
	if errors.Is(err, mfa.ErrWrongBrowser) {
		if rerr := s.mfa.RecordWrongBrowser(ctx, uid, b.Client); rerr != nil {
			return nil, rerr
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

var errDisabled = derrors.New(derrors.Forbidden, "Your account has been disabled. Contact an administrator.")

// ErrNotHeld is the answer to a resend from a browser holding no login.
var ErrNotHeld = derrors.New(derrors.Invalid, "No login is waiting for confirmation in this browser. Log in again.")

// Resend sends the held login's confirmation email again (at most one per
// 15 minutes).
func (s *Service) Resend(ctx context.Context, b Browser) error {
	uid := heldUser(b.Session)
	if uid == 0 {
		return ErrNotHeld
	}
	return s.mfa.ResendPendingLogin(ctx, uid, b.Session.IDHash, b.Client)
}
