package web

import (
	"net/http"
	"strconv"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

type accountPage struct {
	basePage
	Emails   []account.Email
	Error    string
	MinChars int
}

// accountPage is the user's account settings: emails, password, and the
// way to delete the account. Second factors, recognized browsers and
// sessions are on the two-factor page, tokens on the API tokens page, the
// security history on its own pages (PyPI's split, so that no page grows
// to thousands of pixels).
func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	return s.renderAccount(w, r, u, http.StatusOK, "")
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, u *account.User, status int, formErr string) error {
	emails, err := s.accounts.Emails(r.Context(), u.ID)
	if err != nil {
		return err
	}
	page := accountPage{basePage: s.base(r, "Your account"), Emails: emails, Error: formErr, MinChars: account.MinPasswordLen}
	return s.render(w, status, "account.html", page)
}

// formResult finishes a POST from the account page: a person-fixable error
// is shown on the page, anything else goes to the error adapter.
func (s *Server) formResult(w http.ResponseWriter, r *http.Request, u *account.User, err error, success string) error {
	return s.finishForm(w, r, err, success, "/manage/account/", func(status int, msg string) error {
		return s.renderAccount(w, r, u, status, msg)
	})
}

// finishForm ends a management POST: an error a person can fix is shown by
// rerender on the same page with its status; success queues any mail,
// flashes the message and redirects (post/redirect/get).
func (s *Server) finishForm(w http.ResponseWriter, r *http.Request, err error, success, redirect string, rerender func(status int, msg string) error) error {
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return rerender(statusOf(err), msg)
	}
	s.mailKick()
	s.flash(w, r, flashSuccess, success)
	http.Redirect(w, r, redirect, http.StatusSeeOther)
	return nil
}

func formID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PostFormValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, derrors.New(derrors.Invalid, "The form is missing which item to act on. Reload the page and try again.")
	}
	return id, nil
}

func (s *Server) addEmail(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	addr := r.PostFormValue("email")
	_, err := s.accounts.AddEmail(r.Context(), u.ID, addr, stateOf(r).client())
	return s.formResult(w, r, u, err, "Email "+addr+" added. We sent it a verification link.")
}

func (s *Server) removeEmail(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	id, err := formID(r, "email_id")
	if err == nil {
		err = s.accounts.RemoveEmail(r.Context(), u.ID, id, stateOf(r).client())
	}
	return s.formResult(w, r, u, err, "Email address removed.")
}

func (s *Server) setPrimaryEmail(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	id, err := formID(r, "email_id")
	if err == nil {
		err = s.accounts.SetPrimary(r.Context(), u.ID, id, stateOf(r).client())
	}
	return s.formResult(w, r, u, err, "Primary email address changed.")
}

func (s *Server) resendVerification(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	id, err := formID(r, "email_id")
	if err == nil {
		err = s.accounts.ResendVerification(r.Context(), u.ID, id, stateOf(r).client())
	}
	return s.formResult(w, r, u, err, "Verification email sent.")
}

// changePassword sets a new password. Every other session ends (they carry
// the old password date); this one is replaced by a fresh session.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	res, err := s.signin.ChangePassword(r.Context(), s.browser(r), r.PostFormValue("current_password"),
		r.PostFormValue("password"), r.PostFormValue("password_confirm"))
	if err != nil {
		return s.formResult(w, r, u, err, "")
	}
	s.carryOut(w, r, res)
	return s.formResult(w, r, res.User, nil, "Password changed. Every other session has been logged out.")
}

// endSession and endOtherSessions are forms of the two-factor and
// sessions page, and go back to it.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	err := s.signin.EndSession(r.Context(), s.browser(r), u, r.PostFormValue("session"))
	return s.formResult2FA(w, r, u, err, "Session ended.")
}

func (s *Server) endOtherSessions(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	n, err := s.signin.EndOtherSessions(r.Context(), s.browser(r), u)
	return s.formResult2FA(w, r, u, err, strconv.FormatInt(n, 10)+" other session(s) ended.")
}

type deletePage struct {
	basePage
	Error string
}

func (s *Server) deleteAccountPage(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, http.StatusOK, "delete_account.html", deletePage{basePage: s.base(r, "Delete your account")})
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	st := stateOf(r)
	if r.PostFormValue("confirm_username") != u.Username {
		return s.render(w, http.StatusBadRequest, "delete_account.html", deletePage{basePage: s.base(r, "Delete your account"),
			Error: "Type your username exactly to confirm."})
	}
	if err := s.accounts.DeleteAccount(r.Context(), u.ID, r.PostFormValue("password"), st.client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "delete_account.html", deletePage{basePage: s.base(r, "Delete your account"), Error: msg})
	}
	s.mailKick()
	s.clearSessionCookie(w)
	st.sess, st.user = nil, nil
	s.flash(w, r, flashSuccess, "Your account has been deleted.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// dash shows "—" for an empty value (events the system records itself,
// such as emails sent, have no IP or browser).
func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func eventAgent(ua string) string {
	if ua == "" {
		return "—"
	}
	return describeAgent(ua)
}
