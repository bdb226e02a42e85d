package account

import (
	"errors"
	"fmt"

	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const newPassword = "amber-quarry-whistle-17"

func TestPasswordReset(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		c := client("192.0.2.1")

		// Unknown names and addresses: nil, and nothing is sent.
		must(t, f.s.RequestPasswordReset(f.ctx, "nobody", c))
		must(t, f.s.RequestPasswordReset(f.ctx, "nobody@example.com", c))
		if len(f.mailsTo("", "password-reset"))+len(f.mailsTo("", "password-reset-unverified")) != 0 {
			t.Fatalf("mail for unknown accounts: %+v", f.mails())
		}

		must(t, f.s.RequestPasswordReset(f.ctx, "ALICE", c))
		m := f.lastMail("alice@example.com", "password-reset")
		if m.UserID != u.ID || m.Data["Username"] != "alice" || m.Data["ExpiresIn"] != "6 hours" || len(m.Data) != 3 ||
			!strings.HasPrefix(m.Data["Link"], testBaseURL+"/account/reset-password/?token=") {
			t.Errorf("password-reset %+v", m)
		}
		if e := f.lastEvent(audit.PasswordResetRequest); e.UserID != u.ID || e.ActorID != 0 {
			t.Errorf("event %+v", e)
		}
		tok := tokenOf(t, m.Data["Link"])
		got, err := f.s.CheckResetToken(f.ctx, tok)
		must(t, err)
		if got.ID != u.ID {
			t.Errorf("CheckResetToken = %+v", got)
		}

		// The new password follows the rules.
		_, err = f.s.ResetPassword(f.ctx, tok, "baseball", "baseball", c)
		wantErr(t, err, derrors.Invalid, msgCommonPassword)
		_, err = f.s.ResetPassword(f.ctx, tok, newPassword, newPassword+"x", c)
		wantErr(t, err, derrors.Invalid, msgPasswordMismatch)

		f.clock.Advance(time.Hour)
		got, err = f.s.ResetPassword(f.ctx, tok, newPassword, newPassword, c)
		must(t, err)
		if !got.PasswordDate.Equal(f.clock.Now().Truncate(time.Microsecond)) {
			t.Errorf("password date %v, want now %v", got.PasswordDate, f.clock.Now())
		}
		if e := f.lastEvent(audit.PasswordReset); e.UserID != u.ID {
			t.Errorf("event %+v", e)
		}
		if m := f.lastMail("alice@example.com", "password-change"); m.Data["Username"] != "alice" || len(m.Data) != 1 {
			t.Errorf("password-change %+v", m)
		}
		if _, err := f.s.CheckLogin(f.ctx, "alice", goodPassword, client("9")); err == nil {
			t.Error("old password still works")
		}
		if _, err := f.s.CheckLogin(f.ctx, "alice", newPassword, client("9")); err != nil {
			t.Errorf("new password: %v", err)
		}
		// Single use.
		_, err = f.s.CheckResetToken(f.ctx, tok)
		wantErr(t, err, derrors.Invalid, "This password reset link has already been used.")
		_, err = f.s.ResetPassword(f.ctx, tok, "another-fine-password", "another-fine-password", c)
		wantErr(t, err, derrors.Invalid, "This password reset link has already been used.")

		// Garbage and tokens of another purpose.
		_, err = f.s.CheckResetToken(f.ctx, "garbage")
		wantErr(t, err, derrors.Invalid, "Invalid password reset link.")
		must(t, f.s.ResendVerification(f.ctx, u.ID, mustAddEmail(t, f, u.ID, "x@example.com").ID, client("5")))
		_, err = f.s.CheckResetToken(f.ctx, f.token("x@example.com", "verify-email"))
		wantErr(t, err, derrors.Invalid, "Invalid password reset link.")
	})
}

func mustAddEmail(t *testing.T, f *fixture, userID int64, addr string) *Email {
	t.Helper()
	e, err := f.s.AddEmail(f.ctx, userID, addr, client("add-"+addr))
	must(t, err)
	return e
}

func TestPasswordResetInvalidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		c := client("192.0.2.1")
		request := func() string {
			t.Helper()
			must(t, f.s.RequestPasswordReset(f.ctx, "alice", c))
			return f.token("alice@example.com", "password-reset")
		}

		// Expires after 6 hours.
		tok := request()
		f.clock.Advance(6*time.Hour - time.Second)
		_, err := f.s.CheckResetToken(f.ctx, tok)
		must(t, err)
		f.clock.Advance(time.Second)
		_, err = f.s.CheckResetToken(f.ctx, tok)
		wantErr(t, err, derrors.Invalid, "This password reset link has expired. Request a new one.")
		_, err = f.s.ResetPassword(f.ctx, tok, newPassword, newPassword, c)
		wantErr(t, err, derrors.Invalid, "This password reset link has expired.")

		// Dies when the user logs in after it was sent.
		tok = request()
		f.clock.Advance(time.Minute)
		must(t, f.s.CompleteLogin(f.ctx, nil, u.ID, "", c))
		_, err = f.s.CheckResetToken(f.ctx, tok)
		wantErr(t, err, derrors.Invalid, "This password reset link is no longer valid because you have logged in since it was sent.")
		_, err = f.s.ResetPassword(f.ctx, tok, newPassword, newPassword, c)
		wantErr(t, err, derrors.Invalid, "you have logged in since it was sent")

		// Dies when the password changes after it was sent.
		tok = request()
		f.clock.Advance(time.Minute)
		must(t, f.s.ChangePassword(f.ctx, u.ID, goodPassword, newPassword, newPassword, c))
		_, err = f.s.CheckResetToken(f.ctx, tok)
		wantErr(t, err, derrors.Invalid, "This password reset link is no longer valid because your password has been changed since it was sent.")
	})
}

func TestPasswordResetAddresses(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		c := client("192.0.2.1")

		// Unverified primary: a note saying so, no link.
		u := f.register("carol")
		must(t, f.s.RequestPasswordReset(f.ctx, "carol", c))
		m := f.lastMail("carol@example.com", "password-reset-unverified")
		if m.Data["Email"] != "carol@example.com" || len(m.Data) != 1 || m.UserID != u.ID {
			t.Errorf("password-reset-unverified %+v", m)
		}
		if len(f.mailsTo("", "password-reset")) != 0 {
			t.Error("reset link sent to an unverified address")
		}
		if e := f.lastEvent(audit.PasswordResetAttempt); e.UserID != u.ID {
			t.Errorf("event %+v", e)
		}

		// By a verified secondary address (any case): the link goes there.
		dave := f.registerVerified("dave")
		mustAddEmail(t, f, dave.ID, "dave.work@example.com")
		_, err := f.s.VerifyEmail(f.ctx, dave.ID, f.token("dave.work@example.com", "verify-email"), c)
		must(t, err)
		must(t, f.s.RequestPasswordReset(f.ctx, "DAVE.Work@example.com", c))
		f.lastMail("dave.work@example.com", "password-reset")
		if len(f.mailsTo("dave@example.com", "password-reset")) != 0 {
			t.Error("link sent to the primary instead of the matched address")
		}

		// By an unverified secondary address: the note goes there.
		mustAddEmail(t, f, dave.ID, "dave.old@example.com")
		must(t, f.s.RequestPasswordReset(f.ctx, "dave.old@example.com", c))
		f.lastMail("dave.old@example.com", "password-reset-unverified")

		// Administrators get links too (no support team to recover them).
		admin, err := f.s.Create(f.ctx, NewUser{Username: "root", Email: "root@example.com", Password: goodPassword, IsAdmin: true})
		must(t, err)
		_, err = d.Exec(`UPDATE user_emails SET verified = TRUE WHERE user_id = $1`, admin.ID)
		must(t, err)
		must(t, f.s.RequestPasswordReset(f.ctx, "root", c))
		f.lastMail("root@example.com", "password-reset")

		// No address at all: nothing to send, no error.
		_, err = f.s.Create(f.ctx, NewUser{Username: "mailless", Password: goodPassword})
		must(t, err)
		must(t, f.s.RequestPasswordReset(f.ctx, "mailless", c))
	})
}

func TestPasswordResetLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.registerVerified("alice")
		for i := range 5 {
			must(t, f.s.RequestPasswordReset(f.ctx, "alice", client(string(rune('a'+i)))))
		}
		err := f.s.RequestPasswordReset(f.ctx, "alice", client("z"))
		wantLimited(t, err, "Too many password resets have been requested for this account without completing them. Check your inbox and follow the verification links.")
		if n := len(f.mailsTo("alice@example.com", "password-reset")); n != 5 {
			t.Errorf("%d reset emails, want 5", n)
		}
		// Completing a reset clears the count.
		tok := f.token("alice@example.com", "password-reset")
		_, err = f.s.ResetPassword(f.ctx, tok, newPassword, newPassword, client("z"))
		must(t, err)
		must(t, f.s.RequestPasswordReset(f.ctx, "alice", client("z")))
		// And otherwise the day passes.
		for range 4 {
			must(t, f.s.RequestPasswordReset(f.ctx, "alice", client("z")))
		}
		wantLimited(t, f.s.RequestPasswordReset(f.ctx, "alice", client("z")), "Too many password resets")
		f.clock.Advance(24 * time.Hour)
		must(t, f.s.RequestPasswordReset(f.ctx, "alice", client("z")))
	})
}

func TestChangePassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		unverified := f.register("bob")
		c := client("192.0.2.1")

		err := f.s.ChangePassword(f.ctx, u.ID, "wrong-current", newPassword, newPassword, c)
		wantErr(t, err, derrors.Invalid, "The password is invalid. Try again.")
		if e := f.lastEvent(audit.ReauthFailure); e.UserID != u.ID {
			t.Errorf("event %+v", e)
		}
		err = f.s.ChangePassword(f.ctx, u.ID, goodPassword, "password1", "password1", c)
		wantErr(t, err, derrors.Invalid, msgCommonPassword)

		f.clock.Advance(time.Hour)
		must(t, f.s.ChangePassword(f.ctx, u.ID, goodPassword, newPassword, newPassword, c))
		got, _ := f.s.ByID(f.ctx, u.ID)
		if !got.PasswordDate.Equal(f.clock.Now().Truncate(time.Microsecond)) || got.PasswordDate.Equal(u.PasswordDate) {
			t.Errorf("password date %v", got.PasswordDate)
		}
		if e := f.lastEvent(audit.PasswordChange); e.UserID != u.ID || e.ActorID != u.ID {
			t.Errorf("event %+v", e)
		}
		if m := f.lastMail("alice@example.com", "password-change"); m.Data["Username"] != "alice" {
			t.Errorf("password-change %+v", m)
		}
		if _, err := f.s.CheckLogin(f.ctx, "alice", newPassword, c); err != nil {
			t.Errorf("new password: %v", err)
		}
		// Security notices go to verified addresses only.
		must(t, f.s.ChangePassword(f.ctx, unverified.ID, goodPassword, newPassword, newPassword, c))
		if len(f.mailsTo("bob@example.com", "password-change")) != 0 {
			t.Error("notice sent to an unverified address")
		}
	})
}

// TestResetRequestsPerIP: one client cannot spray reset requests, whether
// or not the accounts exist (spec E3), and another client is unaffected.
func TestResetRequestsPerIP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for i := 0; i < 20; i++ {
			if err := f.s.RequestPasswordReset(f.ctx, fmt.Sprintf("nobody%d", i), client("7.7.7.7")); err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
		if err := f.s.RequestPasswordReset(f.ctx, "nobody-else", client("7.7.7.7")); !errors.Is(err, derrors.RateLimited) {
			t.Fatalf("21st request from one IP: got %v, want a rate limit", err)
		}
		if err := f.s.RequestPasswordReset(f.ctx, "nobody-else", client("8.8.8.8")); err != nil {
			t.Errorf("another IP: %v", err)
		}
	})
}
