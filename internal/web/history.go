package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// historyWindow is how far back the security history goes (as on PyPI).
const historyWindow = 90 * 24 * time.Hour

// historyPerPage is how many events one page of the history shows.
const historyPerPage = 50

type historyPage struct {
	basePage
	History []historyRow
	Page    int
	Newer   string // link to the newer page, "" on the first
	Older   string // link to the older page, "" on the last
}

type historyRow struct {
	When    time.Time
	What    string
	IP      string
	Browser string
}

// historyPage is the security history: the account's events of the last
// 90 days in plain words, newest first, historyPerPage to a page
// (/manage/account/history/?page=N). Anyone signed in may read their own,
// second factor or not: it is how they learn what happened to the account.
func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	page := 1
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 1_000_000 {
			return derrors.New(derrors.Invalid, "The page number must be a whole number, 1 or more: %s/manage/account/history/?page=1 is the newest.", s.baseURL)
		}
		page = n
	}
	events, more, err := s.audit.ForUserPage(r.Context(), u.ID, s.now().Add(-historyWindow), page, historyPerPage)
	if err != nil {
		return err
	}
	if len(events) == 0 && page > 1 {
		return derrors.New(derrors.NotFound, "Your security history has no page %d. The newest events are on the first page: %s/manage/account/history/", page, s.baseURL)
	}
	p := historyPage{basePage: s.base(r, "Security history"), Page: page}
	for _, e := range events {
		p.History = append(p.History, historyRow{When: e.CreatedAt, What: audit.Describe(e), IP: dash(e.IP), Browser: eventAgent(e.UserAgent)})
	}
	if page > 1 {
		p.Newer = "/manage/account/history/?page=" + strconv.Itoa(page-1)
	}
	if more {
		p.Older = "/manage/account/history/?page=" + strconv.Itoa(page+1)
	}
	return s.render(w, http.StatusOK, "history.html", p)
}
