package upstream

// Versions an administrator lets through the cooldown (--upstream-min-age)
// early: a security fix, say, that cannot wait until it is old enough.
// The files of such a version are listed however young they are, or
// without an upload-time at all.

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

// EarlyVersion is an upstream version allowed before its cooldown.
type EarlyVersion struct {
	Name      string // normalized project name
	Version   string // canonical PEP 440 form
	AllowedBy string
	At        time.Time
}

// MinAge is the cooldown (0: none).
func (s *Service) MinAge() time.Duration { return s.minAge }

// EarlyVersions lists the versions allowed early, by name and version.
func (s *Service) EarlyVersions(ctx context.Context) ([]EarlyVersion, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT normalized_name, version, allowed_by, created_at FROM upstream_early_versions ORDER BY normalized_name, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EarlyVersion
	for rows.Next() {
		var e EarlyVersion
		if err := rows.Scan(&e.Name, &e.Version, &e.AllowedBy, &e.At); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// earlySet returns the versions of name allowed early.
func (s *Service) earlySet(ctx context.Context, name string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM upstream_early_versions WHERE normalized_name = $1`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		set[v] = true
	}
	return set, rows.Err()
}

// parseEarly checks an early-version form: a project name and a PEP 440
// version, returned normalized and canonical.
func parseEarly(name, version string) (string, string, error) {
	name, version = strings.TrimSpace(name), strings.TrimSpace(version)
	if !pep.ValidProjectName(name) {
		return "", "", derrors.InField(derrors.Invalid, "project", "%q is not a project name. Give the upstream project's name, such as requests.", name)
	}
	v, err := pep.ParseVersion(version)
	if err != nil {
		return "", "", derrors.InField(derrors.Invalid, "version", "%q is not a version (PEP 440). Give the version to allow, such as 2.32.4.", version)
	}
	return pep.NormalizeName(name), v.Canonical(), nil
}

// AllowEarly lets the upstream files of one version of a project through
// the cooldown. Administrators only; audited in their history.
func (s *Service) AllowEarly(ctx context.Context, a project.Actor, name, version string) (err error) {
	defer derrors.Wrap(&err, "upstream.AllowEarly(%q, %q)", name, version)
	norm, canon, err := parseEarly(name, version)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := requireAdmin(ctx, tx, a); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO upstream_early_versions (normalized_name, version, allowed_by, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (normalized_name, version) DO NOTHING`, norm, canon, a.Username, s.now().UTC().Truncate(time.Microsecond))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return derrors.New(derrors.Conflict, "%s %s is already allowed before its cooldown.", norm, canon)
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{UserID: a.UserID, Tag: audit.AdminUpstreamEarlyAllow, ActorID: a.UserID, Actor: a.Username,
			IP: a.Client.IP, UserAgent: a.Client.UserAgent, Additional: map[string]any{"project": norm, "version": canon}})
	})
}

// RemoveEarly puts an early-allowed version back under the cooldown.
// Administrators only; audited in their history.
func (s *Service) RemoveEarly(ctx context.Context, a project.Actor, name, version string) (err error) {
	defer derrors.Wrap(&err, "upstream.RemoveEarly(%q, %q)", name, version)
	norm, canon, err := parseEarly(name, version)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := requireAdmin(ctx, tx, a); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM upstream_early_versions WHERE normalized_name = $1 AND version = $2`, norm, canon)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return derrors.New(derrors.NotFound, "%s %s is not allowed before its cooldown, so there is nothing to remove.", norm, canon)
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{UserID: a.UserID, Tag: audit.AdminUpstreamEarlyRemove, ActorID: a.UserID, Actor: a.Username,
			IP: a.Client.IP, UserAgent: a.Client.UserAgent, Additional: map[string]any{"project": norm, "version": canon}})
	})
}

// requireAdmin checks in tx that the actor is an enabled administrator.
func requireAdmin(ctx context.Context, tx *sql.Tx, a project.Actor) error {
	var admin bool
	err := tx.QueryRowContext(ctx, `SELECT is_admin AND NOT disabled FROM users WHERE id = $1`, a.UserID).Scan(&admin)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if !admin {
		return derrors.New(derrors.Forbidden, "Only administrators can do this.")
	}
	return nil
}

// fileVersion is the canonical version in a wheel's or an sdist's name,
// "" when the name is neither.
func fileVersion(filename string) string {
	if w, err := pep.ParseWheelFilename(filename); err == nil {
		return pep.CanonicalizeVersion(w.Version)
	}
	if sd, err := pep.ParseSdistFilename(filename); err == nil {
		return pep.CanonicalizeVersion(sd.Version)
	}
	return ""
}
