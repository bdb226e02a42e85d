package web

import (
	"html/template"
	"net/http"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
)

type twoFactorManagePage struct {
	basePage
	HasTOTP  bool
	Keys     []mfa.Credential
	Recovery mfa.RecoveryStatus
	Devices  []deviceRow
	Sessions []sessionRow
	// Next is where the user goes once a second factor is set up: the page
	// the management gate sent them here from ("" for none).
	Next  string
	Error string
}

type sessionRow struct {
	IDHash    string
	Current   bool
	Browser   string
	IP        string
	CreatedAt time.Time
	LastSeen  time.Time
}

type deviceRow struct {
	mfa.Device
	Browser    string
	Remembered bool
}

// twoFactorManage is the two-factor and sessions page: second factors,
// recovery codes, recognized browsers and the signed-in sessions. It is
// where the management gate sends users without a second factor, with
// ?next= the page they wanted, which they reach once a factor is set up.
func (s *Server) twoFactorManage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	if err := s.keepNext(r); err != nil {
		return err
	}
	return s.renderTwoFactorManage(w, r, u, http.StatusOK, "")
}

func (s *Server) renderTwoFactorManage(w http.ResponseWriter, r *http.Request, u *account.User, status int, msg string) error {
	ctx := r.Context()
	st := stateOf(r)
	page := twoFactorManagePage{basePage: s.base(r, "Two-factor authentication"), Error: msg, Next: s.pendingNext(r)}
	var err error
	if page.HasTOTP, err = s.mfa.HasTOTP(ctx, u.ID); err != nil {
		return err
	}
	if page.Keys, err = s.webauthn.Credentials(ctx, u.ID); err != nil {
		return err
	}
	if page.Recovery, err = s.mfa.RecoveryStatus(ctx, u.ID); err != nil {
		return err
	}
	devices, err := s.mfa.Devices(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		page.Devices = append(page.Devices, deviceRow{Device: d, Browser: describeAgent(d.UserAgent),
			Remembered: d.RememberUntil.After(s.now())})
	}
	sessions, err := s.sessions.ListForUser(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, se := range sessions {
		page.Sessions = append(page.Sessions, sessionRow{
			IDHash: se.IDHash, Current: st.sess != nil && se.IDHash == st.sess.IDHash,
			Browser: describeAgent(se.UserAgent), IP: se.IP, CreatedAt: se.CreatedAt, LastSeen: se.LastSeenAt,
		})
	}
	return s.render(w, status, "two_factor_manage.html", page)
}

// upgradeSession gives the browser a fresh session at two-factor level
// once the user has a second factor (a privilege change, so a new id); the
// browser that just proved the new factor becomes a known device.
func (s *Server) upgradeSession(w http.ResponseWriter, r *http.Request, u *account.User) error {
	res, err := s.signin.FactorAdded(r.Context(), s.browser(r))
	if err != nil {
		return err
	}
	s.carryOut(w, r, res)
	return nil
}

type recoveryCodesPage struct {
	basePage
	Codes    []string
	Filename string
	Error    string
}

// generateRecoveryCodes makes 8 new codes, shows them once, and asks for
// one back to prove they were saved.
func (s *Server) generateRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	codes, err := s.mfa.GenerateRecoveryCodes(r.Context(), u.ID, stateOf(r).client())
	if err != nil {
		return s.formResult2FA(w, r, u, err, "")
	}
	s.mailKick()
	return s.render(w, http.StatusOK, "recovery_codes.html", recoveryCodesPage{basePage: s.base(r, "Your recovery codes"), Codes: codes,
		Filename: s.siteName + "-Recovery-Codes-" + u.Username + "-" + s.now().UTC().Format("2006-01-02T15-04-05Z") + ".txt"})
}

func (s *Server) confirmRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	err := s.mfa.ConfirmRecoveryCodes(r.Context(), u.ID, r.PostFormValue("recovery_code_value"), stateOf(r).client())
	if err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		return s.render(w, statusOf(err), "recovery_codes.html", recoveryCodesPage{basePage: s.base(r, "Your recovery codes"), Error: msg})
	}
	return s.formResult2FA(w, r, u, nil, "Recovery codes confirmed. You can now add a second factor.")
}

// formResult2FA finishes a POST from the two-factor page.
func (s *Server) formResult2FA(w http.ResponseWriter, r *http.Request, u *account.User, err error, success string) error {
	return s.finishForm(w, r, err, success, "/manage/account/two-factor/", func(status int, msg string) error {
		return s.renderTwoFactorManage(w, r, u, status, msg)
	})
}

type totpProvisionPage struct {
	basePage
	Secret string
	URI    string
	QR     template.URL // a data: URI, allowed by the CSP's img-src data:
	Error  string
}

// totpProvisionPage shows a new secret. It lives only in the server-side
// session until the first code is confirmed.
func (s *Server) totpProvisionPage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	if !s.mayAddFactor(w, r, u) || !s.recoveryReady(w, r, u) {
		return nil
	}
	setup, err := s.mfa.NewTOTP(u.Username)
	if err != nil {
		return err
	}
	st := stateOf(r)
	sealed, err := s.mfa.SealPending(u.ID, setup.Secret)
	if err != nil {
		return err
	}
	st.sess.Data[keyTOTPNew] = sealed
	if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "totp_provision.html", totpProvisionPage{basePage: s.base(r, "Set up an authentication app"),
		Secret: setup.Secret, URI: setup.URI, QR: template.URL(setup.QRDataURI)})
}

// msgVerifyBeforeFactor is the flash for a user without a verified primary
// address who opens a page that adds a second factor.
const msgVerifyBeforeFactor = "Verify your primary email address before you set up two-factor authentication: notices about your second factors go to that address."

// mayAddFactor sends users without a verified primary address to verify it
// before any second factor is set up: the mfa package would refuse only at
// the end, after the user had scanned a secret that would never be enabled
// (Warehouse refuses at the provisioning page too).
func (s *Server) mayAddFactor(w http.ResponseWriter, r *http.Request, u *account.User) bool {
	if u.PrimaryVerified {
		return true
	}
	s.flash(w, r, flashError, msgVerifyBeforeFactor)
	http.Redirect(w, r, "/manage/unverified-account/", http.StatusSeeOther)
	return false
}

// recoveryReady sends users without confirmed recovery codes to make them
// first (Warehouse's rule: no second factor without a way back).
func (s *Server) recoveryReady(w http.ResponseWriter, r *http.Request, u *account.User) bool {
	rs, err := s.mfa.RecoveryStatus(r.Context(), u.ID)
	if err == nil && rs.Confirmed {
		return true
	}
	s.flash(w, r, flashError, "You must generate and safely store recovery codes before enabling two factor authentication on your account.")
	http.Redirect(w, r, "/manage/account/two-factor/", http.StatusSeeOther)
	return false
}

func (s *Server) totpProvision(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	// The address may have changed since the secret was shown: refuse
	// before showing it again with the error.
	if !s.mayAddFactor(w, r, u) {
		return nil
	}
	st := stateOf(r)
	secret, err := s.mfa.OpenPending(u.ID, st.sess.Data[keyTOTPNew])
	if st.sess.Data[keyTOTPNew] == "" || err != nil {
		http.Redirect(w, r, "/manage/account/totp-provision/", http.StatusSeeOther)
		return nil
	}
	if err := s.mfa.ConfirmTOTP(r.Context(), u.ID, secret, r.PostFormValue("totp_value"), st.client()); err != nil {
		msg, ok := userMessage(err)
		if !ok {
			return err
		}
		setup := s.mfa.SetupFor(u.Username, secret)
		return s.render(w, statusOf(err), "totp_provision.html", totpProvisionPage{basePage: s.base(r, "Set up an authentication app"),
			Secret: setup.Secret, URI: setup.URI, QR: template.URL(setup.QRDataURI), Error: msg})
	}
	delete(st.sess.Data, keyTOTPNew)
	next := s.takeNext(st.sess, "/manage/account/two-factor/")
	if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
		return err
	}
	if err := s.upgradeSession(w, r, u); err != nil {
		return err
	}
	return s.finishForm(w, r, nil, "Authentication app added. You will be asked for a code when you log in.", next, nil)
}

func (s *Server) totpRemove(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	err := s.mfa.RemoveTOTP(r.Context(), u.ID, r.PostFormValue("confirm_username"), stateOf(r).client())
	return s.formResult2FA(w, r, u, err, "Authentication app removed. Remove this site from the app too.")
}

type webauthnProvisionPage struct {
	basePage
	Passkey bool
}

func (s *Server) webauthnProvisionPage(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	if !s.mayAddFactor(w, r, u) || !s.recoveryReady(w, r, u) {
		return nil
	}
	return s.render(w, http.StatusOK, "webauthn_provision.html", webauthnProvisionPage{basePage: s.base(r, "Add a security key or passkey"),
		Passkey: r.URL.Query().Get("passkey") != ""})
}

func (s *Server) webauthnProvisionOptions(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	opts, state, err := s.webauthn.BeginRegistration(r.Context(), u, r.URL.Query().Get("passkey") != "")
	return s.sendCeremony(w, r, opts, state, err)
}

func (s *Server) webauthnProvisionValidate(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	if rs, err := s.mfa.RecoveryStatus(r.Context(), u.ID); err != nil || !rs.Confirmed {
		return writeJSONResponse(w, http.StatusForbidden, map[string]string{"error": "Generate and confirm recovery codes first."})
	}
	state, err := s.takeCeremony(r)
	if err != nil {
		return s.jsonError(w, err)
	}
	cred, err := s.webauthn.FinishRegistration(r.Context(), u, r.PostFormValue("label"), state, []byte(r.PostFormValue("credential")), stateOf(r).client())
	if err != nil {
		return s.jsonError(w, err)
	}
	// Read before upgradeSession replaces the session: the new one starts
	// empty, so the old one need not be saved.
	next := s.takeNext(stateOf(r).sess, "/manage/account/two-factor/")
	rec := &redirectCapture{header: http.Header{}}
	if err := s.upgradeSession(rec, r, u); err != nil {
		return err
	}
	kind := "Security key"
	if cred.Passkey {
		kind = "Passkey"
	}
	s.mailKick()
	s.flash(rec, r, flashSuccess, kind+" “"+cred.Label+"” added.")
	rec.header.Set("Location", next)
	return rec.replayAsJSON(w)
}

func (s *Server) webauthnRemove(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	id, err := formID(r, "credential_id")
	if err == nil {
		err = s.webauthn.RemoveCredential(r.Context(), u.ID, id, r.PostFormValue("confirm_label"), stateOf(r).client())
	}
	return s.formResult2FA(w, r, u, err, "Security key removed.")
}

func (s *Server) deviceRevoke(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	id, err := formID(r, "device_id")
	if err == nil {
		err = s.mfa.RevokeDevice(r.Context(), u.ID, id, stateOf(r).client())
	}
	return s.formResult2FA(w, r, u, err, "Device forgotten. It will need a confirmation email or a security key at its next login.")
}
