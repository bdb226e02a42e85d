package mfa

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// Administrator-assisted account recovery (spec §1.8, adapted to a
// self-hosted index with no support team): for an owner who lost every
// second factor and every recovery code. There is no automated way back in
// — that would be the weakest door into every account — so an
// administrator verifies the person out of band and says how; the record
// of that is kept for good (account_recoveries and the audit trail).
//
// Recovery leaves nothing an attacker who held the account could keep
// using: every second factor and recovery code, the password (disabled, so
// every session dies too), every device and remembered browser, every
// pending login and every session. The owner gets back in only through the
// password-reset email, which the web handler requests right after
// (account.RequestPasswordReset), and then sets up 2FA afresh.
const (
	minVerifiedHow = 10
	maxVerifiedHow = 2000
)

// AdminRecover recovers userID's account on behalf of the administrator
// adminID (adminName is kept in case the admin account is deleted).
// verifiedHow is how the administrator verified the person's identity.
func (s *Service) AdminRecover(ctx context.Context, adminID int64, adminName string, userID int64, verifiedHow string, c account.Client) error {
	verifiedHow = strings.TrimSpace(verifiedHow)
	if n := utf8.RuneCountInString(verifiedHow); n < minVerifiedHow || n > maxVerifiedHow {
		return derrors.New(derrors.Invalid, "Describe how you verified the person's identity.")
	}
	if adminID == userID {
		return derrors.New(derrors.Invalid, "You can't recover your own account. Ask another administrator.")
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		// The web layer checks too; this keeps the domain safe whoever calls it.
		var isAdmin, disabled bool
		err := tx.QueryRowContext(ctx, `SELECT is_admin, disabled FROM users WHERE id = $1`, adminID).Scan(&isAdmin, &disabled)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (!isAdmin || disabled)) {
			return derrors.New(derrors.Forbidden, "Only administrators can do this.")
		}
		if err != nil {
			return err
		}
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM totp_secrets WHERE user_id = $1`,
			`DELETE FROM webauthn_credentials WHERE user_id = $1`,
			`DELETE FROM recovery_codes WHERE user_id = $1`,
			`DELETE FROM devices WHERE user_id = $1`,
			`DELETE FROM pending_logins WHERE user_id = $1`,
			`DELETE FROM sessions WHERE user_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return err
			}
		}
		// A new password date as well, so that any session or reset link
		// made under the old password is dead even if one were missed.
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = '', password_date = $1, recovery_confirmed_at = NULL WHERE id = $2`,
			now, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO account_recoveries (user_id, admin_id, admin_name, verified_how, created_at)
			VALUES ($1, $2, $3, $4, $5)`, userID, adminID, adminName, verifiedHow, now); err != nil {
			return err
		}
		return s.notice(ctx, tx, now, c, audit.Event{UserID: userID, Tag: audit.AdminAccountRecovery, ActorID: adminID, Actor: adminName,
			Additional: map[string]any{"verified_how": verifiedHow}}, mail.TemplateAccountRecovery, map[string]any{"Username": u.Username, "Admin": adminName})
	})
}
