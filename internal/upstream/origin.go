package upstream

// A local project's origin: local only (the default, no row), both (its
// page merges the upstream's, local files first, with PEP 708 "tracks"), or
// upstream (the upstream's page instead of the local one). Only the
// project's owners and the administrators change it, and every change is
// audited.

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// The origins of a local project.
const (
	OriginLocal    = "local"
	OriginBoth     = "both"
	OriginUpstream = "upstream"
)

// Origin returns the project's origin.
func (s *Service) Origin(ctx context.Context, projectID int64) (string, error) {
	var o string
	err := s.db.QueryRowContext(ctx, `SELECT origin FROM project_origins WHERE project_id = $1`, projectID).Scan(&o)
	if errors.Is(err, sql.ErrNoRows) {
		return OriginLocal, nil
	}
	return o, err
}

// SetOrigin changes the project's origin; the actor must own it or be an
// administrator (whose change is recorded as an administrator's).
func (s *Service) SetOrigin(ctx context.Context, a project.Actor, p *project.Project, origin string) (err error) {
	defer derrors.Wrap(&err, "upstream.SetOrigin(%q, %q)", p.NormalizedName, origin)
	switch origin {
	case OriginLocal, OriginBoth, OriginUpstream:
	default:
		return derrors.InField(derrors.Invalid, "origin", "Choose where installers find %s: here only, here and upstream, or upstream only.", p.Name)
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, `SELECT role FROM effective_roles WHERE project_id = $1 AND user_id = $2
			ORDER BY CASE role WHEN 'Owner' THEN 0 ELSE 1 END LIMIT 1`, p.ID, a.UserID).Scan(&role)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		admin := false
		if role != project.RoleOwner {
			if err := requireAdmin(ctx, tx, a); errors.Is(err, derrors.Forbidden) {
				return derrors.New(derrors.Forbidden, "Only an owner of %s or an administrator can do this.", p.Name)
			} else if err != nil {
				return err
			}
			admin = true
		}
		var old string
		err = tx.QueryRowContext(ctx, `SELECT origin FROM project_origins WHERE project_id = $1`, p.ID).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			old = OriginLocal
		case err != nil:
			return err
		}
		if old == origin {
			return nil
		}
		if origin == OriginLocal {
			_, err = tx.ExecContext(ctx, `DELETE FROM project_origins WHERE project_id = $1`, p.ID)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO project_origins (project_id, origin, set_by, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (project_id) DO UPDATE SET origin = excluded.origin, set_by = excluded.set_by, created_at = excluded.created_at`,
				p.ID, origin, a.Username, s.now().UTC().Truncate(time.Microsecond))
		}
		if err != nil {
			return err
		}
		// A journal entry, as every change to what a page shows: it moves
		// the serial and makes every instance drop its cached page.
		var serial int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO journal (project_id, name, action, submitted_by, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			p.ID, p.Name, "origin "+origin, a.Username, s.now().UTC()).Scan(&serial); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET last_serial = $1 WHERE id = $2`, serial, p.ID); err != nil {
			return err
		}
		add := map[string]any{"origin": origin, "previous_origin": old}
		if admin {
			add["as"] = "administrator"
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{ProjectID: p.ID, Tag: audit.ProjectOriginChange, ActorID: a.UserID, Actor: a.Username,
			IP: a.Client.IP, UserAgent: a.Client.UserAgent, Additional: add})
	})
}
