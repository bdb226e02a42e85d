package org

// An organization's projects: created inside it, moved in (at once by
// someone who owns the project and owns or manages the organization;
// otherwise a project owner's request that the organization accepts), and
// moved out. A project moving out takes every team role on it with it.

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// OrgProject is one of an organization's projects.
type OrgProject struct {
	ProjectID  int64
	Name       string
	Normalized string
}

// MoveRequest is a project owner's request to move a project in.
type MoveRequest struct {
	OrgProject
	Requester string
	CreatedAt time.Time
}

// Projects returns the organization's projects, by name.
func (s *Service) Projects(ctx context.Context, orgID int64) (_ []OrgProject, err error) {
	defer derrors.Wrap(&err, "org.Projects(%d)", orgID)
	rows, err := s.db.QueryContext(ctx, `SELECT p.id, p.name, p.normalized_name FROM organization_projects op JOIN projects p ON p.id = op.project_id
		WHERE op.organization_id = $1 ORDER BY p.normalized_name`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OrgProject
	for rows.Next() {
		var p OrgProject
		if err := rows.Scan(&p.ProjectID, &p.Name, &p.Normalized); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// MoveRequests returns the requests to move a project in, oldest first.
func (s *Service) MoveRequests(ctx context.Context, orgID int64) (_ []MoveRequest, err error) {
	defer derrors.Wrap(&err, "org.MoveRequests(%d)", orgID)
	rows, err := s.db.QueryContext(ctx, `SELECT p.id, p.name, p.normalized_name, r.requester, r.created_at FROM organization_project_requests r
		JOIN projects p ON p.id = r.project_id WHERE r.organization_id = $1 ORDER BY r.created_at, p.id`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MoveRequest
	for rows.Next() {
		var m MoveRequest
		if err := rows.Scan(&m.ProjectID, &m.Name, &m.Normalized, &m.Requester, &m.CreatedAt); err != nil {
			return nil, err
		}
		m.CreatedAt = m.CreatedAt.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// CreateProject creates an empty project inside the organization; its
// owners own it.
func (s *Service) CreateProject(ctx context.Context, a Actor, orgID int64, name string) (p *project.Project, err error) {
	defer derrors.Wrap(&err, "org.CreateProject(%d, %q)", orgID, name)
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, derrors.InField(derrors.Invalid, "project_name", "Enter a name for the project.")
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		now := s.clock()
		p, err = s.projects.CreateForOrganizationTx(ctx, tx, name, a.Username, func(projectID int64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO organization_projects (project_id, organization_id, created_at) VALUES ($1, $2, $3)`, projectID, o.ID, now)
			return err
		})
		if err != nil {
			return inField("project_name", err)
		}
		if err := audit.Record(ctx, tx, now, audit.Event{ProjectID: p.ID, Tag: audit.ProjectCreate, ActorID: a.UserID, Actor: a.Username,
			IP: a.Client.IP, UserAgent: a.Client.UserAgent}); err != nil {
			return err
		}
		return s.record(ctx, tx, now, a, o, change{tag: audit.OrgProjectAdd, projectID: p.ID, projectTag: audit.ProjectOrgAdd,
			add: map[string]any{"project_name": p.Name, "created": true}})
	})
	return p, err
}

// inField puts a project-rule refusal on the form's field.
func inField(field string, err error) error {
	var de *derrors.Error
	if errors.As(err, &de) && de.Field == "" {
		return derrors.InField(de.Kind, field, "%s", de.Msg)
	}
	return err
}

// projectForMove reads a project by name in tx with the actor's effective
// role on it and the organization that holds it now, if any.
func projectForMove(ctx context.Context, tx *sql.Tx, a Actor, name string) (OrgProject, string, *Organization, error) {
	var p OrgProject
	norm := pep.NormalizeName(strings.TrimSpace(name))
	err := tx.QueryRowContext(ctx, `SELECT id, name, normalized_name FROM projects WHERE normalized_name = $1`, norm).Scan(&p.ProjectID, &p.Name, &p.Normalized)
	if errors.Is(err, sql.ErrNoRows) {
		return p, "", nil, derrors.InField(derrors.Invalid, "project_name", "There is no project named %q.", name)
	}
	if err != nil {
		return p, "", nil, err
	}
	var role string
	err = tx.QueryRowContext(ctx, `SELECT role FROM effective_roles WHERE project_id = $1 AND user_id = $2
		ORDER BY CASE role WHEN 'Owner' THEN 0 ELSE 1 END LIMIT 1`, p.ProjectID, a.UserID).Scan(&role)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, "", nil, err
	}
	cur, err := orgOfProject(ctx, tx, p.ProjectID)
	return p, role, cur, err
}

// MoveIn moves a project the actor owns into the organization. An owner or
// manager of the organization moves it at once (moved is true); a member
// who owns the project files a request for them to accept.
func (s *Service) MoveIn(ctx context.Context, a Actor, orgID int64, projectName string) (p OrgProject, moved bool, err error) {
	defer derrors.Wrap(&err, "org.MoveIn(%d, %q)", orgID, projectName)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, orgRole, err := lockOrg(ctx, tx, orgID, a, Roles...)
		if err != nil {
			return err
		}
		var role string
		var cur *Organization
		if p, role, cur, err = projectForMove(ctx, tx, a, projectName); err != nil {
			return err
		}
		if role != project.RoleOwner {
			return derrors.InField(derrors.Forbidden, "project_name", "You can only move a project you own: you are not an owner of %s.", p.Name)
		}
		switch {
		case cur != nil && cur.ID == o.ID:
			return derrors.InField(derrors.Invalid, "project_name", "%s is in %s already.", p.Name, o.Name)
		case cur != nil:
			return derrors.InField(derrors.Conflict, "project_name", "%s belongs to the organization %s. Move it out of there first.", p.Name, cur.Name)
		}
		now := s.clock()
		if orgRole == RoleMember {
			_, err := tx.ExecContext(ctx, `INSERT INTO organization_project_requests (project_id, organization_id, requested_by, requester, created_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id) DO UPDATE SET organization_id = excluded.organization_id,
				requested_by = excluded.requested_by, requester = excluded.requester, created_at = excluded.created_at`,
				p.ProjectID, o.ID, a.UserID, a.Username, now)
			if err != nil {
				return err
			}
			return s.record(ctx, tx, now, a, o, change{tag: audit.OrgProjectRequest, add: map[string]any{"project_name": p.Name}})
		}
		moved = true
		return s.attach(ctx, tx, now, a, o, p)
	})
	return p, moved, err
}

func (s *Service) attach(ctx context.Context, tx *sql.Tx, now time.Time, a Actor, o *Organization, p OrgProject) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM organization_project_requests WHERE project_id = $1`, p.ProjectID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO organization_projects (project_id, organization_id, created_at) VALUES ($1, $2, $3)`,
		p.ProjectID, o.ID, now); err != nil {
		return err
	}
	return s.record(ctx, tx, now, a, o, change{tag: audit.OrgProjectAdd, projectID: p.ProjectID, projectTag: audit.ProjectOrgAdd,
		add: map[string]any{"project_name": p.Name}})
}

// AnswerMove accepts or declines a request to move a project in. Accepting
// checks again that the requester still owns the project.
func (s *Service) AnswerMove(ctx context.Context, a Actor, orgID, projectID int64, accept bool) (p OrgProject, err error) {
	defer derrors.Wrap(&err, "org.AnswerMove(%d, %d)", orgID, projectID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		var requester sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT p.id, p.name, p.normalized_name, r.requested_by FROM organization_project_requests r
			JOIN projects p ON p.id = r.project_id WHERE r.project_id = $1 AND r.organization_id = $2`, projectID, o.ID).
			Scan(&p.ProjectID, &p.Name, &p.Normalized, &requester)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "There is no such request (any more). Reload the page.")
		}
		if err != nil {
			return err
		}
		now := s.clock()
		if !accept {
			if _, err := tx.ExecContext(ctx, `DELETE FROM organization_project_requests WHERE project_id = $1`, p.ProjectID); err != nil {
				return err
			}
			return s.record(ctx, tx, now, a, o, change{tag: audit.OrgProjectDecline, add: map[string]any{"project_name": p.Name},
				concerned: requester.Int64})
		}
		var role string
		err = tx.QueryRowContext(ctx, `SELECT role FROM effective_roles WHERE project_id = $1 AND user_id = $2
		ORDER BY CASE role WHEN 'Owner' THEN 0 ELSE 1 END LIMIT 1`, p.ProjectID, requester.Int64).Scan(&role)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if role != project.RoleOwner {
			return derrors.New(derrors.Conflict, "The request can no longer be accepted: the person who made it no longer owns %s.", p.Name)
		}
		if cur, err := orgOfProject(ctx, tx, p.ProjectID); err != nil {
			return err
		} else if cur != nil {
			return derrors.New(derrors.Conflict, "%s belongs to the organization %s now.", p.Name, cur.Name)
		}
		return s.attach(ctx, tx, now, a, o, p)
	})
	return p, err
}

// MoveOut takes a project out of the organization. Every team role on it
// ends with the move; if no one would own it any more, the actor becomes
// its owner.
func (s *Service) MoveOut(ctx context.Context, a Actor, orgID, projectID int64) (p OrgProject, err error) {
	defer derrors.Wrap(&err, "org.MoveOut(%d, %d)", orgID, projectID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT p.id, p.name, p.normalized_name FROM organization_projects op JOIN projects p ON p.id = op.project_id
			WHERE op.project_id = $1 AND op.organization_id = $2`, projectID, o.ID).Scan(&p.ProjectID, &p.Name, &p.Normalized)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "That project is not in %s (any more). Reload the page.", o.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_project_roles WHERE project_id = $1`, p.ProjectID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM organization_projects WHERE project_id = $1`, p.ProjectID); err != nil {
			return err
		}
		var owners int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM roles WHERE project_id = $1 AND role = 'Owner'`, p.ProjectID).Scan(&owners); err != nil {
			return err
		}
		if owners == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE project_id = $1 AND user_id = $2`, p.ProjectID, a.UserID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, p.ProjectID, a.UserID); err != nil {
				return err
			}
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.OrgProjectRemove, projectID: p.ProjectID, projectTag: audit.ProjectOrgRemove,
			add: map[string]any{"project_name": p.Name}})
	})
	return p, err
}
