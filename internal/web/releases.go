package web

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-index/gatehouse/internal/project"
)

// The releases of a project and one release with its files: yanking,
// un-yanking and deleting.

type releaseRow struct {
	project.Release
	Files int
}

type releasesPage struct {
	projectBase
	Releases []releaseRow
}

// projectReleases lists the project's releases, newest first.
func (s *Server) projectReleases(w http.ResponseWriter, r *http.Request) error {
	m := stateOf(r).membership
	d, err := s.projects.Detail(r.Context(), m.Project.NormalizedName)
	if err != nil {
		return err
	}
	m.Project = &d.Project
	page := releasesPage{projectBase: s.projectBase(r, d.Project.Name+" releases", "releases", formState{})}
	for _, rel := range d.Releases {
		page.Releases = append(page.Releases, releaseRow{Release: rel, Files: len(d.FilesOf(rel.ID))})
	}
	return s.render(w, http.StatusOK, "manage_project_releases.html", page)
}

type releasePage struct {
	projectBase
	Release *project.Release
	Files   []fileRow
}

// projectRelease is one release: its files, and for owners the yank,
// un-yank and delete forms.
func (s *Server) projectRelease(w http.ResponseWriter, r *http.Request) error {
	return s.renderRelease(w, r, http.StatusOK, formState{})
}

func (s *Server) renderRelease(w http.ResponseWriter, r *http.Request, status int, fs formState) error {
	m := stateOf(r).membership
	d, err := s.projects.Detail(r.Context(), m.Project.NormalizedName)
	if err != nil {
		return err
	}
	m.Project = &d.Project
	rel, err := d.Release(r.PathValue("version"))
	if err != nil {
		return err
	}
	page := releasePage{projectBase: s.projectBase(r, d.Project.Name+" "+rel.Version, "releases", fs), Release: rel}
	for _, f := range d.FilesOf(rel.ID) {
		page.Files = append(page.Files, fileRow{File: f, URL: s.fileURL(&f)})
	}
	return s.render(w, status, "manage_project_release.html", page)
}

// releasePath is the management page of one release.
func releasePath(norm, version string) string {
	return projectPath(norm, "release/"+url.PathEscape(version)+"/")
}

// releaseResult finishes a POST from a release page; success goes to
// next, and the project's Simple API page is dropped from the cache at
// once, as after an upload.
func (s *Server) releaseResult(w http.ResponseWriter, r *http.Request, err error, success, next string) error {
	if err == nil {
		s.simple.invalidate(stateOf(r).membership.Project.NormalizedName)
	}
	return s.finishForm(w, r, err, success, next, func(status int, msg string) error {
		return s.renderRelease(w, r, status, refused(r, err, msg))
	})
}

func (s *Server) yankRelease(w http.ResponseWriter, r *http.Request) error {
	p, v := stateOf(r).membership.Project, r.PathValue("version")
	err := s.projects.Yank(r.Context(), actor(r), p.NormalizedName, v, r.PostFormValue("confirm_yank_version"), r.PostFormValue("yanked_reason"))
	return s.releaseResult(w, r, err, "Yanked release "+v+": installers skip it unless it is pinned exactly.", releasePath(p.NormalizedName, v))
}

func (s *Server) unyankRelease(w http.ResponseWriter, r *http.Request) error {
	p, v := stateOf(r).membership.Project, r.PathValue("version")
	err := s.projects.Unyank(r.Context(), actor(r), p.NormalizedName, v, r.PostFormValue("confirm_unyank_version"))
	return s.releaseResult(w, r, err, "Un-yanked release "+v+".", releasePath(p.NormalizedName, v))
}

func (s *Server) deleteRelease(w http.ResponseWriter, r *http.Request) error {
	p, v := stateOf(r).membership.Project, r.PathValue("version")
	err := s.projects.RemoveRelease(r.Context(), actor(r), p.NormalizedName, v, r.PostFormValue("confirm_delete_version"))
	return s.releaseResult(w, r, err, "Deleted release "+v+" and its files. Their filenames can never be uploaded again.",
		projectPath(p.NormalizedName, "releases/"))
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	p, v := stateOf(r).membership.Project, r.PathValue("version")
	id, err := formID(r, "file_id")
	if err == nil {
		err = s.projects.RemoveFile(r.Context(), actor(r), p.NormalizedName, v, id, r.PostFormValue("confirm_filename"))
	}
	return s.releaseResult(w, r, err, "Deleted the file "+r.PostFormValue("confirm_filename")+". Its filename can never be uploaded again.",
		releasePath(p.NormalizedName, v))
}
