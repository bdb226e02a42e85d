package web

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// The API tokens page, /manage/account/token/ as on PyPI: the user's tokens
// (scope, created, expiry, last use) and the form that makes one. A new
// token is shown once, in the answer to the form, with snippets for twine,
// uv and the environment ready to paste; it is never stored anywhere it
// could be shown again. The routes are behind manage and sudo: making or
// deleting a token is a management action, and PyPI asks for the password
// again for it.

type tokensPage struct {
	basePage
	Tokens   []tokenRow
	Projects []token.ProjectChoice
	Form     tokenForm
	Created  *createdToken
	CopyJS   string // copy.js, on the page that shows a new token
	MaxDesc  int
	Today    string // the earliest expiry date the form takes (YYYY-MM-DD)
	// ReadTokens: reading needs a token (--read-access authenticated), so
	// the form offers read-only tokens.
	ReadTokens bool
}

type tokenRow struct {
	token.Token
	Scope   string
	Expired bool
}

// tokenForm is the creation form as submitted, to show it again with the
// errors next to their fields.
type tokenForm struct {
	Description string
	Scope       string // "user" or "projects"
	Projects    map[string]bool
	Expires     string // YYYY-MM-DD, "" for none
	ReadOnly    bool   // a read token: installs, never uploads
	Errors      map[string]string
}

// createdToken is a token just made, shown this once.
type createdToken struct {
	Raw         string
	Description string
	Scope       string
	Expires     *time.Time
	Repository  string // the ~/.pypirc section name
	UploadURL   string
	IndexURL    string
	ReadOnly    bool   // a read token: the page shows pip's, uv's and .netrc's settings
	Host        string // the index's host, for .netrc
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderTokens(w, r, http.StatusOK, tokenForm{Scope: "user"}, nil)
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, status int, form tokenForm, created *createdToken) error {
	ctx := r.Context()
	u := stateOf(r).user
	tokens, err := s.tokens.List(ctx, u.ID)
	if err != nil {
		return err
	}
	projects, err := s.tokens.ScopeProjects(ctx, u.ID)
	if err != nil {
		return err
	}
	now := s.now()
	page := tokensPage{basePage: s.base(r, "API tokens"), Projects: projects, Form: form, Created: created, ReadTokens: s.readAccess == ReadAuthenticated,
		MaxDesc: token.MaxDescriptionLen, Today: now.UTC().Format(time.DateOnly)}
	if created != nil {
		page.CopyJS = "/static/" + s.static.copyJSName
	}
	for _, t := range tokens {
		page.Tokens = append(page.Tokens, tokenRow{Token: t, Scope: scopeLabel(t),
			Expired: t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)})
	}
	return s.render(w, status, "tokens.html", page)
}

// scopeLabel says what a token may upload to (or, read-only, read), for
// the list.
func scopeLabel(t token.Token) string {
	var s string
	switch {
	case len(t.Projects) == 0 && t.ReadOnly:
		s = "The whole index"
	case len(t.Projects) == 0:
		s = "Whole account (all projects, and new ones)"
	case len(t.Projects) == 1:
		s = "Project " + t.Projects[0]
	default:
		// Sorted: the database returns a token's projects in no fixed order.
		s = "Projects " + strings.Join(slices.Sorted(slices.Values(t.Projects)), ", ")
	}
	if t.ReadOnly {
		s = "Read only: " + s
	}
	return s
}

// hostOf is the host of a base URL, for .netrc.
func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return u.Hostname()
}

// createToken makes a token from the form and shows it once. Bad input is
// shown next to its field, with what was typed kept, and creates nothing.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	form := tokenForm{
		Description: r.PostFormValue("description"),
		Scope:       r.PostFormValue("scope"),
		Projects:    map[string]bool{},
		Expires:     strings.TrimSpace(r.PostFormValue("expires")),
		ReadOnly:    r.PostFormValue("permission") == "read",
	}
	for _, p := range r.PostForm["project"] {
		form.Projects[p] = true
	}
	projects, expiresAt, err := form.parse(s.now())
	var (
		raw string
		tok token.Token
	)
	if err == nil {
		create := s.tokens.Create
		if form.ReadOnly {
			create = s.tokens.CreateReadOnly
		}
		raw, tok, err = create(r.Context(), u.ID, form.Description, projects, expiresAt, token.Origin{Client: stateOf(r).client()})
	}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		field := derrors.FieldOf(err)
		if field == "" {
			field = token.FieldDescription
		}
		form.Errors = map[string]string{field: msg}
		return s.renderTokens(w, r, statusOf(err), form, nil)
	}
	return s.renderTokens(w, r, http.StatusOK, tokenForm{Scope: "user"}, &createdToken{
		Raw: raw, Description: tok.Description, Scope: scopeLabel(tok), Expires: tok.ExpiresAt, ReadOnly: tok.ReadOnly, Host: hostOf(s.baseURL),
		Repository: repositoryName(s.siteName), UploadURL: s.baseURL + "/legacy/", IndexURL: s.baseURL + "/simple/",
	})
}

// parse reads the scope and the expiry date; the description is the
// token package's to judge.
func (f tokenForm) parse(now time.Time) (projects []string, expiresAt *time.Time, err error) {
	switch f.Scope {
	case "user":
		if len(f.Projects) > 0 {
			return nil, nil, derrors.InField(derrors.Invalid, token.FieldScope,
				"You chose the whole account and also ticked projects. Untick the projects, or choose “Only the projects ticked below”.")
		}
	case "projects":
		for p := range f.Projects {
			projects = append(projects, p)
		}
		if len(projects) == 0 {
			return nil, nil, derrors.InField(derrors.Invalid, token.FieldScope, "Tick at least one project, or choose the whole account.")
		}
	default:
		return nil, nil, derrors.InField(derrors.Invalid, token.FieldScope, "Choose what the token may upload to: the whole account or some projects.")
	}
	if f.Expires != "" {
		day, perr := time.Parse(time.DateOnly, f.Expires)
		if perr != nil {
			return nil, nil, derrors.InField(derrors.Invalid, token.FieldExpires, "Give the expiry date as YYYY-MM-DD, such as %s, or leave it empty.",
				now.UTC().AddDate(0, 3, 0).Format(time.DateOnly))
		}
		// The token works until the end of that day, UTC: its last second
		// (so that the pages show the day chosen, 23:59).
		end := day.AddDate(0, 0, 1).Add(-time.Second)
		if !end.After(now) {
			return nil, nil, derrors.InField(derrors.Invalid, token.FieldExpires, "The expiry date %s is in the past. Choose today or a later day.", f.Expires)
		}
		expiresAt = &end
	}
	return projects, expiresAt, nil
}

var notSlug = regexp.MustCompile(`[^a-z0-9]+`)

// repositoryName is the ~/.pypirc section for this index: the site name
// in lower case with dashes, "gatehouse" if nothing is left of it.
func repositoryName(site string) string {
	n := strings.Trim(notSlug.ReplaceAllString(strings.ToLower(site), "-"), "-")
	if n == "" || n == "pypi" || n == "testpypi" {
		// Those names mean pypi.org to twine.
		return "gatehouse"
	}
	return n
}

// deleteToken deletes one of the user's tokens. Another user's token id is
// "not found" and stays (the token package checks the owner).
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	t, err := s.tokens.Delete(r.Context(), u.ID, r.PostFormValue("token_id"), token.Origin{Client: stateOf(r).client()})
	done := "API token “" + t.Description + "” deleted. It no longer works."
	return s.finishForm(w, r, err, done, pathTokens, func(status int, msg string) error {
		return s.renderTokens(w, r, status, tokenForm{Scope: "user", Errors: map[string]string{"list": msg}}, nil)
	})
}

// projectTokenRow is one line of a project's "tokens that can upload" list.
type projectTokenRow struct {
	Owner       string
	Description string
	Scope       string
	CreatedAt   time.Time
	ExpiresAt   *time.Time
	LastUsedAt  *time.Time
}

// projectTokens lists the tokens that can upload to a project, for its
// settings page: render the rows with {{template "project_tokens" .}}
// (templates/partial_project_tokens.html).
func (s *Server) projectTokens(r *http.Request, projectID int64) ([]projectTokenRow, error) {
	pts, err := s.tokens.ForProject(r.Context(), projectID)
	if err != nil {
		return nil, err
	}
	rows := make([]projectTokenRow, 0, len(pts))
	for _, pt := range pts {
		rows = append(rows, projectTokenRow{Owner: pt.Username, Description: pt.Description, Scope: scopeLabel(pt.Token),
			CreatedAt: pt.CreatedAt, ExpiresAt: pt.ExpiresAt, LastUsedAt: pt.LastUsedAt})
	}
	return rows, nil
}
