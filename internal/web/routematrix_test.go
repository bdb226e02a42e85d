package web

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// routeInfo is one mux.Handle call of routes.go, read from the source so
// that a new route cannot escape the tests below.
type routeInfo struct {
	key     string   // "METHOD /pattern" as registered
	kind    string   // "page", "tool" or "other" (the chain it runs in)
	guards  []string // the guards around the handler, outermost first
	handler string
}

func (r routeInfo) policy() string {
	if r.kind != "page" {
		return r.kind
	}
	if len(r.guards) == 0 {
		return "public"
	}
	return strings.Join(r.guards, " ")
}

// readRoutes parses routes.go.
func readRoutes(t *testing.T) []routeInfo {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []routeInfo
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Handle" || len(call.Args) != 2 {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			t.Fatalf("routes.go: a route whose pattern is not a string literal (%T): write patterns out in full", call.Args[0])
		}
		key, _ := strconv.Unquote(lit.Value)
		r := routeInfo{key: key, kind: "other"}
		h, ok := call.Args[1].(*ast.CallExpr)
		if ok {
			if id, ok := h.Fun.(*ast.Ident); ok && (id.Name == "page" || id.Name == "tool") && len(h.Args) == 1 {
				r.kind = id.Name
				r.guards, r.handler = unwrapGuards(h.Args[0])
			}
		}
		out = append(out, r)
		return false
	})
	if len(out) < 50 {
		t.Fatalf("found %d routes in routes.go; the parser no longer matches how routes are registered", len(out))
	}
	return out
}

// unwrapGuards turns s.manage(s.owner(s.sudo(s.h))) into [manage owner sudo], "h".
func unwrapGuards(e ast.Expr) ([]string, string) {
	var guards []string
	for {
		switch x := e.(type) {
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok || len(x.Args) != 1 {
				return guards, "?"
			}
			guards = append(guards, sel.Sel.Name)
			e = x.Args[0]
		case *ast.SelectorExpr:
			return guards, x.Sel.Name
		default:
			return guards, "?"
		}
	}
}

// routePolicy is the access policy, route by route. A route missing here, or
// guarded differently from what is written here, fails TestRoutePolicy: a
// new route must be placed in the policy on purpose, and a POST cannot
// quietly check less than its page.
var routePolicy = map[string]string{
	"GET /simple/{$}":                                                     "tool",
	"GET /simple/{project}/{$}":                                           "tool",
	"GET /simple/{project}":                                               "tool",
	"GET /packages/{a}/{b}/{digest}/{filename}":                           "tool",
	"GET /upstream/{a}/{sha256}/{filename}":                               "tool",
	"GET /integrity/{project}/{version}/{filename}/provenance":            "tool",
	"POST /manage/project/{project}/settings/publishing/attestations/{$}": "manage owner sudo",
	"POST /manage/project/{project}/settings/origin/{$}":                  "manage owner sudo",
	"POST /manage/project/{project}/settings/alternate-locations/{$}":     "manage owner sudo",
	"GET /pypi/{project}/json":                                            "tool",
	"GET /pypi/{project}/{version}/json":                                  "tool",
	"POST /legacy/{$}":                                                    "other",
	"POST /legacy":                                                        "other",
	"GET /{$}":                                                            "readPage",
	"GET /project/{project}/{$}":                                          "readPage",
	"GET /project/{project}/{version}/{$}":                                "readPage",
	"GET /help/{$}":                                                       "public",
	"GET /account/register/{$}":                                           "public",
	"POST /account/register/{$}":                                          "public",
	"GET /account/login/{$}":                                              "public",
	"POST /account/login/{$}":                                             "public",
	"POST /account/logout/{$}":                                            "public",
	"GET /account/reauthenticate/{$}":                                     "signedIn",
	"POST /account/reauthenticate/{$}":                                    "signedIn",
	"GET /account/verify-email/{$}":                                       "signedIn",
	"GET /account/two-factor/{$}":                                         "handoff",
	"POST /account/two-factor/totp/{$}":                                   "handoff",
	"POST /account/webauthn-authenticate/options/{$}":                     "handoffJSON",
	"POST /account/webauthn-authenticate/validate/{$}":                    "handoffJSON",
	"GET /account/recovery-code/{$}":                                      "handoff",
	"POST /account/recovery-code/{$}":                                     "handoff",
	"GET /account/confirm-login/{$}":                                      "public",
	"POST /account/confirm-login/resend/{$}":                              "public",
	"POST /account/passkey/options/{$}":                                   "public",
	"POST /account/passkey/login/{$}":                                     "public",
	"POST /account/reauthenticate/webauthn/options/{$}":                   "signedInJSON",
	"POST /account/reauthenticate/webauthn/validate/{$}":                  "signedInJSON",
	"GET /account/request-password-reset/{$}":                             "public",
	"POST /account/request-password-reset/{$}":                            "public",
	"GET /account/reset-password/{$}":                                     "public",
	"POST /account/reset-password/{$}":                                    "public",
	"GET /manage/account/{$}":                                             "signedIn",
	"POST /manage/account/emails/add/{$}":                                 "sudo",
	"POST /manage/account/emails/remove/{$}":                              "sudo",
	"POST /manage/account/emails/primary/{$}":                             "sudo",
	"POST /manage/account/emails/resend/{$}":                              "signedIn",
	"POST /manage/account/password/{$}":                                   "sudo",
	"POST /manage/account/sessions/end/{$}":                               "signedIn",
	"POST /manage/account/sessions/end-others/{$}":                        "signedIn",
	"GET /manage/account/delete/{$}":                                      "sudo",
	"POST /manage/account/delete/{$}":                                     "sudo",
	"GET /manage/account/two-factor/{$}":                                  "signedIn",
	"POST /manage/account/recovery-codes/generate/{$}":                    "sudo",
	"POST /manage/account/recovery-codes/confirm/{$}":                     "signedIn",
	"GET /manage/account/totp-provision/{$}":                              "sudo",
	"POST /manage/account/totp-provision/{$}":                             "sudo",
	"POST /manage/account/totp/remove/{$}":                                "sudo",
	"GET /manage/account/webauthn-provision/{$}":                          "sudo",
	"POST /manage/account/webauthn-provision/options/{$}":                 "sudoJSON",
	"POST /manage/account/webauthn-provision/validate/{$}":                "sudoJSON",
	"POST /manage/account/webauthn/remove/{$}":                            "sudo",
	"POST /manage/account/devices/revoke/{$}":                             "signedIn",
	"GET /manage/unverified-account/{$}":                                  "signedIn",
	"POST /manage/unverified-account/{$}":                                 "signedIn",
	"GET /admin/{$}":                                                      "admin",
	"GET /admin/users/{id}/{$}":                                           "admin",
	"POST /admin/users/{id}/disable/{$}":                                  "admin",
	"POST /admin/users/{id}/enable/{$}":                                   "admin",
	"POST /admin/users/{id}/recover/{$}":                                  "admin",
	"POST /admin/settings/{$}":                                            "admin",
	"GET /static/{file}":                                                  "tool",
	"GET /favicon.ico":                                                    "tool",
	"GET /healthz":                                                        "tool",
	"GET /readyz":                                                         "tool",
	"/":                                                                   "public",
	"GET /manage/project/{project}/collaboration/{$}":                     "manage owner sudo",
	"POST /manage/project/{project}/collaboration/{$}":                    "manage owner sudo",
	"POST /manage/project/{project}/collaboration/change/{$}":             "manage owner sudo",
	"POST /manage/project/{project}/collaboration/delete/{$}":             "manage owner sudo",
	"POST /manage/project/{project}/collaboration/revoke_invite/{$}":      "manage owner sudo",
	"GET /manage/project/{project}/collaboration/leave/{$}":               "manage maintainer sudo",
	"POST /manage/project/{project}/collaboration/leave/{$}":              "manage maintainer sudo",
	"GET /account/verify-project-role/{$}":                                "manage",
	"POST /account/verify-project-role/{$}":                               "manage",
	"GET /manage/account/invitations/{$}":                                 "manage",
	"POST /manage/account/invitations/{$}":                                "manage",
	"GET /_/oidc/audience":                                                "tool",
	"POST /_/oidc/mint-token":                                             "tool",
	"POST /_/oidc/github/mint-token":                                      "tool",
	"POST /_/oidc/burn-token":                                             "tool",
	"GET /manage/project/{project}/settings/publishing/{$}":               "manage owner sudo",
	"POST /manage/project/{project}/settings/publishing/{$}":              "manage owner sudo",
	"POST /manage/project/{project}/settings/publishing/remove/{$}":       "manage owner sudo",
	"POST /manage/project/{project}/settings/publishing/only/{$}":         "manage owner sudo",
	"POST /manage/project/{project}/settings/publishing/constrain/{$}":    "manage owner sudo",
	"GET /manage/account/publishing/{$}":                                  "manage",
	"POST /manage/account/publishing/{$}":                                 "manage",
	"POST /manage/account/publishing/remove/{$}":                          "manage",
	"GET /admin/oidc-issuers/{$}":                                         "admin",
	"POST /admin/oidc-issuers/{$}":                                        "admin",
	"POST /admin/oidc-issuers/remove/{$}":                                 "admin",
	// Projects: maintainers may look, owners act; the pages with
	// destructive forms and every change need a recent password.
	"GET /manage/projects/{$}":                                             "manage",
	"GET /manage/project/{project}/{$}":                                    "manage maintainer",
	"GET /manage/project/{project}/settings/{$}":                           "manage maintainer sudo",
	"POST /manage/project/{project}/archive/{$}":                           "manage owner sudo",
	"POST /manage/project/{project}/unarchive/{$}":                         "manage owner sudo",
	"POST /manage/project/{project}/delete/{$}":                            "manage owner sudo",
	"GET /manage/project/{project}/releases/{$}":                           "manage maintainer",
	"GET /manage/project/{project}/release/{version}/{$}":                  "manage maintainer sudo",
	"POST /manage/project/{project}/release/{version}/yank/{$}":            "manage owner sudo",
	"POST /manage/project/{project}/release/{version}/unyank/{$}":          "manage owner sudo",
	"POST /manage/project/{project}/release/{version}/delete/{$}":          "manage owner sudo",
	"POST /manage/project/{project}/release/{version}/delete-file/{$}":     "manage owner sudo",
	"GET /manage/project/{project}/history/{$}":                            "manage maintainer",
	"GET /manage/organizations/{$}":                                        "manage",
	"POST /manage/organizations/{$}":                                       "manage",
	"POST /manage/organizations/invitations/{$}":                           "manage",
	"GET /account/verify-organization-role/{$}":                            "manage",
	"POST /account/verify-organization-role/{$}":                           "manage",
	"GET /org/{organization}/{$}":                                          "readPage",
	"GET /manage/organization/{organization}/{$}":                          "manage orgMember",
	"GET /manage/organization/{organization}/projects/{$}":                 "manage orgMember",
	"POST /manage/organization/{organization}/projects/{$}":                "manage orgManager sudo",
	"POST /manage/organization/{organization}/projects/move-in/{$}":        "manage orgMember sudo",
	"POST /manage/organization/{organization}/projects/answer/{$}":         "manage orgManager sudo",
	"POST /manage/organization/{organization}/projects/move-out/{$}":       "manage orgOwner sudo",
	"GET /manage/organization/{organization}/people/{$}":                   "manage orgMember",
	"POST /manage/organization/{organization}/people/{$}":                  "manage orgOwner sudo",
	"POST /manage/organization/{organization}/people/change/{$}":           "manage orgOwner sudo",
	"POST /manage/organization/{organization}/people/remove/{$}":           "manage orgOwner sudo",
	"POST /manage/organization/{organization}/people/revoke_invite/{$}":    "manage orgOwner sudo",
	"POST /manage/organization/{organization}/people/leave/{$}":            "manage orgMember sudo",
	"GET /manage/organization/{organization}/teams/{$}":                    "manage orgMember",
	"POST /manage/organization/{organization}/teams/{$}":                   "manage orgManager sudo",
	"POST /manage/organization/{organization}/teams/delete/{$}":            "manage orgManager sudo",
	"POST /manage/organization/{organization}/teams/members/{$}":           "manage orgManager sudo",
	"POST /manage/organization/{organization}/teams/members/remove/{$}":    "manage orgManager sudo",
	"POST /manage/organization/{organization}/teams/projects/{$}":          "manage orgManager sudo",
	"POST /manage/organization/{organization}/teams/projects/remove/{$}":   "manage orgManager sudo",
	"GET /manage/organization/{organization}/settings/{$}":                 "manage orgOwner sudo",
	"POST /manage/organization/{organization}/settings/rename/{$}":         "manage orgOwner sudo",
	"POST /manage/organization/{organization}/settings/policies/{$}":       "manage orgOwner sudo",
	"POST /manage/organization/{organization}/settings/issuers/{$}":        "manage orgOwner sudo",
	"POST /manage/organization/{organization}/settings/issuers/remove/{$}": "manage orgOwner sudo",
	"POST /manage/organization/{organization}/settings/delete/{$}":         "manage orgOwner sudo",
	"GET /manage/organization/{organization}/history/{$}":                  "manage orgManager",
	"GET /admin/organizations/{$}":                                         "admin",
	"POST /admin/organizations/{id}/approve/{$}":                           "admin",
	"POST /admin/organizations/{id}/decline/{$}":                           "admin",
	"POST /admin/policies/{$}":                                             "admin",
	"GET /admin/upstream/{$}":                                              "admin",
	"POST /admin/upstream/early/{$}":                                       "admin",
	"POST /admin/upstream/early/remove/{$}":                                "admin",
	"GET /admin/projects/{$}":                                              "admin",
	"GET /admin/projects/{project}/{$}":                                    "admin",
	"POST /admin/projects/{project}/quarantine/{$}":                        "admin",
	"POST /admin/projects/{project}/unquarantine/{$}":                      "admin",
	"POST /admin/projects/{project}/limits/{$}":                            "admin",
	"POST /admin/projects/{project}/origin/{$}":                            "admin",
	"POST /_/secrets/disclose-token":                                       "other",
	"GET /manage/account/history/{$}":                                      "signedIn",
	"GET /manage/account/token/{$}":                                        "manage sudo",
	"POST /manage/account/token/{$}":                                       "manage sudo",
	"POST /manage/account/token/delete/{$}":                                "manage sudo",
}

func TestRoutePolicy(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range readRoutes(t) {
		seen[r.key] = true
		want, ok := routePolicy[r.key]
		if !ok {
			t.Errorf("route %q (%s) is not in routePolicy: add it with the guards it must have", r.key, r.policy())
			continue
		}
		if got := r.policy(); got != want {
			t.Errorf("route %q is guarded by %q, the policy says %q", r.key, got, want)
		}
	}
	for key := range routePolicy {
		if !seen[key] {
			t.Errorf("routePolicy lists %q, which routes.go no longer registers", key)
		}
	}
}

// The route matrix: every page route crossed with the states a visitor can
// be in and the roles a user can have on the route's project. The expected
// outcome of each cell comes from the route's guards (model below); the
// real route is then asked, and every cell the model refuses must be
// refused the way that guard refuses. The guards themselves are checked on
// their own in TestGuardMatrix, with a handler that only says it was
// reached, so the allowed cells are proven too.

type matrixState string

const (
	stAnonymous  matrixState = "anonymous"
	stUnverified matrixState = "unverified email"
	stNo2FA      matrixState = "verified, no 2FA"
	st2FA        matrixState = "2FA"
	stStale      matrixState = "2FA, password long ago"
	stDisabled   matrixState = "disabled"
)

var (
	matrixStates = []matrixState{stAnonymous, stUnverified, stNo2FA, st2FA, stStale, stDisabled}
	matrixRoles  = []string{"Owner", "Maintainer", "stranger", "admin", "orgOwner", "orgManager", "orgMember"}
)

// matrixVisitor is one cell's browser.
type matrixVisitor struct {
	state  matrixState
	role   string
	cookie string // "" for anonymous
}

// outcome is how a guard refuses, or "reached".
type outcome string

const (
	reached    outcome = "reached"
	toLogin    outcome = "redirect to log in"
	toVerify   outcome = "redirect to verify the email"
	to2FA      outcome = "redirect to set up 2FA"
	toReauth   outcome = "redirect to confirm the password"
	forbidden  outcome = "403"
	notFound   outcome = "404"
	jsonRefuse outcome = "403 JSON"
)

// expect runs the guards of a route, outermost first, for a visitor.
func expect(guards []string, v matrixVisitor) outcome {
	signedIn := v.state != stAnonymous && v.state != stDisabled
	verified := v.state != stUnverified
	has2FA := v.state != stNo2FA
	recent := v.state != stStale
	for _, g := range guards {
		switch g {
		case "signedIn":
			if !signedIn {
				return toLogin
			}
		case "sudo":
			if !signedIn {
				return toLogin
			}
			if !recent {
				return toReauth
			}
		case "manage":
			switch {
			case !signedIn:
				return toLogin
			case !verified:
				return toVerify
			case !has2FA:
				return to2FA
			}
		case "owner":
			if v.role != "Owner" {
				return forbidden
			}
		case "maintainer":
			if v.role != "Owner" && v.role != "Maintainer" {
				return forbidden
			}
		case "orgOwner":
			if v.role != "orgOwner" {
				return forbidden
			}
		case "orgManager":
			if v.role != "orgOwner" && v.role != "orgManager" {
				return forbidden
			}
		case "orgMember":
			if v.role != "orgOwner" && v.role != "orgManager" && v.role != "orgMember" {
				return forbidden
			}
		case "admin":
			if !signedIn {
				return toLogin
			}
			if v.role != "admin" {
				return notFound
			}
			if o := expect([]string{"manage", "sudo"}, v); o != reached {
				return o
			}
		case "readPage":
			// The matrix's server reads publicly (--read-access public);
			// the authenticated case is TestReadAccess's.
		case "handoff":
			return toLogin // no visitor here is half-way through a login
		case "handoffJSON":
			return jsonRefuse
		case "signedInJSON":
			if !signedIn {
				return jsonRefuse
			}
		case "sudoJSON":
			if !signedIn || !recent {
				return jsonRefuse
			}
		case "manageJSON":
			if !signedIn || !verified || !has2FA {
				return jsonRefuse
			}
		default:
			panic("routematrix: no model for guard " + g + ": add one to expect")
		}
	}
	return reached
}

// observed classifies an answer.
func observed(code int, location, body string) outcome {
	switch {
	case code == 299:
		return reached
	case code == http.StatusSeeOther && strings.HasPrefix(location, "/account/login/"):
		return toLogin
	case code == http.StatusSeeOther && strings.HasPrefix(location, "/manage/unverified-account/"):
		return toVerify
	case code == http.StatusSeeOther && strings.HasPrefix(location, "/manage/account/two-factor/"):
		return to2FA
	case code == http.StatusSeeOther && strings.HasPrefix(location, "/account/reauthenticate/"):
		return toReauth
	case code == http.StatusForbidden && strings.HasPrefix(strings.TrimSpace(body), "{"):
		return jsonRefuse
	case code == http.StatusForbidden:
		return forbidden
	case code == http.StatusNotFound:
		return notFound
	}
	return outcome(fmt.Sprintf("%d %s", code, location))
}

// matrixFixture makes one user per state and role, each with a session,
// and the project "matrix-demo" on which the roles hold.
func matrixFixture(t *testing.T, d *db.DB) (*fixture, []matrixVisitor) {
	f := newFixture(t, d)
	f.mustUpload(t, wheel(t, meta{Name: "matrix-demo", Version: "1.0"}))
	var projectID int64
	if err := d.QueryRow(`SELECT id FROM projects WHERE normalized_name = 'matrix-demo'`).Scan(&projectID); err != nil {
		t.Fatal(err)
	}
	// The organization "matrix-org", which the org roles are in; the
	// project is not one of its projects.
	var orgID int64
	if err := d.QueryRow(`INSERT INTO organizations (name, normalized_name, status, requester, created_at) VALUES ('matrix-org', 'matrix-org', 'approved', 'nobody', $1) RETURNING id`,
		t0).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	visitors := []matrixVisitor{{state: stAnonymous, role: "stranger"}}
	for _, st := range matrixStates[1:] {
		for _, role := range matrixRoles {
			name := fmt.Sprintf("m%d%s", len(visitors), strings.ToLower(role[:1]))
			id := addUser(t, d, name)
			exec := func(q string, args ...any) {
				if _, err := d.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			switch role {
			case "Owner", "Maintainer":
				exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, $3)`, projectID, id, role)
			case "admin":
				exec(`UPDATE users SET is_admin = TRUE WHERE id = $1`, id)
			case "orgOwner", "orgManager", "orgMember":
				exec(`INSERT INTO organization_roles (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
					orgID, id, strings.TrimPrefix(role, "org"), t0)
			}
			switch st {
			case stUnverified:
				exec(`UPDATE user_emails SET verified = FALSE WHERE user_id = $1`, id)
			case stNo2FA:
				exec(`DELETE FROM totp_secrets WHERE user_id = $1`, id)
			}
			u, err := f.accounts.ByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			reauth := f.clock.Now()
			if st == stStale {
				reauth = reauth.Add(-2 * session.ReauthWindow)
			}
			raw, err := f.sessions.New(ctx, nil, &session.Session{UserID: id, Level: session.TwoFactor, PasswordDate: u.PasswordDate,
				ReauthAt: reauth, IP: "192.0.2.9", UserAgent: "matrix"})
			if err != nil {
				t.Fatal(err)
			}
			if st == stDisabled {
				exec(`UPDATE users SET disabled = TRUE WHERE id = $1`, id)
			}
			visitors = append(visitors, matrixVisitor{state: st, role: role, cookie: raw})
		}
	}
	return f, visitors
}

// matrixRequest is a request from v to path.
func matrixRequest(method, path string, v matrixVisitor) *http.Request {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, path, body)
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if v.cookie != "" {
		r.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: v.cookie})
	}
	return r
}

// matrixPath fills a route pattern's wildcards.
func matrixPath(pattern string) string {
	p := strings.ReplaceAll(pattern, "{$}", "")
	for k, v := range map[string]string{"{project}": "matrix-demo", "{version}": "1.0", "{id}": "1", "{organization}": "matrix-org"} {
		p = strings.ReplaceAll(p, k, v)
	}
	return regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(p, "x")
}

// TestRouteMatrix asks every guarded page route in every cell.
func TestRouteMatrix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, visitors := matrixFixture(t, d)
		checked := 0
		for _, r := range readRoutes(t) {
			method, pattern, ok := strings.Cut(r.key, " ")
			if r.kind != "page" || len(r.guards) == 0 || !ok {
				continue
			}
			for _, v := range visitors {
				want := expect(r.guards, v)
				if want == reached {
					continue // proven with the guards alone, in TestGuardMatrix
				}
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, matrixRequest(method, matrixPath(pattern), v))
				if got := observed(rec.Code, rec.Header().Get("Location"), rec.Body.String()); got != want {
					t.Errorf("%s as %s/%s: got %s, want %s", r.key, v.state, v.role, got, want)
				}
				checked++
			}
		}
		if checked < 400 {
			t.Errorf("only %d refused cells were checked; the matrix lost its routes", checked)
		}
	})
}

// TestGuardMatrix checks each guard chain routes.go uses, around a handler
// that only says it was reached, in every cell.
func TestGuardMatrix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, visitors := matrixFixture(t, d)
		s := f.srv
		guard := map[string]func(handlerFunc) handlerFunc{
			"signedIn": s.signedIn, "sudo": s.sudo, "manage": s.manage, "owner": s.owner, "maintainer": s.maintainer,
			"admin": s.admin, "handoff": s.handoff, "handoffJSON": s.handoffJSON, "signedInJSON": s.signedInJSON,
			"sudoJSON": s.sudoJSON, "manageJSON": s.manageJSON, "orgOwner": s.orgOwner, "orgManager": s.orgManager, "orgMember": s.orgMember,
			"readPage": s.readPage,
		}
		chains := map[string][]string{}
		for _, r := range readRoutes(t) {
			if r.kind == "page" && len(r.guards) > 0 {
				chains[strings.Join(r.guards, " ")] = r.guards
			}
		}
		// Chains the management routes of later issues are built from, even
		// before a route uses them.
		for _, c := range [][]string{{"manage"}, {"manage", "owner"}, {"manage", "maintainer"}, {"manage", "owner", "sudo"}, {"manageJSON"}} {
			chains[strings.Join(c, " ")] = c
		}
		for name, gs := range chains {
			h := handlerFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(299); return nil })
			for i := len(gs) - 1; i >= 0; i-- {
				g, ok := guard[gs[i]]
				if !ok {
					t.Fatalf("guard %q of chain %q is not known to the test", gs[i], name)
				}
				h = g(h)
			}
			mux := http.NewServeMux()
			mux.Handle("/t/{project}/{organization}/", s.page(h))
			for _, v := range visitors {
				for _, method := range []string{http.MethodGet, http.MethodPost} {
					rec := httptest.NewRecorder()
					mux.ServeHTTP(rec, matrixRequest(method, "/t/matrix-demo/matrix-org/", v))
					got := observed(rec.Code, rec.Header().Get("Location"), rec.Body.String())
					if want := expect(gs, v); got != want {
						t.Errorf("chain %q, %s as %s/%s: got %s, want %s", name, method, v.state, v.role, got, want)
					}
				}
			}
		}
	})
}

// TestEmailLinksAreRoutes: every page an email links to is a route.
func TestEmailLinksAreRoutes(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range readRoutes(t) {
		routes[r.key] = true
	}
	l := EmailLinks("https://index.example/")
	for _, link := range []string{l.VerifyEmail, l.ResetPassword, l.ConfirmLogin, l.VerifyProjectRole, l.VerifyOrganizationRole} {
		path := strings.TrimPrefix(link, "https://index.example")
		if !routes["GET "+path+"{$}"] {
			t.Errorf("emailed links open %s, which routes.go does not serve", path)
		}
	}
}

// TestPostNeedsWhatItsPageNeeds: the 2026 audit's "a POST handler that
// checks a weaker permission than its GET page" (TOB-PYPI26-7), generated
// from routes.go. Every POST page route is held to the GET page its
// address sits under (the longest GET pattern that is a prefix of it): each
// requirement of that page must be among the POST's, or implied by one of
// them (owner implies maintainer, maintainer manage, admin manage and
// sudo, manage and sudo being signed in).
func TestPostNeedsWhatItsPageNeeds(t *testing.T) {
	implies := map[string][]string{
		"sudo": {"signedIn"}, "manage": {"signedIn"}, "maintainer": {"manage"}, "owner": {"maintainer"},
		"admin": {"manage", "sudo"}, "orgOwner": {"orgManager"}, "orgManager": {"orgMember"}, "orgMember": {"manage"},
	}
	closure := func(guards []string) map[string]bool {
		out := map[string]bool{}
		var add func(g string)
		add = func(g string) {
			g = strings.TrimSuffix(g, "JSON") // the JSON variants refuse in JSON, same rule
			if g == "readPage" {
				return // it guards reading the index, which no POST does
			}
			if out[g] {
				return
			}
			out[g] = true
			for _, h := range implies[g] {
				add(h)
			}
		}
		for _, g := range guards {
			add(g)
		}
		return out
	}
	routes := readRoutes(t)
	gets := map[string]routeInfo{}
	for _, r := range routes {
		if m, p, ok := strings.Cut(r.key, " "); ok && m == "GET" && r.kind == "page" {
			gets[strings.TrimSuffix(p, "{$}")] = r
		}
	}
	checked := 0
	for _, r := range routes {
		m, p, ok := strings.Cut(r.key, " ")
		if !ok || m != "POST" || r.kind != "page" {
			continue
		}
		p = strings.TrimSuffix(p, "{$}")
		var page routeInfo
		best := -1
		for gp, g := range gets {
			if strings.HasPrefix(p, gp) && len(gp) > best {
				page, best = g, len(gp)
			}
		}
		if best < 0 {
			t.Errorf("%s sits under no GET page", r.key)
			continue
		}
		have := closure(r.guards)
		for need := range closure(page.guards) {
			if !have[need] {
				t.Errorf("%s (%s) checks less than its page %s (%s): it lacks %s", r.key, r.policy(), page.key, page.policy(), need)
			}
		}
		checked++
	}
	if checked < 40 {
		t.Fatalf("checked %d POST routes; the route reader no longer finds them", checked)
	}
}
