package web

// An organization's teams page: teams, their members and their roles on
// the organization's projects.

import (
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

type orgTeamsPage struct {
	orgPage
	Teams    []org.Team
	Members  []org.Member
	Projects []org.OrgProject
	Roles    []string
}

func (s *Server) orgTeams(w http.ResponseWriter, r *http.Request) error {
	return s.renderOrgTeams(w, r, http.StatusOK, "")
}

func (s *Server) renderOrgTeams(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	page := orgTeamsPage{orgPage: s.orgBase(r, "teams", "Teams", msg), Roles: project.Roles}
	ctx := r.Context()
	var err error
	if page.Teams, err = s.orgs.Teams(ctx, page.Org.ID); err != nil {
		return err
	}
	if page.Members, err = s.orgs.Members(ctx, page.Org.ID); err != nil {
		return err
	}
	if page.Projects, err = s.orgs.Projects(ctx, page.Org.ID); err != nil {
		return err
	}
	return s.render(w, status, "org_teams.html", page)
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	t, err := s.orgs.CreateTeam(r.Context(), orgActor(r), o.ID, r.PostFormValue("name"))
	return s.orgResult(w, r, err, "Team "+t.Name+" created.", "teams/", s.renderOrgTeams)
}

func (s *Server) deleteTeam(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "team_id")
	var t org.Team
	if err == nil {
		t, err = s.orgs.DeleteTeam(r.Context(), orgActor(r), o.ID, id)
	}
	return s.orgResult(w, r, err, "Team "+t.Name+" deleted; its members lost what it granted.", "teams/", s.renderOrgTeams)
}

func (s *Server) addTeamMember(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "team_id")
	var m org.Member
	if err == nil {
		m, err = s.orgs.AddTeamMember(r.Context(), orgActor(r), o.ID, id, r.PostFormValue("username"))
	}
	return s.orgResult(w, r, err, m.Username+" was added to the team.", "teams/", s.renderOrgTeams)
}

func (s *Server) removeTeamMember(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "team_id")
	var uid int64
	if err == nil {
		uid, err = formID(r, "user_id")
	}
	var m org.Member
	if err == nil {
		m, err = s.orgs.RemoveTeamMember(r.Context(), orgActor(r), o.ID, id, uid)
	}
	return s.orgResult(w, r, err, m.Username+" was removed from the team: what it granted them ended at once.", "teams/", s.renderOrgTeams)
}

func (s *Server) setTeamProjectRole(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "team_id")
	var tp org.TeamProject
	if err == nil {
		tp, err = s.orgs.SetTeamProjectRole(r.Context(), orgActor(r), o.ID, id, r.PostFormValue("project_name"), r.PostFormValue("role_name"))
	}
	return s.orgResult(w, r, err, "The team is now "+tp.Role+" of "+tp.Name+".", "teams/", s.renderOrgTeams)
}

func (s *Server) removeTeamProjectRole(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "team_id")
	var pid int64
	if err == nil {
		pid, err = formID(r, "project_id")
	}
	var tp org.TeamProject
	if err == nil {
		tp, err = s.orgs.RemoveTeamProjectRole(r.Context(), orgActor(r), o.ID, id, pid)
	}
	return s.orgResult(w, r, err, "The team no longer has a role on "+tp.Name+".", "teams/", s.renderOrgTeams)
}
