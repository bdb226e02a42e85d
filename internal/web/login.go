package web

import (
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
)

type loginPage struct {
	basePage
	Next     string
	Username string
	Error    string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"), "/manage/account/")
	if stateOf(r).user != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	return s.render(w, http.StatusOK, "login.html", loginPage{basePage: s.base(r, "Log in"), Next: next})
}

// login is the password step. The session id is always new (spec D1):
// whatever id the browser had before is dropped, so a planted id is useless.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	username := r.PostFormValue("username")
	next := safeNext(r.PostFormValue("next"), "/manage/account/")
	res, err := s.signin.Password(r.Context(), s.browser(r), username, r.PostFormValue("password"), next)
	s.metrics.Login(metrics.FactorPassword, loginOutcome(err))
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "login.html", loginPage{basePage: s.base(r, "Log in"), Next: next, Username: username, Error: msg})
	}
	return s.afterStep(w, r, res)
}

// browser is what the sign-in flow needs to know of the request's browser.
func (s *Server) browser(r *http.Request) login.Browser {
	st := stateOf(r)
	return login.Browser{Session: st.sess, Device: s.deviceToken(r), Client: st.client()}
}

// carryOut applies what a sign-in step decided to the browser: its new
// session cookie and device cookie.
func (s *Server) carryOut(w http.ResponseWriter, r *http.Request, res *login.Result) {
	st := stateOf(r)
	if res.Cookie != "" {
		s.setSessionCookie(w, res.Cookie)
	}
	if res.Device != "" {
		s.setDeviceCookie(w, res.Device)
	}
	st.sess = res.Session
	if res.User != nil {
		st.user = res.User
	}
}

// afterStep carries out a sign-in step and sends the browser on: to the
// second-factor page, to "check your email", or where it was going.
func (s *Server) afterStep(w http.ResponseWriter, r *http.Request, res *login.Result) error {
	s.carryOut(w, r, res)
	s.mailKick()
	switch res.Outcome {
	case login.SecondFactor:
		http.Redirect(w, r, "/account/two-factor/", http.StatusSeeOther)
		return nil
	case login.Held:
		http.Redirect(w, r, pathConfirmLogin, http.StatusSeeOther)
		return nil
	}
	// The flash goes on the new session: one set earlier would have been
	// lost with the old session when the id rotated.
	switch res.Method {
	case login.MethodRecoveryCode:
		s.flash(w, r, flashInfo, "Recovery code accepted. The supplied code cannot be used again.")
	case login.MethodEmail:
		s.flash(w, r, flashSuccess, "Your login has been confirmed and this browser is now recognized.")
	}
	http.Redirect(w, r, safeNext(res.Next, "/manage/account/"), http.StatusSeeOther)
	return nil
}

// logout ends the session (POST only, so a link or image cannot log anyone out).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	if err := s.signin.Logout(r.Context(), s.browser(r), st.user); err != nil {
		return err
	}
	s.clearSessionCookie(w)
	st.sess, st.user = nil, nil
	s.flash(w, r, flashSuccess, "You are now logged out.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

type reauthPage struct {
	basePage
	Next  string
	Error string
}

func (s *Server) reauthPage(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"), "/manage/account/")
	return s.render(w, http.StatusOK, "reauth.html", reauthPage{basePage: s.base(r, "Confirm password"), Next: next})
}

// reauth is sudo mode's password prompt.
func (s *Server) reauth(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	st := stateOf(r)
	next := safeNext(r.PostFormValue("next"), "/manage/account/")
	if err := s.accounts.CheckPassword(r.Context(), u.ID, r.PostFormValue("password"), st.client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "reauth.html", reauthPage{basePage: s.base(r, "Confirm password"), Next: next, Error: msg})
	}
	if err := s.sessions.MarkReauth(r.Context(), st.sess); err != nil {
		return err
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}
