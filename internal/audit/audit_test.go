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
