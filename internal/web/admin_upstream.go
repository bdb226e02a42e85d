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
		st := s.upstream.Stats().Snapshot()
		page.Stats = map[string]int64{"page hits": st.PageHits, "pages revalidated (unchanged upstream)": st.PageRevalidated,
			"page fetches": st.PageMisses, "stale pages served": st.PageStale,
			"file downloads from the cache": st.FileHits, "file fetches from upstream": st.FileFetches, "bytes fetched from upstream": st.FileBytes,
			"files refused (digest mismatch)": st.FileRefused, "upstream errors": st.Errors}
		// A revalidated page is the cached one: a hit that cost a request.
		if total := st.PageHits + st.PageRevalidated + st.PageMisses; total > 0 {
			page.HitRate = formatPercent(float64(st.PageHits+st.PageRevalidated) / float64(total))
		}
	}
	return s.render(w, http.StatusOK, "admin_upstream.html", page)
}

func formatPercent(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + " %" }
