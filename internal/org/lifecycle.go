package org

// The lifecycle: a user requests an organization, an administrator approves
// or declines it (or, with --organization-approval=none, it exists at
// once), its owners rename it (the old name keeps redirecting) or delete it
// once it holds no projects.

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// MaxPendingRequests is how many undecided requests one user may have, as
// on PyPI.
const MaxPendingRequests = 3

// maxDescription bounds the description (PyPI: 400 characters).
const maxDescription = 400

// checkName applies the naming rules in q: the project-name rules, and no
// clash with a user, another organization or an organization's old name.
func checkName(ctx context.Context, q querier, name string, self int64) error {
	if !pep.ValidProjectName(name) {
		return derrors.InField(derrors.Invalid, "name", "The name %q is not valid: use letters, digits, '.', '_' and '-', starting and ending with a letter or digit.", name)
	}
	norm := pep.NormalizeName(name)
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE normalized_name = $1 AND id <> $2
		UNION ALL SELECT 1 FROM organization_old_names WHERE normalized_name = $1 AND organization_id <> $2`, norm, self).Scan(&one)
	if err == nil {
		return derrors.InField(derrors.Conflict, "name", "The name %q is taken by another organization. Choose another.", name)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	err = q.QueryRowContext(ctx, `SELECT 1 FROM users WHERE username_key = $1 OR username_key = $2`,
		account.UsernameKey(name), account.UsernameKey(norm)).Scan(&one)
	if err == nil {
		return derrors.InField(derrors.Conflict, "name", "The name %q is a user's name. Organizations and users share one namespace: choose another.", name)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}

func cleanDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if utf8.RuneCountInString(d) > maxDescription {
		return "", derrors.InField(derrors.Invalid, "description", "The description is too long: at most %d characters.", maxDescription)
	}
	if strings.ContainsAny(d, "\x00") {
		return "", derrors.InField(derrors.Invalid, "description", "The description contains a character that is not allowed.")
	}
	return d, nil
}

// Request asks for a new organization named name, with the actor as its
// first owner once it exists. Without the approval setting it exists at
// once. Of two requests for one name at the same moment, one is written and
// the other gets derrors.Conflict (the unique index decides).
func (s *Service) Request(ctx context.Context, a Actor, name, description string) (o *Organization, err error) {
	defer derrors.Wrap(&err, "org.Request(%q)", name)
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, derrors.InField(derrors.Invalid, "name", "Enter a name for the organization.")
	}
	if description, err = cleanDescription(description); err != nil {
		return nil, err
	}
	now := s.clock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := checkName(ctx, tx, name, 0); err != nil {
			return err
		}
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM organizations WHERE requested_by = $1 AND status = 'pending'`, a.UserID).Scan(&pending); err != nil {
			return err
		}
		if pending >= MaxPendingRequests {
			return derrors.New(derrors.Invalid, "You already have %d organization requests waiting for an administrator. Wait for a decision before asking for another.", pending)
		}
		status := StatusApproved
		if s.needApproval {
			status = StatusPending
		}
		o = &Organization{Name: name, NormalizedName: pep.NormalizeName(name), Description: description, Status: status,
			Requester: a.Username, RequesterID: a.UserID, CreatedAt: now}
		err := tx.QueryRowContext(ctx, `INSERT INTO organizations (name, normalized_name, description, status, requested_by, requester, created_at, approved_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, name, o.NormalizedName, description, status, a.UserID, a.Username, now,
			sql.NullTime{Time: now, Valid: status == StatusApproved}).Scan(&o.ID)
		if db.IsUniqueViolation(err) {
			return derrors.InField(derrors.Conflict, "name", "The name %q was taken a moment ago. Choose another.", name)
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.Event{OrganizationID: o.ID, Tag: audit.OrgApplicationSubmit, ActorID: a.UserID, Actor: a.Username,
			IP: a.Client.IP, UserAgent: a.Client.UserAgent, Additional: map[string]any{"organization_name": name}}); err != nil {
			return err
		}
		if status == StatusApproved {
			return s.createOrg(ctx, tx, a, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// createOrg gives an organization that has just come into use its first
// owner, the requester.
func (s *Service) createOrg(ctx context.Context, tx *sql.Tx, a Actor, o *Organization) error {
	now := s.clock()
	if o.RequesterID == 0 {
		return derrors.New(derrors.Conflict, "The account that requested %s no longer exists; decline the request instead.", o.Name)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO organization_roles (organization_id, user_id, role, created_at) VALUES ($1, $2, 'Owner', $3)`,
		o.ID, o.RequesterID, now); err != nil {
		return err
	}
	requester := Actor{UserID: o.RequesterID, Username: o.Requester}
	if err := audit.Record(ctx, tx, now, audit.Event{OrganizationID: o.ID, Tag: audit.OrgCreate, ActorID: requester.UserID, Actor: requester.Username,
		Additional: map[string]any{"organization_name": o.Name}}); err != nil {
		return err
	}
	return s.record(ctx, tx, now, a, o, change{tag: audit.OrgRoleAdd, add: map[string]any{"role_name": RoleOwner, "target_user": o.Requester},
		concerned: o.RequesterID, accountTag: audit.AccountOrgRoleAdd})
}

// Request is an undecided organization request, for the administrators.
type Request = Organization

// PendingRequests returns the requests waiting for a decision, oldest
// first.
func (s *Service) PendingRequests(ctx context.Context) (_ []Request, err error) {
	defer derrors.Wrap(&err, "org.PendingRequests")
	return listOrgs(ctx, s.db, `o.status = 'pending' ORDER BY o.id`)
}

// RequestsOf returns the user's own undecided requests.
func (s *Service) RequestsOf(ctx context.Context, userID int64) (_ []Request, err error) {
	defer derrors.Wrap(&err, "org.RequestsOf(%d)", userID)
	return listOrgs(ctx, s.db, `o.status = 'pending' AND o.requested_by = $1 ORDER BY o.id`, userID)
}

// All returns every approved organization, by name, for the administrators.
func (s *Service) All(ctx context.Context) (_ []Organization, err error) {
	defer derrors.Wrap(&err, "org.All")
	return listOrgs(ctx, s.db, `o.status = 'approved' ORDER BY o.normalized_name`)
}

func listOrgs(ctx context.Context, q querier, where string, args ...any) ([]Organization, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Organization
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *o)
	}
	return out, rows.Err()
}

// pendingForDecision reads a request for an administrator's decision in tx.
func pendingForDecision(ctx context.Context, tx *sql.Tx, admin Actor, orgID int64) (*Organization, error) {
	var isAdmin, disabled bool
	err := tx.QueryRowContext(ctx, `SELECT is_admin, disabled FROM users WHERE id = $1`, admin.UserID).Scan(&isAdmin, &disabled)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (!isAdmin || disabled)) {
		return nil, derrors.New(derrors.Forbidden, "Only administrators can do this.")
	}
	if err != nil {
		return nil, err
	}
	r, err := tx.ExecContext(ctx, `UPDATE organizations SET status = status WHERE id = $1 AND status = 'pending'`, orgID)
	if err != nil {
		return nil, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nil, derrors.New(derrors.Conflict, "This request was decided already (or withdrawn). Reload the page.")
	}
	return orgByID(ctx, tx, orgID)
}

// Approve brings a requested organization into use, with its requester as
// its first owner, and tells them.
func (s *Service) Approve(ctx context.Context, admin Actor, orgID int64) (o *Organization, err error) {
	defer derrors.Wrap(&err, "org.Approve(%d)", orgID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if o, err = pendingForDecision(ctx, tx, admin, orgID); err != nil {
			return err
		}
		now := s.clock()
		if _, err := tx.ExecContext(ctx, `UPDATE organizations SET status = 'approved', approved_at = $2 WHERE id = $1`, o.ID, now); err != nil {
			return err
		}
		o.Status = StatusApproved
		if err := audit.Record(ctx, tx, now, audit.Event{OrganizationID: o.ID, Tag: audit.OrgApprove, ActorID: admin.UserID, Actor: admin.Username,
			IP: admin.Client.IP, UserAgent: admin.Client.UserAgent, Additional: map[string]any{"organization_name": o.Name}}); err != nil {
			return err
		}
		if err := s.createOrg(ctx, tx, admin, o); err != nil {
			return err
		}
		return s.tell(ctx, tx, now, o.RequesterID, mail.TemplateOrganizationDecided, map[string]any{
			"Username": o.Requester, "Organization": o.Name, "Decision": "approved",
			"Link": s.baseURL + "/manage/organization/" + o.NormalizedName + "/settings/"})
	})
	return o, err
}

// Decline refuses a request: its row goes, which frees the name, and the
// requester is told.
func (s *Service) Decline(ctx context.Context, admin Actor, orgID int64) (o *Organization, err error) {
	defer derrors.Wrap(&err, "org.Decline(%d)", orgID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if o, err = pendingForDecision(ctx, tx, admin, orgID); err != nil {
			return err
		}
		now := s.clock()
		if _, err := tx.ExecContext(ctx, `DELETE FROM organizations WHERE id = $1`, o.ID); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.Event{OrganizationID: o.ID, Tag: audit.OrgDecline, ActorID: admin.UserID, Actor: admin.Username,
			IP: admin.Client.IP, UserAgent: admin.Client.UserAgent, Additional: map[string]any{"organization_name": o.Name}}); err != nil {
			return err
		}
		if o.RequesterID == 0 {
			return nil
		}
		return s.tell(ctx, tx, now, o.RequesterID, mail.TemplateOrganizationDecided, map[string]any{
			"Username": o.Requester, "Organization": o.Name, "Decision": "declined",
			"Link": s.baseURL + "/manage/organizations/"})
	})
	return o, err
}

// Rename gives the organization a new name; the old one keeps leading to
// it, and no other organization can take it.
func (s *Service) Rename(ctx context.Context, a Actor, orgID int64, newName string) (o *Organization, err error) {
	defer derrors.Wrap(&err, "org.Rename(%d, %q)", orgID, newName)
	newName = strings.TrimSpace(newName)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if o, _, err = lockOrg(ctx, tx, orgID, a, RoleOwner); err != nil {
			return err
		}
		if newName == o.Name {
			return derrors.InField(derrors.Invalid, "name", "%s is the organization's name already.", newName)
		}
		if err := checkName(ctx, tx, newName, o.ID); err != nil {
			return err
		}
		now := s.clock()
		old, newNorm := o.Name, pep.NormalizeName(newName)
		if newNorm != o.NormalizedName {
			// A name it had before and takes back is no longer an old name.
			if _, err := tx.ExecContext(ctx, `DELETE FROM organization_old_names WHERE normalized_name = $1`, newNorm); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO organization_old_names (normalized_name, organization_id, created_at) VALUES ($1, $2, $3)
				ON CONFLICT (normalized_name) DO NOTHING`, o.NormalizedName, o.ID, now); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE organizations SET name = $2, normalized_name = $3 WHERE id = $1`, o.ID, newName, newNorm)
		if db.IsUniqueViolation(err) {
			return derrors.InField(derrors.Conflict, "name", "The name %q was taken a moment ago. Choose another.", newName)
		}
		if err != nil {
			return err
		}
		o.Name, o.NormalizedName = newName, newNorm
		return s.record(ctx, tx, now, a, o, change{tag: audit.OrgRename, add: map[string]any{"previous_name": old}})
	})
	return o, err
}

// Delete removes an organization that holds no projects; confirm must be
// its name, typed. Its owners are told.
func (s *Service) Delete(ctx context.Context, a Actor, orgID int64, confirm string) (o *Organization, err error) {
	defer derrors.Wrap(&err, "org.Delete(%d)", orgID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if o, _, err = lockOrg(ctx, tx, orgID, a, RoleOwner); err != nil {
			return err
		}
		if pep.NormalizeName(strings.TrimSpace(confirm)) != o.NormalizedName || strings.TrimSpace(confirm) == "" {
			return derrors.InField(derrors.Invalid, "confirm_organization_name", "Type the organization's name, %s, to confirm.", o.Name)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM organization_projects WHERE organization_id = $1`, o.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return derrors.New(derrors.Conflict, "%s still holds %d project(s). Move them out or delete them first.", o.Name, n)
		}
		now := s.clock()
		// Events and emails first: the owners are read from the rows the
		// delete removes.
		if err := s.record(ctx, tx, now, a, o, change{tag: audit.OrgDelete}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM organizations WHERE id = $1`, o.ID)
		return err
	})
	return o, err
}
