package web

import (
	"net/http"
	"strconv"

	"github.com/gatehouse-index/gatehouse/internal/upstream"
)

// adminUpstreamPage shows the pull-through cache: its upstreams, what it
// holds, its hit rate and its errors since start.
type adminUpstreamPage struct {
	basePage
	Upstreams []string
	Summary   upstream.Summary
	Stats     map[string]int64
	HitRate   string
}

func (s *Server) adminUpstream(w http.ResponseWriter, r *http.Request) error {
	page := adminUpstreamPage{basePage: s.base(r, "Pull-through cache")}
	if s.upstream != nil {
		var err error
		if page.Summary, err = s.upstream.Summarize(r.Context()); err != nil {
			return err
		}
		page.Upstreams = s.upstream.Upstreams()
		st := s.upstream.Stats()
		page.Stats = map[string]int64{"page hits": st.PageHits.Load(), "page fetches": st.PageMisses.Load(), "stale pages served": st.PageStale.Load(),
			"file downloads from the cache": st.FileHits.Load(), "file fetches from upstream": st.FileFetches.Load(),
			"files refused (digest mismatch)": st.FileRefused.Load(), "upstream errors": st.Errors.Load()}
		if total := st.PageHits.Load() + st.PageMisses.Load(); total > 0 {
			page.HitRate = formatPercent(float64(st.PageHits.Load()) / float64(total))
		}
	}
	return s.render(w, http.StatusOK, "admin_upstream.html", page)
}

func formatPercent(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + " %" }
