package web

// The collaboration pages, at PyPI's paths: a project's collaborators and
// invitations (/manage/project/<name>/collaboration/, owners only, as on
// PyPI), leaving a project (any collaborator), the page an invitation
// email opens (/account/verify-project-role/) and the invitee's list of
// pending invitations (/manage/account/invitations/). The guards in
// routes.go decide who gets here; the handlers parse the form, call one
// project method and render or redirect.

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/project"
)

func collaborationPath(normalized string) string {
	return "/manage/project/" + url.PathEscape(normalized) + "/collaboration/"
}

// actor is the signed-in user as the project package records them.
func actor(r *http.Request) project.Actor {
	st := stateOf(r)
	return project.Actor{UserID: st.user.ID, Username: st.user.Username, Client: st.client()}
}

type collaborationPage struct {
	basePage
	Project       *project.Project
	Action        string // this page, the base of its forms' actions
	Collaborators []project.Collaborator
	Invitations   []invitationRow
	Roles         []string
	SelfID        int64
	Lifetime      string
	// The invite form, kept as typed when it is refused, with its error.
	InviteUsername, InviteRole, InviteError string
	// An error of one of the list's forms (change, remove, revoke).
	ListError string
}

type invitationRow struct {
	project.Invitation
	Expired bool
}

// collaboration is the page behind manage(owner(sudo(…))).
func (s *Server) collaboration(w http.ResponseWriter, r *http.Request) error {
	return s.renderCollaboration(w, r, http.StatusOK, collaborationPage{InviteRole: project.RoleMaintainer})
}

func (s *Server) renderCollaboration(w http.ResponseWriter, r *http.Request, status int, page collaborationPage) error {
	p := stateOf(r).membership.Project
	c, err := s.projects.Collaboration(r.Context(), p.ID)
	if err != nil {
		return err
	}
	page.basePage = s.base(r, "Collaborators of "+p.Name)
	page.Project, page.Action = p, collaborationPath(p.NormalizedName)
	page.Collaborators, page.Roles, page.SelfID = c.Collaborators, project.Roles, stateOf(r).user.ID
	page.Lifetime = hours(project.InvitationLifetime)
	now := s.now()
	for _, i := range c.Invitations {
		page.Invitations = append(page.Invitations, invitationRow{Invitation: i, Expired: i.Expired(now)})
	}
	return s.render(w, status, "collaboration.html", page)
}

func hours(d time.Duration) string { return fmt.Sprintf("%d hours", int(d.Hours())) }

// inviteCollaborator is the invite form (PyPI posts it to the page itself).
func (s *Server) inviteCollaborator(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	username, role := r.PostFormValue("username"), r.PostFormValue("role_name")
	inv, err := s.projects.Invite(r.Context(), actor(r), p.ID, username, role)
	success := ""
	if err == nil {
		success = "Invitation sent to " + inv.Username + ". It expires in " + hours(project.InvitationLifetime) + "."
	}
	return s.finishForm(w, r, err, success, collaborationPath(p.NormalizedName), func(status int, msg string) error {
		return s.renderCollaboration(w, r, status, collaborationPage{InviteUsername: username, InviteRole: role, InviteError: msg})
	})
}

// listResult finishes a form of the collaborator list. After a change
// that took the actor's own Owner role away the collaboration page is no
// longer theirs, so they land on the project's page instead.
func (s *Server) listResult(w http.ResponseWriter, r *http.Request, err error, success string, selfDemoted bool) error {
	p := stateOf(r).membership.Project
	next := collaborationPath(p.NormalizedName)
	if selfDemoted {
		next = "/project/" + url.PathEscape(p.NormalizedName) + "/"
	}
	return s.finishForm(w, r, err, success, next, func(status int, msg string) error {
		return s.renderCollaboration(w, r, status, collaborationPage{InviteRole: project.RoleMaintainer, ListError: msg})
	})
}

func (s *Server) changeRole(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	id, err := formID(r, "user_id")
	var c project.Collaborator
	if err == nil {
		c, err = s.projects.ChangeRole(r.Context(), actor(r), p.ID, id, r.PostFormValue("role_name"))
	}
	return s.listResult(w, r, err, c.Username+" is now "+c.Role+" of "+p.Name+".", err == nil && id == stateOf(r).user.ID)
}

func (s *Server) removeCollaborator(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	id, err := formID(r, "user_id")
	var c project.Collaborator
	if err == nil {
		c, err = s.projects.RemoveCollaborator(r.Context(), actor(r), p.ID, id)
	}
	return s.listResult(w, r, err, c.Username+" is no longer a collaborator on "+p.Name+".", err == nil && id == stateOf(r).user.ID)
}

func (s *Server) revokeInvitation(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	id, err := formID(r, "invitation_id")
	var inv *project.Invitation
	if err == nil {
		inv, err = s.projects.RevokeInvitation(r.Context(), actor(r), p.ID, id)
	}
	msg := ""
	if err == nil {
		msg = "Invitation of " + inv.Username + " revoked."
	}
	return s.listResult(w, r, err, msg, false)
}

type leavePage struct {
	basePage
	Project *project.Project
	Role    string
	Action  string
	Error   string
}

// leaveProjectPage asks a collaborator to confirm leaving the project.
func (s *Server) leaveProjectPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderLeave(w, r, http.StatusOK, "")
}

func (s *Server) renderLeave(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	m := stateOf(r).membership
	return s.render(w, status, "collaboration_leave.html", leavePage{basePage: s.base(r, "Leave "+m.Project.Name),
		Project: m.Project, Role: m.Role, Action: collaborationPath(m.Project.NormalizedName) + "leave/", Error: msg})
}

func (s *Server) leaveProject(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	if r.PostFormValue("confirm_project_name") != p.Name {
		return s.renderLeave(w, r, http.StatusBadRequest, "Type the project's name, "+p.Name+", exactly to confirm.")
	}
	_, err := s.projects.Leave(r.Context(), actor(r), p.ID)
	return s.finishForm(w, r, err, "You are no longer a collaborator on "+p.Name+".", "/project/"+url.PathEscape(p.NormalizedName)+"/",
		func(status int, msg string) error { return s.renderLeave(w, r, status, msg) })
}

type invitationPage struct {
	basePage
	Invitation *project.Invitation
	Token      string
	Decline    bool // opened from the email's decline link
	Error      string
}

// verifyProjectRole is the page an invitation email's links open: it
// shows the invitation to the signed-in invitee, who confirms with a POST
// (a GET changes nothing, so a mail scanner following the link answers
// nothing).
func (s *Server) verifyProjectRole(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	inv, err := s.projects.InvitationByToken(r.Context(), stateOf(r).user.ID, q.Get("token"))
	if err != nil {
		return s.invitationError(w, r, err)
	}
	return s.render(w, http.StatusOK, "invitation.html", invitationPage{basePage: s.base(r, "Invitation to "+inv.Project),
		Invitation: inv, Token: q.Get("token"), Decline: q.Get("decline") != ""})
}

func (s *Server) invitationError(w http.ResponseWriter, r *http.Request, err error) error {
	msg, ok := userMessage(err)
	if !ok {
		return err
	}
	return s.render(w, statusOf(err), "invitation.html", invitationPage{basePage: s.base(r, "Invitation"), Error: msg})
}

// answerFromForm reads which button was pressed.
func answerFromForm(r *http.Request) (accept bool, ok bool) {
	switch r.PostFormValue("action") {
	case "accept":
		return true, true
	case "decline":
		return false, true
	}
	return false, false
}

const errChooseAnswer = "Choose Accept or Decline."

func (s *Server) answerProjectRole(w http.ResponseWriter, r *http.Request) error {
	accept, ok := answerFromForm(r)
	if !ok {
		return s.render(w, http.StatusBadRequest, "invitation.html", invitationPage{basePage: s.base(r, "Invitation"), Error: errChooseAnswer})
	}
	inv, err := s.projects.AnswerInvitation(r.Context(), actor(r), r.PostFormValue("token"), accept)
	if err != nil {
		return s.invitationError(w, r, err)
	}
	return s.answered(w, r, inv, accept)
}

// answered flashes the outcome and goes where PyPI goes: a new owner to
// the collaboration page, a new maintainer to the project's page, a
// decline back to the list of invitations.
func (s *Server) answered(w http.ResponseWriter, r *http.Request, inv *project.Invitation, accept bool) error {
	s.mailKick()
	if !accept {
		s.flash(w, r, flashSuccess, "Invitation to "+inv.Project+" declined.")
		http.Redirect(w, r, "/manage/account/invitations/", http.StatusSeeOther)
		return nil
	}
	s.flash(w, r, flashSuccess, "You are now "+inv.Role+" of "+inv.Project+".")
	next := "/project/" + url.PathEscape(inv.ProjectNormalized) + "/"
	if inv.Role == project.RoleOwner {
		next = collaborationPath(inv.ProjectNormalized)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

type invitationsPage struct {
	basePage
	Invitations []project.Invitation
	Error       string
}

// invitations lists the invitations waiting for the signed-in user.
func (s *Server) invitations(w http.ResponseWriter, r *http.Request) error {
	return s.renderInvitations(w, r, http.StatusOK, "")
}

func (s *Server) renderInvitations(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	is, err := s.projects.PendingInvitations(r.Context(), stateOf(r).user.ID)
	if err != nil {
		return err
	}
	return s.render(w, status, "invitations.html", invitationsPage{basePage: s.base(r, "Pending invitations"), Invitations: is, Error: msg})
}

func (s *Server) answerInvitation(w http.ResponseWriter, r *http.Request) error {
	accept, ok := answerFromForm(r)
	if !ok {
		return s.renderInvitations(w, r, http.StatusBadRequest, errChooseAnswer)
	}
	id, err := formID(r, "invitation_id")
	var inv *project.Invitation
	if err == nil {
		inv, err = s.projects.AnswerInvitationByID(r.Context(), actor(r), id, accept)
	}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		return s.renderInvitations(w, r, statusOf(err), msg)
	}
	return s.answered(w, r, inv, accept)
}
