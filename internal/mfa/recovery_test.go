package mfa

import (
	"database/sql"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

var hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestRecoveryCodes: each code works once, regeneration invalidates the old
// ones, codes are stored hashed, use is audited and emailed, and failures
// count toward the shared limiter (spec B6).
func TestRecoveryCodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("192.0.2.1")
		uid := f.user("alice", true)

		if st, _ := f.s.RecoveryStatus(f.ctx, uid); st != (RecoveryStatus{}) {
			t.Errorf("status before generating: %+v", st)
		}
		codes, err := f.s.GenerateRecoveryCodes(f.ctx, uid, c)
		mfaMust(t, err)
		seen := map[string]bool{}
		for _, code := range codes {
			if !hex16.MatchString(code) || seen[code] {
				t.Errorf("code %q: not 16 lowercase hex, or repeated", code)
			}
			seen[code] = true
		}
		if len(codes) != 8 {
			t.Fatalf("%d codes, want 8", len(codes))
		}
		// Stored hashed: no column holds a code.
		rows, err := d.Query(`SELECT code_hash FROM recovery_codes WHERE user_id = $1`, uid)
		mfaMust(t, err)
		n := 0
		for rows.Next() {
			var h string
			mfaMust(t, rows.Scan(&h))
			for _, code := range codes {
				if strings.Contains(h, code) {
					t.Errorf("stored hash %q contains code %q", h, code)
				}
			}
			n++
		}
		rows.Close()
		if n != 8 {
			t.Errorf("%d stored codes, want 8", n)
		}
		if st, _ := f.s.RecoveryStatus(f.ctx, uid); st != (RecoveryStatus{Generated: true, Unused: 8}) {
			t.Errorf("status after generating: %+v", st)
		}
		if len(f.events(uid, "account:recovery_codes:generated")) != 1 || f.lastMail("recovery-codes-generated").To != "alice@example.com" {
			t.Error("generation not audited or not emailed")
		}

		// Burn-to-confirm.
		wantErr(t, f.s.ConfirmRecoveryCodes(f.ctx, uid, "0000000000000000", c), derrors.Invalid, "Invalid recovery code.")
		mfaMust(t, f.s.ConfirmRecoveryCodes(f.ctx, uid, codes[0], c))
		if st, _ := f.s.RecoveryStatus(f.ctx, uid); st != (RecoveryStatus{Generated: true, Confirmed: true, Unused: 7}) {
			t.Errorf("status after confirming: %+v", st)
		}
		wantErr(t, f.s.ConfirmRecoveryCodes(f.ctx, uid, codes[0], c), derrors.Invalid, "Recovery code has been previously used.")

		// Login use: once each; any spelling of a code is that code.
		mfaMust(t, f.s.UseRecoveryCode(f.ctx, uid, " "+strings.ToUpper(codes[1][:8])+" "+codes[1][8:], c))
		wantErr(t, f.s.UseRecoveryCode(f.ctx, uid, codes[1], c), derrors.Invalid, "Recovery code has been previously used.")
		wantErr(t, f.s.UseRecoveryCode(f.ctx, uid, codes[0], c), derrors.Invalid, "Recovery code has been previously used.")
		wantErr(t, f.s.UseRecoveryCode(f.ctx, uid, "short", c), derrors.Invalid, "Recovery codes must be 16 characters.")
		wantErr(t, f.s.UseRecoveryCode(f.ctx, uid, "zzzzzzzzzzzzzzzz", c), derrors.Invalid, "Recovery codes must be 16 characters.")
		if used := f.events(uid, "account:recovery_codes:used"); len(used) != 2 { // the confirmation, then the login
			t.Errorf("%d recovery_codes:used events, want 2", len(used))
		}
		if ms := f.mails("recovery-code-used"); len(ms) != 1 || ms[0].Data["Username"] != "alice" {
			t.Errorf("recovery-code-used emails %+v, want 1 (the login, not the confirmation)", ms)
		}
		if got := strings.Join(f.failureReasons(uid), ","); got != "invalid_recovery_code,burned_recovery_code,burned_recovery_code,burned_recovery_code" {
			t.Errorf("failure reasons %s", got)
		}

		// The fifth failure trips the shared limiter.
		f.clock.Advance(5*time.Minute + time.Second)
		for i := 0; i < 5; i++ {
			wantErr(t, f.s.UseRecoveryCode(f.ctx, uid, "00000000000000"+string(rune('a'+i))+"0", c), derrors.Invalid, "Invalid recovery code.")
		}
		wantLimited(t, f.s.UseRecoveryCode(f.ctx, uid, codes[2], c), msgLimited)
		wantLimited(t, f.s.VerifyTOTP(f.ctx, uid, "123456", c), msgLimited)
		f.clock.Advance(5*time.Minute + time.Second)

		// Regeneration invalidates every old code and asks for a new
		// confirmation.
		fresh, err := f.s.GenerateRecoveryCodes(f.ctx, uid, c)
		mfaMust(t, err)
		wantErr(t, f.s.UseRecoveryCode(f.ctx, uid, codes[2], c), derrors.Invalid, "Invalid recovery code.")
		if st, _ := f.s.RecoveryStatus(f.ctx, uid); st != (RecoveryStatus{Generated: true, Unused: 8}) {
			t.Errorf("status after regenerating: %+v", st)
		}
		if len(f.events(uid, "account:recovery_codes:regenerated")) != 1 {
			t.Error("regeneration not audited as regenerated")
		}
		// Using a fresh code at login also proves they were stored.
		mfaMust(t, f.s.UseRecoveryCode(f.ctx, uid, fresh[5], c))
		if st, _ := f.s.RecoveryStatus(f.ctx, uid); !st.Confirmed || st.Unused != 7 {
			t.Errorf("status after a login with a fresh code: %+v", st)
		}
	})
}

// TestRecoveryCodesOnlyForOwner: a code of one account is no code of another.
func TestRecoveryCodesOnlyForOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("192.0.2.1")
		alice, bob := f.user("alice", true), f.user("bob", true)
		codes, err := f.s.GenerateRecoveryCodes(f.ctx, alice, c)
		mfaMust(t, err)
		_, err = f.s.GenerateRecoveryCodes(f.ctx, bob, c)
		mfaMust(t, err)
		wantErr(t, f.s.UseRecoveryCode(f.ctx, bob, codes[0], c), derrors.Invalid, "Invalid recovery code.")
	})
}

// TestRecoveryReminder: a 2FA user with no unused code gets a reminder
// after a login, at most once a day.
func TestRecoveryReminder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("192.0.2.1")
		uid := f.user("alice", true)
		plain := f.user("bob", true)
		left := f.readyForTOTP(uid)
		f.addSecurityKey(uid, "YubiKey")

		mfaMust(t, f.s.RemindIfNoCodes(f.ctx, nil, uid))
		mfaMust(t, f.s.RemindIfNoCodes(f.ctx, nil, plain)) // no 2FA: no reminder
		if n := len(f.mails("recovery-code-reminder")); n != 0 {
			t.Fatalf("%d reminders while codes are left or without 2FA", n)
		}
		for _, code := range left {
			mfaMust(t, f.s.UseRecoveryCode(f.ctx, uid, code, c))
		}
		mfaMust(t, d.InTx(f.ctx, func(tx *sql.Tx) error { return f.s.RemindIfNoCodes(f.ctx, tx, uid) }))
		mfaMust(t, f.s.RemindIfNoCodes(f.ctx, nil, uid))
		f.clock.Advance(23 * time.Hour)
		mfaMust(t, f.s.RemindIfNoCodes(f.ctx, nil, uid))
		if ms := f.mails("recovery-code-reminder"); len(ms) != 1 || ms[0].Data["Username"] != "alice" {
			t.Fatalf("reminders %+v, want one a day", ms)
		}
		f.clock.Advance(time.Hour + time.Second)
		mfaMust(t, f.s.RemindIfNoCodes(f.ctx, nil, uid))
		if n := len(f.mails("recovery-code-reminder")); n != 2 {
			t.Errorf("%d reminders after a day, want 2", n)
		}
	})
}
