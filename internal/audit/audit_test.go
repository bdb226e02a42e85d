package audit

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestRecordAndRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s := NewService(d, func() time.Time { return now })
		old := Event{UserID: 7, Tag: AccountCreate, Actor: "alice", ActorID: 7, IP: "192.0.2.1", UserAgent: "test"}
		if err := Record(ctx, d, now.Add(-100*24*time.Hour), old); err != nil {
			t.Fatal(err)
		}
		// Secrets never land in an event, whatever a caller passes.
		e := Event{UserID: 7, Tag: PasswordChange, Actor: "alice", ActorID: 7, IP: "192.0.2.1",
			Additional: map[string]any{"password": "hunter2hunter2", "reset_link": "https://x/?token=abc", "totp_code": "123456",
				"api_token": "pypi-AgE", "email": "alice@example.com", "key_label": "Blue key"}}
		if err := s.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		var raw string
		if err := d.QueryRow(`SELECT additional FROM events WHERE tag = $1`, PasswordChange).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"hunter2", "token=abc", "123456", "pypi-AgE"} {
			if strings.Contains(raw, secret) {
				t.Errorf("stored event %s contains %q", raw, secret)
			}
		}
		if !strings.Contains(raw, "alice@example.com") || !strings.Contains(raw, "Blue key") {
			t.Errorf("stored event %s lost its harmless details", raw)
		}

		// ForUser: newest first, only within the window, only that user.
		Record(ctx, d, now, Event{UserID: 8, Tag: AccountCreate})
		got, err := s.ForUser(ctx, 7, now.Add(-90*24*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Tag != PasswordChange {
			t.Fatalf("ForUser: got %+v, want only the recent password change", got)
		}
		if got[0].Additional["email"] != "alice@example.com" {
			t.Errorf("Additional: got %v", got[0].Additional)
		}
		if d := Describe(got[0]); d != "Password changed" {
			t.Errorf("Describe: got %q, want %q", d, "Password changed")
		}
	})
}

// TestDescribeKnowsEveryTag reads the tag constants from audit.go itself,
// so a tag added there without words of its own in Describe fails here
// (the security history would show "account api token …" instead).
func TestDescribeKnowsEveryTag(t *testing.T) {
	fset := token.NewFileSet()
	var tags []string
	for _, name := range []string{"audit.go", "organization.go", "upstream.go"} {
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						tags = append(tags, strings.Trim(lit.Value, `"`))
					}
				}
			}
		}
	}
	if len(tags) < 30 {
		t.Fatalf("found only %d tags in audit.go: %v", len(tags), tags)
	}
	for _, tag := range tags {
		got := Describe(Stored{Event: Event{Tag: tag}})
		if got == fallbackWords(tag) || got == tag || got == "" {
			t.Errorf("Describe(%s) = %q: the tag has no words of its own", tag, got)
		}
	}
}

func TestDescribeCollaboration(t *testing.T) {
	ev := func(tag string, userID, actorID int64, actor string, add map[string]any) Stored {
		return Stored{Event: Event{Tag: tag, UserID: userID, ActorID: actorID, Actor: actor, Additional: add}}
	}
	onAccount := map[string]any{"project_name": "demo", "role_name": "Maintainer", "submitted_by": "alice"}
	onProject := map[string]any{"target_user": "bob", "role_name": "Maintainer", "submitted_by": "alice"}
	for _, tc := range []struct {
		e    Stored
		want string
	}{
		{ev(AccountRoleInvite, 2, 1, "alice", onAccount), "Invited by alice to join project demo as Maintainer"},
		{ev(AccountRoleAdd, 2, 2, "bob", onAccount), "Joined project demo as Maintainer"},
		{ev(AccountRoleChange, 2, 1, "alice", onAccount), "Role on project demo changed to Maintainer by alice"},
		{ev(AccountRoleRemove, 2, 1, "alice", onAccount), "Removed from project demo (was Maintainer) by alice"},
		{ev(AccountRoleRemove, 2, 2, "bob", onAccount), "Left project demo (was Maintainer)"},
		{ev(AccountRoleDeclineInvite, 2, 2, "bob", onAccount), "Declined the invitation to join project demo as Maintainer"},
		{ev(AccountRoleRevokeInvite, 2, 1, "alice", onAccount), "Invitation to join project demo as Maintainer withdrawn by alice"},
		{ev(ProjectRoleInvite, 0, 1, "alice", onProject), "alice invited bob to be Maintainer"},
		{ev(ProjectRoleAdd, 0, 2, "bob", onProject), "bob joined as Maintainer"},
		{ev(ProjectRoleChange, 0, 1, "alice", onProject), "alice changed the role of bob to Maintainer"},
		{ev(ProjectRoleRemove, 0, 1, "alice", onProject), "alice removed bob (was Maintainer)"},
		{ev(ProjectRoleRemove, 0, 2, "bob", onProject), "bob left (was Maintainer)"},
		{ev(ProjectRoleDeclineInvite, 0, 2, "bob", onProject), "bob declined the invitation to be Maintainer"},
		{ev(ProjectRoleRevokeInvite, 0, 1, "alice", onProject), "alice withdrew the invitation of bob to be Maintainer"},
	} {
		if got := Describe(tc.e); got != tc.want {
			t.Errorf("Describe(%s by %s): got %q, want %q", tc.e.Tag, tc.e.Actor, got, tc.want)
		}
	}
}

// TestDescribeHidesInternalWords: what the history shows never carries a
// stored reason or method code as it is stored.
func TestDescribeHidesInternalWords(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		add  map[string]any
		want string
	}{
		{LoginFailure, map[string]any{"reason": "confirm_login_wrong_browser"},
			"Login confirmation link opened in a browser other than the one that logged in; nothing was confirmed"},
		{LoginFailure, map[string]any{"reason": "some_future_reason"}, "Failed login"},
		{LoginNewDevice, map[string]any{"two_factor_method": "recovery-code"},
			"Login with a recovery code from an unrecognized browser held until it is confirmed from the emailed link; not logged in yet"},
		{LoginNewDevice, map[string]any{"two_factor_method": "totp"},
			"Login with an authentication app from an unrecognized browser held until it is confirmed from the emailed link; not logged in yet"},
		{RecoveryCodeUsed, nil, "Recovery code used to log in (it cannot be used again)"},
		{LoginSuccess, map[string]any{"two_factor_method": "email-confirmation"}, "Logged in after confirming the login from the emailed link"},
		{LoginSuccess, map[string]any{"two_factor_method": "something-new"}, "Logged in with a second factor"},
		{APITokenAdded, map[string]any{"description": "laptop", "scope": "user"}, "API token created: laptop (whole account)"},
		{APITokenAdded, map[string]any{"description": "ci", "scope": "projects: a, b"}, "API token created: ci (projects a, b)"},
		{APITokenRemovedLeak, map[string]any{"description": "ci", "origin": "report"}, "API token revoked because it was found in public: ci"},
	} {
		got := Describe(Stored{Event: Event{Tag: tc.tag, Additional: tc.add}})
		if got != tc.want {
			t.Errorf("Describe(%s %v) = %q, want %q", tc.tag, tc.add, got, tc.want)
		}
		for _, internal := range []string{"_", "recovery-code", "totp", "email-confirmation"} {
			if strings.Contains(got, internal) {
				t.Errorf("Describe(%s %v) = %q shows the internal word %q", tc.tag, tc.add, got, internal)
			}
		}
	}
}

func TestForUserPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s := NewService(d, func() time.Time { return now })
		// 7 events of alice in the window, one older, one of bob.
		Record(ctx, d, now.Add(-100*24*time.Hour), Event{UserID: 7, Tag: AccountCreate})
		for i := range 7 {
			if err := Record(ctx, d, now.Add(time.Duration(i)*time.Minute), Event{UserID: 7, Tag: EmailSent,
				Additional: map[string]any{"subject": fmt.Sprint(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		Record(ctx, d, now, Event{UserID: 8, Tag: AccountCreate})
		since := now.Add(-90 * 24 * time.Hour)
		var got []string
		for page := 1; ; page++ {
			evs, more, err := s.ForUserPage(ctx, 7, since, page, 3)
			if err != nil {
				t.Fatal(err)
			}
			var subjects []string
			for _, e := range evs {
				subjects = append(subjects, fmt.Sprint(e.Additional["subject"]))
			}
			got = append(got, strings.Join(subjects, ","))
			if !more {
				break
			}
			if page > 5 {
				t.Fatal("more pages than events")
			}
		}
		if want := []string{"6,5,4", "3,2,1", "0"}; !slices.Equal(got, want) {
			t.Errorf("pages: got %q, want %q (newest first, the old event left out)", got, want)
		}
		evs, more, err := s.ForUserPage(ctx, 7, since, 4, 3)
		if err != nil || len(evs) != 0 || more {
			t.Errorf("page 4: got %d events, more %v, err %v; want none", len(evs), more, err)
		}
		if _, _, err := s.ForUserPage(ctx, 7, since, 0, 3); err == nil {
			t.Error("page 0: no error")
		}
	})
}

// TestDescribeBusy: a login refused because the hasher was busy reads as a
// refusal, not as a wrong password.
func TestDescribeBusy(t *testing.T) {
	for tag, want := range map[string]string{
		LoginFailure:  "Login refused: too many sign-ins were in progress to check the password",
		ReauthFailure: "Password confirmation refused: too many sign-ins were in progress to check it",
	} {
		if got := Describe(Stored{Event: Event{Tag: tag, Additional: map[string]any{"reason": "busy"}}}); got != want {
			t.Errorf("Describe(%s, busy) = %q, want %q", tag, got, want)
		}
	}
}
