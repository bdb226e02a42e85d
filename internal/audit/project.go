package audit

import (
	"context"
	"database/sql"
	"encoding/json"
)

// Project event tags (spec §2.1), recorded with Event.ProjectID set. Those
// without a PyPI name say so.
const (
	ProjectCreate        = "project:create"
	ProjectReleaseAdd    = "project:release:add"
	FileAdd              = "file:add"
	ProjectReleaseYank   = "project:release:yank"
	ProjectReleaseUnyank = "project:release:unyank"
	ProjectReleaseRemove = "project:release:remove"
	FileRemove           = "file:remove"
	// ProjectRemove is ours: on PyPI a deleted project's events go with it;
	// here they stay, and this one says why the project is gone.
	ProjectRemove              = "project:remove"
	ProjectArchiveEnter        = "project:archive:enter"
	ProjectArchiveExit         = "project:archive:exit"
	ProjectQuarantineEnter     = "project:quarantine:enter"
	ProjectQuarantineExit      = "project:quarantine:exit"
	AdminProjectUploadLimit    = "admin:project:set_upload_limit"
	AdminProjectTotalSizeLimit = "admin:project:set_total_size_limit"
	// AdminProjectReleaseAge is ours: the per-project override of how long
	// a release accepts new files.
	AdminProjectReleaseAge = "admin:project:set_release_age"
)

// ForProject returns a project's events, newest first: at most limit of
// them, with an id below before (0: from the newest), so that a history
// can be read page by page.
func (s *Service) ForProject(ctx context.Context, projectID, before int64, limit int) ([]Stored, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, project_id, tag, actor_id, actor, ip, user_agent, additional, created_at
		FROM events WHERE project_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, projectID, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var e Stored
		var uid, pid, aid sql.NullInt64
		var add string
		if err := rows.Scan(&e.ID, &uid, &pid, &e.Tag, &aid, &e.Actor, &e.IP, &e.UserAgent, &add, &e.CreatedAt); err != nil {
			return nil, err
		}
		e.CreatedAt = e.CreatedAt.UTC()
		e.UserID, e.ProjectID, e.ActorID = uid.Int64, pid.Int64, aid.Int64
		json.Unmarshal([]byte(add), &e.Additional)
		out = append(out, e)
	}
	return out, rows.Err()
}
