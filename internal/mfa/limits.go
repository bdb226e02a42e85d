package mfa

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/throttle"
)

// msgTooManyAttempts is Warehouse's text for a tripped 2FA limiter.
const msgTooManyAttempts = "There have been too many unsuccessful login attempts. Try again later."

// Failure reasons recorded in account:login:failure events (spec §2.1),
// plus two of ours: a replayed TOTP code, and a confirmation link opened in
// the wrong browser.
const (
	ReasonInvalidTOTP         = "invalid_totp"
	ReasonReplayedTOTP        = "replayed_totp"
	ReasonInvalidRecoveryCode = "invalid_recovery_code"
	ReasonBurnedRecoveryCode  = "burned_recovery_code"
	ReasonInvalidWebAuthn     = "invalid_webauthn"
	reasonWrongBrowserConfirm = "confirm_login_wrong_browser"
	maxReasonLen              = 64
)

// The recovery-code reminder is sent at most once per reminderInterval.
const (
	reminderLimiterName = "recovery.reminder"
	reminderInterval    = 24 * time.Hour
)

// limiters are the second-factor rate limits, with Warehouse's defaults
// (spec §1.6). One per-user limiter counts failures of every second factor
// together — TOTP, recovery codes and WebAuthn — so an attacker cannot get
// more guesses by alternating methods, and rotating IP addresses does not
// help either: at most 50 wrong guesses a day reach an account (spec B4;
// with a ±1 step window that is a ≈1.5×10⁻⁴ daily chance at a TOTP code).
// The per-IP limiter slows one client spraying many accounts. Counts live in
// the database, so they hold across instances and restarts.
type limiters struct {
	user     *throttle.Limiter // "2fa.user": failed second factors per user id
	ip       *throttle.Limiter // "2fa.ip": failed second factors per client IP
	reminder *throttle.Limiter // "recovery.reminder": reminder emails per user id
}

func newLimiters(d *db.DB, now func() time.Time) limiters {
	return limiters{
		user: throttle.New(d, "2fa.user", now,
			throttle.Limit{N: 5, Per: 5 * time.Minute}, throttle.Limit{N: 20, Per: time.Hour}, throttle.Limit{N: 50, Per: 24 * time.Hour}),
		ip: throttle.New(d, "2fa.ip", now,
			throttle.Limit{N: 10, Per: 5 * time.Minute}, throttle.Limit{N: 50, Per: time.Hour}),
		reminder: throttle.New(d, reminderLimiterName, now, throttle.Limit{N: 1, Per: reminderInterval}),
	}
}

func idKey(id int64) string { return strconv.FormatInt(id, 10) }

// onLimitErr logs a limiter's database error; the limiter then fails open,
// as Warehouse's does: a broken limiter must not lock everyone out.
func (s *Service) onLimitErr(err error) {
	s.log.Warn("second-factor rate limiter unavailable; allowing the attempt", "err", err)
}

// CheckLimit refuses a second-factor attempt for userID from ip when either
// limiter is over its limit, with a derrors.RateLimited error (429, with
// Retry-After). Call it before every second-factor verification, whatever
// the method: VerifyTOTP and UseRecoveryCode do, and WebAuthn must too.
func (s *Service) CheckLimit(ctx context.Context, userID int64, ip string) error {
	if err := s.lim.user.Enforce(ctx, idKey(userID), msgTooManyAttempts, s.onLimitErr); err != nil {
		return err
	}
	return s.lim.ip.Enforce(ctx, ip, msgTooManyAttempts, s.onLimitErr)
}

// RecordFailure counts one failed second-factor attempt against both
// limiters and records account:login:failure with the reason (one of the
// Reason constants), in one transaction. Every failure of every method must
// come through here, so that they share one budget.
func (s *Service) RecordFailure(ctx context.Context, userID int64, c account.Client, reason string) error {
	reason = truncate(reason, maxReasonLen)
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.lim.user.Hit(ctx, tx, idKey(userID)); err != nil {
			return err
		}
		if err := s.lim.ip.Hit(ctx, tx, c.IP); err != nil {
			return err
		}
		return record(ctx, tx, now, c, audit.Event{UserID: userID, Tag: audit.LoginFailure,
			Additional: map[string]any{"reason": reason}})
	})
}

// failed records a failure and returns userErr, the message for the user;
// an error while recording wins, so a failure is never silently uncounted.
func (s *Service) failed(ctx context.Context, userID int64, c account.Client, reason string, userErr error) error {
	if err := s.RecordFailure(ctx, userID, c, reason); err != nil {
		return err
	}
	return userErr
}
