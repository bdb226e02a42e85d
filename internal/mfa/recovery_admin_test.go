package mfa

import (
	"database/sql"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const verifiedHow = "Video call; matched government ID and the GPG key on the project page."

func TestAdminRecover(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("192.0.2.200")
		root := f.admin("root")
		uid := f.user("alice", false) // unverified: the notice goes anyway
		_, err := d.Exec(`UPDATE user_emails SET verified = TRUE WHERE user_id = $1`, uid)
		mfaMust(t, err)
		f.enableTOTP(uid)
		f.addSecurityKey(uid, "YubiKey")
		tok, err := f.s.MarkDeviceKnown(f.ctx, nil, uid, "", c)
		mfaMust(t, err)
		mfaMust(t, f.s.RememberDevice(f.ctx, nil, uid, tok, c))
		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, attackerBrowser, c))
		now := f.clock.Now().UTC()
		_, err = d.Exec(`INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) VALUES ('s1', $1, $2, $2, $3)`,
			uid, now, now.Add(time.Hour))
		mfaMust(t, err)
		_, err = d.Exec(`UPDATE user_emails SET verified = FALSE WHERE user_id = $1`, uid)
		mfaMust(t, err)

		wantErr(t, f.s.AdminRecover(f.ctx, root, "root", uid, "trust me", c), derrors.Invalid, "Describe how you verified the person's identity.")
		wantErr(t, f.s.AdminRecover(f.ctx, root, "root", root, verifiedHow, c), derrors.Invalid, "your own account")
		mallory := f.user("mallory", true)
		wantErr(t, f.s.AdminRecover(f.ctx, mallory, "mallory", uid, verifiedHow, c), derrors.Forbidden, "Only administrators")
		wantErr(t, f.s.AdminRecover(f.ctx, root, "root", 9999, verifiedHow, c), derrors.NotFound, "No such user.")

		f.clock.Advance(time.Minute)
		mfaMust(t, f.s.AdminRecover(f.ctx, root, "root", uid, "  "+verifiedHow+"\n", c))

		for table, q := range map[string]string{
			"totp_secrets":         `SELECT count(*) FROM totp_secrets WHERE user_id = $1`,
			"webauthn_credentials": `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`,
			"recovery_codes":       `SELECT count(*) FROM recovery_codes WHERE user_id = $1`,
			"devices":              `SELECT count(*) FROM devices WHERE user_id = $1`,
			"pending_logins":       `SELECT count(*) FROM pending_logins WHERE user_id = $1`,
			"sessions":             `SELECT count(*) FROM sessions WHERE user_id = $1`,
		} {
			if n := f.count(q, uid); n != 0 {
				t.Errorf("%s: %d rows left", table, n)
			}
		}
		var hash string
		var pwDate time.Time
		var confirmed sql.NullTime
		mfaMust(t, d.QueryRow(`SELECT password_hash, password_date, recovery_confirmed_at FROM users WHERE id = $1`, uid).Scan(&hash, &pwDate, &confirmed))
		if hash != "" || !pwDate.Equal(f.clock.Now().UTC().Truncate(time.Microsecond)) || confirmed.Valid {
			t.Errorf("password hash %q, date %v, recovery confirmed %v", hash, pwDate, confirmed)
		}
		if ok, _ := f.s.HasTwoFactor(f.ctx, uid); ok {
			t.Error("HasTwoFactor after recovery")
		}

		var adminID int64
		var adminName, how string
		mfaMust(t, d.QueryRow(`SELECT admin_id, admin_name, verified_how FROM account_recoveries WHERE user_id = $1`, uid).Scan(&adminID, &adminName, &how))
		if adminID != root || adminName != "root" || how != verifiedHow {
			t.Errorf("account_recoveries row: %d %q %q", adminID, adminName, how)
		}
		ev := f.events(uid, "admin:user:account_recovery")
		if len(ev) != 1 || ev[0].ActorID != root || ev[0].Actor != "root" || ev[0].Additional["verified_how"] != verifiedHow || ev[0].IP != c.IP {
			t.Errorf("account recovery events %+v", ev)
		}
		m := f.lastMail("account-recovery")
		if m.To != "alice@example.com" || m.Data["Admin"] != "root" || m.Data["Username"] != "alice" {
			t.Errorf("account-recovery email %+v", m)
		}
	})
}
