package web

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

type homePage struct {
	basePage
	BaseURL  string
	Releases []project.RecentRelease
}

// homePage lists the newest releases.
func (s *Server) homePage(w http.ResponseWriter, r *http.Request) error {
	recent, err := s.projects.RecentReleases(r.Context(), 30)
	if err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "home.html", homePage{basePage: s.base(r, s.siteName), BaseURL: s.baseURL, Releases: recent})
}

type projectPage struct {
	basePage
	BaseURL     string
	Project     project.Project
	Release     *project.Release
	IsLatest    bool
	Description template.HTML // sanitized at upload by project.RenderDescription
	Files       []fileRow
	Releases    []project.Release
	URLs        [][2]string
	// Organization is the organization the project belongs to, or nil.
	Organization *org.Organization
}

type fileRow struct {
	project.File
	URL string
	// Built is who built the file (nil: no provenance); OtherPublisher
	// marks a file whose publisher did not build the previous release.
	Built          *builderView
	OtherPublisher bool
}

// projectPage shows a project's latest (or a given) release: description,
// files with hashes, and the release history with yanked marks.
func (s *Server) projectPage(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("project")
	norm := pep.NormalizeName(name)
	d, err := s.projects.Detail(r.Context(), norm)
	if err != nil {
		return err
	}
	rel := d.Latest()
	if v := r.PathValue("version"); v != "" {
		if rel, err = d.Release(v); err != nil {
			return err
		}
	}
	if rel == nil {
		return derrors.New(derrors.NotFound, "This project has no releases yet.")
	}
	page := projectPage{
		basePage: s.base(r, d.Project.Name+" "+rel.Version),
		BaseURL:  s.baseURL,
		Project:  d.Project,
		Release:  rel,
		IsLatest: rel == d.Latest(),
		// The HTML was produced by goldmark and bluemonday's UGC policy (or
		// is escaped preformatted text) when the release was uploaded.
		Description: template.HTML(rel.DescriptionHTML),
		Releases:    d.Releases,
	}
	if page.Organization, err = s.orgs.OrganizationOf(r.Context(), d.Project.ID); err != nil {
		return err
	}
	prev := previousBuilders(d, rel)
	for _, f := range d.FilesOf(rel.ID) {
		row := fileRow{File: f, URL: s.fileURL(&f), Built: viewBuilder(f.Builder)}
		row.OtherPublisher = f.Builder != nil && len(prev) > 0 && !prev[f.Builder.Key()]
		page.Files = append(page.Files, row)
	}
	for _, pu := range rel.Fields()["project_urls"] {
		if label, u, ok := cutComma(pu); ok && safeURL(u) {
			page.URLs = append(page.URLs, [2]string{label, u})
		}
	}
	if hp := rel.Field("home_page"); hp != "" && safeURL(hp) {
		page.URLs = append(page.URLs, [2]string{"Homepage", hp})
	}
	return s.render(w, http.StatusOK, "project.html", page)
}

// safeURL allows only http(s) links from metadata on pages.
func safeURL(u string) bool {
	return len(u) > 8 && (u[:7] == "http://" || u[:8] == "https://")
}

type helpPage struct {
	basePage
	BaseURL string
}

func (s *Server) helpPage(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, http.StatusOK, "help.html", helpPage{basePage: s.base(r, "Help"), BaseURL: s.baseURL})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	// A path that a route serves with another method is a 405, as
	// ServeMux answers when it has no catch-all: GET /account/logout/ is
	// not a missing page, it is a POST-only one.
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method || (m == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); strings.HasPrefix(pattern, m+" ") {
			w.Header().Set("Allow", m)
			return s.render(w, http.StatusMethodNotAllowed, "error.html", errorPage{basePage: s.base(r, http.StatusText(http.StatusMethodNotAllowed)),
				Status: http.StatusMethodNotAllowed, Message: "This address takes only " + m + " requests."})
		}
	}
	return derrors.New(derrors.NotFound, "There is no page at this address.")
}
