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
