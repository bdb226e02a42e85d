package web

import (
	"database/sql"
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/session"
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

// login checks the password and starts a new session. The session id is
// always new (spec D1): whatever id the browser had before is dropped, so a
// planted id is useless.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"), "/manage/account/")
	u, err := s.accounts.CheckLogin(r.Context(), username, password, st.client())
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "login.html", loginPage{basePage: s.base(r, "Log in"), Next: next, Username: username, Error: msg})
	}
	has2FA, err := s.mfa.HasTwoFactor(r.Context(), u.ID)
	if err != nil {
		return err
	}
	if !has2FA {
		// Unlike PyPI, a password-only login does not make the browser a
		// known device: whoever has only the password must not be able to
		// pre-register their browser against a second factor added later.
		if err := s.startSession(w, r, u, session.Password, "none"); err != nil {
			return err
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	// A browser remembered for 30 days skips the second factor.
	if remembered, err := s.mfa.Remembered(r.Context(), u.ID, s.deviceToken(r)); err != nil {
		return err
	} else if remembered {
		if err := s.startSession(w, r, u, session.TwoFactor, "remembered-device"); err != nil {
			return err
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	if err := s.beginHandoff(w, r, u, next); err != nil {
		return err
	}
	http.Redirect(w, r, "/account/two-factor/", http.StatusSeeOther)
	return nil
}

// startSession replaces the browser's session with a signed-in one and
// records the login, in one transaction. Signing in counts as a fresh
// authentication, so sudo pages do not ask again right away
// (pypi/warehouse#8441).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *account.User, level session.Level, method string) error {
	return s.replaceSession(w, r, u, level, func(tx *sql.Tx) error {
		return s.accounts.CompleteLogin(r.Context(), tx, u.ID, method, stateOf(r).client())
	})
}

// replaceSession gives the browser a new session id for u at the given
// level, deleting the old one: at login and at every privilege change
// (spec D1). also runs in the same transaction.
func (s *Server) replaceSession(w http.ResponseWriter, r *http.Request, u *account.User, level session.Level, also func(tx *sql.Tx) error) error {
	st := stateOf(r)
	next := &session.Session{UserID: u.ID, Level: level, PasswordDate: u.PasswordDate, ReauthAt: s.now().UTC(), IP: st.ip, UserAgent: st.agent}
	var raw string
	err := s.projects.DB().InTx(r.Context(), func(tx *sql.Tx) error {
		var err error
		if raw, err = s.sessions.Rotate(r.Context(), tx, st.sess, next); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.setSessionCookie(w, raw)
	st.sess, st.user = next, u
	return nil
}

// logout ends the session (POST only, so a link or image cannot log anyone out).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	if st.sess != nil {
		if err := s.sessions.End(r.Context(), st.sess.IDHash); err != nil {
			return err
		}
	}
	if u := st.user; u != nil {
		if err := s.audit.Record(r.Context(), audit.Event{UserID: u.ID, ActorID: u.ID, Actor: u.Username, Tag: audit.Logout, IP: st.ip, UserAgent: st.agent}); err != nil {
			return err
		}
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
	if _, ok := s.requireUser(w, r); !ok {
		return nil
	}
	next := safeNext(r.URL.Query().Get("next"), "/manage/account/")
	return s.render(w, http.StatusOK, "reauth.html", reauthPage{basePage: s.base(r, "Confirm password"), Next: next})
}

// reauth is sudo mode's password prompt.
func (s *Server) reauth(w http.ResponseWriter, r *http.Request) error {
	u, ok := s.requireUser(w, r)
	if !ok {
		return nil
	}
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
