package audit

import (
	"context"
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

func TestDescribeKnowsEveryTagItUses(t *testing.T) {
	for _, tag := range []string{AccountCreate, LoginSuccess, LoginFailure, EmailAdd, EmailVerified, PasswordReset,
		TwoFactorAdded, TwoFactorRemoved, RecoveryCodesGenerated, RecoveryCodeUsed, LoginNewDevice, DeviceRevoked,
		AdminUserDisabled, AdminAccountRecovery, Logout, SessionRevoked} {
		if got := Describe(Stored{Event: Event{Tag: tag}}); got == tag {
			t.Errorf("Describe(%s) falls back to the raw tag", tag)
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
