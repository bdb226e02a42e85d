package token

import (
	"context"
	"encoding/json"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// ProjectChoice is a project a user may limit a token to.
type ProjectChoice struct {
	Name       string // display name
	Normalized string // PEP 503 name, what Create takes
	Role       string // the user's role on it
}

// ScopeProjects returns the projects the user holds a role on, by name:
// the projects a new token may be limited to.
func (s *Service) ScopeProjects(ctx context.Context, userID int64) (_ []ProjectChoice, err error) {
	defer derrors.Wrap(&err, "token.ScopeProjects(user %d)", userID)
	rows, err := s.db.QueryContext(ctx, `
		SELECT p.name, p.normalized_name,
			CASE WHEN min(CASE r.role WHEN 'Owner' THEN 0 ELSE 1 END) = 0 THEN 'Owner' ELSE 'Maintainer' END
		FROM effective_roles r JOIN projects p ON p.id = r.project_id
		WHERE r.user_id = $1
		GROUP BY p.id, p.name, p.normalized_name
		ORDER BY p.normalized_name`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ProjectChoice
	for rows.Next() {
		var c ProjectChoice
		if err := rows.Scan(&c.Name, &c.Normalized, &c.Role); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ProjectToken is a token that can upload to a project, with its owner.
type ProjectToken struct {
	Token
	Username string
}

// ForProject returns the tokens that can upload to the project today, for
// its settings page (pypi/warehouse#6263): the tokens of everyone who holds
// a role on it, whole-account tokens and tokens limited to it alike, minus
// expired tokens and those of disabled accounts, which upload nowhere. A
// token a client attenuated further may be narrower than listed; the
// server cannot know. Ordered by owner, then newest first.
func (s *Service) ForProject(ctx context.Context, projectID int64) (_ []ProjectToken, err error) {
	defer derrors.Wrap(&err, "token.ForProject(%d)", projectID)
	var normalized string
	if err := s.db.QueryRowContext(ctx, `SELECT normalized_name FROM projects WHERE id = $1`, projectID).Scan(&normalized); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT `+tokenColumns+`, u.username
		FROM api_tokens t
		JOIN users u ON u.id = t.user_id
		WHERE NOT u.disabled AND EXISTS (SELECT 1 FROM effective_roles r WHERE r.user_id = t.user_id AND r.project_id = $1)
		ORDER BY u.username_key, t.created_at DESC, t.id`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.now()
	var out []ProjectToken
	for rows.Next() {
		var pt ProjectToken
		var caveatsJSON string
		pt.Token, caveatsJSON, err = scanToken(rows, &pt.Username)
		if err != nil {
			return nil, err
		}
		if pt.ExpiresAt != nil && !now.Before(*pt.ExpiresAt) {
			continue
		}
		if !issuedFor(caveatsJSON, normalized, projectID) {
			continue
		}
		out = append(out, pt)
	}
	return out, rows.Err()
}

// issuedFor reports whether the issued caveats let a token act on the
// project: the same check an upload makes.
func issuedFor(caveatsJSON, normalized string, projectID int64) bool {
	var issued []string
	if json.Unmarshal([]byte(caveatsJSON), &issued) != nil {
		return false
	}
	for _, text := range issued {
		c, err := parseCaveat([]byte(text))
		if err != nil || c.checkProject(normalized, projectID) != "" {
			return false
		}
	}
	return true
}
