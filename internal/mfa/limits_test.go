package mfa

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const msgLimited = "There have been too many unsuccessful login attempts. Try again later."

// TestSecondFactorLimiter: one per-user budget for every second factor,
// which rotating IP addresses does not escape (spec B4).
func TestSecondFactorLimiter(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		raw := f.enableTOTP(uid)

		// Five wrong TOTP codes, each from its own IP: the sixth attempt is
		// refused before the code is looked at, even a right one.
		wrong := fmt.Sprintf("%06d", (mustAtoi(t, f.code(raw, 0))+1)%1000000)
		for i := 0; i < 5; i++ {
			if err := f.s.VerifyTOTP(f.ctx, uid, wrong, mfaClient(fmt.Sprintf("198.51.100.%d", i))); err == nil {
				t.Fatal("wrong code accepted")
			}
		}
		wantLimited(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 0), mfaClient("203.0.113.99")), msgLimited)
		wantLimited(t, f.s.UseRecoveryCode(f.ctx, uid, "0123456789abcdef", mfaClient("203.0.113.98")), msgLimited)
		wantLimited(t, f.s.CheckLimit(f.ctx, uid, "203.0.113.97"), msgLimited)

		// The limit holds across a restart: it lives in the database.
		wantLimited(t, f.service().CheckLimit(f.ctx, uid, "203.0.113.96"), msgLimited)

		// After the window, the right code works.
		f.clock.Advance(5*time.Minute + time.Second)
		mfaMust(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 0), mfaClient("203.0.113.99")))
	})
}

// TestLimiterSharedWithWebAuthn: failures recorded by the WebAuthn code
// through RecordFailure spend the same budget as TOTP failures.
func TestLimiterSharedWithWebAuthn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		raw := f.enableTOTP(uid)
		for i := 0; i < 3; i++ {
			mfaMust(t, f.s.RecordFailure(f.ctx, uid, mfaClient(fmt.Sprintf("198.51.100.%d", i)), ReasonInvalidWebAuthn))
		}
		for i := 0; i < 2; i++ {
			if err := f.s.VerifyTOTP(f.ctx, uid, "000000", mfaClient(fmt.Sprintf("198.51.100.%d", 10+i))); err == nil {
				t.Fatal("000000 accepted")
			}
		}
		wantLimited(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 0), mfaClient("203.0.113.1")), msgLimited)
		reasons := f.failureReasons(uid)
		if len(reasons) != 5 || reasons[0] != "invalid_webauthn" {
			t.Errorf("failure reasons %v", reasons)
		}
	})
}

// TestLimiterDailyBudget: however the attempts are spread over IPs and
// time, at most 50 failures a day reach one account.
func TestLimiterDailyBudget(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		start := f.clock.Now()
		failures := 0
		for i := 0; f.clock.Now().Before(start.Add(23 * time.Hour)); i++ {
			err := f.s.CheckLimit(f.ctx, uid, fmt.Sprintf("10.%d.%d.1", i/250, i%250))
			if wait, ok := derrors.RetryAfter(err); ok {
				f.clock.Advance(wait)
				continue
			}
			mfaMust(t, err)
			mfaMust(t, f.s.RecordFailure(f.ctx, uid, mfaClient(fmt.Sprintf("10.%d.%d.1", i/250, i%250)), ReasonInvalidTOTP))
			failures++
			if failures > 60 {
				break
			}
		}
		if failures != 50 {
			t.Errorf("%d failures allowed in a day, want 50", failures)
		}
		f.clock.Advance(start.Add(24*time.Hour + time.Second).Sub(f.clock.Now()))
		mfaMust(t, f.s.CheckLimit(f.ctx, uid, "10.200.0.1"))
	})
}

// TestLimiterPerIP: one address spraying many accounts is stopped after 10
// failures in 5 minutes, though each account is under its own limit.
func TestLimiterPerIP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("203.0.113.50")
		for i := 0; i < 10; i++ {
			uid := f.user(fmt.Sprintf("user%d", i), true)
			mfaMust(t, f.s.CheckLimit(f.ctx, uid, c.IP))
			mfaMust(t, f.s.RecordFailure(f.ctx, uid, c, ReasonInvalidRecoveryCode))
		}
		other := f.user("other", true)
		wantLimited(t, f.s.CheckLimit(f.ctx, other, c.IP), msgLimited)
		mfaMust(t, f.s.CheckLimit(f.ctx, other, "203.0.113.51"))
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatal(err)
	}
	return n
}
