package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// The administrators' project pages: find a project, quarantine it or lift
// the quarantine, and set its upload limits and release-age policy.

type adminProjectsPage struct {
	basePage
	Query    string
	Projects []project.Project
}

func (s *Server) adminProjects(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query().Get("q")
	var ps []project.Project
	var err error
	if q != "" {
		ps, err = s.projects.Search(r.Context(), q, 100)
	} else {
		ps, err = s.projects.ListProjects(r.Context())
	}
	if err != nil {
		return err
	}
	if len(ps) > 100 {
		ps = ps[:100]
	}
	return s.render(w, http.StatusOK, "admin_projects.html", adminProjectsPage{basePage: s.base(r, "Projects"), Query: q, Projects: ps})
}

type adminProjectPage struct {
	basePage
	formState
	Project        *project.Project
	Releases       int
	Files          int
	Roles          []project.Collaborator
	Site           project.Limits
	ReleaseAgeDays int
	History        []projectHistoryRow
	// Upstream are the pull-through cache's upstreams (none: no origin
	// form), Origin the project's.
	Upstream []string
	Origin   string
}

func adminProjectPath(norm string) string { return "/admin/projects/" + url.PathEscape(norm) + "/" }

func (s *Server) adminProject(w http.ResponseWriter, r *http.Request) error {
	return s.renderAdminProject(w, r, http.StatusOK, formState{})
}

func (s *Server) renderAdminProject(w http.ResponseWriter, r *http.Request, status int, fs formState) error {
	ctx := r.Context()
	d, err := s.projects.Detail(ctx, pep.NormalizeName(r.PathValue("project")))
	if err != nil {
		return err
	}
	collab, err := s.projects.Collaboration(ctx, d.Project.ID)
	if err != nil {
		return err
	}
	events, err := s.audit.ForProject(ctx, d.Project.ID, 0, 200)
	if err != nil {
		return err
	}
	page := adminProjectPage{basePage: s.base(r, "Project "+d.Project.Name), formState: fs, Project: &d.Project,
		Releases: len(d.Releases), Files: len(d.Files), Roles: collab.Collaborators, Site: s.projects.SiteLimits(),
		ReleaseAgeDays: s.projects.ReleaseAgeDays(&d.Project)}
	if fs.Values == nil {
		page.Values = map[string]string{}
		if d.Project.UploadLimit.Valid {
			page.Values["upload_limit"] = strconv.FormatInt(d.Project.UploadLimit.Int64>>20, 10)
		}
		if d.Project.TotalSizeLimit.Valid {
			page.Values["total_size_limit"] = strconv.FormatInt(d.Project.TotalSizeLimit.Int64>>30, 10)
		}
		if d.Project.ReleaseAgeDays.Valid {
			page.Values["release_age_days"] = strconv.FormatInt(d.Project.ReleaseAgeDays.Int64, 10)
		}
	}
	for _, e := range events {
		page.History = append(page.History, projectHistoryRow{When: e.CreatedAt, What: audit.Describe(e)})
	}
	if s.upstream != nil {
		page.Upstream = s.upstream.Upstreams()
		if page.Origin, err = s.upstream.Origin(ctx, d.Project.ID); err != nil {
			return err
		}
	}
	return s.render(w, status, "admin_project.html", page)
}

// adminProjectResult finishes a POST from a project's admin page.
func (s *Server) adminProjectResult(w http.ResponseWriter, r *http.Request, err error, success string) error {
	norm := pep.NormalizeName(r.PathValue("project"))
	if err == nil {
		s.simple.invalidate(norm)
	}
	return s.finishForm(w, r, err, success, adminProjectPath(norm), func(status int, msg string) error {
		return s.renderAdminProject(w, r, status, refused(r, err, msg))
	})
}

func (s *Server) adminQuarantine(w http.ResponseWriter, r *http.Request) error {
	err := s.projects.Quarantine(r.Context(), actor(r), pep.NormalizeName(r.PathValue("project")), r.PostFormValue("reason"))
	return s.adminProjectResult(w, r, err, "Project quarantined: nothing of it is served, and its owners and maintainers have been emailed.")
}

func (s *Server) adminClearQuarantine(w http.ResponseWriter, r *http.Request) error {
	err := s.projects.ClearQuarantine(r.Context(), actor(r), pep.NormalizeName(r.PathValue("project")))
	return s.adminProjectResult(w, r, err, "Quarantine lifted: the project is served again, and its owners and maintainers have been emailed.")
}

func (s *Server) adminProjectLimits(w http.ResponseWriter, r *http.Request) error {
	err := s.projects.SetLimits(r.Context(), actor(r), pep.NormalizeName(r.PathValue("project")), project.LimitsForm{
		UploadLimitMiB:    r.PostFormValue("upload_limit"),
		TotalSizeLimitGiB: r.PostFormValue("total_size_limit"),
		ReleaseAgeDays:    r.PostFormValue("release_age_days"),
	})
	return s.adminProjectResult(w, r, err, "Limits saved.")
}

// adminProjectOrigin is the origin form of a project's admin page: where
// installers find the project's name, as its owners can set it.
func (s *Server) adminProjectOrigin(w http.ResponseWriter, r *http.Request) error {
	if s.upstream == nil {
		return derrors.New(derrors.NotFound, "This index has no upstream (--upstream), so a project's origin is always this index.")
	}
	d, err := s.projects.Detail(r.Context(), pep.NormalizeName(r.PathValue("project")))
	if err != nil {
		return err
	}
	origin := r.PostFormValue("origin")
	err = s.upstream.SetOrigin(r.Context(), actor(r), &d.Project, origin)
	return s.adminProjectResult(w, r, err, "Installers now find "+d.Project.Name+" "+originWords[origin]+".")
}
