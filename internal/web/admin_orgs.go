package web

import (
	"net/http"
	"strconv"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/org"
)

// The administrators' organization pages: requests to approve or decline,
// the organizations in use, and the site-wide security policies, which
// hold for everyone as an organization's hold for its members.

type adminOrgsPage struct {
	basePage
	Requests      []org.Request
	Organizations []org.Organization
	Policies      org.Policies
	NeedApproval  bool
}

func (s *Server) adminOrganizations(w http.ResponseWriter, r *http.Request) error {
	page := adminOrgsPage{basePage: s.base(r, "Organizations"), NeedApproval: s.orgs.NeedApproval()}
	ctx := r.Context()
	var err error
	if page.Requests, err = s.orgs.PendingRequests(ctx); err != nil {
		return err
	}
	if page.Organizations, err = s.orgs.All(ctx); err != nil {
		return err
	}
	if page.Policies, err = s.orgs.SitePolicies(ctx); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "admin_organizations.html", page)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, derrors.New(derrors.NotFound, "There is no such request.")
	}
	return id, nil
}

func (s *Server) adminDecideOrganization(w http.ResponseWriter, r *http.Request, approve bool) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var o *org.Organization
	if approve {
		o, err = s.orgs.Approve(r.Context(), orgActor(r), id)
	} else {
		o, err = s.orgs.Decline(r.Context(), orgActor(r), id)
	}
	if err != nil {
		if msg, ok := userMessage(err); ok {
			s.flash(w, r, flashError, msg)
			http.Redirect(w, r, "/admin/organizations/", http.StatusSeeOther)
			return nil
		}
		return err
	}
	s.mailKick()
	verb := "declined; the requester was told and the name is free again"
	if approve {
		verb = "approved; " + o.Requester + " is its owner and was told"
	}
	s.flash(w, r, flashSuccess, "The organization "+o.Name+" was "+verb+".")
	http.Redirect(w, r, "/admin/organizations/", http.StatusSeeOther)
	return nil
}

func (s *Server) adminApproveOrganization(w http.ResponseWriter, r *http.Request) error {
	return s.adminDecideOrganization(w, r, true)
}

func (s *Server) adminDeclineOrganization(w http.ResponseWriter, r *http.Request) error {
	return s.adminDecideOrganization(w, r, false)
}

// adminSitePolicies sets the site-wide security policies.
func (s *Server) adminSitePolicies(w http.ResponseWriter, r *http.Request) error {
	p := org.Policies{
		PhishingResistant: r.PostFormValue("phishing_resistant") == "on",
		TrustedOnly:       r.PostFormValue("trusted_publishing_only") == "on",
		ConfirmLogins:     r.PostFormValue("confirm_every_login") == "on",
	}
	if err := s.orgs.SetSitePolicies(r.Context(), orgActor(r), p); err != nil {
		return err
	}
	s.flash(w, r, flashSuccess, "The site-wide security policies were saved.")
	http.Redirect(w, r, "/admin/organizations/", http.StatusSeeOther)
	return nil
}
