package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// The project management pages, at PyPI's addresses: "Your projects", and
// for each project its settings, releases, one release with its files, and
// its history. The guards in routes.go decide who gets in (manage, then
// maintainer or owner, then sudo); the handlers here parse the form, call
// one project.Service method and render or redirect.

// projectPath is a project management page: /manage/project/<name>/<page>/.
func projectPath(norm, page string) string {
	return "/manage/project/" + url.PathEscape(norm) + "/" + page
}

// formState is what a management page needs to show a refused form again:
// the message next to the field it is about (Errors), or above the forms
// when it is about none (Error), and the values typed.
type formState struct {
	Error  string
	Errors map[string]string
	Values map[string]string
}

// refused builds the form state of a person-fixable error.
func refused(r *http.Request, err error, msg string) formState {
	fs := formState{Values: map[string]string{}}
	for k, v := range r.PostForm {
		if len(v) > 0 {
			fs.Values[k] = v[0]
		}
	}
	if f := derrors.FieldOf(err); f != "" {
		fs.Errors = map[string]string{f: msg}
	} else {
		fs.Error = msg
	}
	return fs
}

// projectBase is what every page of one project shows: its name, status,
// your role, and which tab is open.
type projectBase struct {
	basePage
	formState
	Project project.Project
	Role    string
	IsOwner bool
	Tab     string
}

func (s *Server) projectBase(r *http.Request, title, tab string, fs formState) projectBase {
	m := stateOf(r).membership
	return projectBase{basePage: s.base(r, title), formState: fs, Project: *m.Project, Role: m.Role,
		IsOwner: m.Role == project.RoleOwner, Tab: tab}
}

// ---- Your projects ----

type yourProjectsPage struct {
	basePage
	Projects []project.YourProject
	BaseURL  string
}

// yourProjects is /manage/projects/: every project you hold a role on.
func (s *Server) yourProjects(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.projects.ProjectsOf(r.Context(), stateOf(r).user.ID)
	if err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "manage_projects.html", yourProjectsPage{basePage: s.base(r, "Your projects"), Projects: ps, BaseURL: s.baseURL})
}

// projectRoot sends /manage/project/<name>/ to the settings page.
func (s *Server) projectRoot(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, projectPath(stateOf(r).membership.Project.NormalizedName, "settings/"), http.StatusSeeOther)
	return nil
}

// ---- Settings ----

type settingsPage struct {
	projectBase
	Releases       int
	Files          int
	FileLimit      int64
	TotalLimit     int64
	ReleaseAgeDays int
	SiteLimits     project.Limits
	// ProjectTokens are the API tokens that can upload to the project
	// (pypi/warehouse#6263), drawn by partial_project_tokens.html.
	ProjectTokens []projectTokenRow
	// Organization is the organization the project belongs to, or nil.
	Organization *org.Organization
	// Upstream are the pull-through cache's upstreams (none: no origin
	// choice), Origin the project's.
	Upstream []string
	Origin   string
	// Alternates are the PEP 708 alternate locations, one a line, as the
	// form shows them (what was sent, after a refused change).
	Alternates string
}

// projectSettings is the settings page: the project's status and limits,
// and for owners archiving and deleting it.
func (s *Server) projectSettings(w http.ResponseWriter, r *http.Request) error {
	return s.renderSettings(w, r, http.StatusOK, formState{})
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, status int, fs formState) error {
	m := stateOf(r).membership
	d, err := s.projects.Detail(r.Context(), m.Project.NormalizedName)
	if err != nil {
		return err
	}
	m.Project = &d.Project // as it is now, after a refused change too
	site := s.projects.SiteLimits()
	page := settingsPage{projectBase: s.projectBase(r, d.Project.Name+" settings", "settings", fs),
		Releases: len(d.Releases), Files: len(d.Files), FileLimit: site.MaxFileSize, TotalLimit: site.MaxProjectSize,
		ReleaseAgeDays: s.projects.ReleaseAgeDays(&d.Project), SiteLimits: site}
	if d.Project.UploadLimit.Valid {
		page.FileLimit = d.Project.UploadLimit.Int64
	}
	if d.Project.TotalSizeLimit.Valid {
		page.TotalLimit = d.Project.TotalSizeLimit.Int64
	}
	if page.ProjectTokens, err = s.projectTokens(r, d.Project.ID); err != nil {
		return err
	}
	if page.Organization, err = s.orgs.OrganizationOf(r.Context(), d.Project.ID); err != nil {
		return err
	}
	if s.upstream != nil {
		page.Upstream = s.upstream.Upstreams()
		if page.Origin, err = s.upstream.Origin(r.Context(), d.Project.ID); err != nil {
			return err
		}
	}
	if v, ok := fs.Values["alternate_locations"]; ok {
		page.Alternates = v
	} else {
		alts, err := s.projects.AlternateLocations(r.Context(), d.Project.ID)
		if err != nil {
			return err
		}
		page.Alternates = strings.Join(alts, "\n")
	}
	return s.render(w, status, "manage_project_settings.html", page)
}

// settingsResult finishes a POST from the settings page.
func (s *Server) settingsResult(w http.ResponseWriter, r *http.Request, err error, success string) error {
	norm := stateOf(r).membership.Project.NormalizedName
	if err == nil {
		s.simple.invalidate(norm)
	}
	return s.finishForm(w, r, err, success, projectPath(norm, "settings/"), func(status int, msg string) error {
		return s.renderSettings(w, r, status, refused(r, err, msg))
	})
}

func (s *Server) archiveProject(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	err := s.projects.Archive(r.Context(), actor(r), p.NormalizedName)
	return s.settingsResult(w, r, err, p.Name+" is archived: it accepts no uploads and stays installable.")
}

func (s *Server) unarchiveProject(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	err := s.projects.Unarchive(r.Context(), actor(r), p.NormalizedName)
	return s.settingsResult(w, r, err, p.Name+" is no longer archived: it accepts uploads again.")
}

// deleteProject deletes the project, everything in it and its roles, and
// lands on "Your projects".
func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	err := s.projects.RemoveProject(r.Context(), actor(r), p.NormalizedName, r.PostFormValue("confirm_project_name"))
	if err == nil {
		s.simple.invalidate(p.NormalizedName)
	}
	return s.finishForm(w, r, err, "Deleted the project "+p.Name+". Its filenames can never be uploaded again.", "/manage/projects/",
		func(status int, msg string) error { return s.renderSettings(w, r, status, refused(r, err, msg)) })
}
