package mfa

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestNoSecretsInEventsOrLogs drives every flow of this part of the
// package, collects each TOTP secret and code, recovery code, device token,
// confirmation link and its token, and looks for them in the audit trail,
// the throttle keys, the logs and the tables that hold only hashes (spec
// J1). Only the outbox may hold links: that is its job.
func TestNoSecretsInEventsOrLogs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := clientUA("192.0.2.1", "secret-scan/1.0")
		var secrets []string
		root := f.admin("root")
		uid := f.user("alice", true)

		codes, err := f.s.GenerateRecoveryCodes(f.ctx, uid, c)
		mfaMust(t, err)
		secrets = append(secrets, codes...)
		mfaMust(t, f.s.ConfirmRecoveryCodes(f.ctx, uid, codes[0], c))
		setup, err := f.s.NewTOTP("alice")
		mfaMust(t, err)
		raw, _ := decodeSecret(setup.Secret)
		secrets = append(secrets, setup.Secret, strings.ToLower(setup.Secret), hex.EncodeToString(raw))
		code := f.code(raw, 0)
		secrets = append(secrets, code)
		mfaMust(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, code, c))
		f.clock.Advance(totpPeriod * time.Second)
		code = f.code(raw, 0)
		secrets = append(secrets, code)
		mfaMust(t, f.s.VerifyTOTP(f.ctx, uid, code, c))
		_ = f.s.VerifyTOTP(f.ctx, uid, code, c)     // replay
		_ = f.s.VerifyTOTP(f.ctx, uid, "987654", c) // wrong (unless it is the code; then a replay)
		secrets = append(secrets, "987654")
		mfaMust(t, f.s.UseRecoveryCode(f.ctx, uid, codes[1], c))
		_ = f.s.UseRecoveryCode(f.ctx, uid, codes[1], c)
		_ = f.s.UseRecoveryCode(f.ctx, uid, "fedcba9876543210", c)
		secrets = append(secrets, "fedcba9876543210")

		tok, err := f.s.MarkDeviceKnown(f.ctx, nil, uid, "", c)
		mfaMust(t, err)
		secrets = append(secrets, tok)
		mfaMust(t, f.s.RememberDevice(f.ctx, nil, uid, tok, c))
		mfaMust(t, f.s.StartPendingLogin(f.ctx, uid, MethodTOTP, attackerBrowser, c))
		f.clock.Advance(pendingResendEvery)
		mfaMust(t, f.s.ResendPendingLogin(f.ctx, uid, attackerBrowser, c))
		for _, m := range f.mails("unrecognized-login") {
			secrets = append(secrets, m.Data["Link"], linkToken(t, m.Data["Link"]))
		}
		last := secrets[len(secrets)-1]
		_, _, _ = f.s.ConfirmPendingLogin(f.ctx, last, victimBrowser, c)
		_, _, err = f.s.ConfirmPendingLogin(f.ctx, last, attackerBrowser, c)
		mfaMust(t, err)
		f.addSecurityKey(uid, "YubiKey")
		mfaMust(t, f.s.RemoveTOTP(f.ctx, uid, "alice", c))
		mfaMust(t, f.s.AdminRecover(f.ctx, root, "root", uid, verifiedHow, c))
		f.s.log.Info("end of scan") // the log handler works: the scan below is not vacuous
		if len(secrets) < 20 {
			t.Fatalf("only %d secrets collected", len(secrets))
		}

		var dump strings.Builder
		queries := []string{
			`SELECT tag || '|' || actor || '|' || ip || '|' || user_agent || '|' || additional FROM events`,
			`SELECT key FROM throttle_hits`,
			`SELECT code_hash FROM recovery_codes`,
			`SELECT token_hash || '|' || user_agent FROM devices`,
			`SELECT token_hash || '|' || browser_hash FROM pending_logins`,
			`SELECT secret_enc FROM totp_secrets`,
			`SELECT verified_how FROM account_recoveries`,
		}
		for _, q := range queries {
			for _, v := range f.column(q) {
				dump.WriteString(v + "\n")
			}
		}
		if n := f.count(`SELECT count(*) FROM events`); n < 12 {
			t.Errorf("only %d events recorded", n)
		}
		dump.WriteString(f.logs.String())
		if !strings.Contains(f.logs.String(), "end of scan") {
			t.Fatal("logs not captured")
		}
		for _, s := range secrets {
			if strings.Contains(dump.String(), s) {
				t.Errorf("secret %q found in events, throttle keys, hashed tables or logs", s)
			}
		}
	})
}
