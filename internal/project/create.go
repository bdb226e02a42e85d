package project

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// CheckNewName applies the rules for a new project's name (valid, not
// taken, not prohibited, not too similar to another, not a standard-library
// module), with Warehouse's messages. A taken name is derrors.Conflict.
func (s *Service) CheckNewName(ctx context.Context, name string) error {
	return s.checkNewProjectName(ctx, s.db, name)
}

// CreateInTx creates an empty project owned by ownerID in tx, for a
// caller whose own transaction creates it (a pending trusted publisher's
// first exchange). The name rules are checked inside tx; a name taken
// meanwhile is derrors.Conflict, or a unique violation when a concurrent
// transaction got there first.
func (s *Service) CreateInTx(ctx context.Context, tx *sql.Tx, name string, ownerID int64, ownerName string) (*Project, error) {
	id, err := s.createProject(ctx, tx, name, ownerID, ownerName, nil)
	if err != nil {
		return nil, err
	}
	return &Project{ID: id, Name: name, NormalizedName: pep.NormalizeName(name)}, nil
}

// CreateForOrganizationTx creates an empty project in tx that belongs to an
// organization: attach, which records the organization's claim in tx, runs
// once the project row is written, and no user gets a role of their own;
// the organization's owners own it (the effective_roles view). creatorName
// is who made it, for the journal.
func (s *Service) CreateForOrganizationTx(ctx context.Context, tx *sql.Tx, name, creatorName string, attach func(projectID int64) error) (*Project, error) {
	if attach == nil {
		return nil, errors.New("project.CreateForOrganizationTx: no organization to attach the project to")
	}
	id, err := s.createProject(ctx, tx, name, 0, creatorName, attach)
	if err != nil {
		return nil, err
	}
	return &Project{ID: id, Name: name, NormalizedName: pep.NormalizeName(name)}, nil
}

// createProject writes a new project with its first owner (or, with
// attach, its organization) and journal entries, and runs the create hook.
func (s *Service) createProject(ctx context.Context, tx *sql.Tx, name string, ownerID int64, ownerName string, attach func(int64) error) (int64, error) {
	if err := s.checkNewProjectName(ctx, tx, name); err != nil {
		return 0, err
	}
	if ownerID == 0 && attach == nil {
		return 0, derrors.New(derrors.Forbidden, "A project needs an owner.")
	}
	var id int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		name, pep.NormalizeName(name), pep.UltranormalizeName(name), s.now().UTC()).Scan(&id)
	if err != nil {
		return 0, err
	}
	if _, err := s.journal(ctx, tx, id, name, "", "create", ownerName); err != nil {
		return 0, err
	}
	if attach != nil {
		if err := attach(id); err != nil {
			return 0, err
		}
	} else {
		if _, err := tx.ExecContext(ctx, `INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, $3)`, id, ownerID, RoleOwner); err != nil {
			return 0, err
		}
		if _, err := s.journal(ctx, tx, id, name, "", "add Owner "+ownerName, ownerName); err != nil {
			return 0, err
		}
	}
	if s.created != nil {
		if err := s.created(ctx, tx, id, name, ownerID); err != nil {
			return 0, fmt.Errorf("project created hook: %w", err)
		}
	}
	return id, nil
}

// nullUser is a user id for a nullable column: uploads by a trusted
// publisher have no user.
func nullUser(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }
