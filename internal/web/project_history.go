package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
)

// historyPageSize is how many events one page of a project's history shows.
const historyPageSize = 50

type projectHistoryRow struct {
	When time.Time
	What string
}

type projectHistoryPage struct {
	projectBase
	Events []projectHistoryRow
	Older  string // link to the next page, "" on the last
}

// projectHistory is the project's events in plain words, newest first,
// page by page (?before=<event id>). It shows who did what and when, not
// their IP address or browser: maintainers read it too.
func (s *Server) projectHistory(w http.ResponseWriter, r *http.Request) error {
	m := stateOf(r).membership
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	events, err := s.audit.ForProject(r.Context(), m.Project.ID, before, historyPageSize+1)
	if err != nil {
		return err
	}
	page := projectHistoryPage{projectBase: s.projectBase(r, m.Project.Name+" history", "history", formState{})}
	if len(events) > historyPageSize {
		events = events[:historyPageSize]
		page.Older = projectPath(m.Project.NormalizedName, "history/") + "?before=" + strconv.FormatInt(events[len(events)-1].ID, 10)
	}
	for _, e := range events {
		page.Events = append(page.Events, projectHistoryRow{When: e.CreatedAt, What: audit.Describe(e)})
	}
	return s.render(w, http.StatusOK, "manage_project_history.html", page)
}
