package web

import (
	"errors"
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

type requestResetPage struct {
	basePage
	Error string
}

func (s *Server) requestResetPage(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, http.StatusOK, "request_reset.html", requestResetPage{basePage: s.base(r, "Reset your password")})
}

// requestReset sends a reset link. The answer is the same whether or not
// the account exists, so the form cannot be used to find accounts.
func (s *Server) requestReset(w http.ResponseWriter, r *http.Request) error {
	err := s.accounts.RequestPasswordReset(r.Context(), r.PostFormValue("username_or_email"), stateOf(r).client())
	if errors.Is(err, derrors.RateLimited) {
		// The per-account limit (5 a day) sends nothing more, but the
		// visitor gets the usual answer: a 429 would tell them the account
		// exists (spec A6, E3).
		err = nil
	}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "request_reset.html", requestResetPage{basePage: s.base(r, "Reset your password"), Error: msg})
	}
	s.mailKick()
	s.flash(w, r, flashSuccess, "If an account matches, we have sent it an email with a link to reset the password. The link is valid for 6 hours.")
	http.Redirect(w, r, "/account/login/", http.StatusSeeOther)
	return nil
}

type resetPage struct {
	basePage
	Token    string
	Username string
	Error    string
	MinChars int
}

func (s *Server) resetPasswordPage(w http.ResponseWriter, r *http.Request) error {
	tok := r.URL.Query().Get("token")
	u, err := s.accounts.CheckResetToken(r.Context(), tok)
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.flash(w, r, flashError, msg)
		http.Redirect(w, r, "/account/request-password-reset/", http.StatusSeeOther)
		return nil
	}
	return s.render(w, http.StatusOK, "reset.html", resetPage{basePage: s.base(r, "Choose a new password"), Token: tok, Username: u.Username, MinChars: account.MinPasswordLen})
}

// resetPassword sets the new password. Every session of the user ends and
// every remembered browser is forgotten; the user logs in afresh.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) error {
	tok := r.PostFormValue("token")
	_, err := s.signin.ResetPassword(r.Context(), s.browser(r), tok, r.PostFormValue("password"), r.PostFormValue("password_confirm"))
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "reset.html", resetPage{basePage: s.base(r, "Choose a new password"), Token: tok, Error: msg, MinChars: account.MinPasswordLen})
	}
	s.mailKick()
	s.flash(w, r, flashSuccess, "Your password has been reset. Log in with your new password.")
	http.Redirect(w, r, "/account/login/", http.StatusSeeOther)
	return nil
}
