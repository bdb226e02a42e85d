package mfa

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func TestDevicesKnownAndRemembered(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("192.0.2.1")
		alice, bob := f.user("alice", true), f.user("bob", true)

		tok, err := f.s.MarkDeviceKnown(f.ctx, nil, alice, "", c)
		mfaMust(t, err)
		if !wellFormedDeviceToken(tok) {
			t.Fatalf("device token %q is not 32 bytes of base64url", tok)
		}
		if strings.Contains(strings.Join(f.column(`SELECT token_hash FROM devices`), " "), tok) {
			t.Error("devices stores the raw token")
		}
		for _, tt := range []struct {
			user  int64
			token string
			want  bool
		}{
			{alice, tok, true}, {bob, tok, false}, {alice, "", false}, {alice, "garbage", false}, {alice, tok + "x", false},
		} {
			if got, err := f.s.DeviceKnown(f.ctx, tt.user, tt.token); err != nil || got != tt.want {
				t.Errorf("DeviceKnown(%d, %.10q) = %v, %v; want %v", tt.user, tt.token, got, err, tt.want)
			}
		}

		// The same browser signing in again keeps its token; a second
		// account in it shares the cookie.
		again, err := f.s.MarkDeviceKnown(f.ctx, nil, alice, tok, mfaClient("192.0.2.2"))
		mfaMust(t, err)
		shared, err := f.s.MarkDeviceKnown(f.ctx, nil, bob, tok, c)
		mfaMust(t, err)
		if again != tok || shared != tok {
			t.Error("a token the server minted was replaced")
		}
		// A token the server never minted (planted in the cookie) is replaced.
		planted := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if !wellFormedDeviceToken(planted) {
			t.Fatal("test token malformed")
		}
		got, err := f.s.MarkDeviceKnown(f.ctx, nil, bob, planted, c)
		mfaMust(t, err)
		if got == planted {
			t.Error("a planted device token was accepted")
		}
		if known, _ := f.s.DeviceKnown(f.ctx, bob, planted); known {
			t.Error("the planted token became known")
		}

		// Remembering: 30 days, then the clock ends it.
		if ok, _ := f.s.Remembered(f.ctx, alice, tok); ok {
			t.Error("remembered before RememberDevice")
		}
		if err := f.s.RememberDevice(f.ctx, nil, alice, got, c); err == nil {
			t.Error("remembered a browser that is not known to this user")
		}
		mfaMust(t, f.s.RememberDevice(f.ctx, nil, alice, tok, c))
		if ev := f.events(alice, "account:two_factor:device_remembered"); len(ev) != 1 {
			t.Errorf("%d device_remembered events, want 1", len(ev))
		}
		if ok, _ := f.s.Remembered(f.ctx, bob, tok); ok {
			t.Error("remembered for alice means remembered for bob")
		}
		f.clock.Advance(30*24*time.Hour - time.Second)
		if ok, _ := f.s.Remembered(f.ctx, alice, tok); !ok {
			t.Error("not remembered within 30 days")
		}
		f.clock.Advance(time.Second)
		if ok, _ := f.s.Remembered(f.ctx, alice, tok); ok {
			t.Error("still remembered after 30 days")
		}
		if known, _ := f.s.DeviceKnown(f.ctx, alice, tok); !known {
			t.Error("an expired grant forgot the device")
		}

		mfaMust(t, f.s.RememberDevice(f.ctx, nil, alice, tok, c))
		mfaMust(t, d.InTx(f.ctx, func(tx *sql.Tx) error { return f.s.ForgetRememberedDevices(f.ctx, tx, alice) }))
		if ok, _ := f.s.Remembered(f.ctx, alice, tok); ok {
			t.Error("remembered after ForgetRememberedDevices")
		}
	})
}

func TestDevicesListAndRevoke(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		alice, bob := f.user("alice", true), f.user("bob", true)
		first, err := f.s.MarkDeviceKnown(f.ctx, nil, alice, "", clientUA("198.51.100.1", "Firefox"))
		mfaMust(t, err)
		f.clock.Advance(time.Hour)
		_, err = f.s.MarkDeviceKnown(f.ctx, nil, alice, "", clientUA("198.51.100.2", "Chromium"))
		mfaMust(t, err)
		f.clock.Advance(time.Hour)
		mfaMust(t, f.s.RememberDevice(f.ctx, nil, alice, first, clientUA("198.51.100.3", "Firefox")))
		_, err = f.s.MarkDeviceKnown(f.ctx, nil, alice, first, clientUA("198.51.100.3", "Firefox"))
		mfaMust(t, err)
		_, err = f.s.MarkDeviceKnown(f.ctx, nil, bob, "", clientUA("198.51.100.9", "Safari"))
		mfaMust(t, err)

		list, err := f.s.Devices(f.ctx, alice)
		mfaMust(t, err)
		if len(list) != 2 || list[0].UserAgent != "Firefox" || list[0].IP != "198.51.100.3" || list[1].UserAgent != "Chromium" {
			t.Fatalf("devices %+v: want Firefox (latest use) then Chromium", list)
		}
		if list[0].RememberUntil.IsZero() || !list[1].RememberUntil.IsZero() {
			t.Errorf("RememberUntil: %v, %v", list[0].RememberUntil, list[1].RememberUntil)
		}
		if !list[0].CreatedAt.Before(list[0].LastUsedAt) {
			t.Errorf("created %v, last used %v", list[0].CreatedAt, list[0].LastUsedAt)
		}

		bobs, err := f.s.Devices(f.ctx, bob)
		mfaMust(t, err)
		wantErr(t, f.s.RevokeDevice(f.ctx, alice, bobs[0].ID, mfaClient("192.0.2.1")), derrors.NotFound, "No such device.")
		if n := f.count(`SELECT count(*) FROM devices WHERE user_id = $1`, bob); n != 1 {
			t.Fatal("alice revoked bob's device")
		}
		mfaMust(t, f.s.RevokeDevice(f.ctx, alice, list[0].ID, mfaClient("192.0.2.1")))
		if known, _ := f.s.DeviceKnown(f.ctx, alice, first); known {
			t.Error("revoked device still known")
		}
		if ok, _ := f.s.Remembered(f.ctx, alice, first); ok {
			t.Error("revoked device still remembered")
		}
		if ev := f.events(alice, "account:device:revoked"); len(ev) != 1 || ev[0].Additional["device"] != "Firefox" {
			t.Errorf("device revoked events %+v", ev)
		}
	})
}

func clientUA(ip, ua string) account.Client { return account.Client{IP: ip, UserAgent: ua} }

// column returns the values of a one-column query.
func (f *mfaFixture) column(query string, args ...any) []string {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, query, args...)
	mfaMust(f.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		mfaMust(f.t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}
