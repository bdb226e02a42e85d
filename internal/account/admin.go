package account

import (
	"context"
	"database/sql"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// maxReasonLen bounds an administrator's free-text reason.
const maxReasonLen = 500

// requireAdmin loads the acting administrator. The web layer checks too;
// this keeps the domain safe whoever calls it.
func requireAdmin(ctx context.Context, q querier, adminID int64) (*User, error) {
	a, _, err := userByID(ctx, q, adminID)
	if err != nil || !a.IsAdmin || a.Disabled {
		return nil, derrors.New(derrors.Forbidden, "Only administrators can do this.")
	}
	return a, nil
}

// adminEvent is an event an administrator caused; userID is the account it
// concerns (0: the site).
func adminEvent(admin *User, userID int64, tag string, add map[string]any) audit.Event {
	return audit.Event{UserID: userID, Tag: tag, ActorID: admin.ID, Actor: admin.Username, Additional: add}
}

// SetDisabled disables or re-enables an account. Disabling ends every
// session of the user at once; API tokens stop working because token
// verification checks users.disabled.
func (s *Service) SetDisabled(ctx context.Context, adminID int64, userID int64, disabled bool, reason string, c Client) error {
	if disabled && adminID == userID {
		return derrors.New(derrors.Invalid, "You can't disable your own account.")
	}
	reason = strings.TrimSpace(reason)
	if !disabled {
		reason = ""
	}
	if utf8.RuneCountInString(reason) > maxReasonLen {
		return derrors.New(derrors.Invalid, "The reason is too long. Use at most %d characters.", maxReasonLen)
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		admin, err := requireAdmin(ctx, tx, adminID)
		if err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE users SET disabled = $1, disabled_reason = $2 WHERE id = $3`, disabled, reason, userID)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errNoUser
		}
		tag := audit.AdminUserEnabled
		if disabled {
			tag = audit.AdminUserDisabled
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
				return err
			}
		}
		return record(ctx, tx, now, c, adminEvent(admin, userID, tag, map[string]any{"reason": reason}))
	})
}
