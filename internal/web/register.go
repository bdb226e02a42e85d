package web

import (
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

type registerPage struct {
	basePage
	Closed   bool
	Form     account.Registration
	Error    string
	MinChars int
}

func (s *Server) registerPage(w http.ResponseWriter, r *http.Request) error {
	if stateOf(r).user != nil {
		http.Redirect(w, r, "/manage/account/", http.StatusSeeOther)
		return nil
	}
	return s.render(w, http.StatusOK, "register.html", registerPage{
		basePage: s.base(r, "Create an account"), Closed: !s.accounts.RegistrationOpen(r.Context()), MinChars: account.MinPasswordLen})
}

// register creates the account, sends the verification email and signs the
// new user in, as Warehouse does.
func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	// A honeypot field people never see or fill in; form-filling bots do.
	if r.PostFormValue("confirm_form") != "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	form := account.Registration{
		Username: r.PostFormValue("username"),
		FullName: r.PostFormValue("full_name"),
		Email:    r.PostFormValue("email"),
		Password: r.PostFormValue("password"),
		Confirm:  r.PostFormValue("password_confirm"),
	}
	u, err := s.accounts.Register(r.Context(), form, st.client())
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		form.Password, form.Confirm = "", ""
		return s.render(w, statusOf(err), "register.html", registerPage{
			basePage: s.base(r, "Create an account"), Closed: !s.accounts.RegistrationOpen(r.Context()), Form: form, Error: msg, MinChars: account.MinPasswordLen})
	}
	s.mailKick()
	res, err := s.signin.Registered(r.Context(), s.browser(r), u)
	if err != nil {
		return err
	}
	s.carryOut(w, r, res)
	s.flash(w, r, flashSuccess, "Welcome, "+u.Username+". We sent a link to "+u.PrimaryEmail+": follow it to verify your email address.")
	http.Redirect(w, r, "/manage/account/", http.StatusSeeOther)
	return nil
}

// verifyEmail follows the emailed link. The visitor must be signed in as the
// address's owner, so a link forwarded to someone else verifies nothing.
func (s *Server) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	e, err := s.accounts.VerifyEmail(r.Context(), u.ID, r.URL.Query().Get("token"), stateOf(r).client())
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.flash(w, r, flashError, msg)
		http.Redirect(w, r, "/manage/account/", http.StatusSeeOther)
		return nil
	}
	// Back to the page the management gate sent the user from, if any (the
	// flash below saves the session with it taken out).
	next := "/manage/account/"
	if e.Primary {
		next = s.takeNext(stateOf(r).sess, next)
	}
	s.flash(w, r, flashSuccess, "Email address "+e.Email+" verified.")
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

type unverifiedPage struct {
	basePage
	Email string
	Next  string // where the user goes once the address is verified
	Error string
}

// unverifiedAccountPage lets a user whose primary address is unverified
// resend the link or replace the address.
func (s *Server) unverifiedAccountPage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	if u.PrimaryVerified {
		next := s.takeNext(stateOf(r).sess, "/manage/account/")
		if n := safeNext(r.URL.Query().Get("next"), ""); n != "" {
			next = n
		}
		if st := stateOf(r); st.sess != nil {
			if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
				return err
			}
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	if err := s.keepNext(r); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "unverified.html", unverifiedPage{basePage: s.base(r, "Verify your email address"),
		Email: u.PrimaryEmail, Next: s.pendingNext(r)})
}

func (s *Server) replaceUnverifiedEmail(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	addr := r.PostFormValue("email")
	if err := s.accounts.ReplaceUnverifiedPrimary(r.Context(), u.ID, addr, stateOf(r).client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "unverified.html", unverifiedPage{basePage: s.base(r, "Verify your email address"), Email: u.PrimaryEmail,
			Next: s.pendingNext(r), Error: msg})
	}
	s.mailKick()
	s.flash(w, r, flashSuccess, "We sent a verification link to "+addr+".")
	http.Redirect(w, r, "/manage/account/", http.StatusSeeOther)
	return nil
}

// badForm is the error for a form that could not be read at all.
func badForm() error {
	return derrors.New(derrors.Invalid, "The form could not be read. Reload the page and try again.")
}
