package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// Recovery codes (spec §1.2): 8 codes of 8 random bytes, shown once as 16
// lowercase hex characters. Each works once. They are the way back in when
// the phone or key is lost, so they are as sensitive as a second factor.
//
// A code is stored as HMAC-SHA256 under a key derived from the server
// secret, not with a slow password hash: 64 random bits cannot be guessed
// offline even from a fast hash, and without the server secret a database
// dump does not allow trying at all. Online guessing is bounded by the
// shared 2FA limiter (spec B6).
const (
	recoveryCodeCount = 8
	recoveryCodeBytes = 8
)

const (
	msgRecoveryFormat  = "Recovery codes must be 16 characters."
	msgRecoveryInvalid = "Invalid recovery code."
	msgRecoveryBurned  = "Recovery code has been previously used."
)

var (
	errRecoveryInvalid = derrors.New(derrors.Invalid, msgRecoveryInvalid)
	errRecoveryBurned  = derrors.New(derrors.Invalid, msgRecoveryBurned)
)

// hashRecoveryCode is the stored form of a normalized code.
func (s *Service) hashRecoveryCode(code string) string {
	m := hmac.New(sha256.New, s.recoveryKey)
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}

// normalizeRecoveryCode applies NormalizeCode and lower-cases, so a code
// typed in capitals, in groups or copied with a stray space still matches.
// ok is false when the result is not 16 hex characters.
func normalizeRecoveryCode(in string) (code string, ok bool) {
	code = strings.ToLower(NormalizeCode(in))
	if len(code) != 2*recoveryCodeBytes {
		return code, false
	}
	_, err := hex.DecodeString(code)
	return code, err == nil
}

// GenerateRecoveryCodes replaces all the user's recovery codes with 8 new
// ones and returns them, to be shown once. Old codes stop working at once.
// Until one new code is entered back (ConfirmRecoveryCodes), no second
// factor can be added: that proves the user stored them. The caller asks
// for the password first (Warehouse re-prompts every time).
func (s *Service) GenerateRecoveryCodes(ctx context.Context, userID int64, c account.Client) ([]string, error) {
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		b, err := s.randomBytes(recoveryCodeBytes)
		if err != nil {
			return nil, err
		}
		codes[i] = hex.EncodeToString(b)
	}
	now := s.clock()
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		tag := audit.RecoveryCodesGenerated
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			tag = audit.RecoveryCodesRegenerated
		}
		for _, code := range codes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)`,
				userID, s.hashRecoveryCode(code), now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET recovery_confirmed_at = NULL WHERE id = $1`, userID); err != nil {
			return err
		}
		return s.notice(ctx, tx, now, c, selfEvent(u, tag, nil), mail.TemplateRecoveryCodesGenerated, map[string]any{"Username": u.Username})
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// recoveryRow is a stored code matching a submitted one.
type recoveryRow struct {
	id     int64
	burned bool
}

// findRecoveryCode looks up the user's stored code equal to code (already
// normalized); nil when there is none. The lookup is by keyed hash, so it
// reveals nothing through timing that the attacker could not compute.
func (s *Service) findRecoveryCode(ctx context.Context, userID int64, code string) (*recoveryRow, error) {
	var r recoveryRow
	var burned sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT id, burned_at FROM recovery_codes WHERE user_id = $1 AND code_hash = $2`,
		userID, s.hashRecoveryCode(code)).Scan(&r.id, &burned)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.burned = burned.Valid
	return &r, nil
}

// checkRecoveryCode is the shared front half of using a code: the limiter,
// the format, the lookup; failures are counted and audited. It returns the
// unburned row to burn.
func (s *Service) checkRecoveryCode(ctx context.Context, userID int64, code string, c account.Client) (*recoveryRow, error) {
	if err := s.CheckLimit(ctx, userID, c.IP); err != nil {
		return nil, err
	}
	code, ok := normalizeRecoveryCode(code)
	if !ok {
		// Not a guess at a code, so not counted.
		return nil, derrors.New(derrors.Invalid, msgRecoveryFormat)
	}
	row, err := s.findRecoveryCode(ctx, userID, code)
	if err != nil {
		return nil, err
	}
	switch {
	case row == nil:
		return nil, s.failed(ctx, userID, c, ReasonInvalidRecoveryCode, errRecoveryInvalid)
	case row.burned:
		return nil, s.failed(ctx, userID, c, ReasonBurnedRecoveryCode, errRecoveryBurned)
	}
	return row, nil
}

// burnRecoveryCode marks a code used, exactly once: of two concurrent uses
// of one code, the second finds it burned. It also marks the codes as
// stored, since entering one back is the proof ConfirmRecoveryCodes wants.
func burnRecoveryCode(ctx context.Context, tx *sql.Tx, row *recoveryRow, u *subject, now time.Time) error {
	r, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET burned_at = $1 WHERE id = $2 AND burned_at IS NULL`, now, row.id)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return errRecoveryBurned
	}
	if !u.RecoveryConfirmed {
		_, err = tx.ExecContext(ctx, `UPDATE users SET recovery_confirmed_at = $1 WHERE id = $2`, now, u.ID)
	}
	return err
}

// ConfirmRecoveryCodes is burn-to-confirm after generation: the user types
// one of the new codes back, proving they stored them; that code is burned
// and second factors may then be added.
func (s *Service) ConfirmRecoveryCodes(ctx context.Context, userID int64, code string, c account.Client) error {
	row, err := s.checkRecoveryCode(ctx, userID, code, c)
	if err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := burnRecoveryCode(ctx, tx, row, u, now); err != nil {
			return err
		}
		return record(ctx, tx, now, c, selfEvent(u, audit.RecoveryCodeUsed, map[string]any{"purpose": "confirm_stored"}))
	})
}

// UseRecoveryCode signs in with a recovery code instead of a second factor
// (spec §1.2). The code is burned, the owner is emailed (a code used by
// someone else is how they learn their codes leaked), and the login is
// phishable: the web layer then applies the new-browser check.
func (s *Service) UseRecoveryCode(ctx context.Context, userID int64, code string, c account.Client) error {
	row, err := s.checkRecoveryCode(ctx, userID, code, c)
	if err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := burnRecoveryCode(ctx, tx, row, u, now); err != nil {
			return err
		}
		return s.notice(ctx, tx, now, c, selfEvent(u, audit.RecoveryCodeUsed, nil), mail.TemplateRecoveryCodeUsed, map[string]any{"Username": u.Username})
	})
}

// RecoveryStatus says where a user stands with recovery codes.
type RecoveryStatus struct {
	Generated bool // codes exist (used or not)
	Confirmed bool // one was entered back since they were generated
	Unused    int  // codes not yet burned
}

// RecoveryStatus returns the user's recovery-code status.
func (s *Service) RecoveryStatus(ctx context.Context, userID int64) (RecoveryStatus, error) {
	var st RecoveryStatus
	var total int
	var confirmed sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM recovery_codes WHERE user_id = $1),
		(SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND burned_at IS NULL),
		(SELECT recovery_confirmed_at FROM users WHERE id = $1)`, userID).Scan(&total, &st.Unused, &confirmed)
	if err != nil {
		return st, err
	}
	st.Generated, st.Confirmed = total > 0, confirmed.Valid
	return st, nil
}

// RemindIfNoCodes emails a "recovery codes are available" reminder after a
// second-factor login by a user who has 2FA but no unused recovery code
// (spec §1.2), at most once a day so that frequent logins do not spam. Call
// it in the login's transaction (tx may be nil).
//
// The once-a-day check reads throttle_hits through tx: a limiter's Check
// reads through the pool, which on SQLite is the connection tx holds.
func (s *Service) RemindIfNoCodes(ctx context.Context, tx *sql.Tx, userID int64) error {
	now := s.clock()
	return s.inTx(ctx, tx, func(tx *sql.Tx) error {
		has, err := hasTwoFactor(ctx, tx, userID)
		if err != nil || !has {
			return err
		}
		var unused, recent int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND burned_at IS NULL`, userID).Scan(&unused); err != nil {
			return err
		}
		if unused > 0 {
			return nil
		}
		// throttle keys are "<limiter name>:<key>"; TestRecoveryReminder
		// checks this stays in step with the throttle package.
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM throttle_hits WHERE key = $1 AND at > $2`,
			reminderLimiterName+":"+idKey(userID), now.Add(-reminderInterval).UnixMilli()).Scan(&recent); err != nil {
			return err
		}
		if recent > 0 {
			return nil
		}
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := s.lim.reminder.Hit(ctx, tx, idKey(userID)); err != nil {
			return err
		}
		return s.notice(ctx, tx, now, account.Client{}, audit.Event{UserID: u.ID}, mail.TemplateRecoveryCodeReminder, map[string]any{"Username": u.Username})
	})
}
