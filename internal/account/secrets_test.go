package account

import (
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestNoSecretsInEventsOrLogs drives every flow of the package, collects
// each password, raw token and link it used, and then looks for them in the
// audit trail, the throttle keys and the logs (spec J1). Only the outbox may
// hold links: that is its job.
func TestNoSecretsInEventsOrLogs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		c := Client{IP: "192.0.2.1", UserAgent: "secret-scan/1.0"}
		secrets := []string{goodPassword, newPassword, "wrong-password-xyz", "the-third-password-88"}
		links := func() {
			for _, m := range f.mails() {
				if l := m.Data["Link"]; l != "" {
					secrets = append(secrets, l, tokenOf(t, l))
				}
			}
		}

		root := f.admin("root")
		u := f.registerVerified("alice")
		_, err := f.s.CheckLogin(f.ctx, "alice", "wrong-password-xyz", c)
		if err == nil {
			t.Fatal("wrong password accepted")
		}
		_, err = f.s.CheckLogin(f.ctx, "alice", goodPassword, c)
		must(t, err)
		must(t, f.s.CompleteLogin(f.ctx, nil, u.ID, "", c))
		_ = f.s.CheckPassword(f.ctx, u.ID, "wrong-password-xyz", c)
		e, err := f.s.AddEmail(f.ctx, u.ID, "second@example.com", c)
		must(t, err)
		must(t, f.s.ResendVerification(f.ctx, u.ID, e.ID, c))
		_, err = f.s.VerifyEmail(f.ctx, u.ID, f.token("second@example.com", "verify-email"), c)
		must(t, err)
		must(t, f.s.SetPrimary(f.ctx, u.ID, e.ID, c))
		must(t, f.s.ChangePassword(f.ctx, u.ID, goodPassword, newPassword, newPassword, c))
		must(t, f.s.RequestPasswordReset(f.ctx, "alice", c))
		_, err = f.s.ResetPassword(f.ctx, f.token("second@example.com", "password-reset"), "the-third-password-88", "the-third-password-88", c)
		must(t, err)
		must(t, f.s.SetDisabled(f.ctx, root.ID, u.ID, true, "test", c))
		must(t, f.s.SetDisabled(f.ctx, root.ID, u.ID, false, "", c))
		must(t, f.s.SetRegistrationOpen(f.ctx, root.ID, false, c))
		must(t, f.s.SetReadOnly(f.ctx, root.ID, false, c))
		must(t, f.s.DeleteAccount(f.ctx, u.ID, "the-third-password-88", c))
		links()
		if len(secrets) < 10 {
			t.Fatalf("only %d secrets collected: the flow sent too few links", len(secrets))
		}

		var dump strings.Builder
		rows, err := d.Query(`SELECT tag, actor, ip, user_agent, additional FROM events`)
		must(t, err)
		n := 0
		for rows.Next() {
			var tag, actor, ip, ua, add string
			must(t, rows.Scan(&tag, &actor, &ip, &ua, &add))
			dump.WriteString(strings.Join([]string{tag, actor, ip, ua, add}, "|") + "\n")
			n++
		}
		must(t, rows.Err())
		rows.Close()
		if n < 15 {
			t.Errorf("only %d events recorded", n)
		}
		keys, err := d.Query(`SELECT key FROM throttle_hits`)
		must(t, err)
		for keys.Next() {
			var k string
			keys.Scan(&k)
			dump.WriteString(k + "\n")
		}
		keys.Close()
		var tokens strings.Builder
		th, err := d.Query(`SELECT token_hash, bound_json FROM one_time_tokens`)
		must(t, err)
		for th.Next() {
			var h, b string
			th.Scan(&h, &b)
			tokens.WriteString(h + b + "\n")
		}
		th.Close()

		for _, s := range secrets {
			if strings.Contains(dump.String(), s) {
				t.Errorf("events or throttle keys contain the secret %q", s)
			}
			if strings.Contains(f.logs.String(), s) {
				t.Errorf("logs contain the secret %q", s)
			}
			if strings.Contains(tokens.String(), s) {
				t.Errorf("one_time_tokens stores the secret %q, not only its hash", s)
			}
		}
	})
}
