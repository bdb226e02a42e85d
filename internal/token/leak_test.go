package token

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// addEmail gives a user an address.
func addEmail(t *testing.T, d *db.DB, userID int64, addr string, verified bool) {
	t.Helper()
	if _, err := d.Exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES ($1, $2, $2, TRUE, $3, $4)`,
		userID, addr, verified, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
}

type outboxRow struct{ to, subject, text string }

func (f *fixture) outbox(t *testing.T) []outboxRow {
	t.Helper()
	rows, err := f.d.Query(`SELECT to_addr, subject, text_body FROM outbox WHERE template = 'token-compromised-leak' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.to, &r.subject, &r.text); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestRevokeLeaked: spec §1.7. A reported genuine token is deleted at once,
// recorded and its owner emailed (even at an unverified address); anything
// else in the report (a forged signature on a real id, an unknown or
// malformed value, the same token again) revokes nothing and says nothing.
func TestRevokeLeaked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		addEmail(t, d, f.alice, "alice@example.com", false)
		addEmail(t, d, f.bob, "bob@example.com", true)
		leaked, tok := f.create(t, f.alice, "laptop", nil, nil)
		kept, _ := f.create(t, f.alice, "ci", []string{"a"}, nil)
		past := f.clock.Now().Add(time.Hour)
		bobs, _ := f.create(t, f.bob, "bob's", nil, &past)
		f.clock.Advance(2 * time.Hour) // bob's has expired: still revoked when it leaks

		// A token with kept's id but a signature of our own making: whoever
		// knows an id but not the token must not be able to revoke it.
		m, err := parse(kept)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := mint(rootKey([]byte(strings.Repeat("x", 32)), string(m.Id())), string(m.Id()), "localhost:8080", nil)
		if err != nil {
			t.Fatal(err)
		}
		// An attenuated copy of bob's token is bob's token too.
		bobsNarrowed, err := Attenuate(bobs, `[1,["c"]]`)
		if err != nil {
			t.Fatal(err)
		}
		reporter := Origin{Client: account.Client{IP: "198.51.100.4", UserAgent: "scanner"}}
		got, err := f.s.RevokeLeaked(ctx, []Leak{
			{Token: "  " + leaked + "\n", URL: "https://gist.example/alice/1"},
			{Token: leaked, URL: "https://gist.example/alice/again"},
			{Token: forged, URL: "https://x.example/"},
			{Token: "pypi-not-a-token"},
			{Token: "hello"},
			{Token: bobsNarrowed},
		}, reporter)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != tok.ID || got[0].Username != "alice" || got[1].Username != "bob" {
			t.Fatalf("revoked %+v, want alice's laptop and bob's token", got)
		}
		wantKind(t, mustAuthErr(f, leaked), derrors.Unauthenticated, "")
		wantKind(t, mustAuthErr(f, bobs), derrors.Unauthenticated, "")
		if _, err := f.s.Authenticate(ctx, kept); err != nil {
			t.Errorf("the token whose id was forged stopped working: %v", err)
		}

		evs := f.events(t, audit.APITokenRemovedLeak)
		if len(evs) != 2 {
			t.Fatalf("%d %s events, want 2", len(evs), audit.APITokenRemovedLeak)
		}
		if e := evs[0]; e.userID != f.alice || e.actorID != 0 || e.actor != "leak report" || e.ip != "198.51.100.4" ||
			e.add["token_id"] != tok.ID || e.add["description"] != "laptop" || e.add["public_url"] != "https://gist.example/alice/1" ||
			e.add["origin"] != "report" || e.add["scope"] != "user" {
			t.Errorf("leak event = %+v", e)
		}
		mails := f.outbox(t)
		if len(mails) != 2 {
			t.Fatalf("%d leak emails, want 2: %+v", len(mails), mails)
		}
		if m := mails[0]; m.to != "alice@example.com" || m.subject != "[Gatehouse] Your API credentials from Gatehouse were found on a public webpage" ||
			!strings.Contains(m.text, `"laptop" (whole account)`) || !strings.Contains(m.text, "https://gist.example/alice/1") ||
			!strings.Contains(m.text, "http://localhost:8080/manage/account/token/") {
			t.Errorf("alice's email (to her unverified address, as PyPI sends it) = %+v", m)
		}
		for _, m := range mails {
			if strings.Contains(m.text, leaked) || strings.Contains(m.text, bobs) {
				t.Errorf("an email holds the token itself: %s", m.text)
			}
		}

		// An administrator, from the command line: the email says so.
		got, err = f.s.RevokeLeaked(ctx, []Leak{{Token: kept}}, Origin{CommandLine: true})
		if err != nil || len(got) != 1 {
			t.Fatalf("RevokeLeaked from the command line: %+v, %v", got, err)
		}
		evs = f.events(t, audit.APITokenRemovedLeak)
		if e := evs[len(evs)-1]; e.actor != "command line" || e.add["origin"] != "command line" || e.add["public_url"] != "" {
			t.Errorf("administrator's leak event = %+v", e)
		}
		if mails := f.outbox(t); mails[len(mails)-1].subject != "[Gatehouse] An administrator revoked one of your API tokens" {
			t.Errorf("administrator's email subject = %q", mails[len(mails)-1].subject)
		}
		// project:api_token:removed is not recorded for a leak; the
		// account event carries it all.
		if n := f.count(t, `SELECT count(*) FROM api_tokens`); n != 0 {
			t.Errorf("%d tokens left, want 0", n)
		}

		// A report with a bad url revokes nothing, not even its good tokens.
		again, _ := f.create(t, f.alice, "again", nil, nil)
		_, err = f.s.RevokeLeaked(ctx, []Leak{{Token: again}, {Token: "x", URL: "https://x.example/\x07y"}}, reporter)
		wantKind(t, err, derrors.Invalid, "Report 2: the url must be at most 2000 characters, without control characters.")
		if _, err := f.s.Authenticate(ctx, again); err != nil {
			t.Errorf("a refused report revoked a token: %v", err)
		}
	})
}
