package main

// End-to-end: second factors as people use them, over HTTP against the real
// server started by run(), on SQLite and on PostgreSQL, with TOTP codes from
// Debian's oathtool and every email received by an in-test SMTP server
// (helpers: e2e_mfa_helpers_test.go on top of e2e_acct_helpers_test.go).
//
//   - enrolment: recovery codes first, burn one, the provisioning page (its
//     QR code a PNG data: URI the CSP allows), wrong and out-of-sync codes,
//     emails and the security history (spec §1.2, B5, B6)
//   - a TOTP login from the enrolling browser, replay refused, "remember
//     this browser", forgotten on a password change (§1.3, B3)
//   - the half-logged-in state after the password (B7)
//   - the phishing scenario: an attacker with the password and a live code
//     in a fresh browser is held; the victim's click confirms nothing
//     (TestE2EPhishingScenario, B8, product.md)
//   - recovery-code logins, burned codes, held from a new browser (B6)
//   - one limiter shared by every second factor (B4)
//   - removing the authentication app: sudo mode, not the last factor
//   - uploads need a verified address and 2FA (Warehouse step 11)
//   - administrator-assisted account recovery (§1.8)
//   - the known-browsers list and "Forget"
//
// Link and handoff expiry are reached by moving the stored deadlines into
// the past (the server runs on real time); TOTP windows and limiter windows
// with a moving clock are tested in internal/mfa.

import (
	"bytes"
	"encoding/base64"
	"html"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

func TestE2EMFA(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	mfaOathtool(t)
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{})
			t.Run("flows", func(t *testing.T) {
				for _, f := range []struct {
					name string
					fn   func(t *testing.T, env *acctEnv)
				}{
					{"enrolment", mfaEnrolment},
					{"unverified-email-provisioning", mfaUnverifiedProvisioning},
					{"totp-login-remembered-browser", mfaTOTPLogin},
					{"partial-auth-state", mfaPartialAuth},
					{"recovery-code-login", mfaRecoveryCodeLogin},
					{"shared-limiter", mfaSharedLimiter},
					{"removal", mfaRemoval},
					{"upload-prerequisites", mfaUploadPrerequisites},
					{"admin-recovery", mfaAdminRecovery},
					{"known-browsers", mfaKnownBrowsers},
				} {
					t.Run(f.name, func(t *testing.T) {
						t.Parallel()
						f.fn(t, env)
					})
				}
			})
			acctNoSecretsLeaked(t, env)
		})
	}
}

// Scenario 1: enrolling an authentication app.
func mfaEnrolment(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "ursula", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	mfaWantLevel(t, b, u, session.Password)
	page := b.get(t, "/manage/account/")
	acctWant(t, page, 200, "Two-factor authentication is required to publish packages and manage your account.")

	page = b.get(t, "/manage/account/two-factor/")
	acctWant(t, page, 200, "<h1>Two-factor authentication</h1>", "Generate recovery codes", "Set up an authentication app")

	// No authentication app before recovery codes are stored.
	needCodes := "You must generate and safely store recovery codes before enabling two factor authentication on your account."
	r := b.get(t, "/manage/account/totp-provision/")
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, b.follow(t, r), 200, needCodes)

	codes := u.generateCodes(t, b)
	// Generated but not yet entered back is not enough.
	r = b.get(t, "/manage/account/totp-provision/")
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, b.follow(t, r), 200, needCodes, "You generated recovery codes but have not confirmed them yet.")
	acctWant(t, b.post(t, "/manage/account/recovery-codes/confirm/", url.Values{"recovery_code_value": {"0123456789abcdef"}}),
		400, "Invalid recovery code.")
	u.confirmCodes(t, b)
	if n := env.queryInt(t, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND burned_at IS NOT NULL`, u.id); n != 1 {
		t.Errorf("%d recovery codes burned, want the one entered back", n)
	}
	for _, c := range codes {
		if n := env.queryInt(t, `SELECT count(*) FROM recovery_codes WHERE code_hash = $1`, c); n != 0 {
			t.Errorf("a recovery code is stored as is")
		}
	}

	page, secret := u.provisionPage(t, b)
	// 160 bits in base32.
	if len(secret) != 32 {
		t.Errorf("secret %q: %d base32 characters, want 32 (160 bits)", secret, len(secret))
	}
	acctWant(t, page, 200, "otpauth://totp/", "secret="+secret, "digits=6", "period=30", "algorithm=SHA1")
	// The QR code is a PNG in a data: URI, which the page's CSP allows.
	m := mfaQRRE.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no <img src=\"data:image/png;base64,…\"> on the provisioning page:\n%s", page.Body)
	}
	// The attribute is HTML-escaped ("+" as "&#43;"); a browser unescapes
	// it before it reads the URI.
	qr, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(html.UnescapeString(m[1]), "data:image/png;base64,"))
	if err != nil {
		t.Fatalf("QR code: %v", err)
	}
	if ct := http.DetectContentType(qr); ct != "image/png" {
		t.Errorf("QR code: content type %q, want image/png", ct)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(qr)); err != nil || cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("QR code: PNG %dx%d, %v; want a decodable image of at least 100x100", cfg.Width, cfg.Height, err)
	}
	if !mfaCSPAllows(page.Header.Get("Content-Security-Policy"), "img-src", "data:") {
		t.Errorf("Content-Security-Policy %q does not allow data: images, so the QR code would not show", page.Header.Get("Content-Security-Policy"))
	}
	// Nothing is stored before a code proves the app has the secret.
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, u.id); n != 0 {
		t.Fatal("a TOTP secret was stored before it was confirmed")
	}

	provision := func(code string) *acctResp {
		return b.post(t, "/manage/account/totp-provision/", url.Values{"totp_value": {code}})
	}
	acctWant(t, provision("12345"), 400, "TOTP code must be 6 digits.")
	r = provision(mfaWrongCode(t, secret, 1))
	acctWant(t, r, 400, "Invalid TOTP code.")
	if strings.Contains(r.Body, "out of sync") {
		t.Errorf("a wrong code is reported as out of sync")
	}
	// The same secret is shown again: the app already has it.
	if got := acctTOTPSecretRE.FindStringSubmatch(r.Body); got == nil || got[1] != secret {
		t.Errorf("after a wrong code the page shows secret %v, want the same %s", got, secret)
	}
	acctWant(t, provision(mfaCodeAt(t, secret, time.Now().Add(5*30*time.Second))), 400,
		"Invalid TOTP code. Your device time may be out of sync.")
	acctWant(t, provision(mfaCodeAt(t, secret, time.Now().Add(-5*30*time.Second))), 400,
		"Invalid TOTP code. Your device time may be out of sync.")
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, u.id); n != 0 {
		t.Fatal("a wrong code enabled the authentication app")
	}

	before := b.session()
	r = provision(mfaCodeAt(t, secret, time.Now()))
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	u.secret = secret
	page = b.follow(t, r)
	acctWant(t, page, 200, "Authentication app added. You will be asked for a code when you log in.", `<span class="badge ok">enabled</span>`)
	if strings.Contains(page.Body, secret) {
		t.Error("the two-factor page shows the secret again")
	}
	// A privilege change: a new session id at the two-factor level.
	if b.session() == before {
		t.Error("the session id did not change when the second factor was added")
	}
	mfaWantLevel(t, b, u, session.TwoFactor)
	if enc := env.queryString(t, `SELECT secret_enc FROM totp_secrets WHERE user_id = $1`, u.id); strings.Contains(enc, secret) || !strings.HasPrefix(enc, "v1.") {
		t.Errorf("the stored secret %q is not encrypted", enc)
	}
	_, _, data := mfaSession(t, b)
	for k, v := range data {
		if strings.Contains(v, secret) {
			t.Errorf("session data %q still holds the secret", k)
		}
	}
	// The provisioning page now starts a new secret, it never shows the
	// enabled one (the new one is left unconfirmed).
	if again := b.get(t, "/manage/account/totp-provision/"); again.Code != 200 || strings.Contains(again.Body, secret) {
		t.Errorf("the provisioning page shows the enabled secret again, or fails:\n%s", again)
	}

	env.mail.take(t, u.email, "Two-factor method added")
	env.wantEvents(t, u.id, map[string]int{
		audit.RecoveryCodesGenerated: 1, audit.RecoveryCodeUsed: 1, audit.TwoFactorAdded: 1, audit.LoginFailure: 1,
	})
	page = b.get(t, "/manage/account/")
	history := b.get(t, "/manage/account/history/").Body
	for _, want := range []string{"Recovery codes generated", "Recovery codes confirmed", "Authentication app added"} {
		if !strings.Contains(history, want) {
			t.Errorf("the security history lacks %q:\n%s", want, history)
		}
	}
	if strings.Contains(page.Body, "Two-factor authentication is required") {
		t.Error("the banner asking for 2FA is still shown")
	}
	env.noMail(t, u.email)
}

// mfaCSPAllows reports whether the policy's directive lists source.
func mfaCSPAllows(csp, directive, source string) bool {
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && f[0] == directive {
			for _, s := range f[1:] {
				if s == source {
					return true
				}
			}
		}
	}
	return false
}

// Scenario 1b: a user whose primary address is unverified is sent to
// verify it before a provisioning page shows anything to scan or register
// (Warehouse refuses there too), not refused after scanning a secret that
// could never be enabled.
func mfaUnverifiedProvisioning(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "ulla", false, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	noSecret := func(r *acctResp) {
		t.Helper()
		for _, leak := range []string{"otpauth://", "data:image/png", `class="secret"`, "Verify and enable", `data-webauthn="register"`} {
			if strings.Contains(r.Body, leak) {
				t.Errorf("%s %s shows %q to a user with an unverified email:\n%s", r.Method, r.Path, leak, r.Body)
			}
		}
	}
	refused := func(r *acctResp) {
		t.Helper()
		acctWantRedirect(t, r, "/manage/unverified-account/")
		noSecret(r)
		page := b.follow(t, r)
		acctWant(t, page, 200, "Verify your primary email address before you set up two-factor authentication",
			"<h1>Verify your email address</h1>")
		noSecret(page)
	}
	pages := []string{"/manage/account/totp-provision/", "/manage/account/webauthn-provision/", "/manage/account/webauthn-provision/?passkey=1"}
	// The address comes before recovery codes…
	for _, p := range pages {
		refused(b.get(t, p))
	}
	// … and still counts once they are stored.
	r := b.post(t, "/manage/account/recovery-codes/generate/", nil)
	acctWant(t, r, 200, "Your recovery codes")
	codes := acctRecoveryCodeRE.FindAllStringSubmatch(r.Body, -1)
	if len(codes) != 8 {
		t.Fatalf("got %d recovery codes, want 8:\n%s", len(codes), r.Body)
	}
	for _, c := range codes {
		env.secrets.add("recovery code of "+u.name, c[1])
	}
	acctWantRedirect(t, b.post(t, "/manage/account/recovery-codes/confirm/", url.Values{"recovery_code_value": {codes[0][1]}}),
		"/manage/account/two-factor/")
	for _, p := range pages {
		refused(b.get(t, p))
	}
	refused(b.post(t, "/manage/account/totp-provision/", url.Values{"totp_value": {"123456"}}))
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, u.id); n != 0 {
		t.Fatal("an authentication app was enabled for an unverified address")
	}
	// Verified, the page shows the secret.
	env.exec(t, `UPDATE user_emails SET verified = TRUE WHERE user_id = $1`, u.id)
	u.provisionPage(t, b)
}

// Scenario 2: logging in with the app from the browser that enrolled it,
// replay, "remember this browser", and a password change forgetting it.
func mfaTOTPLogin(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "tom", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)
	mfaLogout(t, b)

	u.passwordStep(t, b)
	if b.signedIn(t) {
		t.Fatal("signed in after the password alone")
	}
	page := b.get(t, "/account/two-factor/")
	acctWant(t, page, 200, "Authentication app", `action="/account/two-factor/totp/"`, "Remember this browser for 30 days",
		`href="/account/recovery-code/"`)
	code := u.code(t)
	r := mfaTOTP(t, b, code, false)
	acctWantRedirect(t, r, "/manage/account/")
	if !b.signedIn(t) {
		t.Fatal("not signed in after the code")
	}
	mfaWantLevel(t, b, u, session.TwoFactor)
	if m := u.lastLoginMethod(t); m != "totp" {
		t.Errorf("login method %q, want totp", m)
	}

	// The code just used is refused a second time (spec B3), typed in
	// fullwidth digits too, and so is the previous step's code.
	mfaLogout(t, b)
	u.passwordStep(t, b)
	fullwidth := strings.Map(func(r rune) rune { return r - '0' + '０' }, code)
	for _, c := range []string{code, fullwidth, mfaCodeAt(t, u.secret, time.Now().Add(-30*time.Second))} {
		acctWant(t, mfaTOTP(t, b, c, false), 400,
			"This TOTP code has already been used. Wait for your authentication app to show the next code, then enter that one.")
	}
	if reasons := u.eventAdditional(t, audit.LoginFailure); len(reasons) != 3 || reasons[0]["reason"] != "replayed_totp" || reasons[1]["reason"] != "replayed_totp" {
		t.Errorf("failure events %v, want three, the first two replayed_totp", reasons)
	}

	// "Remember this browser" (the code typed in two groups, as apps show
	// it): the next login skips the second factor.
	fresh := u.code(t)
	acctWantRedirect(t, mfaTOTP(t, b, fresh[:3]+" "+fresh[3:], true), "/manage/account/")
	mfaLogout(t, b)
	acctWantRedirect(t, b.login(t, u.name, u.pw), "/manage/account/")
	mfaWantLevel(t, b, u, session.TwoFactor)
	if m := u.lastLoginMethod(t); m != "remembered-device" {
		t.Errorf("login method %q, want remembered-device", m)
	}
	page = b.get(t, "/manage/account/two-factor/")
	acctWant(t, page, 200, "Firefox on Linux", "until "+time.Now().UTC().Add(30*24*time.Hour).Format("2006-01-02"))
	// Another browser is not remembered.
	other := env.browser(acctSafari)
	u.passwordStep(t, other)

	// A password change forgets every remembered browser.
	newPW := "tom-has-a-new-passphrase"
	env.secrets.add("new password of tom", newPW)
	r = b.post(t, "/manage/account/password/", url.Values{"current_password": {u.pw}, "password": {newPW}, "password_confirm": {newPW}})
	acctWantRedirect(t, r, "/manage/account/")
	u.pw = newPW
	env.mail.take(t, u.email, "Password change notification")
	mfaLogout(t, b)
	u.passwordStep(t, b)
	// Still a known browser: the code lets it in without an email.
	acctWantRedirect(t, mfaTOTP(t, b, u.code(t), false), "/manage/account/")
	env.wantEvents(t, u.id, map[string]int{
		audit.DeviceRemembered: 1, audit.LoginNewDevice: 0, audit.LoginSuccess: 5, audit.PasswordChange: 1,
	})
	env.noMail(t, u.email)
}

// Scenario 3 (spec B7): after the password, nothing but the second step is
// reachable; the state expires after 5 minutes and lives on the server,
// bound to one browser.
func mfaPartialAuth(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "paula", true, true)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)
	mfaLogout(t, b)

	start := time.Now()
	u.passwordStep(t, b)
	uid, level, data := mfaSession(t, b)
	if uid != 0 || level != int64(session.Anonymous) {
		t.Fatalf("after the password the session is user %d at level %d, want an anonymous one", uid, level)
	}
	if data["login.handoff.user"] != strconv.FormatInt(u.id, 10) {
		t.Fatalf("session data %v: want login.handoff.user %d", data, u.id)
	}
	exp, _ := strconv.ParseInt(data["login.handoff.expires"], 10, 64)
	if d := time.Unix(exp, 0).Sub(start); d < 290*time.Second || d > 302*time.Second {
		t.Errorf("the handoff expires %v after the password, want 5 minutes", d)
	}
	// Whatever the browser holds names nobody: the cookie is a random id,
	// the user is on the server.
	if c := b.session(); len(c) != 43 {
		t.Errorf("session cookie %q: want a 43-character random id", c)
	}

	for _, p := range []string{"/manage/account/", "/manage/account/two-factor/", "/manage/account/totp-provision/",
		"/admin/", "/account/reauthenticate/", "/manage/account/delete/", "/manage/account/token/", "/manage/account/history/"} {
		r := b.get(t, p)
		if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.loc(), "/account/login/") {
			t.Errorf("GET %s half-way through a login: got %d to %q, want a redirect to log in", p, r.Code, r.loc())
		}
	}
	state := func() string {
		return strings.Join(env.rows(t, `SELECT (SELECT count(*) FROM totp_secrets WHERE user_id = $1) AS totp,
			(SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND burned_at IS NULL) AS codes,
			(SELECT password_hash FROM users WHERE id = $1) AS pw,
			(SELECT count(*) FROM devices WHERE user_id = $1) AS devices,
			(SELECT count(*) FROM api_tokens WHERE user_id = $1) AS tokens,
			(SELECT count(*) FROM user_emails WHERE user_id = $1) AS emails`, u.id), "\n")
	}
	before := state()
	devID := env.queryInt(t, `SELECT id FROM devices WHERE user_id = $1`, u.id)
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/manage/account/totp/remove/", url.Values{"confirm_username": {u.name}}},
		{"/manage/account/token/", url.Values{"description": {"stolen"}, "scope": {"user"}}},
		{"/manage/account/recovery-codes/generate/", nil},
		{"/manage/account/password/", url.Values{"current_password": {u.pw}, "password": {"paula-hijacked-it"}, "password_confirm": {"paula-hijacked-it"}}},
		{"/manage/account/devices/revoke/", url.Values{"device_id": {strconv.FormatInt(devID, 10)}}},
		{"/manage/account/emails/add/", url.Values{"email": {"thief@example.org"}}},
		{"/manage/account/totp-provision/", url.Values{"totp_value": {"123456"}}},
		{"/account/reauthenticate/", url.Values{"password": {u.pw}}},
		{"/admin/users/" + strconv.FormatInt(u.id, 10) + "/disable/", url.Values{"reason": {"x"}}},
	} {
		r := b.post(t, c.path, c.form)
		if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.loc(), "/account/login/") {
			t.Errorf("POST %s half-way through a login: got %d to %q, want a redirect to log in", c.path, r.Code, r.loc())
		}
	}
	env.secrets.add("password not set", "paula-hijacked-it")
	if after := state(); after != before {
		t.Fatalf("requests half-way through a login changed the account:\n%s\nwant\n%s", after, before)
	}

	// Another browser cannot use this browser's handoff: it has only its
	// own, opaque session id.
	other := env.browser(acctChrome)
	r := other.get(t, "/account/two-factor/")
	acctWantRedirect(t, r, "/account/login/")
	acctWant(t, other.follow(t, r), 200, "Invalid or expired two factor login.")
	step := u.lastStep(t)
	code := u.code(t)
	acctWantRedirect(t, mfaTOTP(t, other, code, false), "/account/login/")
	acctWantRedirect(t, other.post(t, "/account/recovery-code/", url.Values{"recovery_code_value": {u.codes[0]}}), "/account/login/")
	if other.signedIn(t) {
		t.Fatal("a second browser signed in with the first one's handoff")
	}
	// … nor can it name the user: a handoff of its own for mallory, plus
	// form fields naming paula, is still mallory's.
	mallory := mfaNewUser(t, env, "mallory", true, false)
	mb := env.browser(acctChrome)
	mb.mustLogin(t, mallory.name, mallory.pw)
	mallory.enrol(t, mb)
	mallory.passwordStep(t, other)
	r = other.post(t, "/account/two-factor/totp/", url.Values{"totp_value": {code}, "tf_user": {strconv.FormatInt(u.id, 10)},
		"user_id": {strconv.FormatInt(u.id, 10)}, "username": {u.name}})
	acctWant(t, r, 400, "Invalid TOTP code.")
	if other.signedIn(t) {
		t.Fatal("signed in by naming another user in the form")
	}
	if u.lastStep(t) != 0 {
		t.Fatalf("paula's code was used up by other browsers (last step %d, was reset from %d)", u.lastStep(t), step)
	}

	// The handoff lasts 5 minutes: moved into the past, it is refused, and
	// the code is not used up by the attempt.
	data["login.handoff.expires"] = strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	mfaSetSessionData(t, b, data)
	r = b.get(t, "/account/two-factor/")
	acctWantRedirect(t, r, "/account/login/")
	acctWant(t, b.follow(t, r), 200, "Invalid or expired two factor login.")
	acctWantRedirect(t, mfaTOTP(t, b, code, false), "/account/login/")
	if b.signedIn(t) {
		t.Fatal("an expired handoff signed in")
	}
	if u.lastStep(t) != 0 {
		t.Fatal("an expired handoff used up the code")
	}

	// A new password step, and the same code works; the handoff is then
	// spent (the session id changed).
	u.passwordStep(t, b)
	handoff := b.session()
	acctWantRedirect(t, mfaTOTP(t, b, code, false), "/manage/account/")
	mfaWantLevel(t, b, u, session.TwoFactor)
	replay := env.browser(acctFirefox)
	replay.setSession(handoff)
	acctWantRedirect(t, mfaTOTP(t, replay, u.code(t), false), "/account/login/")
	// paula is an administrator: with 2FA and a fresh password, /admin/
	// opens now.
	acctWant(t, b.get(t, "/admin/"), 200, "<h1>Administration</h1>")
	env.wantEvents(t, u.id, map[string]int{audit.LoginFailure: 0, audit.LoginSuccess: 2, audit.PasswordChange: 0, audit.EmailAdd: 0})
	env.noMail(t, u.email)
}

// Scenario 5: a recovery code instead of the app, from a new browser.
func mfaRecoveryCodeLogin(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "rita", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)

	n := env.browser(acctSafari)
	u.passwordStep(t, n)
	acctWant(t, n.get(t, "/account/recovery-code/"), 200, "Use a recovery code", `action="/account/recovery-code/"`)
	use := func(b *acctBrowser, code string) *acctResp {
		return b.post(t, "/account/recovery-code/", url.Values{"recovery_code_value": {code}})
	}
	acctWant(t, use(n, "not-a-code"), 400, "Recovery codes must be 16 characters.")
	acctWant(t, use(n, u.burned[0]), 400, "Recovery code has been previously used.")
	acctWant(t, use(n, "ffffffffffffffff"), 400, "Invalid recovery code.")
	code := u.takeCode(t)
	acctWantRedirect(t, use(n, code), "/account/confirm-login/")
	// Recovery codes can be phished: from a new browser the login is held,
	// and the security history says so, not that anyone logged in.
	mfaWantHeld(t, n)
	hist := b.get(t, "/manage/account/history/")
	acctWant(t, hist, 200, "Recovery code used to log in (it cannot be used again)",
		"Login with a recovery code from an unrecognized browser held until it is confirmed from the emailed link; not logged in yet")
	if strings.Contains(hist.Body, "Logged in with a recovery code") || strings.Contains(hist.Body, "recovery-code") {
		t.Errorf("the history of a held recovery-code login says it logged in, or shows the method's code:\n%s", hist.Body)
	}
	env.mail.take(t, u.email, "Recovery code use notification")
	link := u.confirmLink(t)
	r := n.get(t, link)
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, n.follow(t, r), 200, "Your login has been confirmed and this browser is now recognized.")
	mfaWantLevel(t, n, u, session.TwoFactor)
	if m := u.lastLoginMethod(t); m != "email-confirmation" {
		t.Errorf("login method %q, want email-confirmation", m)
	}
	if ev := u.eventAdditional(t, audit.LoginConfirmed); len(ev) != 1 || ev[0]["two_factor_method"] != "recovery-code" {
		t.Errorf("login confirmations %v, want one of a recovery-code login", ev)
	}
	// The code is used up.
	mfaLogout(t, n)
	u.passwordStep(t, n)
	acctWant(t, use(n, code), 400, "Recovery code has been previously used.")

	// From a known browser a recovery code lets the owner in at once;
	// codes are typed in any case, with spaces.
	code = u.takeCode(t)
	typed := strings.ToUpper(code[:8]) + " " + code[8:]
	acctWantRedirect(t, use(n, typed), "/manage/account/")
	acctWant(t, n.follow(t, n.get(t, "/manage/account/")), 200, "Recovery code accepted. The supplied code cannot be used again.")
	env.mail.take(t, u.email, "Recovery code use notification")
	if m := u.lastLoginMethod(t); m != "recovery-code" {
		t.Errorf("login method %q, want recovery-code", m)
	}
	acctWant(t, n.get(t, "/manage/account/two-factor/"), 200, "You have <strong>5</strong> unused recovery code(s).")
	env.wantEvents(t, u.id, map[string]int{audit.RecoveryCodeUsed: 3, audit.LoginNewDevice: 1, audit.LoginConfirmed: 1, audit.LoginFailure: 3})
	env.noMail(t, u.email)
}

// Scenario 6 (spec B4): one limiter for every second factor of an account,
// whatever the browser or IP address.
func mfaSharedLimiter(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "lars", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)
	mfaLogout(t, b)

	u.passwordStep(t, b)
	// Not a guess, so not counted.
	acctWant(t, mfaTOTP(t, b, "12 34", false), 400, "TOTP code must be 6 digits.")
	for i := range 5 {
		acctWant(t, mfaTOTP(t, b, mfaWrongCode(t, u.secret, i), false), 400, "Invalid TOTP code.")
	}
	code := u.code(t)
	mfaWant429(t, mfaTOTP(t, b, code, false))
	mfaWant429(t, b.post(t, "/account/recovery-code/", url.Values{"recovery_code_value": {u.codes[0]}}))
	// Another browser on another IP address: the same account, the same
	// limit.
	other := env.browser(acctChrome)
	u.passwordStep(t, other)
	mfaWant429(t, mfaTOTP(t, other, code, false))
	mfaWant429(t, other.post(t, "/account/recovery-code/", url.Values{"recovery_code_value": {u.codes[0]}}))
	if b.signedIn(t) || other.signedIn(t) {
		t.Fatal("signed in past the limit")
	}
	// Nothing was used up by refused attempts.
	if u.lastStep(t) != 0 {
		t.Error("a refused attempt used up the TOTP code")
	}
	if n := env.queryInt(t, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND burned_at IS NULL`, u.id); n != 7 {
		t.Errorf("%d unused recovery codes, want 7", n)
	}
	env.wantEvents(t, u.id, map[string]int{audit.LoginFailure: 5, audit.LoginSuccess: 1})
	env.noMail(t, u.email)
}

// Scenario 7: removing the authentication app needs a recent password and
// is refused while it is the last second factor.
func mfaRemoval(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "remy", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)

	// Sudo mode: a password entered more than 30 minutes ago is too old.
	if n := env.exec(t, `UPDATE sessions SET reauth_at = $1 WHERE user_id = $2`, time.Now().UTC().Add(-31*time.Minute), u.id); n != 1 {
		t.Fatalf("updated %d sessions, want 1", n)
	}
	// (Pages are served with Referrer-Policy: no-referrer, so the form
	// post carries no Referer: the way back is the account page.)
	r := b.post(t, "/manage/account/totp/remove/", nil)
	acctWantRedirect(t, r, "/account/reauthenticate/?next="+url.QueryEscape("/manage/account/"))
	page := b.follow(t, r)
	acctWant(t, page, 200, "Confirm your password to continue.")
	next := acctFormValue(t, page.Body, `action="/account/reauthenticate/"`, "next")
	acctWantRedirect(t, b.post(t, "/account/reauthenticate/", url.Values{"password": {u.pw}, "next": {next}}), next)
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, u.id); n != 1 {
		t.Fatal("the app was removed without re-authentication")
	}

	// The username must be typed, as a key's label is.
	acctWant(t, b.post(t, "/manage/account/totp/remove/", nil), http.StatusBadRequest,
		"Type your username exactly to confirm removing the authentication app.")
	confirm := url.Values{"confirm_username": {u.name}}

	// The last second factor stays.
	acctWant(t, b.post(t, "/manage/account/totp/remove/", confirm), http.StatusConflict,
		"You cannot remove your last second factor. Add another one first.")
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, u.id); n != 1 {
		t.Fatal("the last second factor was removed")
	}

	// With a security key beside it (put in the database: registering one
	// needs a browser's authenticator, tested in the WebAuthn tests), the
	// app can go.
	_, err := env.sql(t).Exec(`INSERT INTO webauthn_credentials (user_id, label, label_key, credential_id, credential_json, created_at)
		VALUES ($1, 'spare key', 'spare key', $2, '{}', $3)`, u.id, "e2e-credential-"+strconv.FormatInt(u.id, 10), time.Now().UTC())
	if err != nil {
		t.Skipf("cannot add a security key in the database (the WebAuthn schema may be changing): %v", err)
	}
	acctWant(t, b.get(t, "/manage/account/two-factor/"), 200, "spare key")
	r = b.post(t, "/manage/account/totp/remove/", confirm)
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, b.follow(t, r), 200, "Authentication app removed. Remove this site from the app too.", "Set up an authentication app")
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, u.id); n != 0 {
		t.Fatal("the app is still there")
	}
	m := env.mail.take(t, u.email, "Two-factor method removed")
	if !strings.Contains(m.Text, "authentication app") {
		t.Errorf("the removal email does not name the method:\n%s", m.Text)
	}
	if ev := u.eventAdditional(t, audit.TwoFactorRemoved); len(ev) != 1 || ev[0]["method"] != "totp" {
		t.Errorf("removal events %v, want one for totp", ev)
	}
	env.wantEvents(t, u.id, map[string]int{audit.ReauthFailure: 0})
	env.noMail(t, u.email)
}

// Scenario 8: uploads need a verified primary address and a second factor
// on the account that owns the token (Warehouse's step 11).
func mfaUploadPrerequisites(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "otto", false, false)
	tok := env.token(t, u.name, "laptop")
	form := e2eWheelForm("otto-proj", "1.0", e2eWheelName("otto-proj", "1.0"), e2eWheel(t, "otto-proj", "1.0", e2eMetadata("otto-proj", "1.0")))
	refused := func(want string) {
		t.Helper()
		rep := env.upload(t, tok, form)
		if rep.code != http.StatusForbidden || !strings.Contains(rep.status, want) {
			t.Fatalf("upload: got %q, want 403 … %s", rep.status, want)
		}
	}
	refused("User 'otto', associated with the API token used, does not have a verified primary email address.")

	// The owner verifies the address through the emailed link…
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	emailID := env.queryInt(t, `SELECT id FROM user_emails WHERE user_id = $1`, u.id)
	acctWantRedirect(t, b.post(t, "/manage/account/emails/resend/", url.Values{"email_id": {strconv.FormatInt(emailID, 10)}}), "/manage/account/")
	b.verify(t, u.email)
	refused("User 'otto', associated with the API token used, does not have two-factor authentication enabled.")

	// … and sets up an authentication app: the same token uploads.
	u.enrol(t, b)
	env.mustUpload(t, tok, form)
	if n := env.queryInt(t, `SELECT count(*) FROM files WHERE filename = $1`, e2eWheelName("otto-proj", "1.0")); n != 1 {
		t.Errorf("%d files stored, want 1", n)
	}
}

// Scenario 9: an administrator (with 2FA and a fresh password) recovers an
// account whose owner lost every factor.
func mfaAdminRecovery(t *testing.T, env *acctEnv) {
	admin := mfaNewUser(t, env, "root", true, true)
	ab := env.browser(acctChrome)
	ab.mustLogin(t, admin.name, admin.pw)
	r := ab.get(t, "/admin/")
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, ab.follow(t, r), 200, "Two-factor authentication must be enabled on your account to perform this action.")
	admin.enrolBackTo(t, ab, "/admin/") // back to the page the gate refused
	acctWant(t, ab.get(t, "/admin/"), 200, "<h1>Administration</h1>")

	w := mfaNewUser(t, env, "wendy", true, false)
	wb := env.browser(acctFirefox)
	wb.mustLogin(t, w.name, w.pw)
	w.enrol(t, wb)
	id := strconv.FormatInt(w.id, 10)
	acctWant(t, ab.get(t, "/admin/users/"+id+"/"), 200, "Account recovery", `action="/admin/users/`+id+`/recover/"`)

	// How the person was verified must be said.
	r = ab.post(t, "/admin/users/"+id+"/recover/", url.Values{"verified_how": {"trust me"}})
	acctWantRedirect(t, r, "/admin/users/"+id+"/")
	acctWant(t, ab.follow(t, r), 200, "Describe how you verified the person's identity.")
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, w.id); n != 1 {
		t.Fatal("a recovery without a note went through")
	}
	// Not one's own account.
	r = ab.post(t, "/admin/users/"+strconv.FormatInt(admin.id, 10)+"/recover/", url.Values{"verified_how": {"I am the administrator"}})
	acctWant(t, ab.follow(t, r), 200, "You can't recover your own account. Ask another administrator.")

	note := "Video call 2024-05-01; she read back the last 4 digits of the project signing key"
	r = ab.post(t, "/admin/users/"+id+"/recover/", url.Values{"verified_how": {note}})
	acctWantRedirect(t, r, "/admin/users/"+id+"/")
	acctWant(t, ab.follow(t, r), 200, "Recovered wendy: second factors removed, password cleared, reset link emailed.")

	for _, q := range []string{`SELECT count(*) FROM totp_secrets WHERE user_id = $1`, `SELECT count(*) FROM recovery_codes WHERE user_id = $1`,
		`SELECT count(*) FROM devices WHERE user_id = $1`, `SELECT count(*) FROM sessions WHERE user_id = $1`,
		`SELECT count(*) FROM users WHERE id = $1 AND password_hash <> ''`} {
		if n := env.queryInt(t, q, w.id); n != 0 {
			t.Errorf("after recovery, %s: %d", q, n)
		}
	}
	if got := env.queryString(t, `SELECT verified_how FROM account_recoveries WHERE user_id = $1`, w.id); got != note {
		t.Errorf("account_recoveries.verified_how %q, want %q", got, note)
	}
	if ev := w.eventAdditional(t, audit.AdminAccountRecovery); len(ev) != 1 || ev[0]["verified_how"] != note {
		t.Errorf("recovery events %v, want one with the note", ev)
	}
	if actor := env.queryString(t, `SELECT actor FROM events WHERE user_id = $1 AND tag = $2`, w.id, audit.AdminAccountRecovery); actor != "root" {
		t.Errorf("recovery event actor %q, want root", actor)
	}
	if wb.signedIn(t) {
		t.Fatal("wendy's old session survived the recovery")
	}
	acctWant(t, wb.login(t, w.name, w.pw), 400, "The username or password is invalid. Try again.")

	m := env.mail.take(t, w.email, "Your account has been recovered by an administrator")
	if !strings.Contains(m.Text, "root") {
		t.Errorf("the recovery email does not name the administrator:\n%s", m.Text)
	}
	link := acctLink(t, env, env.mail.take(t, w.email, "Password reset request"), "/account/reset-password/")
	page := wb.get(t, link)
	acctWant(t, page, 200, "Choose a new password", "For the account <strong>wendy</strong>.")
	newPW := "wendy-is-back-in-control"
	env.secrets.add("new password of wendy", newPW)
	tok := acctFormValue(t, page.Body, `action="/account/reset-password/"`, "token")
	r = wb.post(t, "/account/reset-password/", url.Values{"token": {tok}, "password": {newPW}, "password_confirm": {newPW}})
	acctWantRedirect(t, r, "/account/login/")
	env.mail.take(t, w.email, "Password change notification")
	w.pw, w.secret = newPW, ""

	// No second factor now: a password login, and the banner asks for one.
	wb.mustLogin(t, w.name, w.pw)
	mfaWantLevel(t, wb, w, session.Password)
	acctWant(t, wb.get(t, "/manage/account/"), 200, "Two-factor authentication is required to publish packages and manage your account.")
	acctWant(t, wb.get(t, "/manage/account/history/"), 200, "Account recovered by administrator root")
	env.wantEvents(t, w.id, map[string]int{audit.AdminAccountRecovery: 1, audit.PasswordReset: 1})
	env.noMail(t, w.email)
}

// Scenario 10: the known browsers, and forgetting one.
func mfaKnownBrowsers(t *testing.T, env *acctEnv) {
	u := mfaNewUser(t, env, "kara", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)

	page := b.get(t, "/manage/account/two-factor/")
	devices := acctSection(t, page.Body, "Recognized browsers")
	if !strings.Contains(devices, "Firefox on Linux") || !strings.Contains(devices, b.ip) {
		t.Fatalf("the known browsers lack this one (Firefox on Linux, %s):\n%s", b.ip, devices)
	}
	ids := mfaDeviceIDs(devices)
	if len(ids) != 1 {
		t.Fatalf("known browsers %v, want one", ids)
	}
	// The account settings page does not repeat them: one place for them.
	if strings.Contains(b.get(t, "/manage/account/").Body, "Recognized browsers") {
		t.Error("the account settings page still lists the recognized browsers")
	}

	// Another user's device cannot be forgotten from here.
	v := mfaNewUser(t, env, "vince", true, false)
	vb := env.browser(acctSafari)
	vb.mustLogin(t, v.name, v.pw)
	v.enrol(t, vb)
	vDev := env.queryInt(t, `SELECT id FROM devices WHERE user_id = $1`, v.id)
	acctWant(t, b.post(t, "/manage/account/devices/revoke/", url.Values{"device_id": {strconv.FormatInt(vDev, 10)}}), 404, "No such device.")
	if n := env.queryInt(t, `SELECT count(*) FROM devices WHERE id = $1`, vDev); n != 1 {
		t.Fatal("another user's device was forgotten")
	}

	r := b.post(t, "/manage/account/devices/revoke/", url.Values{"device_id": {ids[0]}})
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	page = b.follow(t, r)
	acctWant(t, page, 200, "Device forgotten. It will need a confirmation email or a security key at its next login.")
	if ids := mfaDeviceIDs(acctSection(t, page.Body, "Recognized browsers")); len(ids) != 0 {
		t.Fatalf("known browsers after forgetting: %v", ids)
	}

	// Its next login with the app is held for the email again.
	mfaLogout(t, b)
	link := u.loginHeld(t, b)
	r = b.get(t, link)
	acctWantRedirect(t, r, "/manage/account/")
	mfaWantLevel(t, b, u, session.TwoFactor)
	if ids := mfaDeviceIDs(acctSection(t, b.get(t, "/manage/account/two-factor/").Body, "Recognized browsers")); len(ids) != 1 {
		t.Fatalf("known browsers after the confirmed login: %v, want one", ids)
	}
	env.wantEvents(t, u.id, map[string]int{audit.DeviceRevoked: 1, audit.LoginNewDevice: 1, audit.LoginConfirmed: 1})
	env.noMail(t, u.email)
}

// ---------------------------------------------------------------------------
// The phishing scenario

// TestE2EPhishingScenario is product.md's promise against real-time
// phishing: an attacker who has the victim's password and a live TOTP code
// (from a fake login page) signs in from their own, fresh browser. The
// login is held until a link emailed to the victim is opened in that same
// browser. The victim, alarmed, clicks it in their own browser: that
// confirms nothing. Without the mailbox the attacker never gets in; the
// legitimate owner on a new browser opens the link in it and does.
func TestE2EPhishingScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	mfaOathtool(t)
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{})
			mfaPhishing(t, env)
			acctNoSecretsLeaked(t, env)
		})
	}
}

var mfaEmailTimeRE = regexp.MustCompile(`Time:\s+(.+)`)

func mfaPhishing(t *testing.T, env *acctEnv) {
	// The victim enrolled in browser V, which is therefore known, and is
	// signed in there.
	victim := mfaNewUser(t, env, "vera", true, false)
	V := env.browser(acctFirefox)
	V.mustLogin(t, victim.name, victim.pw)
	victim.enrol(t, V)

	// The attacker: the password and a live code, phished a moment ago,
	// typed into a fresh browser A.
	A := env.browser(acctChrome)
	victim.passwordStep(t, A)
	stolen := victim.code(t)
	r := mfaTOTP(t, A, stolen, true)
	acctWantRedirect(t, r, "/account/confirm-login/")
	mfaWantHeld(t, A)
	if A.signedIn(t) {
		t.Fatal("the attacker is signed in")
	}
	// The stolen code is spent, and the handoff with it.
	acctWantRedirect(t, mfaTOTP(t, A, stolen, false), "/account/login/")
	for _, p := range []string{"/manage/account/two-factor/", "/admin/"} {
		if r := A.get(t, p); r.Code != http.StatusSeeOther || !strings.HasPrefix(r.loc(), "/account/login/") {
			t.Errorf("GET %s from the held browser: %d to %q, want a redirect to log in", p, r.Code, r.loc())
		}
	}

	// The victim gets the email, with the browser, address and time.
	m := env.mail.take(t, victim.email, "Unrecognized login to your")
	for _, want := range []string{A.ip, acctChrome, "IN THE SAME BROWSER", "vera"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the unrecognized-login email lacks %q:\n%s", want, m.Text)
		}
	}
	if tm := mfaEmailTimeRE.FindStringSubmatch(m.Text); tm == nil {
		t.Errorf("the email gives no time:\n%s", m.Text)
	} else if at, err := time.Parse(time.RFC1123, strings.TrimSpace(tm[1])); err != nil || time.Since(at).Abs() > 2*time.Minute {
		t.Errorf("the email's time %q (%v) is not now", tm[1], err)
	}
	link := acctLink(t, env, m, "/account/confirm-login/")
	pending := func() string {
		return strings.Join(env.rows(t, `SELECT used_at FROM pending_logins WHERE user_id = $1 ORDER BY id`, victim.id), "\n")
	}
	if got := pending(); got != "used_at=<nil>" {
		t.Fatalf("pending logins: %q, want one unused", got)
	}

	// The victim clicks the link in their own browser: it says it confirms
	// nothing and where it would have to be opened, and the attacker is
	// still out.
	const wrongBrowser = "This link confirms a login only in the browser where you signed in. Open it in that browser (the one that shows “Check your email”). Nothing was confirmed."
	acctWant(t, V.get(t, link), http.StatusForbidden, wrongBrowser)
	if !V.signedIn(t) {
		t.Error("the victim's own session ended")
	}
	// … and from their phone, not signed in at all.
	phone := env.browser(acctSafari)
	acctWant(t, phone.get(t, link), http.StatusForbidden, wrongBrowser)
	if A.signedIn(t) || phone.signedIn(t) {
		t.Fatal("the victim's click signed a browser in")
	}
	mfaWantHeld(t, A)
	if got := pending(); got != "used_at=<nil>" {
		t.Fatalf("pending logins after the wrong-browser clicks: %q, want the link not used up", got)
	}
	if ev := victim.eventAdditional(t, audit.LoginFailure); len(ev) != 2 || ev[0]["reason"] != "confirm_login_wrong_browser" {
		t.Errorf("failure events %v, want two confirm_login_wrong_browser", ev)
	}

	// Without the mailbox the attacker cannot finish: guessed links fail,
	// and asking for the email again is throttled (and would go to the
	// victim anyway).
	for _, guess := range []string{"x", strings.Repeat("A", 43), link[strings.Index(link, "token=")+6:] + "x"} {
		acctWant(t, A.get(t, "/account/confirm-login/?token="+url.QueryEscape(guess)), 400, "Invalid or expired login confirmation link.")
	}
	r = A.post(t, "/account/confirm-login/resend/", nil)
	acctWant(t, r, http.StatusTooManyRequests, "We already sent a confirmation email in the last 15 minutes. Check your inbox.")
	acctWantRetryAfter(t, r, 15*time.Minute)
	acctWant(t, A.post(t, "/account/confirm-login/resend/", nil), http.StatusTooManyRequests, "We already sent a confirmation email in the last 15 minutes.")
	env.noMail(t, victim.email)
	if n := env.outboxTo(t, victim.email, "unrecognized-login"); n != 1 {
		t.Errorf("%d unrecognized-login emails queued, want 1", n)
	}
	if A.signedIn(t) {
		t.Fatal("the attacker is signed in")
	}

	// Now suppose A is the owner's own new browser: the link, which the
	// clicks elsewhere did not use up, signs it in and makes it known.
	r = A.get(t, link)
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, A.follow(t, r), 200, "Your login has been confirmed and this browser is now recognized.")
	mfaWantLevel(t, A, victim, session.TwoFactor)
	if m := victim.lastLoginMethod(t); m != "email-confirmation" {
		t.Errorf("login method %q, want email-confirmation", m)
	}
	if ev := victim.eventAdditional(t, audit.LoginConfirmed); len(ev) != 1 || ev[0]["two_factor_method"] != "totp" {
		t.Errorf("login confirmations %v, want one of a totp login", ev)
	}
	// Single use, wherever it is opened again.
	acctWant(t, A.get(t, link), 400, "This login confirmation link has already been used.")
	acctWant(t, env.browser(acctChrome).get(t, link), 400, "This login confirmation link has already been used.")
	// Known now ("remember this browser", ticked on the held login, was
	// not carried over): the next code lets A in without an email.
	mfaLogout(t, A)
	victim.passwordStep(t, A)
	acctWantRedirect(t, mfaTOTP(t, A, victim.code(t), false), "/manage/account/")
	page := V.get(t, "/manage/account/two-factor/")
	if ids := mfaDeviceIDs(acctSection(t, page.Body, "Recognized browsers")); len(ids) != 2 {
		t.Errorf("known browsers %v, want V and A", ids)
	}

	// Another new browser: after 15 minutes a resend sends a new link and
	// the old one stops working; a second resend at once is throttled.
	A2 := env.browser(acctSafari)
	first := victim.loginHeld(t, A2)
	env.exec(t, `UPDATE pending_logins SET last_email_at = $1 WHERE user_id = $2 AND used_at IS NULL`, time.Now().UTC().Add(-16*time.Minute), victim.id)
	r = A2.post(t, "/account/confirm-login/resend/", nil)
	acctWantRedirect(t, r, "/account/confirm-login/")
	acctWant(t, A2.follow(t, r), 200, "We sent the confirmation email again.", "Check your email")
	second := victim.confirmLink(t)
	if second == first {
		t.Fatal("the resent email has the same link")
	}
	acctWant(t, A2.post(t, "/account/confirm-login/resend/", nil), http.StatusTooManyRequests,
		"We already sent a confirmation email in the last 15 minutes.")
	acctWant(t, A2.get(t, first), 400, "Invalid or expired login confirmation link.")
	// A link opened after it expired (6 hours) is refused.
	env.exec(t, `UPDATE pending_logins SET expires_at = $1 WHERE user_id = $2 AND used_at IS NULL`, time.Now().UTC().Add(-time.Minute), victim.id)
	acctWant(t, A2.get(t, second), 400, "This login confirmation link has expired. Log in again to get a new one.")
	if A2.signedIn(t) {
		t.Fatal("an expired link signed in")
	}

	env.wantEvents(t, victim.id, map[string]int{
		audit.LoginNewDevice: 2, audit.LoginConfirmed: 1, audit.DeviceRemembered: 0,
	})
	env.noMail(t, victim.email)
}
