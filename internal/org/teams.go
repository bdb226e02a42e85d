package org

// Teams: named groups of an organization's members, each holding a role
// (Owner or Maintainer) on some of the organization's projects. Owners and
// Managers manage them. A team's role is read through the effective_roles
// view, so adding or removing a member changes their access at once.

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// Team is a team with its members and project roles.
type Team struct {
	ID       int64
	Name     string
	Members  []Member // Role is the member's organization role
	Projects []TeamProject
}

// TeamProject is a team's role on a project.
type TeamProject struct {
	ProjectID  int64
	Name       string
	Normalized string
	Role       string
}

// Teams returns the organization's teams, by name, with their members and
// project roles.
func (s *Service) Teams(ctx context.Context, orgID int64) (_ []Team, err error) {
	defer derrors.Wrap(&err, "org.Teams(%d)", orgID)
	rows, err := s.db.QueryContext(ctx, `SELECT id, name FROM teams WHERE organization_id = $1 ORDER BY normalized_name`, orgID)
	if err != nil {
		return nil, err
	}
	var out []Team
	at := map[int64]int{}
	for rows.Next() {
		var t Team
		if err := rows.Scan(&t.ID, &t.Name); err != nil {
			rows.Close()
			return nil, err
		}
		at[t.ID] = len(out)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT tm.team_id, u.id, u.username, r.role FROM team_members tm
		JOIN teams t ON t.id = tm.team_id JOIN users u ON u.id = tm.user_id
		JOIN organization_roles r ON r.organization_id = t.organization_id AND r.user_id = tm.user_id
		WHERE t.organization_id = $1 ORDER BY u.username_key`, orgID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		var m Member
		if err := rows.Scan(&id, &m.UserID, &m.Username, &m.Role); err != nil {
			rows.Close()
			return nil, err
		}
		out[at[id]].Members = append(out[at[id]].Members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT tpr.team_id, p.id, p.name, p.normalized_name, tpr.role FROM team_project_roles tpr
		JOIN teams t ON t.id = tpr.team_id JOIN projects p ON p.id = tpr.project_id
		WHERE t.organization_id = $1 ORDER BY p.normalized_name`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p TeamProject
		if err := rows.Scan(&id, &p.ProjectID, &p.Name, &p.Normalized, &p.Role); err != nil {
			return nil, err
		}
		out[at[id]].Projects = append(out[at[id]].Projects, p)
	}
	return out, rows.Err()
}

func teamOf(ctx context.Context, tx *sql.Tx, o *Organization, teamID int64) (Team, error) {
	t := Team{ID: teamID}
	err := tx.QueryRowContext(ctx, `SELECT name FROM teams WHERE id = $1 AND organization_id = $2`, teamID, o.ID).Scan(&t.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return t, derrors.New(derrors.NotFound, "%s has no such team (any more). Reload the page.", o.Name)
	}
	return t, err
}

// CreateTeam adds a team with no members.
func (s *Service) CreateTeam(ctx context.Context, a Actor, orgID int64, name string) (t Team, err error) {
	defer derrors.Wrap(&err, "org.CreateTeam(%d, %q)", orgID, name)
	name = strings.TrimSpace(name)
	if !pep.ValidProjectName(name) || len(name) > 50 {
		return t, derrors.InField(derrors.Invalid, "name", "The team name %q is not valid: up to 50 letters, digits, '.', '_' and '-', starting and ending with a letter or digit.", name)
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		now := s.clock()
		err = tx.QueryRowContext(ctx, `INSERT INTO teams (organization_id, name, normalized_name, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			o.ID, name, pep.NormalizeName(name), now).Scan(&t.ID)
		if db.IsUniqueViolation(err) {
			return derrors.InField(derrors.Conflict, "name", "%s already has a team named %s. Choose another name.", o.Name, name)
		}
		if err != nil {
			return err
		}
		t.Name = name
		return s.record(ctx, tx, now, a, o, change{tag: audit.TeamCreate, add: map[string]any{"team_name": name}})
	})
	return t, err
}

// DeleteTeam removes a team; its members lose what it granted at once.
func (s *Service) DeleteTeam(ctx context.Context, a Actor, orgID, teamID int64) (t Team, err error) {
	defer derrors.Wrap(&err, "org.DeleteTeam(%d, %d)", orgID, teamID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		if t, err = teamOf(ctx, tx, o, teamID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM teams WHERE id = $1`, t.ID); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.TeamDelete, add: map[string]any{"team_name": t.Name}})
	})
	return t, err
}

// AddTeamMember puts a member of the organization into a team. Someone who
// is not a member is refused: teams hold members, and membership is by
// invitation only.
func (s *Service) AddTeamMember(ctx context.Context, a Actor, orgID, teamID int64, username string) (m Member, err error) {
	defer derrors.Wrap(&err, "org.AddTeamMember(%d, %d, %q)", orgID, teamID, username)
	username = strings.TrimSpace(username)
	if username == "" {
		return m, derrors.InField(derrors.Invalid, "username", "Enter the username of the member to add.")
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		t, err := teamOf(ctx, tx, o, teamID)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT u.id, u.username, r.role FROM users u JOIN organization_roles r ON r.user_id = u.id AND r.organization_id = $2
			WHERE u.username_key = $1`, account.UsernameKey(username), o.ID).Scan(&m.UserID, &m.Username, &m.Role)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.InField(derrors.Invalid, "username", "%s is not a member of %s. Invite them to the organization first; teams hold members only.", username, o.Name)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, t.ID, m.UserID)
		if db.IsUniqueViolation(err) {
			return derrors.InField(derrors.Conflict, "username", "%s is in team %s already.", m.Username, t.Name)
		}
		if err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.TeamRoleAdd, add: map[string]any{"team_name": t.Name, "target_user": m.Username},
			concerned: m.UserID, accountTag: audit.AccountTeamRoleAdd})
	})
	return m, err
}

// RemoveTeamMember takes a member out of a team: what the team granted
// them ends at once, for the web and for their API tokens.
func (s *Service) RemoveTeamMember(ctx context.Context, a Actor, orgID, teamID, userID int64) (m Member, err error) {
	defer derrors.Wrap(&err, "org.RemoveTeamMember(%d, %d, %d)", orgID, teamID, userID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		t, err := teamOf(ctx, tx, o, teamID)
		if err != nil {
			return err
		}
		m.UserID = userID
		err = tx.QueryRowContext(ctx, `SELECT u.username FROM team_members tm JOIN users u ON u.id = tm.user_id WHERE tm.team_id = $1 AND tm.user_id = $2`,
			t.ID, userID).Scan(&m.Username)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "That user is not in team %s (any more). Reload the page.", t.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_members WHERE team_id = $1 AND user_id = $2`, t.ID, userID); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.TeamRoleRemove, add: map[string]any{"team_name": t.Name, "target_user": m.Username},
			concerned: m.UserID, accountTag: audit.AccountTeamRoleRemove})
	})
	return m, err
}

// SetTeamProjectRole gives a team a role (Owner or Maintainer) on one of
// the organization's projects, or changes it.
func (s *Service) SetTeamProjectRole(ctx context.Context, a Actor, orgID, teamID int64, projectName, role string) (tp TeamProject, err error) {
	defer derrors.Wrap(&err, "org.SetTeamProjectRole(%d, %d, %q)", orgID, teamID, projectName)
	switch role = strings.TrimSpace(role); role {
	case project.RoleOwner, project.RoleMaintainer:
	default:
		return tp, derrors.InField(derrors.Invalid, "role_name", "Choose the team's role: Owner (can do everything with the project) or Maintainer (can upload to it).")
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		t, err := teamOf(ctx, tx, o, teamID)
		if err != nil {
			return err
		}
		if tp, err = orgProject(ctx, tx, o, projectName); err != nil {
			return err
		}
		var old string
		err = tx.QueryRowContext(ctx, `SELECT role FROM team_project_roles WHERE team_id = $1 AND project_id = $2`, t.ID, tp.ProjectID).Scan(&old)
		tag, ptag := audit.TeamProjectRoleAdd, audit.ProjectTeamRoleAdd
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO team_project_roles (team_id, project_id, role) VALUES ($1, $2, $3)`, t.ID, tp.ProjectID, role)
		case err != nil:
			return err
		case old == role:
			return derrors.New(derrors.Invalid, "Team %s is %s of %s already.", t.Name, role, tp.Name)
		default:
			tag, ptag = audit.TeamProjectRoleChange, audit.ProjectTeamRoleChange
			_, err = tx.ExecContext(ctx, `UPDATE team_project_roles SET role = $3 WHERE team_id = $1 AND project_id = $2`, t.ID, tp.ProjectID, role)
		}
		if err != nil {
			return err
		}
		tp.Role = role
		return s.record(ctx, tx, s.clock(), a, o, change{tag: tag, projectID: tp.ProjectID, projectTag: ptag,
			add: map[string]any{"team_name": t.Name, "project_name": tp.Name, "role_name": role}})
	})
	return tp, err
}

// RemoveTeamProjectRole takes a team's role on a project away.
func (s *Service) RemoveTeamProjectRole(ctx context.Context, a Actor, orgID, teamID, projectID int64) (tp TeamProject, err error) {
	defer derrors.Wrap(&err, "org.RemoveTeamProjectRole(%d, %d, %d)", orgID, teamID, projectID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner, RoleManager)
		if err != nil {
			return err
		}
		t, err := teamOf(ctx, tx, o, teamID)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT p.id, p.name, p.normalized_name, tpr.role FROM team_project_roles tpr JOIN projects p ON p.id = tpr.project_id
			WHERE tpr.team_id = $1 AND tpr.project_id = $2`, t.ID, projectID).Scan(&tp.ProjectID, &tp.Name, &tp.Normalized, &tp.Role)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "Team %s has no role on that project (any more). Reload the page.", t.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_project_roles WHERE team_id = $1 AND project_id = $2`, t.ID, projectID); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.TeamProjectRoleRemove, projectID: tp.ProjectID, projectTag: audit.ProjectTeamRoleRemove,
			add: map[string]any{"team_name": t.Name, "project_name": tp.Name, "role_name": tp.Role}})
	})
	return tp, err
}

// orgProject finds a project of the organization by name in tx.
func orgProject(ctx context.Context, tx *sql.Tx, o *Organization, name string) (TeamProject, error) {
	var tp TeamProject
	norm := pep.NormalizeName(strings.TrimSpace(name))
	err := tx.QueryRowContext(ctx, `SELECT p.id, p.name, p.normalized_name FROM projects p
		JOIN organization_projects op ON op.project_id = p.id AND op.organization_id = $2 WHERE p.normalized_name = $1`, norm, o.ID).
		Scan(&tp.ProjectID, &tp.Name, &tp.Normalized)
	if errors.Is(err, sql.ErrNoRows) {
		return tp, derrors.InField(derrors.Invalid, "project_name", "%s has no project named %q. Teams get roles only on the organization's own projects.", o.Name, name)
	}
	return tp, err
}
