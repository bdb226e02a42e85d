package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// reqState is what the session middleware learned about a browser request.
type reqState struct {
	sess *session.Session // nil: no session yet
	user *account.User    // nil: not signed in
	// handoff is the user half-way through signing in, behind the handoff
	// guards.
	handoff *account.User
	// membership is the project the route names and the user's role on it,
	// behind the owner and maintainer guards.
	membership *project.Membership
	// orgMembership is the organization the route names and the user's
	// role in it, behind the organization guards (auth_org.go).
	orgMembership *org.Membership
	ip            string
	agent         string
}

type stateKey struct{}

// stateOf returns the request's state (never nil on page routes).
func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{ip: remoteIP(r.RemoteAddr), agent: r.UserAgent()}
}

func (st *reqState) client() account.Client {
	return account.Client{IP: st.ip, UserAgent: st.agent}
}

// cookieName is the session cookie. With https it carries the __Host-
// prefix, which browsers accept only with Secure, Path=/ and no Domain, so no
// subdomain can plant or overwrite it.
func (s *Server) cookieName() string {
	if s.https() {
		return "__Host-gatehouse_session"
	}
	return "gatehouse_session"
}

func (s *Server) https() bool { return strings.HasPrefix(s.baseURL, "https://") }

func (s *Server) setSessionCookie(w http.ResponseWriter, raw string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    raw,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.https(),
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.https(), SameSite: http.SameSiteLaxMode})
}

// withSession loads the browser session, if any, and keeps it only if it is
// still good (login.Service.Current has the rule).
// Authenticated pages are never cached.
func (s *Server) withSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{ip: s.clientIP(r), agent: r.UserAgent()}
		if c, err := r.Cookie(s.cookieName()); err == nil {
			sess, err := s.sessions.Load(r.Context(), c.Value)
			switch {
			case errors.Is(err, session.ErrNoSession):
				s.clearSessionCookie(w)
			case err != nil:
				s.log.Error("load session", "err", err)
			default:
				u, ok, err := s.signin.Current(r.Context(), sess)
				switch {
				case err != nil:
					s.log.Error("check session", "err", err)
				case !ok:
					s.clearSessionCookie(w)
				default:
					st.sess, st.user = sess, u
				}
			}
		}
		if st.user != nil {
			w.Header().Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	})
}

// clientIP is the address rate limits, sessions and events use. The
// X-Forwarded-For header is believed only from configured proxies: from
// anyone else it is attacker-controlled and would let them pick their IP.
func (s *Server) clientIP(r *http.Request) string {
	ip := remoteIP(r.RemoteAddr)
	if len(s.proxies) == 0 {
		return ip
	}
	trusted := func(addr string) bool {
		p := net.ParseIP(addr)
		for _, n := range s.proxies {
			if p != nil && n.Contains(p) {
				return true
			}
		}
		return false
	}
	if !trusted(ip) {
		return ip
	}
	// Walk X-Forwarded-For from the right: the first address not of a
	// trusted proxy is the client.
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if !trusted(h) {
			if net.ParseIP(h) != nil {
				return h
			}
			return ip
		}
	}
	return ip
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// safeNext returns next if it is a same-origin path, else fallback. Only
// "/x…" is allowed: "//evil.example", "/\evil", schemes and hosts are
// refused, so a crafted login link cannot send people elsewhere (spec D7).
func safeNext(next, fallback string) string {
	if next == "" || len(next) > 2000 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n\t") {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	return next
}

// loginURL sends a visitor to log in and come back to r's page.
func loginURL(r *http.Request) string {
	return "/account/login/?next=" + url.QueryEscape(r.URL.RequestURI())
}

// The guards. Each route in routes.go names the one it needs, so the route
// list is the access policy; a handler behind a guard finds what the guard
// established in stateOf(r) (the user; for handoff, the user half-way
// through signing in).

// signedIn lets signed-in users through and sends anyone else to log in
// and come back.
func (s *Server) signedIn(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if stateOf(r).user == nil {
			http.Redirect(w, r, loginURL(r), http.StatusSeeOther)
			return nil
		}
		return h(w, r)
	}
}

// sudo is signedIn plus a password entered in the last 30 minutes, for
// sensitive pages; otherwise the password is asked for again first.
func (s *Server) sudo(h handlerFunc) handlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request) error {
		if !s.sessions.RecentlyAuthenticated(stateOf(r).sess) {
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				// After re-authenticating, come back to the page, not the
				// POST. No Referer (pages send Referrer-Policy: no-referrer)
				// is the account page, not "/", which an empty URL's
				// RequestURI is.
				next = "/manage/account/"
				if ref, err := url.Parse(r.Referer()); err == nil && r.Referer() != "" {
					next = safeNext(ref.RequestURI(), "/manage/account/")
				}
			}
			s.flash(w, r, flashInfo, "Confirm your password to continue.")
			http.Redirect(w, r, "/account/reauthenticate/?next="+url.QueryEscape(next), http.StatusSeeOther)
			return nil
		}
		return h(w, r)
	})
}

// manage is the one gate for management actions, as PyPI requires them:
// signed in, a verified primary email, and a second factor. People without
// them land where they can fix it, with a banner, and come back after.
// Compose it with a role guard (owner, maintainer) and, for destructive
// actions, sudo: manage(owner(sudo(h))) checks in the order signed in →
// verified email → second factor → role → recent authentication.
func (s *Server) manage(h handlerFunc) handlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request) error {
		u := stateOf(r).user
		back := "?next=" + url.QueryEscape(safeNext(r.URL.RequestURI(), "/manage/projects/"))
		if r.Method != http.MethodGet {
			back = ""
		}
		if !u.PrimaryVerified {
			s.flash(w, r, flashError, "You must verify your primary email address before you can perform this action.")
			http.Redirect(w, r, "/manage/unverified-account/"+back, http.StatusSeeOther)
			return nil
		}
		has, err := s.mfa.HasTwoFactor(r.Context(), u.ID)
		if err != nil {
			return err
		}
		if !has {
			s.flash(w, r, flashError, "Two-factor authentication must be enabled on your account to perform this action.")
			http.Redirect(w, r, "/manage/account/two-factor/"+back, http.StatusSeeOther)
			return nil
		}
		// The site-wide policies (security keys only) hold on every
		// management action.
		if err := s.orgs.CheckManage(r.Context(), u.ID); err != nil {
			return s.policyRefusal(w, r, err)
		}
		return h(w, r)
	})
}

// owner lets through the owners of the project the route names ({project});
// maintainer lets through owners and maintainers. Either records the
// project and the role in the request state for the handler. Anyone else
// gets a 403 that says why; a project that does not exist is a 404.
func (s *Server) owner(h handlerFunc) handlerFunc {
	return s.projectRole(h, project.RoleOwner)
}

func (s *Server) maintainer(h handlerFunc) handlerFunc {
	return s.projectRole(h, project.RoleOwner, project.RoleMaintainer)
}

func (s *Server) projectRole(h handlerFunc, allowed ...string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := stateOf(r)
		m, err := s.projects.MembershipOf(r.Context(), pep.NormalizeName(r.PathValue("project")), st.user.ID)
		if err != nil {
			return err
		}
		if !slices.Contains(allowed, m.Role) {
			if len(allowed) == 1 {
				return derrors.New(derrors.Forbidden, "Only an owner of %s can do this.", m.Project.Name)
			}
			return derrors.New(derrors.Forbidden, "You are not a collaborator on %s.", m.Project.Name)
		}
		// The organization's (or the site's) security policies hold on
		// every action on its projects.
		if err := s.orgs.CheckProject(r.Context(), st.user.ID, m.Project.ID); err != nil {
			return s.policyRefusal(w, r, err)
		}
		st.membership = m
		return h(w, r)
	}
}

// admin is for administrators, who pass the management gate and sudo too. Anyone
// else signed in gets a 404, not a 403: the admin pages do not advertise
// themselves.
func (s *Server) admin(h handlerFunc) handlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request) error {
		if !stateOf(r).user.IsAdmin {
			return derrors.New(derrors.NotFound, "There is no page at this address.")
		}
		return s.manage(s.sudo(h))(w, r)
	})
}

// handoff is for the second-factor pages: only a browser that passed the
// password step in the last five minutes may use them.
func (s *Server) handoff(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.signin.HandoffUser(r.Context(), stateOf(r).sess)
		if errors.Is(err, login.ErrHandoffExpired) {
			return s.handoffExpired(w, r)
		}
		if err != nil {
			return err
		}
		stateOf(r).handoff = u
		return h(w, r)
	}
}

// The JSON guards answer webauthn.js with {"error": …} instead of a
// redirect.

func (s *Server) handoffJSON(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.signin.HandoffUser(r.Context(), stateOf(r).sess)
		if errors.Is(err, login.ErrHandoffExpired) {
			return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Your login expired. Log in again."})
		}
		if err != nil {
			return err
		}
		stateOf(r).handoff = u
		return h(w, r)
	}
}

func (s *Server) signedInJSON(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if stateOf(r).user == nil {
			return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Log in first."})
		}
		return h(w, r)
	}
}

// manageJSON is manage for endpoints that scripts call: a 403 body that says
// what is missing, instead of a redirect.
func (s *Server) manageJSON(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		u := stateOf(r).user
		if u == nil {
			return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Log in first."})
		}
		if !u.PrimaryVerified {
			return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Verify your primary email address first."})
		}
		has, err := s.mfa.HasTwoFactor(r.Context(), u.ID)
		if err != nil {
			return err
		}
		if !has {
			return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Enable two-factor authentication first."})
		}
		return h(w, r)
	}
}

func (s *Server) sudoJSON(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := stateOf(r)
		if st.user == nil || !s.sessions.RecentlyAuthenticated(st.sess) {
			return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Confirm your password again: reload the page."})
		}
		return h(w, r)
	}
}
