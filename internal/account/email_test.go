package account

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func TestVerifyEmail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.register("alice")
		bob := f.register("bob")
		c := client("192.0.2.1")
		tok := f.token("alice@example.com", "verify-email")

		// Someone else's session, garbage, or a token of another purpose.
		_, err := f.s.VerifyEmail(f.ctx, bob.ID, tok, c)
		wantErr(t, err, derrors.NotFound, "Invalid verification link")
		_, err = f.s.VerifyEmail(f.ctx, alice.ID, "not-a-token", c)
		wantErr(t, err, derrors.NotFound, "Invalid verification link")
		_, err = f.s.VerifyEmail(f.ctx, alice.ID, "", c)
		wantErr(t, err, derrors.NotFound, "Invalid verification link")

		f.clock.Advance(6*time.Hour - time.Second)
		e, err := f.s.VerifyEmail(f.ctx, alice.ID, tok, c)
		must(t, err)
		if !e.Verified || !e.Primary || e.Email != "alice@example.com" {
			t.Errorf("verified %+v", e)
		}
		if u, _ := f.s.ByID(f.ctx, alice.ID); !u.PrimaryVerified {
			t.Error("primary not verified")
		}
		ev := f.lastEvent(audit.EmailVerified)
		if ev.UserID != alice.ID || ev.Additional["email"] != "alice@example.com" || ev.Additional["primary"] != true {
			t.Errorf("event %+v", ev)
		}
		// Single use.
		_, err = f.s.VerifyEmail(f.ctx, alice.ID, tok, c)
		wantErr(t, err, derrors.Invalid, "This email address is already verified.")

		// Expiry at 6 hours: bob's link was sent with alice's.
		tok = f.token("bob@example.com", "verify-email")
		f.clock.Advance(time.Second)
		_, err = f.s.VerifyEmail(f.ctx, bob.ID, tok, c)
		wantErr(t, err, derrors.Invalid, "This verification link has expired. Request a new one.")
		if u, _ := f.s.ByID(f.ctx, bob.ID); u.PrimaryVerified {
			t.Error("verified by an expired link")
		}

		// A reset token is no verification token.
		must(t, f.s.RequestPasswordReset(f.ctx, "alice", c))
		_, err = f.s.VerifyEmail(f.ctx, alice.ID, f.token("alice@example.com", "password-reset"), c)
		wantErr(t, err, derrors.NotFound, "Invalid verification link")
	})
}

func TestResendVerification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.register("alice") // first verification email: 1 of 3
		emails, err := f.s.Emails(f.ctx, u.ID)
		must(t, err)
		id := emails[0].ID
		c := client("192.0.2.1")
		for range 2 {
			must(t, f.s.ResendVerification(f.ctx, u.ID, id, c))
		}
		if n := len(f.mailsTo("alice@example.com", "verify-email")); n != 3 {
			t.Errorf("%d verification emails, want 3", n)
		}
		if e := f.lastEvent(audit.EmailReverify); e.UserID != u.ID || e.Additional["email"] != "alice@example.com" {
			t.Errorf("event %+v", e)
		}
		err = f.s.ResendVerification(f.ctx, u.ID, id, c)
		wantLimited(t, err, "Too many incomplete attempts to verify email address(es) for alice. Complete a pending verification or wait before attempting again.")
		f.clock.Advance(6 * time.Hour)
		must(t, f.s.ResendVerification(f.ctx, u.ID, id, c))
		// Any of the links works; verifying clears the limit.
		_, err = f.s.VerifyEmail(f.ctx, u.ID, f.token("alice@example.com", "verify-email"), c)
		must(t, err)
		err = f.s.ResendVerification(f.ctx, u.ID, id, c)
		wantErr(t, err, derrors.Invalid, "This email address is already verified.")
		// Another user's address id is not found.
		bob := f.register("bob")
		err = f.s.ResendVerification(f.ctx, bob.ID, id, c)
		wantErr(t, err, derrors.NotFound, "Email address not found.")
	})
}

func TestAddEmail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		c := client("192.0.2.1")

		second, err := f.s.AddEmail(f.ctx, u.ID, " second@example.com ", c)
		must(t, err)
		if second.Email != "second@example.com" || second.Primary || second.Verified {
			t.Errorf("added %+v", second)
		}
		// A verification link to the new address, a notice to the verified
		// primary.
		m := f.lastMail("second@example.com", "verify-email")
		if m.Data["Username"] != "alice" || m.Data["Email"] != "second@example.com" {
			t.Errorf("verify-email %+v", m)
		}
		n := f.lastMail("alice@example.com", "new-email-added")
		if n.Data["Username"] != "alice" || n.Data["NewEmail"] != "second@example.com" || len(n.Data) != 2 {
			t.Errorf("new-email-added %+v", n)
		}
		if e := f.lastEvent(audit.EmailAdd); e.UserID != u.ID || e.Additional["email"] != "second@example.com" {
			t.Errorf("event %+v", e)
		}

		// email.add: 2 per IP per day without verifying.
		_, err = f.s.AddEmail(f.ctx, u.ID, "third@example.com", c)
		must(t, err)
		// The unverified second address gets no notice of the third.
		if len(f.mailsTo("second@example.com", "new-email-added")) != 0 {
			t.Error("unverified address notified")
		}
		if got := len(f.mailsTo("alice@example.com", "new-email-added")); got != 2 {
			t.Errorf("primary got %d notices, want 2", got)
		}
		_, err = f.s.AddEmail(f.ctx, u.ID, "fourth@example.com", c)
		wantLimited(t, err, "Too many emails have been added to this account without verifying them. Check your inbox and follow the verification links. (IP: 192.0.2.1)")
		_, err = f.s.VerifyEmail(f.ctx, u.ID, f.token("second@example.com", "verify-email"), c)
		must(t, err)
		_, err = f.s.AddEmail(f.ctx, u.ID, "fourth@example.com", c)
		must(t, err)
		// Now both verified addresses hear of it.
		if len(f.mailsTo("second@example.com", "new-email-added")) != 1 {
			t.Error("verified second address not notified")
		}

		// Taken addresses, ignoring case, also another user's.
		_, err = f.s.AddEmail(f.ctx, u.ID, "SECOND@example.com", client("2"))
		wantErr(t, err, derrors.Conflict, "This email address is already being used by another account.")
		f.register("bob")
		_, err = f.s.AddEmail(f.ctx, u.ID, "Bob@Example.com", client("2"))
		wantErr(t, err, derrors.Conflict, "This email address is already being used by another account.")
		_, err = f.s.AddEmail(f.ctx, u.ID, "not an address", client("2"))
		wantErr(t, err, derrors.Invalid, "The email address isn't valid.")

		// At most 10 addresses.
		for i := 5; i <= MaxEmailsPerUser; i++ {
			_, err := f.s.AddEmail(f.ctx, u.ID, fmt.Sprintf("n%d@example.com", i), client(fmt.Sprint("ip", i)))
			must(t, err)
		}
		_, err = f.s.AddEmail(f.ctx, u.ID, "eleven@example.com", client("ip11"))
		wantErr(t, err, derrors.Invalid, "You can't add more than 10 email addresses")

		emails, err := f.s.Emails(f.ctx, u.ID)
		must(t, err)
		if len(emails) != MaxEmailsPerUser || !emails[0].Primary || emails[0].Email != "alice@example.com" {
			t.Errorf("Emails = %+v", emails)
		}
	})
}

func TestRemoveEmail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		bob := f.register("bob")
		c := client("192.0.2.1")
		extra, err := f.s.AddEmail(f.ctx, u.ID, "extra@example.com", c)
		must(t, err)
		emails, _ := f.s.Emails(f.ctx, u.ID)

		err = f.s.RemoveEmail(f.ctx, u.ID, emails[0].ID, c)
		wantErr(t, err, derrors.Invalid, "Cannot remove primary email address")
		err = f.s.RemoveEmail(f.ctx, bob.ID, extra.ID, c)
		wantErr(t, err, derrors.NotFound, "Email address not found.")

		tok := f.token("extra@example.com", "verify-email")
		must(t, f.s.RemoveEmail(f.ctx, u.ID, extra.ID, c))
		if e := f.lastEvent(audit.EmailRemove); e.UserID != u.ID || e.Additional["email"] != "extra@example.com" {
			t.Errorf("event %+v", e)
		}
		if emails, _ := f.s.Emails(f.ctx, u.ID); len(emails) != 1 {
			t.Errorf("Emails = %+v", emails)
		}
		// Its pending link went with it.
		_, err = f.s.VerifyEmail(f.ctx, u.ID, tok, c)
		wantErr(t, err, derrors.NotFound, "Invalid verification link")
		// The address is free again.
		_, err = f.s.AddEmail(f.ctx, bob.ID, "extra@example.com", client("3"))
		must(t, err)
	})
}

func TestSetPrimary(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		c := client("192.0.2.1")
		extra, err := f.s.AddEmail(f.ctx, u.ID, "new@example.com", c)
		must(t, err)

		err = f.s.SetPrimary(f.ctx, u.ID, extra.ID, c)
		wantErr(t, err, derrors.Invalid, "Verify this email address before making it your primary address.")
		_, err = f.s.VerifyEmail(f.ctx, u.ID, f.token("new@example.com", "verify-email"), c)
		must(t, err)
		bob := f.register("bob")
		err = f.s.SetPrimary(f.ctx, bob.ID, extra.ID, c)
		wantErr(t, err, derrors.NotFound, "Email address not found.")

		must(t, f.s.SetPrimary(f.ctx, u.ID, extra.ID, c))
		got, _ := f.s.ByID(f.ctx, u.ID)
		if got.PrimaryEmail != "new@example.com" || !got.PrimaryVerified {
			t.Errorf("user %+v", got)
		}
		emails, _ := f.s.Emails(f.ctx, u.ID)
		if len(emails) != 2 || emails[0].Email != "new@example.com" || !emails[0].Primary || emails[1].Primary {
			t.Errorf("Emails = %+v", emails)
		}
		// The notice goes to the old address, not the new one.
		m := f.lastMail("alice@example.com", "primary-email-change")
		if m.Data["Username"] != "alice" || m.Data["OldEmail"] != "alice@example.com" || m.Data["NewEmail"] != "new@example.com" || len(m.Data) != 3 {
			t.Errorf("primary-email-change %+v", m)
		}
		if len(f.mailsTo("new@example.com", "primary-email-change")) != 0 {
			t.Error("notice sent to the new address")
		}
		e := f.lastEvent(audit.EmailPrimaryChange)
		if e.UserID != u.ID || e.Additional["old"] != "alice@example.com" || e.Additional["new"] != "new@example.com" {
			t.Errorf("event %+v", e)
		}
		// Already primary: nothing happens.
		must(t, f.s.SetPrimary(f.ctx, u.ID, extra.ID, c))
		if n := f.count(`SELECT COUNT(*) FROM events WHERE tag = $1`, audit.EmailPrimaryChange); n != 1 {
			t.Errorf("%d primary-change events", n)
		}
	})
}

func TestReplaceUnverifiedPrimary(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.register("alice")
		oldTok := f.token("alice@example.com", "verify-email")

		must(t, f.s.ReplaceUnverifiedPrimary(f.ctx, u.ID, "alice@typo-fixed.example", client("1")))
		got, _ := f.s.ByID(f.ctx, u.ID)
		if got.PrimaryEmail != "alice@typo-fixed.example" || got.PrimaryVerified {
			t.Errorf("user %+v", got)
		}
		if emails, _ := f.s.Emails(f.ctx, u.ID); len(emails) != 1 {
			t.Errorf("old address kept: %+v", emails)
		}
		_, err := f.s.VerifyEmail(f.ctx, u.ID, oldTok, client("1"))
		wantErr(t, err, derrors.NotFound, "Invalid verification link")
		e := f.lastEvent(audit.EmailPrimaryChange)
		if e.Additional["old"] != "alice@example.com" || e.Additional["new"] != "alice@typo-fixed.example" {
			t.Errorf("event %+v", e)
		}

		// email.change: 5 per 5 minutes per user, whatever the IP.
		for i := range 4 {
			must(t, f.s.ReplaceUnverifiedPrimary(f.ctx, u.ID, fmt.Sprintf("try%d@example.com", i), client(fmt.Sprint("ip", i))))
		}
		err = f.s.ReplaceUnverifiedPrimary(f.ctx, u.ID, "try9@example.com", client("ip9"))
		wantLimited(t, err, "Too many attempts to change the email address.")
		f.clock.Advance(5 * time.Minute)
		must(t, f.s.ReplaceUnverifiedPrimary(f.ctx, u.ID, "try9@example.com", client("ip9")))

		// The new address verifies with its own link; then the way is closed.
		_, err = f.s.VerifyEmail(f.ctx, u.ID, f.token("try9@example.com", "verify-email"), client("ip9"))
		must(t, err)
		err = f.s.ReplaceUnverifiedPrimary(f.ctx, u.ID, "later@example.com", client("x"))
		wantErr(t, err, derrors.Forbidden, "Your primary email address is already verified.")

		// Users with a project cannot use it.
		bob := f.register("bob")
		var pid int64
		must(t, d.QueryRow(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ('p', 'p', 'p', $1) RETURNING id`, time.Now()).Scan(&pid))
		_, err = d.Exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Maintainer')`, pid, bob.ID)
		must(t, err)
		err = f.s.ReplaceUnverifiedPrimary(f.ctx, bob.ID, "bob2@example.com", client("y"))
		wantErr(t, err, derrors.Forbidden, "Accounts with projects")
	})
}
