package login

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// The flow's state lives in the browser's server-side session, which stays
// anonymous until the second factor is done: the only pages a half-signed-in
// browser can use are the second-factor ones (spec B7). Only this file and
// held.go read or write these keys.
const (
	keyHandoffUser    = "login.handoff.user"
	keyHandoffExpires = "login.handoff.expires"
	keyHandoffNext    = "login.handoff.next"
	keyHeldUser       = "login.held.user"
)

// handoff is a login that passed the password step.
type handoff struct {
	userID  int64
	expires time.Time
	next    string
}

func handoffOf(s *session.Session) (handoff, bool) {
	if s == nil || s.Data[keyHandoffUser] == "" {
		return handoff{}, false
	}
	id, err1 := strconv.ParseInt(s.Data[keyHandoffUser], 10, 64)
	exp, err2 := strconv.ParseInt(s.Data[keyHandoffExpires], 10, 64)
	if err1 != nil || err2 != nil {
		return handoff{}, false
	}
	return handoff{userID: id, expires: time.Unix(exp, 0), next: s.Data[keyHandoffNext]}, true
}

func (h handoff) store(s *session.Session) {
	s.Data[keyHandoffUser] = strconv.FormatInt(h.userID, 10)
	s.Data[keyHandoffExpires] = strconv.FormatInt(h.expires.Unix(), 10)
	s.Data[keyHandoffNext] = h.next
}

func clearHandoff(s *session.Session) {
	delete(s.Data, keyHandoffUser)
	delete(s.Data, keyHandoffExpires)
	delete(s.Data, keyHandoffNext)
}

// ErrHandoffExpired is the answer to a second-factor step without a live
// handoff: the password step was never done, or more than HandoffTTL ago.
var ErrHandoffExpired = derrors.New(derrors.Forbidden, "Invalid or expired two factor login. Log in again.")

// Password is the first step: the username and password. next is where to
// go once signed in (already checked to be a same-origin path).
func (s *Service) Password(ctx context.Context, b Browser, username, password, next string) (*Result, error) {
	u, err := s.accounts.CheckLogin(ctx, username, password, b.Client)
	if err != nil {
		return nil, err
	}
	has2FA, err := s.mfa.HasTwoFactor(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if !has2FA {
		// Unlike PyPI, a password-only login does not make the browser a
		// known device: whoever has only the password must not be able to
		// pre-register their browser against a second factor added later.
		return s.signIn(ctx, b, u, session.Password, MethodNone, false, next)
	}
	// A browser remembered for 30 days skips the second factor.
	remembered, err := s.mfa.Remembered(ctx, u.ID, b.Device)
	if err != nil {
		return nil, err
	}
	if remembered {
		return s.signIn(ctx, b, u, session.TwoFactor, MethodRemembered, false, next)
	}
	// The handoff: a new anonymous session that remembers who passed the
	// password step, for HandoffTTL.
	fresh := &session.Session{Level: session.Anonymous, IP: b.Client.IP, UserAgent: b.Client.UserAgent, Data: map[string]string{}}
	handoff{userID: u.ID, expires: s.now().Add(HandoffTTL), next: next}.store(fresh)
	raw, err := s.sessions.Rotate(ctx, nil, b.Session, fresh)
	if err != nil {
		return nil, err
	}
	return &Result{Outcome: SecondFactor, Cookie: raw, Session: fresh, Next: next}, nil
}

// Registered signs a newly registered user in, at password level: a
// registration is the first login.
func (s *Service) Registered(ctx context.Context, b Browser, u *account.User) (*Result, error) {
	return s.signIn(ctx, b, u, session.Password, MethodRegistration, false, "")
}

// FactorAdded follows the first second factor a signed-in user sets up: the
// session is replaced by one at two-factor level (a privilege change, so a
// new id) and the browser that just proved the factor becomes a known
// device, in one transaction.
func (s *Service) FactorAdded(ctx context.Context, b Browser) (*Result, error) {
	u, err := s.accounts.ByID(ctx, b.Session.UserID)
	if err != nil {
		return nil, err
	}
	res := &Result{Outcome: SignedIn, User: u}
	res.Session = &session.Session{UserID: u.ID, Level: session.TwoFactor, PasswordDate: u.PasswordDate, ReauthAt: s.now().UTC(),
		IP: b.Client.IP, UserAgent: b.Client.UserAgent}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if res.Device, err = s.mfa.MarkDeviceKnown(ctx, tx, u.ID, b.Device, b.Client); err != nil {
			return err
		}
		res.Cookie, err = s.sessions.Rotate(ctx, tx, b.Session, res.Session)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// HandoffUser returns the user half-way through signing in in this
// browser, or ErrHandoffExpired.
func (s *Service) HandoffUser(ctx context.Context, sess *session.Session) (*account.User, error) {
	h, ok := handoffOf(sess)
	if !ok || !s.now().Before(h.expires) {
		return nil, ErrHandoffExpired
	}
	u, err := s.accounts.ByID(ctx, h.userID)
	if errors.Is(err, derrors.NotFound) || (err == nil && u.Disabled) {
		return nil, ErrHandoffExpired
	}
	return u, err
}

// TOTP is the second step with an authentication app's code. remember asks
// to skip the second factor in this browser for 30 days.
func (s *Service) TOTP(ctx context.Context, b Browser, code string, remember bool) (*Result, error) {
	u, err := s.HandoffUser(ctx, b.Session)
	if err != nil {
		return nil, err
	}
	if err := s.mfa.VerifyTOTP(ctx, u.ID, code, b.Client); err != nil {
		return nil, err
	}
	return s.afterFactor(ctx, b, u, MethodTOTP, remember)
}

// RecoveryCode is the second step with a recovery code, which it burns.
func (s *Service) RecoveryCode(ctx context.Context, b Browser, code string) (*Result, error) {
	u, err := s.HandoffUser(ctx, b.Session)
	if err != nil {
		return nil, err
	}
	if err := s.mfa.UseRecoveryCode(ctx, u.ID, code, b.Client); err != nil {
		return nil, err
	}
	return s.afterFactor(ctx, b, u, MethodRecoveryCode, false)
}

// SecurityKey is the second step with a security key (or a passkey used as
// one): state is the ceremony's challenge, response the browser's answer.
// Security keys cannot be phished, so the browser becomes known at once.
func (s *Service) SecurityKey(ctx context.Context, b Browser, state, response []byte, remember bool) (*Result, error) {
	u, err := s.HandoffUser(ctx, b.Session)
	if err != nil {
		return nil, err
	}
	if _, err := s.webauthn.FinishLogin(ctx, u.ID, state, response, b.Client); err != nil {
		return nil, err
	}
	return s.afterFactor(ctx, b, u, MethodSecurityKey, remember)
}

// Passkey is passwordless sign-in: a discoverable credential with user
// verification names the account and proves two factors at once.
func (s *Service) Passkey(ctx context.Context, b Browser, state, response []byte, next string) (*Result, error) {
	uid, _, err := s.webauthn.FinishPasskeyLogin(ctx, state, response, b.Client)
	if err != nil {
		return nil, err
	}
	u, err := s.accounts.ByID(ctx, uid)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errDisabled
	}
	if b.Session != nil {
		held, err := s.mustConfirm(ctx, b, u, MethodPasskey)
		if err != nil {
			return nil, err
		}
		if held {
			if b.Session.Data == nil {
				b.Session.Data = map[string]string{}
			}
			b.Session.Data[keyHandoffNext] = next
			return s.hold(ctx, b, u, MethodPasskey)
		}
	}
	return s.signIn(ctx, b, u, session.TwoFactor, MethodPasskey, false, next)
}

// afterFactor finishes a second step: at once from a known browser or with
// an unphishable factor, otherwise held for email confirmation.
func (s *Service) afterFactor(ctx context.Context, b Browser, u *account.User, m Method, remember bool) (*Result, error) {
	h, _ := handoffOf(b.Session)
	held, err := s.mustConfirm(ctx, b, u, m)
	if err != nil {
		return nil, err
	}
	if held {
		return s.hold(ctx, b, u, m)
	}
	return s.signIn(ctx, b, u, session.TwoFactor, m, remember, h.next)
}

// mustConfirm reports whether a login with m from this browser waits for
// the emailed confirmation: a phishable method from a browser the account
// does not know, or any method from one when a policy says so.
func (s *Service) mustConfirm(ctx context.Context, b Browser, u *account.User, m Method) (bool, error) {
	if !m.Phishable() {
		if s.confirmAll == nil {
			return false, nil
		}
		all, err := s.confirmAll(ctx, u.ID)
		if err != nil || !all {
			return false, err
		}
	}
	known, err := s.mfa.DeviceKnown(ctx, u.ID, b.Device)
	return !known, err
}

// signIn replaces the browser's session by a signed-in one and records the
// login, in one transaction (see signInTx).
func (s *Service) signIn(ctx context.Context, b Browser, u *account.User, level session.Level, m Method, remember bool, next string) (*Result, error) {
	var res *Result
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.signInTx(ctx, tx, b, u, level, m, remember, next)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// signInTx does in tx everything signing in needs: the new session (a new
// id, spec D1), the login event, and for a second-factor login the
// known-device record, the 30-day remembrance when asked, and the
// recovery-code reminder. Signing in counts as a fresh authentication, so
// sudo pages do not ask again right away (pypi/warehouse#8441).
func (s *Service) signInTx(ctx context.Context, tx *sql.Tx, b Browser, u *account.User, level session.Level, m Method, remember bool, next string) (*Result, error) {
	res := &Result{Outcome: SignedIn, User: u, Method: m, Next: next}
	res.Session = &session.Session{UserID: u.ID, Level: level, PasswordDate: u.PasswordDate, ReauthAt: s.now().UTC(),
		IP: b.Client.IP, UserAgent: b.Client.UserAgent}
	secondFactor := level == session.TwoFactor && m != MethodRemembered
	var err error
	if secondFactor {
		if res.Device, err = s.mfa.MarkDeviceKnown(ctx, tx, u.ID, b.Device, b.Client); err != nil {
			return nil, err
		}
		if remember {
			if err := s.mfa.RememberDevice(ctx, tx, u.ID, res.Device, b.Client); err != nil {
				return nil, err
			}
		}
	}
	if res.Cookie, err = s.sessions.Rotate(ctx, tx, b.Session, res.Session); err != nil {
		return nil, err
	}
	if err := s.accounts.CompleteLogin(ctx, tx, u.ID, string(m), b.Client); err != nil {
		return nil, err
	}
	if secondFactor {
		if err := s.mfa.RemindIfNoCodes(ctx, tx, u.ID); err != nil {
			return nil, err
		}
	}
	return res, nil
}
