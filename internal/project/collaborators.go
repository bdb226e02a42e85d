package project

// Collaborators: the roles people hold on a project and the changes owners
// make to them. Owners can do everything with a project, maintainers can
// upload to it (Warehouse's ACL). Every change is one transaction that also
// writes its journal entry, its two events (on the project and on the
// account it concerns) and its emails, and none leaves a project without an
// owner. Access is checked on every request and every upload, so a role
// that is gone stops working at once, API tokens included.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// Roles lists the roles a collaborator can be given, most powerful first.
var Roles = []string{RoleOwner, RoleMaintainer}

// Collaborator is one user's role on a project.
type Collaborator struct {
	UserID   int64
	Username string
	Role     string
}

// Actor is who makes a change: recorded in events, the journal and emails.
type Actor struct {
	UserID   int64
	Username string
	Client   account.Client
}

// Collaboration is what a project's collaboration page shows.
type Collaboration struct {
	Collaborators []Collaborator // owners first, then by username
	Invitations   []Invitation   // newest first, expired ones included
}

// Collaboration returns the project's collaborators and its invitations.
func (s *Service) Collaboration(ctx context.Context, projectID int64) (*Collaboration, error) {
	cs, err := listCollaborators(ctx, s.db, projectID)
	if err != nil {
		return nil, err
	}
	is, err := listInvitations(ctx, s.db, `i.project_id = $1`, projectID)
	if err != nil {
		return nil, err
	}
	return &Collaboration{Collaborators: cs, Invitations: is}, nil
}

func listCollaborators(ctx context.Context, q querier, projectID int64) ([]Collaborator, error) {
	rows, err := q.QueryContext(ctx, `SELECT r.user_id, u.username, r.role FROM roles r JOIN users u ON u.id = r.user_id
		WHERE r.project_id = $1 ORDER BY CASE r.role WHEN 'Owner' THEN 0 ELSE 1 END, u.username_key`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Collaborator
	for rows.Next() {
		var c Collaborator
		if err := rows.Scan(&c.UserID, &c.Username, &c.Role); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// parseRole accepts a role as the forms send it.
func parseRole(r string) (string, error) {
	switch strings.TrimSpace(r) {
	case RoleOwner:
		return RoleOwner, nil
	case RoleMaintainer:
		return RoleMaintainer, nil
	}
	return "", derrors.New(derrors.Invalid, "Choose a role: Owner (can do everything with the project) or Maintainer (can upload to it).")
}

// lockProject reads the project for a change to its roles, refusing a
// quarantined one, taking its row lock first: two owners removing each other at the same moment would
// otherwise each see the other still there and leave the project with no
// owner. (On SQLite every write transaction is exclusive anyway.)
func lockProject(ctx context.Context, tx *sql.Tx, projectID int64) (*Project, error) {
	r, err := tx.ExecContext(ctx, `UPDATE projects SET last_serial = last_serial WHERE id = $1`, projectID)
	if err != nil {
		return nil, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nil, derrors.New(derrors.NotFound, "This project no longer exists.")
	}
	p, err := scanProject(tx.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = $1`, projectID))
	if err != nil {
		return nil, fmt.Errorf("get project %d: %w", projectID, err)
	}
	// A quarantined project's owners can see it but change nothing, its
	// collaborators included (PyPI: no write permission in quarantine).
	if p.Status == StatusQuarantined {
		return nil, errQuarantined(p)
	}
	return p, nil
}

func collaboratorOf(ctx context.Context, tx *sql.Tx, p *Project, userID int64, self bool) (Collaborator, error) {
	c := Collaborator{UserID: userID}
	err := tx.QueryRowContext(ctx, `SELECT u.username, r.role FROM roles r JOIN users u ON u.id = r.user_id
		WHERE r.project_id = $1 AND r.user_id = $2`, p.ID, userID).Scan(&c.Username, &c.Role)
	if errors.Is(err, sql.ErrNoRows) {
		if self {
			return c, derrors.New(derrors.NotFound, "You are not a collaborator on %s.", p.Name)
		}
		return c, derrors.New(derrors.NotFound, "That user is not a collaborator on %s (any more). Reload the page to see who is.", p.Name)
	}
	return c, err
}

// checkNotLastOwner refuses to take the Owner role from c when c is the
// project's only owner; removing says whether c would lose every role
// (and not just become a maintainer).
func checkNotLastOwner(ctx context.Context, tx *sql.Tx, p *Project, c Collaborator, a Actor, removing bool) error {
	if c.Role != RoleOwner {
		return nil
	}
	// Anyone else who owns the project, an organization's owners
	// included, keeps it owned.
	var others int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM effective_roles WHERE project_id = $1 AND role = 'Owner' AND user_id <> $2`,
		p.ID, c.UserID).Scan(&others); err != nil {
		return err
	}
	if others > 0 {
		return nil
	}
	switch {
	case c.UserID == a.UserID && removing:
		return derrors.New(derrors.Invalid, "You are the only owner of %s, so you cannot leave it. Make another collaborator an owner first.", p.Name)
	case c.UserID == a.UserID:
		return derrors.New(derrors.Invalid, "You are the only owner of %s, so you cannot give up the Owner role. Make another collaborator an owner first.", p.Name)
	}
	return derrors.New(derrors.Invalid, "%s is the only owner of %s. Make another collaborator an owner first.", c.Username, p.Name)
}

// ChangeRole gives the collaborator userID another role.
func (s *Service) ChangeRole(ctx context.Context, a Actor, projectID, userID int64, role string) (c Collaborator, err error) {
	defer derrors.Wrap(&err, "project.ChangeRole(%d, user %d)", projectID, userID)
	role, err = parseRole(role)
	if err != nil {
		return c, err
	}
	now := s.clock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := lockProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		if c, err = collaboratorOf(ctx, tx, p, userID, false); err != nil {
			return err
		}
		if c.Role == role {
			return derrors.New(derrors.Invalid, "%s is already %s of %s.", c.Username, role, p.Name)
		}
		if err := checkNotLastOwner(ctx, tx, p, c, a, false); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE roles SET role = $1 WHERE project_id = $2 AND user_id = $3`, role, p.ID, userID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, "", fmt.Sprintf("change %s %s to %s", c.Role, c.Username, role), a.Username); err != nil {
			return err
		}
		c.Role = role
		if err := s.recordRoleChange(ctx, tx, now, a, p, c, audit.ProjectRoleChange, audit.AccountRoleChange, nil); err != nil {
			return err
		}
		if err := s.tellOwners(ctx, tx, now, p.ID, userID, mail.TemplateCollaboratorRoleChanged, map[string]any{
			"Collaborator": c.Username, "Project": p.Name, "Role": role, "Submitter": a.Username}); err != nil {
			return err
		}
		return s.tell(ctx, tx, now, userID, mail.TemplateRoleChangedAsCollaborator, map[string]any{
			"Username": c.Username, "Project": p.Name, "Role": role, "Submitter": a.Username})
	})
	return c, err
}

// RemoveCollaborator takes the collaborator userID's role away. Their
// access ends with the transaction: the guards and uploads read the role
// on every request.
func (s *Service) RemoveCollaborator(ctx context.Context, a Actor, projectID, userID int64) (c Collaborator, err error) {
	defer derrors.Wrap(&err, "project.RemoveCollaborator(%d, user %d)", projectID, userID)
	return s.removeRole(ctx, a, projectID, userID, false)
}

// Leave gives up the actor's own role on the project.
func (s *Service) Leave(ctx context.Context, a Actor, projectID int64) (c Collaborator, err error) {
	defer derrors.Wrap(&err, "project.Leave(%d, user %d)", projectID, a.UserID)
	return s.removeRole(ctx, a, projectID, a.UserID, true)
}

func (s *Service) removeRole(ctx context.Context, a Actor, projectID, userID int64, leaving bool) (c Collaborator, err error) {
	now := s.clock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := lockProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		if c, err = collaboratorOf(ctx, tx, p, userID, leaving); err != nil {
			return err
		}
		if err := checkNotLastOwner(ctx, tx, p, c, a, true); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE project_id = $1 AND user_id = $2`, p.ID, userID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, "", fmt.Sprintf("remove %s %s", c.Role, c.Username), a.Username); err != nil {
			return err
		}
		if err := s.recordRoleChange(ctx, tx, now, a, p, c, audit.ProjectRoleRemove, audit.AccountRoleRemove, nil); err != nil {
			return err
		}
		if err := s.tellOwners(ctx, tx, now, p.ID, userID, mail.TemplateCollaboratorRemoved, map[string]any{
			"Collaborator": c.Username, "Project": p.Name, "Submitter": a.Username}); err != nil {
			return err
		}
		return s.tell(ctx, tx, now, userID, mail.TemplateRemovedAsCollaborator, map[string]any{
			"Username": c.Username, "Project": p.Name, "Submitter": a.Username})
	})
	return c, err
}

// recordRoleChange records a collaboration change twice, as Warehouse
// does: on the project, naming the user it concerns, and on that user's
// account, naming the project (see the audit package's role tags).
func (s *Service) recordRoleChange(ctx context.Context, tx *sql.Tx, now time.Time, a Actor, p *Project, c Collaborator, projectTag, accountTag string, extra map[string]any) error {
	onProject := map[string]any{"submitted_by": a.Username, "role_name": c.Role, "target_user": c.Username}
	onAccount := map[string]any{"submitted_by": a.Username, "role_name": c.Role, "project_name": p.Name}
	for k, v := range extra {
		onProject[k], onAccount[k] = v, v
	}
	err := account.SendNotice(ctx, tx, nil, now, a.Client, account.Notice{Event: audit.Event{
		ProjectID: p.ID, Tag: projectTag, ActorID: a.UserID, Actor: a.Username, Additional: onProject}})
	if err != nil {
		return err
	}
	return account.SendNotice(ctx, tx, nil, now, a.Client, account.Notice{Event: audit.Event{
		UserID: c.UserID, Tag: accountTag, ActorID: a.UserID, Actor: a.Username, Additional: onAccount}})
}

// tell emails one user through the one notice path (every verified
// address of the account).
func (s *Service) tell(ctx context.Context, tx *sql.Tx, now time.Time, userID int64, template string, data map[string]any) error {
	return account.SendNotice(ctx, tx, s.notifier, now, account.Client{}, account.Notice{
		Event: audit.Event{UserID: userID}, Template: template, Data: data})
}

// tellOwners emails every owner of the project except the user the change
// concerns (who gets their own email), each addressed by name. It reads the
// owners inside tx, so it sees the change itself.
func (s *Service) tellOwners(ctx context.Context, tx *sql.Tx, now time.Time, projectID, except int64, template string, data map[string]any) error {
	cs, err := listCollaborators(ctx, tx, projectID)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Role != RoleOwner || c.UserID == except {
			continue
		}
		d := map[string]any{"Username": c.Username}
		for k, v := range data {
			d[k] = v
		}
		if err := s.tell(ctx, tx, now, c.UserID, template, d); err != nil {
			return err
		}
	}
	return nil
}

// clock is the current time as stored: UTC at microsecond precision, which
// PostgreSQL keeps exactly.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
