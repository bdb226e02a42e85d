package web

// The organization pages, at PyPI's paths: your organizations and the
// request form (/manage/organizations/), an organization's projects,
// people, teams, settings and history (/manage/organization/<name>/…), the
// page an invitation email opens (/account/verify-organization-role/) and
// the public profile (/org/<name>/). The guards in routes.go decide who
// gets here; each handler parses its form, calls one org method, and
// redirects or renders the page again with the message.

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

func orgPath(normalized, tab string) string {
	return "/manage/organization/" + url.PathEscape(normalized) + "/" + tab
}

// orgActor is the signed-in user as internal/org records them.
func orgActor(r *http.Request) org.Actor { return actor(r) }

// yourOrgsPage is /manage/organizations/.
type yourOrgsPage struct {
	basePage
	Organizations []org.YourOrganization
	Invitations   []org.Invitation
	Requests      []org.Request
	NeedApproval  bool
	Name, Desc    string
	Error         string
}

func (s *Server) yourOrganizations(w http.ResponseWriter, r *http.Request) error {
	return s.renderYourOrgs(w, r, http.StatusOK, yourOrgsPage{})
}

func (s *Server) renderYourOrgs(w http.ResponseWriter, r *http.Request, status int, page yourOrgsPage) error {
	uid := stateOf(r).user.ID
	var err error
	if page.Organizations, err = s.orgs.OrganizationsOf(r.Context(), uid); err != nil {
		return err
	}
	if page.Invitations, err = s.orgs.PendingInvitations(r.Context(), uid); err != nil {
		return err
	}
	if page.Requests, err = s.orgs.RequestsOf(r.Context(), uid); err != nil {
		return err
	}
	page.basePage = s.base(r, "Your organizations")
	page.NeedApproval = s.orgs.NeedApproval()
	return s.render(w, status, "organizations.html", page)
}

func (s *Server) requestOrganization(w http.ResponseWriter, r *http.Request) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	o, err := s.orgs.Request(r.Context(), orgActor(r), name, desc)
	success, next := "", "/manage/organizations/"
	if err == nil {
		success = "Your request for the organization " + o.Name + " was sent to the administrators. You will get an email when they decide."
		if o.Approved() {
			success, next = "The organization "+o.Name+" was created. You are its owner.", orgPath(o.NormalizedName, "people/")
		}
	}
	return s.finishForm(w, r, err, success, next, func(status int, msg string) error {
		return s.renderYourOrgs(w, r, status, yourOrgsPage{Name: name, Desc: desc, Error: msg})
	})
}

// answerOrgInvitation accepts or declines from the list of invitations.
func (s *Server) answerOrgInvitation(w http.ResponseWriter, r *http.Request) error {
	id, err := formID(r, "invitation_id")
	var inv *org.Invitation
	accept := r.PostFormValue("action") == "accept"
	if err == nil {
		inv, err = s.orgs.AnswerInvitationByID(r.Context(), orgActor(r), id, accept)
	}
	return s.finishForm(w, r, err, invitationAnswered(inv, accept), "/manage/organizations/", func(status int, msg string) error {
		return s.renderYourOrgs(w, r, status, yourOrgsPage{Error: msg})
	})
}

func invitationAnswered(inv *org.Invitation, accept bool) string {
	if inv == nil {
		return ""
	}
	if accept {
		return "You are now " + inv.Role + " of the organization " + inv.Organization + "."
	}
	return "You declined the invitation to " + inv.Organization + "."
}

// orgInvitationPage is what an invitation email's link opens.
type orgInvitationPage struct {
	basePage
	Invitation *org.Invitation
	Token      string
	Decline    bool
	Error      string
}

func (s *Server) verifyOrganizationRole(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("token")
	inv, err := s.orgs.InvitationByToken(r.Context(), stateOf(r).user.ID, raw)
	page := orgInvitationPage{basePage: s.base(r, "Invitation"), Token: raw, Decline: r.URL.Query().Get("decline") != ""}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		page.Error = msg
		return s.render(w, statusOf(err), "org_invitation.html", page)
	}
	page.Invitation = inv
	page.Title = "Invitation to " + inv.Organization
	return s.render(w, http.StatusOK, "org_invitation.html", page)
}

func (s *Server) answerOrganizationRole(w http.ResponseWriter, r *http.Request) error {
	accept := r.PostFormValue("action") == "accept"
	inv, err := s.orgs.AnswerInvitation(r.Context(), orgActor(r), r.PostFormValue("token"), accept)
	next := "/manage/organizations/"
	return s.finishForm(w, r, err, invitationAnswered(inv, accept), next, func(status int, msg string) error {
		return s.render(w, status, "org_invitation.html", orgInvitationPage{basePage: s.base(r, "Invitation"), Error: msg})
	})
}

// orgPage is what every page of one organization shows: its name, the
// tabs, the viewer's role, and a form's error.
type orgPage struct {
	basePage
	Org   *org.Organization
	Role  string
	Tab   string
	Error string
}

func (p orgPage) IsOwner() bool   { return p.Role == org.RoleOwner }
func (p orgPage) IsManager() bool { return p.Role == org.RoleOwner || p.Role == org.RoleManager }

func (s *Server) orgBase(r *http.Request, tab, title, msg string) orgPage {
	m := stateOf(r).orgMembership
	return orgPage{basePage: s.base(r, title+" · "+m.Org.Name), Org: m.Org, Role: m.Role, Tab: tab, Error: msg}
}

// orgRoot sends /manage/organization/<name>/ to its projects.
func (s *Server) orgRoot(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, orgPath(stateOf(r).orgMembership.Org.NormalizedName, "projects/"), http.StatusSeeOther)
	return nil
}

// orgResult finishes a form of an organization page: back to tab with the
// success message, or the page again with the refusal.
func (s *Server) orgResult(w http.ResponseWriter, r *http.Request, err error, success, tab string, rerender func(w http.ResponseWriter, r *http.Request, status int, msg string) error) error {
	o := stateOf(r).orgMembership.Org
	return s.finishForm(w, r, err, success, orgPath(o.NormalizedName, tab), func(status int, msg string) error {
		return rerender(w, r, status, msg)
	})
}

// ---- people ----

type orgPeoplePage struct {
	orgPage
	Members     []org.Member
	Invitations []invitationRowOrg
	Roles       []string
	SelfID      int64
	Lifetime    string
}

type invitationRowOrg struct {
	org.Invitation
	Expired bool
}

func (s *Server) orgPeople(w http.ResponseWriter, r *http.Request) error {
	return s.renderOrgPeople(w, r, http.StatusOK, "")
}

func (s *Server) renderOrgPeople(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	page := orgPeoplePage{orgPage: s.orgBase(r, "people", "People", msg), Roles: org.Roles, SelfID: stateOf(r).user.ID,
		Lifetime: hours(org.InvitationLifetime)}
	var err error
	if page.Members, err = s.orgs.Members(r.Context(), page.Org.ID); err != nil {
		return err
	}
	if page.IsOwner() {
		invs, err := s.orgs.Invitations(r.Context(), page.Org.ID)
		if err != nil {
			return err
		}
		now := s.now()
		for _, i := range invs {
			page.Invitations = append(page.Invitations, invitationRowOrg{Invitation: i, Expired: i.Expired(now)})
		}
	}
	return s.render(w, status, "org_people.html", page)
}

func (s *Server) inviteOrgMember(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	inv, err := s.orgs.Invite(r.Context(), orgActor(r), o.ID, r.PostFormValue("username"), r.PostFormValue("role_name"))
	success := ""
	if err == nil {
		success = "Invitation sent to " + inv.Username + ". It expires in " + hours(org.InvitationLifetime) + "."
	}
	return s.orgResult(w, r, err, success, "people/", s.renderOrgPeople)
}

func (s *Server) changeOrgRole(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "user_id")
	var m org.Member
	if err == nil {
		m, err = s.orgs.ChangeRole(r.Context(), orgActor(r), o.ID, id, r.PostFormValue("role_name"))
	}
	return s.orgResult(w, r, err, m.Username+" is now "+m.Role+" of "+o.Name+".", "people/", s.renderOrgPeople)
}

func (s *Server) removeOrgMember(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "user_id")
	var m org.Member
	if err == nil {
		m, err = s.orgs.RemoveMember(r.Context(), orgActor(r), o.ID, id)
	}
	return s.orgResult(w, r, err, m.Username+" is no longer a member of "+o.Name+".", "people/", s.renderOrgPeople)
}

func (s *Server) revokeOrgInvitation(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "invitation_id")
	var inv *org.Invitation
	if err == nil {
		inv, err = s.orgs.RevokeInvitation(r.Context(), orgActor(r), o.ID, id)
	}
	success := ""
	if inv != nil {
		success = "The invitation of " + inv.Username + " was withdrawn."
	}
	return s.orgResult(w, r, err, success, "people/", s.renderOrgPeople)
}

func (s *Server) leaveOrganization(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	_, err := s.orgs.Leave(r.Context(), orgActor(r), o.ID)
	if err == nil {
		s.mailKick()
		s.flash(w, r, flashSuccess, "You left the organization "+o.Name+".")
		http.Redirect(w, r, "/manage/organizations/", http.StatusSeeOther)
		return nil
	}
	return s.orgResult(w, r, err, "", "people/", s.renderOrgPeople)
}

// ---- settings ----

type orgSettingsPage struct {
	orgPage
	Site    org.Policies
	Rename  string
	Confirm string
	// Issuers are the organization's own trusted-publishing issuers;
	// Issuer is the add form as typed, when it was refused.
	Issuers           []trustedpub.CustomIssuer
	Issuer            trustedpub.CustomIssuerInput
	TrustedPublishing bool
}

func (s *Server) orgSettings(w http.ResponseWriter, r *http.Request) error {
	return s.renderOrgSettings(w, r, http.StatusOK, "")
}

func (s *Server) renderOrgSettings(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	return s.renderOrgSettingsWith(w, r, status, orgSettingsPage{orgPage: s.orgBase(r, "settings", "Settings", msg)})
}

func (s *Server) renderOrgSettingsWith(w http.ResponseWriter, r *http.Request, status int, page orgSettingsPage) error {
	var err error
	if page.Site, err = s.orgs.SitePolicies(r.Context()); err != nil {
		return err
	}
	page.TrustedPublishing = s.tp != nil
	if page.Issuers, err = s.orgs.OrganizationIssuers(r.Context(), page.Org.ID); err != nil {
		return err
	}
	return s.render(w, status, "org_settings.html", page)
}

// addOrgIssuer registers a custom trusted-publishing issuer for the
// organization's projects.
func (s *Server) addOrgIssuer(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	o := stateOf(r).orgMembership.Org
	in := trustedpub.CustomIssuerInput{Name: r.PostFormValue("name"), URL: r.PostFormValue("issuer_url"),
		Audience: r.PostFormValue("audience"), Claims: r.PostFormValue("claims")}
	ci, err := s.orgs.AddIssuer(r.Context(), orgActor(r), o.ID, in)
	success := ""
	if err == nil {
		success = "Issuer " + ci.Name + " added. Owners of " + o.Name + "'s projects can now add its publishers."
	}
	return s.finishForm(w, r, err, success, orgPath(o.NormalizedName, "settings/"), func(status int, msg string) error {
		return s.renderOrgSettingsWith(w, r, status, orgSettingsPage{orgPage: s.orgBase(r, "settings", "Settings", msg), Issuer: in})
	})
}

func (s *Server) removeOrgIssuer(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	o := stateOf(r).orgMembership.Org
	id, err := formID(r, "issuer_id")
	var ci *trustedpub.CustomIssuer
	if err == nil {
		ci, err = s.orgs.RemoveIssuer(r.Context(), orgActor(r), o.ID, id)
	}
	success := ""
	if ci != nil {
		success = "Issuer " + ci.Name + " removed, with its publishers."
	}
	return s.orgResult(w, r, err, success, "settings/", s.renderOrgSettings)
}

func (s *Server) renameOrganization(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	renamed, err := s.orgs.Rename(r.Context(), orgActor(r), o.ID, r.PostFormValue("name"))
	if err == nil {
		s.mailKick()
		s.flash(w, r, flashSuccess, "The organization is now called "+renamed.Name+". Its old name leads here.")
		http.Redirect(w, r, orgPath(renamed.NormalizedName, "settings/"), http.StatusSeeOther)
		return nil
	}
	return s.orgResult(w, r, err, "", "settings/", s.renderOrgSettings)
}

func (s *Server) setOrgPolicies(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	p := org.Policies{
		PhishingResistant: r.PostFormValue("phishing_resistant") == "on",
		TrustedOnly:       r.PostFormValue("trusted_publishing_only") == "on",
		ConfirmLogins:     r.PostFormValue("confirm_every_login") == "on",

		RequireAttestations: r.PostFormValue("require_attestations") == "on",
	}
	err := s.orgs.SetPolicies(r.Context(), orgActor(r), o.ID, p)
	return s.orgResult(w, r, err, "The security policies of "+o.Name+" were saved.", "settings/", s.renderOrgSettings)
}

func (s *Server) deleteOrganization(w http.ResponseWriter, r *http.Request) error {
	o := stateOf(r).orgMembership.Org
	_, err := s.orgs.Delete(r.Context(), orgActor(r), o.ID, r.PostFormValue("confirm_organization_name"))
	if err == nil {
		s.mailKick()
		s.flash(w, r, flashSuccess, "The organization "+o.Name+" was deleted.")
		http.Redirect(w, r, "/manage/organizations/", http.StatusSeeOther)
		return nil
	}
	return s.orgResult(w, r, err, "", "settings/", s.renderOrgSettings)
}

// ---- history ----

type orgHistoryPage struct {
	orgPage
	Events []orgEventRow
	Older  string // link to the older page, "" on the last
}

type orgEventRow struct {
	When  time.Time
	Actor string
	What  string
}

func (s *Server) orgHistory(w http.ResponseWriter, r *http.Request) error {
	page := orgHistoryPage{orgPage: s.orgBase(r, "history", "History", "")}
	before, _ := parsePositive(r.URL.Query().Get("before"))
	const perPage = 50
	events, err := s.audit.ForOrganization(r.Context(), page.Org.ID, before, perPage+1)
	if err != nil {
		return err
	}
	if len(events) > perPage {
		events = events[:perPage]
		page.Older = orgPath(page.Org.NormalizedName, "history/") + "?before=" + strconv.FormatInt(events[perPage-1].ID, 10)
	}
	for _, e := range events {
		page.Events = append(page.Events, orgEventRow{When: e.CreatedAt, Actor: e.Actor, What: audit.Describe(e)})
	}
	return s.render(w, http.StatusOK, "org_history.html", page)
}

// ---- the public profile ----

type orgProfilePage struct {
	basePage
	Org      *org.Organization
	Projects []org.OrgProject
	Members  int
}

func (s *Server) orgProfile(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("organization")
	o, renamed, err := s.orgs.Get(r.Context(), name)
	if err != nil {
		return err
	}
	if renamed || o.NormalizedName != pep.NormalizeName(name) {
		http.Redirect(w, r, "/org/"+url.PathEscape(o.NormalizedName)+"/", http.StatusMovedPermanently)
		return nil
	}
	page := orgProfilePage{basePage: s.base(r, o.Name), Org: o}
	if page.Projects, err = s.orgs.Projects(r.Context(), o.ID); err != nil {
		return err
	}
	ms, err := s.orgs.Members(r.Context(), o.ID)
	if err != nil {
		return err
	}
	page.Members = len(ms)
	return s.render(w, http.StatusOK, "org_profile.html", page)
}

// parsePositive reads a positive integer query value; 0 when absent or bad.
func parsePositive(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, derrors.New(derrors.Invalid, "The page address is malformed.")
	}
	return id, nil
}
