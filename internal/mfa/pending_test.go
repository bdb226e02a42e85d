package mfa

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const (
	attackerBrowser = "hash-of-attacker-session"
	victimBrowser   = "hash-of-victim-session"
)

// TestPendingLogin: a phishable login from an unknown browser is held; the
// emailed link confirms it only in that browser, once, within 6 hours
// (spec B8, product.md).
func TestPendingLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		c := clientUA("198.51.100.7", "Mozilla/5.0 Firefox/140.0")

		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, attackerBrowser, c))
		m := f.lastMail("unrecognized-login")
		if m.To != "alice@example.com" || m.UserID != uid {
			t.Errorf("email to %s (user %d)", m.To, m.UserID)
		}
		for k, want := range map[string]string{"Username": "alice", "IP": "198.51.100.7", "Browser": "Mozilla/5.0 Firefox/140.0",
			"Time": "Sun, 01 Mar 2026 12:00:10 UTC", "ExpiresIn": "6 hours"} {
			if m.Data[k] != want {
				t.Errorf("email %s = %q, want %q", k, m.Data[k], want)
			}
		}
		tok := linkToken(t, m.Data["Link"])
		if ev := f.events(uid, "account:login:new_device"); len(ev) != 1 || ev[0].Additional["two_factor_method"] != "totp" {
			t.Errorf("new_device events %+v", ev)
		}

		// The victim clicks in their own browser: nothing is confirmed and
		// the link is not used up.
		_, _, err := f.s.ConfirmPendingLogin(f.ctx, tok, victimBrowser, c)
		wantErr(t, err, derrors.Forbidden, "This link confirms a login only in the browser where you signed in.")
		_, _, err = f.s.ConfirmPendingLogin(f.ctx, tok, "", c)
		wantErr(t, err, derrors.Forbidden, "Nothing was confirmed.")
		if got := f.failureReasons(uid); len(got) != 2 || got[0] != "confirm_login_wrong_browser" {
			t.Errorf("wrong-browser clicks recorded as %v", got)
		}

		// In the browser that signed in, it works, once.
		gotUser, method, err := f.s.ConfirmPendingLogin(f.ctx, tok, attackerBrowser, c)
		mfaMust(t, err)
		if gotUser != uid || method != MethodTOTP {
			t.Errorf("confirmed user %d method %q", gotUser, method)
		}
		if ev := f.events(uid, "account:login:confirmed"); len(ev) != 1 || ev[0].Additional["two_factor_method"] != "totp" {
			t.Errorf("login confirmed events %+v", ev)
		}
		_, _, err = f.s.ConfirmPendingLogin(f.ctx, tok, attackerBrowser, c)
		wantErr(t, err, derrors.Invalid, "This login confirmation link has already been used.")
		for _, bad := range []string{"", "nonsense", strings.Repeat("x", 200), tok + "x"} {
			_, _, err = f.s.ConfirmPendingLogin(f.ctx, bad, attackerBrowser, c)
			wantErr(t, err, derrors.Invalid, "Invalid or expired login confirmation link.")
		}

		// A new login from that browser after the confirmation starts a new
		// pending login, with a new email.
		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodRecoveryCode, attackerBrowser, c))
		if n := len(f.mails("unrecognized-login")); n != 2 {
			t.Fatalf("%d emails, want 2", n)
		}
		tok2 := linkToken(t, f.lastMail("unrecognized-login").Data["Link"])
		if tok2 == tok {
			t.Fatal("a new pending login reused the link")
		}

		// It expires after 6 hours.
		f.clock.Advance(6 * time.Hour)
		_, _, err = f.s.ConfirmPendingLogin(f.ctx, tok2, attackerBrowser, c)
		wantErr(t, err, derrors.Invalid, "This login confirmation link has expired. Log in again to get a new one.")
	})
}

// TestPendingLoginResend: at most one email per 15 minutes per pending
// login; a resent email carries a new link and the old one dies.
func TestPendingLoginResend(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", false) // unverified: the email goes anyway
		c := mfaClient("198.51.100.7")

		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, attackerBrowser, c))
		first := linkToken(t, f.lastMail("unrecognized-login").Data["Link"])
		f.clock.Advance(14 * time.Minute)
		// Retried logins in that browser do not send again within 15 minutes.
		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, attackerBrowser, c))
		wait := wantLimited(t, f.s.ResendPendingLogin(f.ctx, uid, attackerBrowser, c),
			"We already sent a confirmation email in the last 15 minutes. Check your inbox.")
		if wait != time.Minute {
			t.Errorf("RetryAfter = %v, want 1m", wait)
		}
		if n := len(f.mails("unrecognized-login")); n != 1 {
			t.Fatalf("%d emails within 15 minutes, want 1", n)
		}
		if n := len(f.events(uid, "account:login:new_device")); n != 1 {
			t.Errorf("%d new_device events for one pending login", n)
		}

		f.clock.Advance(time.Minute)
		mfaMust(t, f.s.ResendPendingLogin(f.ctx, uid, attackerBrowser, c))
		if n := len(f.mails("unrecognized-login")); n != 2 {
			t.Fatalf("%d emails after 15 minutes, want 2", n)
		}
		second := linkToken(t, f.lastMail("unrecognized-login").Data["Link"])
		_, _, err := f.s.ConfirmPendingLogin(f.ctx, first, attackerBrowser, c)
		wantErr(t, err, derrors.Invalid, "Invalid or expired login confirmation link.")

		// Another browser has its own pending login and its own email.
		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, victimBrowser, c))
		if n := len(f.mails("unrecognized-login")); n != 3 {
			t.Fatalf("%d emails, want 3", n)
		}
		wantErr(t, f.s.ResendPendingLogin(f.ctx, uid, "no-such-browser", c), derrors.Invalid, "There is no login waiting")

		// The resent link still binds to the first browser.
		_, _, err = f.s.ConfirmPendingLogin(f.ctx, second, victimBrowser, c)
		wantErr(t, err, derrors.Forbidden, "Nothing was confirmed.")
		if _, _, err := f.s.ConfirmPendingLogin(f.ctx, second, attackerBrowser, c); err != nil {
			t.Fatal(err)
		}
		wantErr(t, f.s.ResendPendingLogin(f.ctx, uid, attackerBrowser, c), derrors.Invalid, "There is no login waiting")
	})
}

func TestPendingLoginArguments(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		// Security keys and passkeys are held only where a policy asks
		// (internal/login decides); a method that is none of the four is
		// never held.
		if err := f.s.StartPendingLogin(f.ctx, uid, "sms", attackerBrowser, mfaClient("")); err == nil {
			t.Error("an unknown method was held for confirmation")
		}
		if err := f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, "", mfaClient("")); err == nil {
			t.Error("a pending login without a browser was started")
		}
		if err := f.s.StartPendingLogin(f.ctx, 9999, MethodTOTP, attackerBrowser, mfaClient("")); err == nil {
			t.Error("a pending login for no user was started")
		}
	})
}
