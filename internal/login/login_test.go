package login

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/session"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

const password = "correct horse battery staple"

var testLinks = account.Links{VerifyEmail: "http://localhost/verify/", ResetPassword: "http://localhost/reset/", ConfirmLogin: "http://localhost/confirm/"}

// notifier records the emails the flow queues, and fails on demand: a
// failure mid-action must roll the whole action back.
type notifier struct {
	mu   sync.Mutex
	sent []sentMail
	fail string // template that fails; "" none
}

type sentMail struct {
	template string
	data     map[string]any
}

var errNotify = errors.New("outbox unavailable")

func (n *notifier) Notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if template == n.fail {
		return errNotify
	}
	n.sent = append(n.sent, sentMail{template, data})
	return nil
}

func (n *notifier) last(template string) map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.sent) - 1; i >= 0; i-- {
		if n.sent[i].template == template {
			return n.sent[i].data
		}
	}
	return nil
}

type fixture struct {
	t        *testing.T
	ctx      context.Context
	db       *db.DB
	clock    *testclock.Clock
	mail     *notifier
	accounts *account.Service
	mfa      *mfa.Service
	sessions *session.Manager
	login    *Service
	user     *account.User
	secret   string   // alice's TOTP secret
	codes    []string // alice's recovery codes
}

var client = account.Client{IP: "192.0.2.1", UserAgent: "test browser"}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), db: d, clock: testclock.New(t0), mail: &notifier{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.accounts = account.NewService(account.Options{DB: d, Hasher: account.NewHasher(workpool.New(workpool.Options{CPUs: 2})), Notifier: f.mail, Links: testLinks, Now: f.clock.Now, Log: log})
	var err error
	f.mfa, err = mfa.NewService(mfa.Options{DB: d, Secret: []byte(strings.Repeat("login-test-secret", 4)), SiteName: "Test", Links: testLinks,
		Notifier: f.mail, Now: f.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wa, err := mfa.NewWebAuthn(mfa.WebAuthnOptions{DB: d, RPID: "localhost", RPOrigins: []string{"http://localhost"}, SiteName: "Test", Limiter: f.mfa, Now: f.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.sessions = session.NewManager(d, session.Options{Now: f.clock.Now})
	f.login = NewService(Options{DB: d, Accounts: f.accounts, MFA: f.mfa, WebAuthn: wa, Sessions: f.sessions, Now: f.clock.Now})

	f.user, err = f.accounts.Create(f.ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: password, EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.codes, err = f.mfa.GenerateRecoveryCodes(f.ctx, f.user.ID, client); err != nil {
		t.Fatal(err)
	}
	if err := f.mfa.ConfirmRecoveryCodes(f.ctx, f.user.ID, f.codes[0], client); err != nil {
		t.Fatal(err)
	}
	setup, err := f.mfa.NewTOTP("alice")
	if err != nil {
		t.Fatal(err)
	}
	f.secret = setup.Secret
	if err := f.mfa.ConfirmTOTP(f.ctx, f.user.ID, f.secret, f.code(), client); err != nil {
		t.Fatal(err)
	}
	return f
}

// code is alice's TOTP code a step after the last one used (a step at or
// before the last accepted one is refused as a replay).
func (f *fixture) code() string {
	f.t.Helper()
	f.clock.Advance(30 * time.Second)
	c, err := totp.GenerateCodeCustom(f.secret, f.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// browser is a fresh browser: no session, no device cookie.
func (f *fixture) newBrowser() *Browser { return &Browser{Client: client} }

// apply carries out a Result in the browser, as the web layer does.
func (b *Browser) apply(r *Result) {
	b.Session = r.Session
	if r.Device != "" {
		b.Device = r.Device
	}
}

func (f *fixture) password(b *Browser) *Result {
	f.t.Helper()
	r, err := f.login.Password(f.ctx, *b, "alice", password, "/next/")
	if err != nil {
		f.t.Fatalf("password step: %v", err)
	}
	b.apply(r)
	return r
}

// signedIn checks r signs alice in with method m.
func (f *fixture) signedIn(r *Result, err error, m Method) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("got error %v, want signed in by %s", err, m)
	}
	if r.Outcome != SignedIn || r.Method != m || r.User.ID != f.user.ID || r.Session.Level != session.TwoFactor || r.Cookie == "" {
		f.t.Fatalf("got %+v, want alice signed in by %s with a new session", r, m)
	}
	if got, err := f.sessions.Load(f.ctx, r.Cookie); err != nil || got.UserID != f.user.ID {
		f.t.Fatalf("the new session does not load as alice's: %v %+v", err, got)
	}
}

// knownBrowser is a browser that confirmed a held login by email, then
// signed in with TOTP, remembered when remember is set.
func (f *fixture) knownBrowser(remember bool) *Browser {
	f.t.Helper()
	b := f.newBrowser()
	f.password(b)
	r, err := f.login.TOTP(f.ctx, *b, f.code(), false)
	if err != nil || r.Outcome != Held {
		f.t.Fatalf("first TOTP login: %+v %v, want held", r, err)
	}
	b.apply(r)
	r, err = f.login.ConfirmEmail(f.ctx, *b, f.confirmToken())
	f.signedIn(r, err, MethodEmail)
	b.apply(r)
	f.password(b)
	r, err = f.login.TOTP(f.ctx, *b, f.code(), remember)
	f.signedIn(r, err, MethodTOTP)
	b.apply(r)
	return b
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.QueryRow(query, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// confirmToken is the token of the last "unrecognized login" email.
func (f *fixture) confirmToken() string {
	f.t.Helper()
	d := f.mail.last("unrecognized-login")
	if d == nil {
		f.t.Fatal("no unrecognized-login email was queued")
	}
	u, err := url.Parse(d["Link"].(string))
	if err != nil {
		f.t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestMethodPhishable(t *testing.T) {
	for m, want := range map[Method]bool{MethodTOTP: true, MethodRecoveryCode: true, MethodSecurityKey: false,
		MethodPasskey: false, MethodRemembered: false, MethodEmail: false, MethodNone: false} {
		if m.Phishable() != want {
			t.Errorf("%s.Phishable() = %v, want %v", m, !want, want)
		}
	}
}

func TestHandoff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)

		t.Run("the password step hands off to the second factor in a new anonymous session", func(t *testing.T) {
			b := f.newBrowser()
			r := f.password(b)
			if r.Outcome != SecondFactor || r.Cookie == "" || r.Session.UserID != 0 || r.Session.Level != session.Anonymous {
				t.Fatalf("got %+v, want a second-factor handoff in an anonymous session", r)
			}
			if u, err := f.login.HandoffUser(f.ctx, b.Session); err != nil || u.ID != f.user.ID {
				t.Fatalf("HandoffUser: %v, %v", u, err)
			}
		})

		t.Run("the handoff expires after five minutes", func(t *testing.T) {
			b := f.newBrowser()
			f.password(b)
			f.clock.Advance(HandoffTTL)
			if _, err := f.login.TOTP(f.ctx, *b, f.code(), false); !errors.Is(err, ErrHandoffExpired) {
				t.Fatalf("TOTP after the handoff expired: got %v, want ErrHandoffExpired", err)
			}
			if _, err := f.login.RecoveryCode(f.ctx, *b, f.codes[1]); !errors.Is(err, ErrHandoffExpired) {
				t.Fatalf("recovery code after the handoff expired: got %v, want ErrHandoffExpired", err)
			}
		})

		t.Run("no handoff, no second step", func(t *testing.T) {
			if _, err := f.login.TOTP(f.ctx, *f.newBrowser(), f.code(), false); !errors.Is(err, ErrHandoffExpired) {
				t.Fatalf("TOTP without a password step: got %v, want ErrHandoffExpired", err)
			}
		})
	})
}

func TestHeldLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)

		attacker := f.newBrowser()
		f.password(attacker)
		r, err := f.login.TOTP(f.ctx, *attacker, f.code(), true)
		if err != nil || r.Outcome != Held || r.Cookie != "" {
			t.Fatalf("TOTP from an unknown browser: got %+v, %v; want held, same session", r, err)
		}
		attacker.apply(r)
		if !Waiting(attacker.Session) {
			t.Fatal("the held browser is not waiting for confirmation")
		}
		if n := f.count(`SELECT count(*) FROM devices WHERE user_id = $1`, f.user.ID); n != 0 {
			t.Errorf("a held login made %d device rows, want 0", n)
		}
		tok := f.confirmToken()

		t.Run("the link opened in another browser confirms nothing", func(t *testing.T) {
			victim := f.newBrowser()
			victim.Session = &session.Session{IDHash: "victim's session"}
			if _, err := f.login.ConfirmEmail(f.ctx, *victim, tok); !errors.Is(err, mfa.ErrWrongBrowser) {
				t.Fatalf("confirm from another browser: got %v, want ErrWrongBrowser", err)
			}
			if n := f.count(`SELECT count(*) FROM pending_logins WHERE used_at IS NOT NULL`); n != 0 {
				t.Errorf("the wrong browser used up the link")
			}
			if n := f.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, f.user.ID); n != 0 {
				t.Errorf("the wrong browser got %d signed-in sessions", n)
			}
			if n := f.count(`SELECT count(*) FROM events WHERE user_id = $1 AND tag = 'account:login:failure'`, f.user.ID); n != 1 {
				t.Errorf("the wrong-browser attempt was recorded %d times, want once", n)
			}
		})

		t.Run("the link opened in the browser that holds the login signs it in", func(t *testing.T) {
			r, err := f.login.ConfirmEmail(f.ctx, *attacker, tok)
			f.signedIn(r, err, MethodEmail)
			if r.Device == "" || r.Next != "/next/" {
				t.Errorf("confirmed login: device %q next %q, want a device token and /next/", r.Device, r.Next)
			}
			attacker.apply(r)
		})

		t.Run("once known, the browser is not held again", func(t *testing.T) {
			f.password(attacker)
			r, err := f.login.TOTP(f.ctx, *attacker, f.code(), false)
			f.signedIn(r, err, MethodTOTP)
		})
	})
}

func TestPasskeyAndRememberedShortcuts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		b := f.newBrowser()
		b.Device = "made-up-token"
		// A recovery code from an unknown browser is held too.
		f.password(b)
		r, err := f.login.RecoveryCode(f.ctx, *b, f.codes[1])
		if err != nil || r.Outcome != Held {
			t.Fatalf("recovery code from an unknown browser: got %+v, %v; want held", r, err)
		}
		b.apply(r)
		r, err = f.login.ConfirmEmail(f.ctx, *b, f.confirmToken())
		f.signedIn(r, err, MethodEmail)
		if r.Device == "made-up-token" {
			t.Error("a device token the server never minted was kept")
		}
		b.apply(r)

		// Remember this browser: the next login skips the second factor.
		f.password(b)
		r, err = f.login.TOTP(f.ctx, *b, f.code(), true)
		f.signedIn(r, err, MethodTOTP)
		b.apply(r)
		r = f.password(b)
		if r.Outcome != SignedIn || r.Method != MethodRemembered {
			t.Fatalf("login from a remembered browser: got %+v, want signed in as remembered", r)
		}
	})
}

// TestPasswordChangeIsOneTransaction: the change, forgetting remembered
// browsers and ending the other sessions commit together, or not at all.
func TestPasswordChangeIsOneTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		// A remembered browser and a second signed-in session.
		b := f.knownBrowser(true)
		other := &Browser{Client: client, Device: b.Device}
		r := f.password(other)
		other.apply(r)
		if r.Method != MethodRemembered {
			t.Fatalf("second browser: got %+v, want remembered", r)
		}
		remembered := `SELECT count(*) FROM devices WHERE user_id = $1 AND remember_until IS NOT NULL`
		sessions := `SELECT count(*) FROM sessions WHERE user_id = $1`
		var hashBefore string
		d.QueryRow(`SELECT password_hash FROM users WHERE id = $1`, f.user.ID).Scan(&hashBefore)

		t.Run("a notifier that fails mid-action leaves everything as it was", func(t *testing.T) {
			f.mail.fail = "password-change"
			defer func() { f.mail.fail = "" }()
			_, err := f.login.ChangePassword(f.ctx, *b, password, "a whole new passphrase 42", "a whole new passphrase 42")
			if !errors.Is(err, errNotify) {
				t.Fatalf("got %v, want the notifier's error", err)
			}
			var hash string
			d.QueryRow(`SELECT password_hash FROM users WHERE id = $1`, f.user.ID).Scan(&hash)
			if hash != hashBefore {
				t.Error("the password changed although the action failed")
			}
			if n := f.count(remembered, f.user.ID); n != 1 {
				t.Errorf("remembered browsers: %d, want the 1 from before", n)
			}
			if n := f.count(sessions, f.user.ID); n != 2 {
				t.Errorf("sessions: %d, want the 2 from before", n)
			}
			if _, err := f.sessions.Load(f.ctx, r.Cookie); err != nil {
				t.Errorf("the other session ended although the action failed: %v", err)
			}
		})

		t.Run("a change forgets remembered browsers and ends the other sessions", func(t *testing.T) {
			res, err := f.login.ChangePassword(f.ctx, *b, password, "a whole new passphrase 42", "a whole new passphrase 42")
			if err != nil {
				t.Fatal(err)
			}
			if n := f.count(remembered, f.user.ID); n != 0 {
				t.Errorf("remembered browsers after a change: %d, want 0", n)
			}
			if n := f.count(sessions, f.user.ID); n != 1 {
				t.Errorf("sessions after a change: %d, want only the new one", n)
			}
			if s, err := f.sessions.Load(f.ctx, res.Cookie); err != nil || s.Level != session.TwoFactor {
				t.Errorf("the changing browser's new session: %+v, %v", s, err)
			}
			if u, ok, err := f.login.Current(f.ctx, res.Session); err != nil || !ok || u.ID != f.user.ID {
				t.Errorf("the new session is not current: %v %v %v", u, ok, err)
			}
			if _, ok, _ := f.login.Current(f.ctx, b.Session); ok {
				t.Error("the session from before the change still signs in")
			}
		})
	})
}

func TestPasswordResetIsOneTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.knownBrowser(true)
		if err := f.accounts.RequestPasswordReset(f.ctx, "alice", client); err != nil {
			t.Fatal(err)
		}
		link, _ := url.Parse(f.mail.last("password-reset")["Link"].(string))
		tok := link.Query().Get("token")
		remembered := `SELECT count(*) FROM devices WHERE user_id = $1 AND remember_until IS NOT NULL`

		f.mail.fail = "password-change"
		if _, err := f.login.ResetPassword(f.ctx, *f.newBrowser(), tok, "a whole new passphrase 42", "a whole new passphrase 42"); !errors.Is(err, errNotify) {
			t.Fatalf("reset with a failing notifier: got %v, want its error", err)
		}
		f.mail.fail = ""
		if n := f.count(remembered, f.user.ID); n != 1 {
			t.Errorf("a failed reset forgot remembered browsers")
		}
		if n := f.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, f.user.ID); n != 1 {
			t.Errorf("a failed reset ended sessions")
		}
		if n := f.count(`SELECT count(*) FROM one_time_tokens WHERE used_at IS NOT NULL`); n != 0 {
			t.Errorf("a failed reset used up the link")
		}

		if _, err := f.login.ResetPassword(f.ctx, *f.newBrowser(), tok, "a whole new passphrase 42", "a whole new passphrase 42"); err != nil {
			t.Fatal(err)
		}
		if n := f.count(remembered, f.user.ID); n != 0 {
			t.Errorf("remembered browsers after a reset: %d, want 0", n)
		}
		if n := f.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, f.user.ID); n != 0 {
			t.Errorf("sessions after a reset: %d, want 0", n)
		}
	})
}

// TestConfirmEveryLoginPolicy: with a policy that asks for it (an
// organization's or the site's), a login with a security key or a passkey
// from a browser the account does not know waits for the email too; from a
// known browser, or without the policy, it does not.
func TestConfirmEveryLoginPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		policy := false
		f.login.confirmAll = func(ctx context.Context, userID int64) (bool, error) { return policy, nil }
		known := f.knownBrowser(false)
		unknown := f.newBrowser()
		for _, c := range []struct {
			policy bool
			b      *Browser
			m      Method
			want   bool
		}{
			{false, unknown, MethodSecurityKey, false},
			{false, unknown, MethodPasskey, false},
			{false, unknown, MethodTOTP, true},
			{true, unknown, MethodSecurityKey, true},
			{true, unknown, MethodPasskey, true},
			{true, known, MethodSecurityKey, false},
			{true, known, MethodTOTP, false},
		} {
			policy = c.policy
			got, err := f.login.mustConfirm(f.ctx, *c.b, f.user, c.m)
			if err != nil || got != c.want {
				t.Errorf("policy %v, known browser %v, %s: held = %v (%v), want %v", c.policy, c.b == known, c.m, got, err, c.want)
			}
		}
		// And a held security-key login is a pending login like any other.
		policy = true
		b := f.newBrowser()
		f.password(b)
		r, err := f.login.hold(f.ctx, *b, f.user, MethodSecurityKey)
		if err != nil || r.Outcome != Held {
			t.Fatalf("holding a security-key login: %+v %v", r, err)
		}
		b.apply(r)
		r, err = f.login.ConfirmEmail(f.ctx, *b, f.confirmToken())
		f.signedIn(r, err, MethodEmail)
	})
}
