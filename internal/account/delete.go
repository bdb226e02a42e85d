package account

import (
	"context"
	"database/sql"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// DeleteAccount deletes the user's own account after the password is
// confirmed. Projects the user alone owns would be left without an owner,
// so they must be transferred or deleted first. Addresses, sessions, links,
// roles and API tokens go with the account (foreign-key cascades); the
// audit trail stays (events have no foreign key), with the deletion last.
func (s *Service) DeleteAccount(ctx context.Context, userID int64, password string, c Client) error {
	if err := s.CheckPassword(ctx, userID, password, c); err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, _, err := userByID(ctx, tx, userID)
		if err != nil {
			return err
		}
		sole, err := soleOwnerships(ctx, tx, userID)
		if err != nil {
			return err
		}
		if len(sole) > 0 {
			return derrors.New(derrors.Conflict, "Cannot delete account with active project ownerships. Transfer or delete these projects first: %s", strings.Join(sole, ", "))
		}
		if u.IsAdmin {
			// Otherwise the index could end up with nobody able to
			// administer it (re-open registration, enable accounts).
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE is_admin AND NOT disabled AND id <> $1`, userID).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return derrors.New(derrors.Conflict, "You are the only administrator. Make another user an administrator before deleting your account.")
			}
		}
		// The outbox has no foreign key, so the notice outlives the account.
		if err := SendNotice(ctx, tx, s.notifier, now, c, Notice{Event: selfEvent(u, audit.AccountDelete, map[string]any{"username": u.Username}),
			Template: "account-deleted", Data: map[string]any{"Username": u.Username}}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, userID)
		return err
	})
}

// soleOwnerships lists the projects and organizations whose only Owner is
// the user (an organization's owners own its projects).
func soleOwnerships(ctx context.Context, q querier, userID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT p.name FROM effective_roles r JOIN projects p ON p.id = r.project_id
		WHERE r.user_id = $1 AND r.role = 'Owner'
		AND NOT EXISTS (SELECT 1 FROM effective_roles o WHERE o.project_id = r.project_id AND o.role = 'Owner' AND o.user_id <> $1)
		UNION ALL
		SELECT 'the organization ' || g.name FROM organization_roles r JOIN organizations g ON g.id = r.organization_id
		WHERE r.user_id = $1 AND r.role = 'Owner'
		AND NOT EXISTS (SELECT 1 FROM organization_roles o WHERE o.organization_id = r.organization_id AND o.role = 'Owner' AND o.user_id <> $1)
		ORDER BY 1`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
