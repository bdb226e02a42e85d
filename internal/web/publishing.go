package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

// The trusted-publishing pages: a project's publishers
// (/manage/project/<name>/settings/publishing/, owners), the account's
// pending publishers (/manage/account/publishing/), and the issuers an
// administrator registers (/admin/oidc-issuers/). One template,
// publishing.html, draws the first two; the provider forms are shared.

// publisherFields are the form fields a publisher may have (see
// trustedpub.Input); a custom issuer's claims come as claim_<name>.
var publisherFields = []string{"owner", "owner_id", "repository", "workflow", "environment", "reusable_workflow",
	"namespace", "project", "workflow_filepath", "issuer", "email", "sub", "organization", "actor", "actor_id"}

type publishingPage struct {
	basePage
	Account bool // the account page (pending publishers), not a project's
	Project *project.Project
	// Nav is the project's tabs (projectnav), with Publishing current.
	Nav        projectBase
	Publishers []trustedpub.Publisher
	Only       bool
	// RequireAttestations: files without verified attestations are refused.
	RequireAttestations bool
	Pending             []trustedpub.Pending
	Issuers             []trustedpub.CustomIssuer
	GitLabIssuers       []string
	Audience            string
	BaseURL             string
	Error               string
	// Provider and Form are the form to fill in again: the one that was
	// refused, or the one the query string prefills (?provider=github&owner=…).
	Provider    string
	Form        map[string]string
	ProjectName string
	// Constrain is the offer to limit a publisher to an environment
	// (publishing_environment.go), asked for by constrainID and
	// constrainEnv; ConstrainGone says the link's publisher cannot be
	// limited any more.
	Constrain                 *constrainOffer
	ConstrainGone             bool
	constrainID, constrainEnv string
}

// Val is a field's value to show in a provider's form.
func (p publishingPage) Val(provider, field string) string {
	if p.Provider != provider {
		return ""
	}
	return p.Form[field]
}

// nameField is the project-name field of a pending publisher's form.
type nameField struct {
	Account bool
	Prefix  string
	Page    publishingPage
}

// Named gives a provider form's project-name field its id prefix.
func (p publishingPage) Named(prefix string) nameField {
	return nameField{Account: p.Account, Prefix: prefix, Page: p}
}

// Selected reports whether the GitLab instance is the one to preselect.
func (p publishingPage) Selected(issuer string) bool {
	if p.Provider == trustedpub.KindGitLab && p.Form["issuer"] != "" {
		return p.Form["issuer"] == issuer
	}
	return len(p.GitLabIssuers) > 0 && p.GitLabIssuers[0] == issuer
}

func (s *Server) requireTrustedPub() error {
	if s.tp == nil {
		return derrors.New(derrors.NotFound, "Trusted publishing is not enabled on this index.")
	}
	return nil
}

// publisherInput reads a provider form.
func publisherInput(form url.Values) (trustedpub.Input, map[string]string) {
	in := trustedpub.Input{Provider: form.Get("provider"), Fields: map[string]string{}}
	for _, f := range publisherFields {
		if v := form.Get(f); v != "" {
			in.Fields[f] = v
		}
	}
	for k, v := range form {
		if strings.HasPrefix(k, "claim_") && len(v) > 0 && len(in.Fields) < 64 {
			in.Fields[k] = v[0]
		}
	}
	return in, in.Fields
}

func (s *Server) actor(r *http.Request) trustedpub.Actor {
	st := stateOf(r)
	return trustedpub.Actor{UserID: st.user.ID, Username: st.user.Username, Client: st.client()}
}

func (s *Server) renderPublishing(w http.ResponseWriter, r *http.Request, status int, page publishingPage) error {
	ctx := r.Context()
	var err error
	// A project's publishers may use the administrators' issuers and those
	// of its organization; pending publishers only the administrators'.
	if page.Account {
		page.Issuers, err = s.tp.CustomIssuers(ctx)
	} else {
		page.Issuers, err = s.tp.IssuersFor(ctx, page.Project.ID)
	}
	if err != nil {
		return err
	}
	page.GitLabIssuers = s.tp.GitLabIssuers()
	page.Audience, _ = s.tp.Audience()
	page.BaseURL = s.baseURL
	if page.Account {
		page.basePage = s.base(r, "Publishing")
		if page.Pending, err = s.tp.PendingFor(ctx, stateOf(r).user.ID); err != nil {
			return err
		}
	} else {
		page.basePage = s.base(r, "Publishing · "+page.Project.Name)
		// Only owners reach this page (routes.go).
		page.Nav = projectBase{Project: *page.Project, Role: project.RoleOwner, IsOwner: true, Tab: "publishing"}
		pp, err := s.tp.ForProject(ctx, page.Project.ID)
		if err != nil {
			return err
		}
		page.Publishers, page.Only = pp.Publishers, pp.Only
		if page.RequireAttestations, err = s.projects.RequireAttestations(ctx, page.Project.ID); err != nil {
			return err
		}
		if page.constrainID == "" && r.Method == http.MethodGet {
			page.constrainID, page.constrainEnv = r.URL.Query().Get("constrain_publisher_id"), r.URL.Query().Get("constrain_environment")
		}
		page.Constrain, page.ConstrainGone = constrainFor(page.Publishers, page.constrainID, page.constrainEnv)
	}
	if page.Form == nil && r.Method == http.MethodGet {
		// Prefilled from the query string, as PyPI's links do.
		q := r.URL.Query()
		page.Provider = q.Get("provider")
		_, page.Form = publisherInput(q)
		if page.ProjectName == "" {
			page.ProjectName = q.Get("project_name")
		}
	}
	return s.render(w, status, "publishing.html", page)
}

// projectPublishingPage is a project's publishers, for its owners.
func (s *Server) projectPublishingPage(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	return s.renderPublishing(w, r, http.StatusOK, publishingPage{Project: stateOf(r).membership.Project})
}

func (s *Server) publishingURL(p *project.Project) string {
	return "/manage/project/" + p.NormalizedName + "/settings/publishing/"
}

// addProjectPublisher adds the publisher a provider form describes.
func (s *Server) addProjectPublisher(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	p := stateOf(r).membership.Project
	in, values := publisherInput(r.PostForm)
	pub, err := s.tp.AddToProject(r.Context(), s.actor(r), p, in)
	success := ""
	if err == nil {
		success = "Trusted publisher added: " + pub.Name() + "."
	}
	return s.finishForm(w, r, err, success, s.publishingURL(p), func(status int, msg string) error {
		return s.renderPublishing(w, r, status, publishingPage{Project: p, Error: msg, Provider: in.Provider, Form: values})
	})
}

// removeProjectPublisher removes one of the project's publishers.
func (s *Server) removeProjectPublisher(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	p := stateOf(r).membership.Project
	id, err := formID(r, "publisher_id")
	if err == nil {
		err = s.tp.RemoveFromProject(r.Context(), s.actor(r), p, id)
	}
	return s.finishForm(w, r, err, "Trusted publisher removed.", s.publishingURL(p), func(status int, msg string) error {
		return s.renderPublishing(w, r, status, publishingPage{Project: p, Error: msg, Form: map[string]string{}})
	})
}

// setTrustedPublishingOnly turns the project's setting on or off.
func (s *Server) setTrustedPublishingOnly(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	p := stateOf(r).membership.Project
	var on bool
	switch r.PostFormValue("only") {
	case "on":
		on = true
	case "off":
	default:
		return s.renderPublishing(w, r, http.StatusBadRequest, publishingPage{Project: p, Form: map[string]string{},
			Error: "The form did not say whether to turn trusted publishing only on or off. Reload the page and try again."})
	}
	err := s.tp.SetTrustedPublishingOnly(r.Context(), s.actor(r), p, on)
	msg := "Trusted publishing only is off: API tokens can upload to " + p.Name + " again."
	if on {
		msg = "Trusted publishing only is on: only the trusted publishers can upload to " + p.Name + "."
	}
	return s.finishForm(w, r, err, msg, s.publishingURL(p), func(status int, m string) error {
		return s.renderPublishing(w, r, status, publishingPage{Project: p, Error: m, Form: map[string]string{}})
	})
}

// setRequireAttestations turns the project's "require attestations"
// policy on or off (owners only, routes.go).
func (s *Server) setRequireAttestations(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	p := stateOf(r).membership.Project
	var on bool
	switch r.PostFormValue("require") {
	case "on":
		on = true
	case "off":
	default:
		return s.renderPublishing(w, r, http.StatusBadRequest, publishingPage{Project: p, Form: map[string]string{},
			Error: "The form did not say whether to turn require attestations on or off. Reload the page and try again."})
	}
	a := s.actor(r)
	err := s.projects.SetRequireAttestations(r.Context(), a.Client, a.UserID, a.Username, p.ID, on)
	msg := "Require attestations is off: files without attestations can be uploaded to " + p.Name + " again."
	if on {
		msg = "Require attestations is on: every file uploaded to " + p.Name + " needs verified attestations from its trusted publisher."
	}
	return s.finishForm(w, r, err, msg, s.publishingURL(p), func(status int, m string) error {
		return s.renderPublishing(w, r, status, publishingPage{Project: p, Error: m, Form: map[string]string{}})
	})
}

// accountPublishingPage lists the user's pending publishers.
func (s *Server) accountPublishingPage(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	return s.renderPublishing(w, r, http.StatusOK, publishingPage{Account: true})
}

// addPendingPublisher registers a pending publisher for a new project.
func (s *Server) addPendingPublisher(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	in, values := publisherInput(r.PostForm)
	name := strings.TrimSpace(r.PostFormValue("project_name"))
	pp, err := s.tp.AddPending(r.Context(), s.actor(r), name, in)
	success := ""
	if err == nil {
		success = "Pending trusted publisher added for " + pp.ProjectName + ". Its first upload creates the project; it expires in 30 days."
	}
	return s.finishForm(w, r, err, success, "/manage/account/publishing/", func(status int, msg string) error {
		return s.renderPublishing(w, r, status, publishingPage{Account: true, Error: msg, Provider: in.Provider, Form: values, ProjectName: name})
	})
}

// removePendingPublisher deletes one of the user's pending publishers.
func (s *Server) removePendingPublisher(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	id, err := formID(r, "pending_id")
	if err == nil {
		err = s.tp.RemovePending(r.Context(), s.actor(r), id)
	}
	return s.finishForm(w, r, err, "Pending trusted publisher removed.", "/manage/account/publishing/", func(status int, msg string) error {
		return s.renderPublishing(w, r, status, publishingPage{Account: true, Error: msg, Form: map[string]string{}})
	})
}

type issuersPage struct {
	basePage
	Issuers  []trustedpub.CustomIssuer
	Audience string
	Error    string
	Form     trustedpub.CustomIssuerInput
}

func (s *Server) renderIssuers(w http.ResponseWriter, r *http.Request, status int, page issuersPage) error {
	var err error
	if page.Issuers, err = s.tp.CustomIssuers(r.Context()); err != nil {
		return err
	}
	page.Audience, _ = s.tp.Audience()
	page.basePage = s.base(r, "Trusted publishing issuers")
	return s.render(w, status, "admin_issuers.html", page)
}

// adminIssuersPage lists the custom issuers, for administrators.
func (s *Server) adminIssuersPage(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	return s.renderIssuers(w, r, http.StatusOK, issuersPage{})
}

func (s *Server) adminAddIssuer(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	in := trustedpub.CustomIssuerInput{Name: r.PostFormValue("name"), URL: r.PostFormValue("issuer_url"),
		Audience: r.PostFormValue("audience"), Claims: r.PostFormValue("claims")}
	ci, err := s.tp.AddCustomIssuer(r.Context(), s.actor(r), in)
	success := ""
	if err == nil {
		success = "Issuer " + ci.Name + " added. Project owners can now add its publishers."
	}
	return s.finishForm(w, r, err, success, "/admin/oidc-issuers/", func(status int, msg string) error {
		return s.renderIssuers(w, r, status, issuersPage{Error: msg, Form: in})
	})
}

func (s *Server) adminRemoveIssuer(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	id, err := formID(r, "issuer_id")
	if err == nil {
		err = s.tp.RemoveCustomIssuer(r.Context(), s.actor(r), id)
	}
	return s.finishForm(w, r, err, "Issuer removed, with its publishers.", "/admin/oidc-issuers/", func(status int, msg string) error {
		return s.renderIssuers(w, r, status, issuersPage{Error: msg})
	})
}
