package org

// Members and their roles. Only owners change them; the last owner can
// neither leave nor be demoted, so an organization always has one.

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Member is one member of an organization.
type Member struct {
	UserID   int64
	Username string
	Role     string
}

// Members returns the organization's members, owners first, then by
// username.
func (s *Service) Members(ctx context.Context, orgID int64) ([]Member, error) {
	return listMembers(ctx, s.db, orgID)
}

func listMembers(ctx context.Context, q querier, orgID int64) ([]Member, error) {
	rows, err := q.QueryContext(ctx, `SELECT r.user_id, u.username, r.role FROM organization_roles r JOIN users u ON u.id = r.user_id
		WHERE r.organization_id = $1
		ORDER BY CASE r.role WHEN 'Owner' THEN 0 WHEN 'Manager' THEN 1 ELSE 2 END, u.username_key`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.UserID, &m.Username, &m.Role); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func parseRole(r string) (string, error) {
	switch strings.TrimSpace(r) {
	case RoleOwner:
		return RoleOwner, nil
	case RoleManager:
		return RoleManager, nil
	case RoleMember:
		return RoleMember, nil
	}
	return "", derrors.InField(derrors.Invalid, "role_name", "Choose a role: Owner (everything), Manager (teams and projects) or Member (what their teams grant).")
}

func memberOf(ctx context.Context, tx *sql.Tx, o *Organization, userID int64) (Member, error) {
	m := Member{UserID: userID}
	err := tx.QueryRowContext(ctx, `SELECT u.username, r.role FROM organization_roles r JOIN users u ON u.id = r.user_id
		WHERE r.organization_id = $1 AND r.user_id = $2`, o.ID, userID).Scan(&m.Username, &m.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return m, derrors.New(derrors.NotFound, "That user is not a member of %s (any more). Reload the page to see who is.", o.Name)
	}
	return m, err
}

// checkNotLastOwner refuses to take the Owner role from m when m is the
// organization's only owner.
func checkNotLastOwner(ctx context.Context, tx *sql.Tx, o *Organization, m Member, a Actor, leaving bool) error {
	if m.Role != RoleOwner {
		return nil
	}
	var others int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM organization_roles WHERE organization_id = $1 AND role = 'Owner' AND user_id <> $2`,
		o.ID, m.UserID).Scan(&others); err != nil {
		return err
	}
	if others > 0 {
		return nil
	}
	switch {
	case m.UserID == a.UserID && leaving:
		return derrors.New(derrors.Invalid, "You are the only owner of %s, so you cannot leave it. Make another member an owner first.", o.Name)
	case m.UserID == a.UserID:
		return derrors.New(derrors.Invalid, "You are the only owner of %s, so you cannot give up the Owner role. Make another member an owner first.", o.Name)
	}
	return derrors.New(derrors.Invalid, "%s is the only owner of %s. Make another member an owner first.", m.Username, o.Name)
}

// ChangeRole gives the member userID another role.
func (s *Service) ChangeRole(ctx context.Context, a Actor, orgID, userID int64, role string) (m Member, err error) {
	defer derrors.Wrap(&err, "org.ChangeRole(%d, %d)", orgID, userID)
	want, err := parseRole(role)
	if err != nil {
		return m, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		if m, err = memberOf(ctx, tx, o, userID); err != nil {
			return err
		}
		if m.Role == want {
			return derrors.New(derrors.Invalid, "%s is %s already.", m.Username, want)
		}
		if want != RoleOwner {
			if err := checkNotLastOwner(ctx, tx, o, m, a, false); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE organization_roles SET role = $3 WHERE organization_id = $1 AND user_id = $2`, o.ID, userID, want); err != nil {
			return err
		}
		m.Role = want
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.OrgRoleChange, add: map[string]any{"role_name": want, "target_user": m.Username},
			concerned: m.UserID, accountTag: audit.AccountOrgRoleChange})
	})
	return m, err
}

// RemoveMember takes the member userID out of the organization and all its
// teams: their access to its projects ends at once.
func (s *Service) RemoveMember(ctx context.Context, a Actor, orgID, userID int64) (Member, error) {
	return s.removeMember(ctx, a, orgID, userID, false)
}

// Leave takes the actor out of the organization.
func (s *Service) Leave(ctx context.Context, a Actor, orgID int64) (Member, error) {
	return s.removeMember(ctx, a, orgID, a.UserID, true)
}

func (s *Service) removeMember(ctx context.Context, a Actor, orgID, userID int64, leaving bool) (m Member, err error) {
	defer derrors.Wrap(&err, "org.removeMember(%d, %d)", orgID, userID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		allowed := []string{RoleOwner}
		if leaving {
			allowed = Roles
		}
		o, _, err := lockOrg(ctx, tx, orgID, a, allowed...)
		if err != nil {
			return err
		}
		if m, err = memberOf(ctx, tx, o, userID); err != nil {
			return err
		}
		if err := checkNotLastOwner(ctx, tx, o, m, a, true); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_members WHERE user_id = $2 AND team_id IN (SELECT id FROM teams WHERE organization_id = $1)`,
			o.ID, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM organization_roles WHERE organization_id = $1 AND user_id = $2`, o.ID, userID); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.OrgRoleRemove, add: map[string]any{"role_name": m.Role, "target_user": m.Username},
			concerned: m.UserID, accountTag: audit.AccountOrgRoleRemove})
	})
	return m, err
}
