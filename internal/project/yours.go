package project

import (
	"context"
	"strings"
	"time"
)

// YourProject is one row of "Your projects": a project, your role on it,
// and how far it has come.
type YourProject struct {
	Project
	Role        string
	Releases    int
	LastRelease time.Time // when the newest release was created (zero: none yet)
}

// ProjectsOf returns the projects the user holds a role on, by name.
func (s *Service) ProjectsOf(ctx context.Context, userID int64) ([]YourProject, error) {
	// A user can hold several roles on one project (their own, an
	// organization's, a team's): the strongest counts.
	rows, err := s.db.QueryContext(ctx, `SELECT `+qualified("p", projectColumns)+`,
		CASE WHEN min(CASE r.role WHEN 'Owner' THEN 0 ELSE 1 END) = 0 THEN 'Owner' ELSE 'Maintainer' END,
		(SELECT count(*) FROM releases x WHERE x.project_id = p.id)
		FROM effective_roles r JOIN projects p ON p.id = r.project_id WHERE r.user_id = $1
		GROUP BY p.id ORDER BY p.normalized_name`, userID)
	if err != nil {
		return nil, err
	}
	var out []YourProject
	at := map[int64]int{}
	for rows.Next() {
		var y YourProject
		err := rows.Scan(&y.ID, &y.Name, &y.NormalizedName, &y.CreatedAt, &y.LastSerial, &y.TotalSize, &y.UploadLimit, &y.TotalSizeLimit,
			&y.Status, &y.StatusChangedAt, &y.ReleaseAgeDays, &y.Role, &y.Releases)
		if err != nil {
			rows.Close()
			return nil, err
		}
		y.CreatedAt = y.CreatedAt.UTC()
		at[y.ID] = len(out)
		out = append(out, y)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The newest release of each, read as typed rows: max() over a
	// timestamp loses its type on SQLite.
	rows, err = s.db.QueryContext(ctx, `SELECT x.project_id, x.created_at FROM releases x JOIN effective_roles r ON r.project_id = x.project_id
		WHERE r.user_id = $1`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			return nil, err
		}
		if i, ok := at[id]; ok && t.After(out[i].LastRelease) {
			out[i].LastRelease = t.UTC()
		}
	}
	return out, rows.Err()
}

// qualified prefixes each column of a column list with a table alias.
func qualified(alias, columns string) string {
	cs := strings.Split(columns, ",")
	for i, c := range cs {
		cs[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cs, ", ")
}
