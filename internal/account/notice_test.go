package account

import (
	"database/sql"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// TestSendNoticeRecipients checks the one rule for security notices: every
// verified address; an unverified one only for the templates that must
// reach an unverified primary.
func TestSendNoticeRecipients(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("nora")
		if _, err := d.Exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES
			($1, 'nora-work@example.com', 'nora-work@example.com', FALSE, TRUE, $2),
			($1, 'nora-old@example.com', 'nora-old@example.com', FALSE, FALSE, $2)`, u.ID, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		send := func(template string) {
			t.Helper()
			err := d.InTx(f.ctx, func(tx *sql.Tx) error {
				return SendNotice(f.ctx, tx, f.notify, f.clock.Now(), client("10.9.9.9"), Notice{
					Event: audit.Event{UserID: u.ID, Tag: audit.PasswordChange}, Template: template, Data: map[string]any{"Username": "nora"}})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		send("password-change")
		for addr, want := range map[string]int{"nora@example.com": 1, "nora-work@example.com": 1, "nora-old@example.com": 0} {
			if got := len(f.mailsTo(addr, "password-change")); got != want {
				t.Errorf("password-change notices to %s: %d, want %d", addr, got, want)
			}
		}
		if n := f.count(`SELECT count(*) FROM events WHERE user_id = $1 AND tag = $2 AND ip = '10.9.9.9'`, u.ID, audit.PasswordChange); n != 1 {
			t.Errorf("the notice's event was recorded %d times with the client's IP, want once", n)
		}

		// An unverified primary hears only what it must.
		if _, err := d.Exec(`UPDATE user_emails SET verified = FALSE WHERE user_id = $1 AND is_primary`, u.ID); err != nil {
			t.Fatal(err)
		}
		send("password-change")
		if got := len(f.mailsTo("nora@example.com", "password-change")); got != 1 {
			t.Errorf("an unverified primary got a password-change notice (%d in all, want the 1 from before)", got)
		}
		send(mail.TemplateUnrecognizedLogin)
		if got := len(f.mailsTo("nora@example.com", mail.TemplateUnrecognizedLogin)); got != 1 {
			t.Errorf("an unverified primary got %d new-browser links, want 1: without it the owner cannot log in", got)
		}
		if got := len(f.mailsTo("nora-old@example.com", mail.TemplateUnrecognizedLogin)); got != 0 {
			t.Errorf("an unverified secondary address got the new-browser link")
		}
	})
}
