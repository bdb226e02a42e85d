package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
)

// The second step of a login and what follows it: the second-factor pages,
// which only a browser that passed the password step can use, for at most
// login.HandoffTTL (the handoff guard in routes.go); and the confirmation
// pages of a held login, which any browser may open but only the one
// holding the login completes. The flow itself (the handoff, held logins,
// confirmation) is internal/login's; these handlers parse, call it and act
// on the result. The device cookie and the WebAuthn ceremony helpers here
// also serve the passkey, reauthentication and security-key setup pages.

const (
	keyWAState = "webauthn_state"
	keyTOTPNew = "totp_provision"
)

func (s *Server) handoffExpired(w http.ResponseWriter, r *http.Request) error {
	msg, _ := userMessage(login.ErrHandoffExpired)
	s.flash(w, r, flashError, msg)
	http.Redirect(w, r, "/account/login/", http.StatusSeeOther)
	return nil
}

type twoFactorPage struct {
	basePage
	HasTOTP     bool
	HasKeys     bool
	Error       string
	RememberDay int
}

// twoFactorPage offers the user's second factors after the password.
func (s *Server) twoFactorPage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).handoff
	return s.renderTwoFactor(w, r, u, http.StatusOK, "")
}

func (s *Server) renderTwoFactor(w http.ResponseWriter, r *http.Request, u *account.User, status int, msg string) error {
	hasTOTP, err := s.mfa.HasTOTP(r.Context(), u.ID)
	if err != nil {
		return err
	}
	creds, err := s.webauthn.Credentials(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return s.render(w, status, "two_factor.html", twoFactorPage{basePage: s.base(r, "Two-factor authentication"),
		HasTOTP: hasTOTP, HasKeys: len(creds) > 0, Error: msg, RememberDay: 30})
}

// twoFactorTOTP checks an authenticator-app code.
func (s *Server) twoFactorTOTP(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).handoff
	res, err := s.signin.TOTP(r.Context(), s.browser(r), r.PostFormValue("totp_value"), r.PostFormValue("remember_device") != "")
	s.metrics.Login(metrics.FactorTOTP, loginOutcome(err))
	if errors.Is(err, login.ErrHandoffExpired) {
		return s.handoffExpired(w, r)
	}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.renderTwoFactor(w, r, u, statusOf(err), msg)
	}
	return s.afterStep(w, r, res)
}

type recoveryCodePage struct {
	basePage
	Error string
}

func (s *Server) recoveryCodePage(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, http.StatusOK, "recovery_code.html", recoveryCodePage{basePage: s.base(r, "Use a recovery code")})
}

// recoveryCodeLogin burns a recovery code as the second factor.
func (s *Server) recoveryCodeLogin(w http.ResponseWriter, r *http.Request) error {
	res, err := s.signin.RecoveryCode(r.Context(), s.browser(r), r.PostFormValue("recovery_code_value"))
	s.metrics.Login(metrics.FactorRecoveryCode, loginOutcome(err))
	if errors.Is(err, login.ErrHandoffExpired) {
		return s.handoffExpired(w, r)
	}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "recovery_code.html", recoveryCodePage{basePage: s.base(r, "Use a recovery code"), Error: msg})
	}
	return s.afterStep(w, r, res)
}

// The device cookie identifies this browser across logins. It holds a
// random token whose hash the server keeps per user; it proves nothing by
// itself and grants nothing without the password.
func (s *Server) deviceCookieName() string {
	if s.https() {
		return "__Host-gatehouse_device"
	}
	return "gatehouse_device"
}

func (s *Server) deviceToken(r *http.Request) string {
	if c, err := r.Cookie(s.deviceCookieName()); err == nil && len(c.Value) <= 100 {
		return c.Value
	}
	return ""
}

func (s *Server) setDeviceCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: s.deviceCookieName(), Value: token, Path: "/", MaxAge: 400 * 24 * 3600,
		HttpOnly: true, Secure: s.https(), SameSite: http.SameSiteLaxMode})
}

type confirmLoginPage struct {
	basePage
	Waiting bool   // this browser holds a pending login
	Message string // why a link did not work
}

// confirmLogin shows "check your email" to the browser holding a held
// login, and completes that login when the emailed link is opened in it.
// Opened in any other browser, the link confirms nothing: a phished victim
// who clicks it does not let the attacker in.
func (s *Server) confirmLogin(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	tok := r.URL.Query().Get("token")
	waiting := login.Waiting(st.sess)
	if tok == "" {
		return s.render(w, http.StatusOK, "confirm_login.html", confirmLoginPage{basePage: s.base(r, "Confirm this login"), Waiting: waiting})
	}
	res, err := s.signin.ConfirmEmail(r.Context(), s.browser(r), tok)
	s.metrics.Login(metrics.FactorEmailConfirmation, loginOutcome(err))
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		return s.render(w, statusOf(err), "confirm_login.html", confirmLoginPage{basePage: s.base(r, "Confirm this login"), Waiting: waiting, Message: msg})
	}
	return s.afterStep(w, r, res)
}

// resendConfirmation sends the confirmation email again (at most one per
// 15 minutes).
func (s *Server) resendConfirmation(w http.ResponseWriter, r *http.Request) error {
	err := s.signin.Resend(r.Context(), s.browser(r))
	if errors.Is(err, login.ErrNotHeld) {
		http.Redirect(w, r, "/account/login/", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "confirm_login.html", confirmLoginPage{basePage: s.base(r, "Confirm this login"), Waiting: true, Message: msg})
	}
	s.mailKick()
	s.flash(w, r, flashSuccess, "We sent the confirmation email again.")
	http.Redirect(w, r, pathConfirmLogin, http.StatusSeeOther)
	return nil
}

// writeJSONResponse answers the endpoints webauthn.js calls (and their
// guards and error adapter) with v as JSON.
func writeJSONResponse(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// jsonError answers a WebAuthn endpoint with {"error": msg}; internal errors
// go to the adapter.
func (s *Server) jsonError(w http.ResponseWriter, err error) error {
	msg, ok := userMessage(err)
	if !ok {
		return err
	}
	s.setRetryAfter(w, err)
	return writeJSONResponse(w, statusOf(err), map[string]string{"error": msg})
}

// webauthnLoginOptions starts the security-key step of a login.
func (s *Server) webauthnLoginOptions(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).handoff
	opts, state, err := s.webauthn.BeginLogin(r.Context(), u.ID)
	return s.sendCeremony(w, r, opts, state, err)
}

// webauthnLoginValidate finishes it. Security keys are phishing-resistant,
// so the browser becomes a known device without an email.
func (s *Server) webauthnLoginValidate(w http.ResponseWriter, r *http.Request) error {
	state, err := s.takeCeremony(r)
	if err != nil {
		return s.jsonError(w, err)
	}
	res, err := s.signin.SecurityKey(r.Context(), s.browser(r), state, []byte(r.PostFormValue("credential")), r.PostFormValue("remember_device") != "")
	s.metrics.Login(metrics.FactorSecurityKey, loginOutcome(err))
	if err != nil {
		s.mailKick() // a refused key may have queued the cloned-key warning
		return s.jsonError(w, err)
	}
	return s.stepAsJSON(w, r, res)
}

// stepAsJSON carries out a sign-in step for webauthn.js: the cookies, and
// {"redirect": where afterStep would have sent a page}.
func (s *Server) stepAsJSON(w http.ResponseWriter, r *http.Request, res *login.Result) error {
	rec := &redirectCapture{header: http.Header{}}
	if err := s.afterStep(rec, r, res); err != nil {
		return err
	}
	return rec.replayAsJSON(w)
}

// saveCeremony keeps a WebAuthn challenge in the server-side session.
func (s *Server) saveCeremony(r *http.Request, state []byte) error {
	st := stateOf(r)
	if st.sess == nil {
		return derrors.New(derrors.Invalid, "Your session expired. Reload the page.")
	}
	st.sess.Data[keyWAState] = string(state)
	return s.sessions.SaveData(r.Context(), st.sess)
}

// takeCeremony returns and deletes the challenge: each is usable once (C2).
func (s *Server) takeCeremony(r *http.Request) ([]byte, error) {
	st := stateOf(r)
	if st.sess == nil || st.sess.Data[keyWAState] == "" {
		return nil, derrors.New(derrors.Invalid, "No security key request is in progress. Reload the page and try again.")
	}
	state := []byte(st.sess.Data[keyWAState])
	delete(st.sess.Data, keyWAState)
	if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
		return nil, err
	}
	return state, nil
}

// redirectCapture collects the cookies and Location that a page-style
// handler writes, so a JSON endpoint can reuse it.
type redirectCapture struct {
	header http.Header
	status int
}

func (c *redirectCapture) Header() http.Header         { return c.header }
func (c *redirectCapture) Write(b []byte) (int, error) { return len(b), nil }
func (c *redirectCapture) WriteHeader(code int)        { c.status = code }

// sendCeremony keeps a WebAuthn ceremony's state in the session and sends
// its options to webauthn.js (or the error from starting it).
func (s *Server) sendCeremony(w http.ResponseWriter, r *http.Request, opts, state []byte, err error) error {
	if err != nil {
		return s.jsonError(w, err)
	}
	if err := s.saveCeremony(r, state); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(opts)
	return nil
}

// replayAsJSON sends what a page-style handler wrote into c as the JSON
// answer webauthn.js expects: the cookies, and {"redirect": Location}.
func (c *redirectCapture) replayAsJSON(w http.ResponseWriter) error {
	for _, v := range c.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
	return writeJSONResponse(w, http.StatusOK, map[string]string{"redirect": c.header.Get("Location")})
}
