package project

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// stdlibModules is sys.stdlib_module_names of CPython 3.11 (public names).
// A project named like a standard-library module would shadow it for anyone
// who installs it, a classic typosquatting trick, so such names are refused.
//
//go:embed stdlib_modules.txt
var stdlibModules string

func isStdlibName(normalized string) bool {
	for _, m := range strings.Fields(stdlibModules) {
		if pep.NormalizeName(m) == normalized {
			return true
		}
	}
	return false
}

// checkNewProjectName applies Warehouse's rules for a name that does not yet
// exist (spec §4.2 step 9), in Warehouse's order, with its messages.
func (s *Service) checkNewProjectName(ctx context.Context, q querier, name string) error {
	norm := pep.NormalizeName(name)
	if !pep.ValidProjectName(name) {
		return derrors.New(derrors.Invalid, "The name '%s' is invalid. See %s for more information.", name, s.help("project-name"))
	}
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE normalized_name = $1`, norm).Scan(&one)
	if err == nil {
		return derrors.New(derrors.Conflict, "The name '%s' conflicts with an existing project. See %s for more information.", name, s.help("project-name"))
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	err = q.QueryRowContext(ctx, `SELECT 1 FROM prohibited_project_names WHERE normalized_name = $1`, norm).Scan(&one)
	if err == nil {
		return derrors.New(derrors.Invalid, "The name '%s' isn't allowed. See %s for more information.", name, s.help("project-name"))
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	err = q.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE ultranormalized_name = $1`, pep.UltranormalizeName(name)).Scan(&one)
	if err == nil {
		return derrors.New(derrors.Invalid, "The name '%s' is too similar to an existing project. See %s for more information.", name, s.help("project-name"))
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if isStdlibName(norm) {
		return derrors.New(derrors.Invalid, "The name '%s' isn't allowed (conflict with Python Standard Library module name). See %s for more information.", name, s.help("project-name"))
	}
	return nil
}

// Prohibit reserves a name so no project can be created with it.
func (s *Service) Prohibit(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO prohibited_project_names (normalized_name, created_at) VALUES ($1, $2) ON CONFLICT (normalized_name) DO NOTHING`,
		pep.NormalizeName(name), s.now().UTC())
	return err
}
