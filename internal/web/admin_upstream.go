package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"

	"github.com/gatehouse-index/gatehouse/internal/upstream"
)

// adminUpstreamPage shows the pull-through cache: its upstreams, what it
// holds, its hit rate and its errors since start, and the versions allowed
// before the cooldown with the form that adds one.
type adminUpstreamPage struct {
	basePage
	formState
	Upstreams []string
	Summary   upstream.Summary
	Stats     map[string]int64
	HitRate   string
	MinAge    string // the cooldown, "" for none
	Early     []upstream.EarlyVersion
}

func (s *Server) adminUpstream(w http.ResponseWriter, r *http.Request) error {
	return s.renderAdminUpstream(w, r, http.StatusOK, formState{})
}

func (s *Server) renderAdminUpstream(w http.ResponseWriter, r *http.Request, status int, fs formState) error {
	page := adminUpstreamPage{basePage: s.base(r, "Pull-through cache"), formState: fs}
	if page.Values == nil {
		page.Values = map[string]string{}
	}
	if s.upstream != nil {
		var err error
		if page.Summary, err = s.upstream.Summarize(r.Context()); err != nil {
			return err
		}
		if page.Early, err = s.upstream.EarlyVersions(r.Context()); err != nil {
			return err
		}
		if d := s.upstream.MinAge(); d > 0 {
			page.MinAge = formatAge(d)
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
	return s.render(w, status, "admin_upstream.html", page)
}

// adminAllowEarly lets an upstream version through --upstream-min-age.
func (s *Server) adminAllowEarly(w http.ResponseWriter, r *http.Request) error {
	return s.adminEarly(w, r, true)
}

// adminRemoveEarly puts an early-allowed version back under the cooldown.
func (s *Server) adminRemoveEarly(w http.ResponseWriter, r *http.Request) error {
	return s.adminEarly(w, r, false)
}

func (s *Server) adminEarly(w http.ResponseWriter, r *http.Request, allow bool) error {
	if s.upstream == nil {
		return derrors.New(derrors.NotFound, "This index has no upstream (--upstream), so there is no cooldown.")
	}
	name, version := r.PostFormValue("project"), r.PostFormValue("version")
	var err error
	msg := "%s %s is no longer allowed before its cooldown."
	if allow {
		err = s.upstream.AllowEarly(r.Context(), actor(r), name, version)
		msg = "%s %s is allowed before its cooldown: its files are listed however young they are."
	} else {
		err = s.upstream.RemoveEarly(r.Context(), actor(r), name, version)
	}
	norm := pep.NormalizeName(strings.TrimSpace(name))
	if err == nil {
		// This instance's rendered page; another's ages out within the TTL.
		s.upPages.forget(norm)
	}
	return s.finishForm(w, r, err, fmt.Sprintf(msg, norm, pep.CanonicalizeVersion(strings.TrimSpace(version))), "/admin/upstream/", func(status int, msg string) error {
		return s.renderAdminUpstream(w, r, status, refused(r, err, msg))
	})
}

// formatAge says a duration in days, hours or minutes, as a person would.
func formatAge(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return d.String()
}

func formatPercent(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + " %" }
