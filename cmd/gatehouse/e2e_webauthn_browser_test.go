package main

// End-to-end WebAuthn in a real browser: headless Chromium (Debian's
// chromium, driven by chromedp) with virtual authenticators of the DevTools
// protocol's WebAuthn domain in place of a USB security key and of the
// device's own passkey store. A person logs in with the password, stores
// recovery codes, registers a security key, logs in with it as the second
// factor, registers a passkey, signs in with the passkey alone, and
// re-authenticates for a sensitive page with the security key. On the way,
// what goes wrong in real life: the same key registered twice, a passkey
// with no name, a fingerprint that does not match (then a retry), and
// read-only mode, which refuses new keys but must not keep anyone with one
// from signing in. Everything happens by typing and clicking on the pages,
// with static/webauthn.js talking to navigator.credentials and the server's
// JSON endpoints; the Go-level checks of the ceremonies are in internal/mfa
// (virtualwebauthn).
//
// The browser opens the server at its public base URL, http://localhost:PORT:
// WebAuthn needs a domain as RP ID, and localhost is a secure context
// without TLS. Screenshots of the login page with its passkey button, the
// second step of a login, the pages that add a key and the two-factor page
// listing both credentials go to $GATEHOUSE_SCREENSHOT_DIR (default: a temp
// dir), from the SQLite run: login-passkey.png, two-factor-login.png,
// two-factor-manage.png, webauthn-provision.png, webauthn-provision-error.png
// and reauth.png.
//
// It skips when /usr/bin/chromium is missing, except in CI
// (GATEHOUSE_TEST_REQUIRE_POSTGRES=1), where scripts/test installs it.

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-index/gatehouse/internal/session"
)

func TestE2EBrowserWebAuthn(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a browser; skipped with -short")
	}
	if _, err := os.Stat(acctChromium); err != nil {
		e2eSkipOrFail(t, "no Chromium at %s (apt-get install chromium): %v", acctChromium, err)
	}
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dir := ""
			if dialect == "sqlite" {
				dir = os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
				if dir == "" {
					dir = t.TempDir()
				} else if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			env := acctStart(t, dialect, acctOpts{})
			wabFlow(t, env, dir)
			acctNoSecretsLeaked(t, env)
			if dir != "" {
				t.Logf("screenshots in %s", dir)
			}
		})
	}
}

func wabFlow(t *testing.T, env *acctEnv, shotDir string) {
	// 1. The account, made by an administrator with the address verified.
	u := mfaNewUser(t, env, "wendy", true, false)
	b := wabStartChrome(t, env, shotDir)
	key := b.plug(wabSecurityKey())

	// 2. Log in with the password (no second factor yet) and store recovery
	// codes: no second factor can be added before.
	b.passwordLogin(u.name, u.pw)
	b.waitPath("/manage/account/", "#emails-h")
	b.signedInAs(u.name)
	b.open("/manage/account/two-factor/", "#rc-h")
	b.do("generate recovery codes", chromedp.Click(chromedp.CSS(`form[action="/manage/account/recovery-codes/generate/"] button`)))
	b.waitPath("/manage/account/recovery-codes/generate/", "ol.codes")
	codes, err := wabRun(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("ol.codes code"), c => c.textContent)`))
	if err != nil || len(codes) != 8 {
		b.fatal("the recovery codes page shows %d codes (%v), want 8", len(codes), err)
	}
	for _, c := range codes {
		env.secrets.add("recovery code of "+u.name, c)
	}
	env.mail.take(t, u.email, "Recovery codes generation notification")
	b.do("confirm a recovery code",
		chromedp.SendKeys(chromedp.CSS("#recovery_code_value"), codes[0]),
		chromedp.Click(chromedp.CSS(`form[action="/manage/account/recovery-codes/confirm/"] button[type="submit"]`)))
	b.waitPath("/manage/account/two-factor/", "#f-h")
	b.wantText("main", "Recovery codes confirmed. You can now add a second factor.", "You have 7 unused recovery code(s).")

	// 3. Register the security key.
	b.open("/manage/account/webauthn-provision/", `form[action="/manage/account/webauthn-provision/validate/"]`)
	b.wantText("h1", "Add a security key")
	b.do("name the key", chromedp.WaitVisible(chromedp.CSS(`button[data-webauthn="register"]`)),
		chromedp.SendKeys(chromedp.CSS("#label"), "Blue YubiKey"))
	b.shot("webauthn-provision.png")
	b.pressWebAuthn("register")
	b.waitPath("/manage/account/two-factor/", "#f-h")
	b.wantText("main", "Security key “Blue YubiKey” added.")
	b.wantText("table.list tbody", "Blue YubiKey", "Security key")
	keyCred := key.only("after registering the security key")
	if keyCred.RpID != "localhost" {
		t.Errorf("the security key's credential is for RP ID %q, want localhost", keyCred.RpID)
	}
	if m := env.mail.take(t, u.email, "Two-factor method added"); !strings.Contains(m.Text, "security key “Blue YubiKey”") {
		t.Errorf("the two-factor-added email does not name the key:\n%s", m.Text)
	}
	if n := env.queryInt(t, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1 AND passkey = $2`, u.id, false); n != 1 {
		t.Fatalf("%d security keys stored, want 1", n)
	}

	// The same key again: the authenticator refuses (it holds a credential
	// of excludeCredentials), and the page says why.
	b.open("/manage/account/webauthn-provision/", `button[data-webauthn="register"]`)
	b.do("name the key again", chromedp.SendKeys(chromedp.CSS("#label"), "Blue YubiKey again"))
	b.pressWebAuthn("register")
	b.waitStatus("This security key or passkey is already registered to your account.")
	if cls := b.quick(`document.getElementById("webauthn-status").className`); !strings.Contains(cls, "webauthn-error") {
		b.fatal("the failure is shown with class %q, want webauthn-error (it must not look like a hint)", cls)
	}
	b.shot("webauthn-provision-error.png")
	key.only("after trying to register the key twice")

	// Read-only mode, as an administrator switches it on: adding a key is
	// refused with the mode's message (webauthn.js shows the JSON error of
	// the options request), but logging in with the key still works (step 4).
	wabReadOnly(t, env, true)
	b.allowConsoleError("status of 503 (Service Unavailable) (" + env.base + "/manage/account/webauthn-provision/options/")
	b.do("press the button again", chromedp.Click(chromedp.CSS(`button[data-webauthn="register"]`)))
	b.waitStatus("Read-only mode: changes are temporarily disabled. Try again later.")
	key.only("after trying to register in read-only mode")

	// 4. Log out, and log in with the password and the key.
	b.logout()
	b.passwordLogin(u.name, u.pw)
	b.waitPath("/account/two-factor/", `button[data-webauthn="get"]`)
	b.wantText("main", "Security key or passkey", "Use a security key")
	b.shot("two-factor-login.png")
	b.do("tick Remember this browser", chromedp.Click(chromedp.CSS(`form[action="/account/webauthn-authenticate/validate/"] input[name="remember_device"]`)))
	b.pressWebAuthn("get")
	b.waitPath("/manage/account/", "#emails-h")
	b.signedInAs(u.name)
	b.open("/manage/account/history/", "#history-h")
	b.wantText(`section[aria-labelledby="history-h"]`, "Logged in with a security key")
	if m := u.lastLoginMethod(t); m != "webauthn" {
		t.Errorf("the login's two_factor_method is %q, want webauthn", m)
	}
	uid, level := wabSession(t, b)
	if uid != u.id || level != int64(session.TwoFactor) {
		t.Errorf("session after the security key: user %d at level %d, want %d at %d", uid, level, u.id, session.TwoFactor)
	}
	if n := env.queryInt(t, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1 AND last_used_at IS NOT NULL`, u.id); n != 1 {
		t.Errorf("%d credentials have a last use, want 1 (the key)", n)
	}
	if n := env.queryInt(t, `SELECT count(*) FROM devices WHERE user_id = $1 AND remember_until IS NOT NULL`, u.id); n != 1 {
		t.Errorf("%d remembered browsers after ticking the box, want 1", n)
	}
	wabReadOnly(t, env, false)

	// 5. Register a passkey. The security key is unplugged first: its
	// credential is in excludeCredentials, and an authenticator that holds
	// one refuses to register again (§5.4 excludeCredentials). The device's
	// own authenticator stores the passkey.
	keyCred = key.only("after logging in with the security key")
	key.unplug()
	platform := b.plug(wabPlatformPasskeys())
	b.open("/manage/account/webauthn-provision/?passkey=1", `form[action="/manage/account/webauthn-provision/validate/"]`)
	b.wantText("h1", "Add a passkey")
	// Without a name, the form's own validation stops the ceremony before
	// it starts: a passkey made then refused by the server would stay on
	// the device, offered at every sign-in, naming no account.
	b.pressWebAuthn("register")
	if _, err := wabRun(b, chromedp.Poll[bool](`document.activeElement && document.activeElement.id === "label" && document.getElementById("label").matches(":invalid")`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		b.fatal("pressing the button without a name did not stop at the empty, required name field: %v", err)
	}
	if n := len(platform.credentials()); n != 0 {
		b.fatal("pressing the button without a name made %d passkeys on the device, want none", n)
	}
	b.do("name the passkey", chromedp.SendKeys(chromedp.CSS("#label"), "Laptop passkey"))
	b.pressWebAuthn("register")
	b.waitPath("/manage/account/two-factor/", "#f-h")
	b.wantText("main", "Passkey “Laptop passkey” added.")
	b.wantText("table.list tbody", "Blue YubiKey", "Security key", "Laptop passkey", "Passkey")
	b.shot("two-factor-manage.png")
	pk := platform.only("after registering the passkey")
	if !pk.IsResidentCredential || pk.RpID != "localhost" || pk.UserName != u.name {
		t.Errorf("the passkey: resident %v, RP ID %q, user name %q; want a discoverable credential for localhost named %s",
			pk.IsResidentCredential, pk.RpID, pk.UserName, u.name)
	}
	if m := env.mail.take(t, u.email, "Two-factor method added"); !strings.Contains(m.Text, "passkey “Laptop passkey”") {
		t.Errorf("the two-factor-added email does not name the passkey:\n%s", m.Text)
	}
	if n := env.queryInt(t, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1 AND passkey = $2`, u.id, true); n != 1 {
		t.Fatalf("%d passkeys stored, want 1", n)
	}
	if n := env.queryInt(t, `SELECT count(*) FROM devices WHERE user_id = $1 AND remember_until IS NOT NULL`, u.id); n != 0 {
		t.Errorf("%d remembered browsers after adding a passkey, want 0 (a new factor forgets them)", n)
	}

	// 6. Log out, and sign in with the passkey alone: nothing typed. The
	// site is read-only again, which must not keep anyone out.
	b.logout()
	wabReadOnly(t, env, true)
	b.open("/account/login/?next=%2Fmanage%2Faccount%2Ftwo-factor%2F", `button[data-webauthn="get"]`)
	b.wantText("main", "Or sign in without a password:", "Sign in with a passkey")
	b.shot("login-passkey.png")
	// The fingerprint does not match: the browser refuses, the page says so
	// and lets the person try again.
	platform.setUserVerified(false)
	b.pressWebAuthn("get")
	b.waitStatus("Cancelled or timed out. Try again.")
	platform.setUserVerified(true)
	b.pressWebAuthn("get")
	// Back to where the login page was asked for.
	b.waitPath("/manage/account/two-factor/", "#f-h")
	b.signedInAs(u.name)
	b.open("/manage/account/history/", "#history-h")
	b.signedInAs(u.name)
	b.wantText(`section[aria-labelledby="history-h"]`, "Signed in with a passkey", "Logged in with a security key")
	if m := u.lastLoginMethod(t); m != "passkey" {
		t.Errorf("the login's two_factor_method is %q, want passkey", m)
	}
	if uid, level := wabSession(t, b); uid != u.id || level != int64(session.TwoFactor) {
		t.Errorf("session after the passkey: user %d at level %d, want %d at %d", uid, level, u.id, session.TwoFactor)
	}
	wabReadOnly(t, env, false)

	// 7. Sudo mode with the security key: the session's last authentication
	// is made an hour old, and the authentication-app page asks again. The
	// key is plugged back in (a new virtual authenticator holding its
	// credential) and the passkey store taken away, so the key answers.
	sess, _ := b.cookies()
	if n := env.exec(t, `UPDATE sessions SET reauth_at = $1 WHERE id_hash = $2`, time.Now().UTC().Add(-time.Hour), session.Hash(sess)); n != 1 {
		t.Fatalf("made %d sessions' authentication old, want 1", n)
	}
	platform.unplug()
	key = b.plug(wabSecurityKey())
	if keyCred.RpID == "" {
		keyCred.RpID = "localhost"
	}
	key.add(keyCred)
	b.open("/manage/account/totp-provision/", `form[action="/account/reauthenticate/"]`)
	if p, err := b.path(); err != nil || p != "/account/reauthenticate/?next=%2Fmanage%2Faccount%2Ftotp-provision%2F" {
		b.fatal("the sensitive page went to %q (%v), want the re-authentication page coming back to it", p, err)
	}
	b.wantText("main", "Confirm your password", "Use a security key or passkey instead")
	b.shot("reauth.png")
	b.pressWebAuthn("get")
	b.waitPath("/manage/account/totp-provision/", "code.secret")
	b.wantText("h1", "Set up an authentication app")
	env.secrets.add("TOTP secret of "+u.name, b.text("code.secret"))
	var reauthAt sql.NullTime
	if err := env.sql(t).QueryRowContext(context.Background(), `SELECT reauth_at FROM sessions WHERE id_hash = $1`, session.Hash(sess)).Scan(&reauthAt); err != nil {
		t.Fatal(err)
	}
	if !reauthAt.Valid || time.Since(reauthAt.Time) > time.Minute {
		t.Errorf("reauth_at is %v after re-authenticating with the key, want now", reauthAt)
	}
	if got := key.only("after re-authenticating").SignCount; got <= keyCred.SignCount {
		t.Errorf("the key's signature counter is %v after re-authenticating, want more than %v", got, keyCred.SignCount)
	}

	// No login needed an emailed confirmation: security keys and passkeys
	// cannot be phished, so they make the browser known by themselves.
	env.waitOutboxSent(t)
	if n := env.outboxTo(t, u.email, "unrecognized-login"); n != 0 {
		t.Errorf("%d unrecognized-login emails queued, want none", n)
	}
	for _, m := range env.mail.all() {
		if strings.Contains(m.Subject, "Unrecognized login") {
			t.Errorf("an unrecognized-login email was sent: %q", m.Subject)
		}
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("the pages wrote errors to the console:\n  %s", strings.Join(errs, "\n  "))
	}
}

// wabSession reads the browser's session row: its user and level.
func wabSession(t *testing.T, b *wabChrome) (userID, level int64) {
	t.Helper()
	sess, _ := b.cookies()
	if sess == "" {
		t.Fatal("the browser has no session cookie")
	}
	var uid sql.NullInt64
	if err := b.env.sql(t).QueryRowContext(context.Background(), `SELECT user_id, auth_level FROM sessions WHERE id_hash = $1`,
		session.Hash(sess)).Scan(&uid, &level); err != nil {
		t.Fatalf("the browser's session: %v", err)
	}
	return uid.Int64, level
}

// wabReadOnly switches read-only mode, as the admin page's setting does.
func wabReadOnly(t *testing.T, env *acctEnv, on bool) {
	t.Helper()
	v := "off"
	if on {
		v = "on"
	}
	env.exec(t, `INSERT INTO site_settings (name, value, updated_at) VALUES ('read_only', $1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, v, time.Now().UTC())
}
