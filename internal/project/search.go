package project

import (
	"context"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// Search returns up to limit projects whose normalized name contains what
// q normalizes to, by name: the administrators' project list.
func (s *Service) Search(ctx context.Context, q string, limit int) ([]Project, error) {
	norm := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return -1 // nothing LIKE would read as a wildcard
	}, pep.NormalizeName(strings.TrimSpace(q)))
	rows, err := s.db.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE normalized_name LIKE $1
		ORDER BY normalized_name LIMIT $2`, "%"+norm+"%", limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// RoleHolder is a user with a role on a project.
type RoleHolder struct {
	UserID   int64
	Username string
	Role     string
}

// RoleHolders lists a project's owners and maintainers, by username.
func (s *Service) RoleHolders(ctx context.Context, projectID int64) ([]RoleHolder, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.username, r.role FROM roles r JOIN users u ON u.id = r.user_id
		WHERE r.project_id = $1 ORDER BY u.username_key`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RoleHolder
	for rows.Next() {
		var h RoleHolder
		if err := rows.Scan(&h.UserID, &h.Username, &h.Role); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
