package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// The second step of a login lives in the browser's server-side session,
// which is anonymous until the second factor is done: the only pages a
// half-logged-in browser can use are the second-factor ones (spec B7).
// The handoff expires after 5 minutes and is consumed by the first success.
const (
	handoffTTL  = 5 * time.Minute
	keyTFUser   = "tf_user"
	keyTFExp    = "tf_exp"
	keyTFNext   = "tf_next"
	keyWAState  = "webauthn_state"
	keyPending  = "pending_login"
	keyTOTPNew  = "totp_provision"
	keyCodesNew = "recovery_codes_shown"

	// methodEmailConfirmation is the login method of a held login completed
	// by the emailed link (Warehouse's two_factor_method value).
	methodEmailConfirmation = "email-confirmation"
)

// beginHandoff replaces the browser's session by an anonymous one that
// remembers who passed the password step, and for how long.
func (s *Server) beginHandoff(w http.ResponseWriter, r *http.Request, u *account.User, next string) error {
	st := stateOf(r)
	fresh := &session.Session{Level: session.Anonymous, IP: st.ip, UserAgent: st.agent, Data: map[string]string{
		keyTFUser: strconv.FormatInt(u.ID, 10),
		keyTFExp:  strconv.FormatInt(s.now().Add(handoffTTL).Unix(), 10),
		keyTFNext: next,
	}}
	raw, err := s.sessions.Rotate(r.Context(), nil, st.sess, fresh)
	if err != nil {
		return err
	}
	s.setSessionCookie(w, raw)
	st.sess = fresh
	return nil
}

// handoffUser returns the user half-way through logging in, or nil if the
// handoff is missing or expired.
func (s *Server) handoffUser(r *http.Request) *account.User {
	st := stateOf(r)
	if st.sess == nil || st.sess.Data[keyTFUser] == "" {
		return nil
	}
	exp, _ := strconv.ParseInt(st.sess.Data[keyTFExp], 10, 64)
	if s.now().Unix() >= exp {
		return nil
	}
	id, _ := strconv.ParseInt(st.sess.Data[keyTFUser], 10, 64)
	u, err := s.accounts.ByID(r.Context(), id)
	if err != nil || u.Disabled {
		return nil
	}
	return u
}

func (s *Server) handoffExpired(w http.ResponseWriter, r *http.Request) error {
	s.flash(w, r, flashError, "Invalid or expired two factor login. Log in again.")
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
	u := s.handoffUser(r)
	if u == nil {
		return s.handoffExpired(w, r)
	}
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
	u := s.handoffUser(r)
	if u == nil {
		return s.handoffExpired(w, r)
	}
	if err := s.mfa.VerifyTOTP(r.Context(), u.ID, r.PostFormValue("totp_value"), stateOf(r).client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.renderTwoFactor(w, r, u, statusOf(err), msg)
	}
	return s.afterPhishableFactor(w, r, u, "totp", r.PostFormValue("remember_device") != "")
}

type recoveryCodePage struct {
	basePage
	Error string
}

func (s *Server) recoveryCodePage(w http.ResponseWriter, r *http.Request) error {
	if s.handoffUser(r) == nil {
		return s.handoffExpired(w, r)
	}
	return s.render(w, http.StatusOK, "recovery_code.html", recoveryCodePage{basePage: s.base(r, "Use a recovery code")})
}

// recoveryCodeLogin burns a recovery code as the second factor.
func (s *Server) recoveryCodeLogin(w http.ResponseWriter, r *http.Request) error {
	u := s.handoffUser(r)
	if u == nil {
		return s.handoffExpired(w, r)
	}
	if err := s.mfa.UseRecoveryCode(r.Context(), u.ID, r.PostFormValue("recovery_code_value"), stateOf(r).client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "recovery_code.html", recoveryCodePage{basePage: s.base(r, "Use a recovery code"), Error: msg})
	}
	s.mailKick()
	return s.afterPhishableFactor(w, r, u, "recovery-code", false)
}

// afterPhishableFactor finishes a TOTP or recovery-code login. Both can be
// phished in real time, so from a browser that is not a known device the
// login is held until the emailed link is opened in this same browser.
func (s *Server) afterPhishableFactor(w http.ResponseWriter, r *http.Request, u *account.User, method string, remember bool) error {
	known, err := s.mfa.DeviceKnown(r.Context(), u.ID, s.deviceToken(r))
	if err != nil {
		return err
	}
	if known {
		return s.finishTwoFactor(w, r, u, method, remember)
	}
	st := stateOf(r)
	if err := s.mfa.StartPendingLogin(r.Context(), u.ID, method, st.sess.IDHash, st.client()); err != nil {
		return err
	}
	s.mailKick()
	// The handoff is spent; what remains is the pending login, which only
	// the emailed link can complete, and only in this browser.
	delete(st.sess.Data, keyTFUser)
	delete(st.sess.Data, keyTFExp)
	st.sess.Data[keyPending] = strconv.FormatInt(u.ID, 10)
	if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
		return err
	}
	http.Redirect(w, r, "/account/confirm-login/", http.StatusSeeOther)
	return nil
}

// finishTwoFactor logs the browser in at full assurance, marks it a known
// device and, if asked, remembers it for 30 days.
func (s *Server) finishTwoFactor(w http.ResponseWriter, r *http.Request, u *account.User, method string, remember bool) error {
	st := stateOf(r)
	next := safeNext(st.sess.Data[keyTFNext], "/manage/account/")
	token, err := s.mfa.MarkDeviceKnown(r.Context(), nil, u.ID, s.deviceToken(r), st.client())
	if err != nil {
		return err
	}
	s.setDeviceCookie(w, token)
	if remember {
		if err := s.mfa.RememberDevice(r.Context(), nil, u.ID, token, st.client()); err != nil {
			return err
		}
	}
	if err := s.startSession(w, r, u, session.TwoFactor, method); err != nil {
		return err
	}
	if err := s.mfa.RemindIfNoCodes(r.Context(), nil, u.ID); err != nil {
		s.log.Warn("recovery code reminder", "err", err)
	}
	s.mailKick()
	switch method {
	case "recovery-code":
		s.flash(w, r, flashInfo, "Recovery code accepted. The supplied code cannot be used again.")
	case methodEmailConfirmation:
		s.flash(w, r, flashSuccess, "Your login has been confirmed and this browser is now recognized.")
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
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

// confirmLogin shows "check your email" to the browser holding a pending
// login, and completes that login when the emailed link is opened in it.
// Opened in any other browser, the link confirms nothing: a phished victim
// who clicks it does not let the attacker in.
func (s *Server) confirmLogin(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	tok := r.URL.Query().Get("token")
	waiting := st.sess != nil && st.sess.Data[keyPending] != ""
	if tok == "" {
		return s.render(w, http.StatusOK, "confirm_login.html", confirmLoginPage{basePage: s.base(r, "Confirm this login"), Waiting: waiting})
	}
	browser := ""
	if st.sess != nil {
		browser = st.sess.IDHash
	}
	uid, _, err := s.mfa.ConfirmPendingLogin(r.Context(), tok, browser, st.client())
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		return s.render(w, statusOf(err), "confirm_login.html", confirmLoginPage{basePage: s.base(r, "Confirm this login"), Waiting: waiting, Message: msg})
	}
	u, err := s.accounts.ByID(r.Context(), uid)
	if err != nil {
		return err
	}
	delete(st.sess.Data, keyPending)
	// The held login's method is in the account:login:confirmed event; the
	// login itself is by email confirmation (spec §2.1). The flash is set by
	// finishTwoFactor, on the new session: one set here would be lost with
	// the old session when the id rotates.
	return s.finishTwoFactor(w, r, u, methodEmailConfirmation, false)
}

// resendConfirmation sends the confirmation email again (at most one per
// 15 minutes).
func (s *Server) resendConfirmation(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	if st.sess == nil || st.sess.Data[keyPending] == "" {
		http.Redirect(w, r, "/account/login/", http.StatusSeeOther)
		return nil
	}
	uid, _ := strconv.ParseInt(st.sess.Data[keyPending], 10, 64)
	if err := s.mfa.ResendPendingLogin(r.Context(), uid, st.sess.IDHash, st.client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		s.setRetryAfter(w, err)
		return s.render(w, statusOf(err), "confirm_login.html", confirmLoginPage{basePage: s.base(r, "Confirm this login"), Waiting: true, Message: msg})
	}
	s.mailKick()
	s.flash(w, r, flashSuccess, "We sent the confirmation email again.")
	http.Redirect(w, r, "/account/confirm-login/", http.StatusSeeOther)
	return nil
}

// writeJSON answers the WebAuthn endpoints, which webauthn.js calls.
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
	u := s.handoffUser(r)
	if u == nil {
		return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Your login expired. Log in again."})
	}
	opts, state, err := s.webauthn.BeginLogin(r.Context(), u.ID)
	return s.sendCeremony(w, r, opts, state, err)
}

// webauthnLoginValidate finishes it. Security keys are phishing-resistant,
// so the browser becomes a known device without an email.
func (s *Server) webauthnLoginValidate(w http.ResponseWriter, r *http.Request) error {
	u := s.handoffUser(r)
	if u == nil {
		return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Your login expired. Log in again."})
	}
	state, err := s.takeCeremony(r)
	if err != nil {
		return s.jsonError(w, err)
	}
	if _, err := s.webauthn.FinishLogin(r.Context(), u.ID, state, []byte(r.PostFormValue("credential")), stateOf(r).client()); err != nil {
		s.mailKick()
		return s.jsonError(w, err)
	}
	rec := &redirectCapture{header: http.Header{}}
	if err := s.finishTwoFactor(rec, r, u, "webauthn", r.PostFormValue("remember_device") != ""); err != nil {
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
