package web

// An organization's projects page: create a project inside it, move one in
// (at once, or as a request the owners accept), move one out.

import (
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

type orgProjectsPage struct {
	orgPage
	Projects []org.OrgProject
	Requests []org.MoveRequest
	// Movable are the viewer's own projects outside any organization.
	Movable []project.YourProject
}

func (s *Server) orgProjects(w http.ResponseWriter, r *http.Request) error {
	return s.renderOrgProjects(w, r, http.StatusOK, "")
}

func (s *Server) renderOrgProjects(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	page := orgProjectsPage{orgPage: s.orgBase(r, "projects", "Projects", msg)}
	ctx := r.Context()
	var err error
	if page.Projects, err = s.orgs.Projects(ctx, page.Org.ID); err != nil {
		return err
	}
	if page.IsManager() {
		if page.Requests, err = s.orgs.MoveRequests(ctx, page.Org.ID); err != nil {
			return err
		}
	}
	mine, err := s.projects.ProjectsOf(ctx, stateOf(r).user.ID)
	if err != nil {
		return err
	}
	for _, p := range mine {
		if p.Role != project.RoleOwner {
			continue
		}
		if o, err := s.orgs.OrganizationOf(ctx, p.ID); err != nil {
			return err
		} else if o == nil {
			page.Movable = append(page.Movable, p)
		}
	}
	return s.render(w, status, "org_projects.html", page)
}

func (s *Server) createOrgProject(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	p, err := s.orgs.CreateProject(r.Context(), orgActor(r), o.ID, r.PostFormValue("project_name"))
	success := ""
	if err == nil {
		success = "The project " + p.Name + " was created in " + o.Name + ". Give a team a role on it to let its members upload."
	}
	return s.orgResult(w, r, err, success, "projects/", s.renderOrgProjects)
}

func (s *Server) moveProjectIn(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	p, moved, err := s.orgs.MoveIn(r.Context(), orgActor(r), o.ID, r.PostFormValue("project_name"))
	success := p.Name + " is now part of " + o.Name + "."
	if !moved {
		success = "Your request to move " + p.Name + " into " + o.Name + " was sent to its owners and managers."
	}
	return s.orgResult(w, r, err, success, "projects/", s.renderOrgProjects)
}

func (s *Server) answerProjectMove(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "project_id")
	accept := r.PostFormValue("action") == "accept"
	var p org.OrgProject
	if err == nil {
		p, err = s.orgs.AnswerMove(r.Context(), orgActor(r), o.ID, id, accept)
	}
	success := p.Name + " is now part of " + o.Name + "."
	if !accept {
		success = "The request to move " + p.Name + " in was declined."
	}
	return s.orgResult(w, r, err, success, "projects/", s.renderOrgProjects)
}

func (s *Server) moveProjectOut(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "project_id")
	var p org.OrgProject
	if err == nil {
		p, err = s.orgs.MoveOut(r.Context(), orgActor(r), o.ID, id)
	}
	return s.orgResult(w, r, err, p.Name+" is no longer part of "+o.Name+"; its team roles ended with the move.", "projects/", s.renderOrgProjects)
}
