package main

// Helpers of the second-factor end-to-end tests (e2e_mfa_test.go). They
// build on the account helpers (e2e_acct_helpers_test.go: the server started
// through run() with an in-test SMTP server, cookie-jar browsers, forms with
// Sec-Fetch-Site: same-origin) and add what a person with an authenticator
// app does: read the secret off the provisioning page and type the codes
// Debian's oathtool computes from it.
//
// The server runs on real time, so codes are computed for "now". An
// accepted code's time step is stored and every code at or before it is
// refused (spec B3), so two logins of one user within one 30-second step
// could not both succeed. Between logins the tests therefore reset the
// stored step (UPDATE totp_secrets SET last_step = 0: mfaUser.code) rather
// than wait; where replay itself is the point, they do not reset it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/session"
)

// ---------------------------------------------------------------------------
// oathtool

var (
	mfaOathOnce sync.Once
	mfaOathPath string
	mfaOathErr  error
)

// mfaOathtool returns the path of Debian's oathtool, skipping the test (or
// failing it in CI) when it is missing.
func mfaOathtool(t *testing.T) string {
	t.Helper()
	mfaOathOnce.Do(func() {
		mfaOathPath, mfaOathErr = exec.LookPath("/usr/bin/oathtool")
		if mfaOathErr != nil {
			mfaOathPath, mfaOathErr = exec.LookPath("oathtool")
		}
	})
	if mfaOathErr != nil {
		e2eSkipOrFail(t, "oathtool (Debian package oathtool) missing: %v", mfaOathErr)
	}
	return mfaOathPath
}

var mfaSixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// mfaOath runs `oathtool --totp -b SECRET --now TIME [-w WINDOW]` and
// returns the codes it prints, first the one for TIME.
func mfaOath(t *testing.T, secret string, at time.Time, window int) []string {
	t.Helper()
	args := []string{"--totp", "-b", secret, "--now", at.UTC().Format("2006-01-02 15:04:05 UTC")}
	if window > 0 {
		args = append(args, "-w", fmt.Sprint(window))
	}
	out, err := exec.Command(mfaOathtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	codes := strings.Fields(string(out))
	if len(codes) != window+1 {
		t.Fatalf("oathtool printed %q, want %d codes", out, window+1)
	}
	for _, c := range codes {
		if !mfaSixDigits.MatchString(c) {
			t.Fatalf("oathtool printed %q, want 6-digit codes", out)
		}
	}
	return codes
}

// mfaCodeAt is the authenticator app's code at a time.
func mfaCodeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	return mfaOath(t, secret, at, 0)[0]
}

// mfaWrongCode returns a 6-digit code that is not the code of any step
// within 12 steps (6 minutes) of now: neither valid nor "out of sync".
func mfaWrongCode(t *testing.T, secret string, salt int) string {
	t.Helper()
	near := map[string]bool{}
	for _, c := range mfaOath(t, secret, time.Now().Add(-12*30*time.Second), 24) {
		near[c] = true
	}
	for i := salt; ; i++ {
		c := fmt.Sprintf("%06d", (i*137_911+424_243)%1_000_000)
		if !near[c] {
			return c
		}
	}
}

// ---------------------------------------------------------------------------
// Users

// mfaUser is an account with what its owner knows: the password, the TOTP
// secret once enrolled, and the recovery codes not yet used.
type mfaUser struct {
	env    *acctEnv
	name   string
	pw     string
	email  string
	id     int64
	secret string   // base32, once an authentication app is set up
	codes  []string // recovery codes not yet used, in the order shown
	burned []string // recovery codes used
}

// mfaNewUser creates a user with `gatehouse user create --password-stdin`,
// with the address verified when verified is set (as an administrator who
// vouches for it would).
func mfaNewUser(t *testing.T, env *acctEnv, name string, verified, admin bool) *mfaUser {
	t.Helper()
	u := &mfaUser{env: env, name: name, pw: name + "-has-a-long-passphrase", email: name + "@example.com"}
	env.secrets.add("password of "+name, u.pw)
	args := []string{"user", "create", "--username", name, "--email", u.email, "--password-stdin",
		"--data-dir", env.dataDir, "--database-url", env.dbURL}
	if verified {
		args = append(args, "--email-verified")
	}
	if admin {
		args = append(args, "--admin")
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, e2eNoEnv, strings.NewReader(u.pw+"\n"), &stdout, &stderr); err != nil {
		t.Fatalf("gatehouse user create %s: %v\n%s", name, err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "Created") {
		t.Fatalf("gatehouse user create %s: got %q", name, stdout.String())
	}
	u.id = env.userID(t, name)
	return u
}

// code returns a code the server accepts now for the user: the stored last
// step is reset first (see the top of this file).
func (u *mfaUser) code(t *testing.T) string {
	t.Helper()
	if u.secret == "" {
		t.Fatalf("%s has no authentication app", u.name)
	}
	u.env.exec(t, `UPDATE totp_secrets SET last_step = 0 WHERE user_id = $1`, u.id)
	return mfaCodeAt(t, u.secret, time.Now())
}

// lastStep is the stored last accepted time step.
func (u *mfaUser) lastStep(t *testing.T) int64 {
	t.Helper()
	return u.env.queryInt(t, `SELECT last_step FROM totp_secrets WHERE user_id = $1`, u.id)
}

// takeCode returns an unused recovery code and moves it to burned (the
// caller is about to use it).
func (u *mfaUser) takeCode(t *testing.T) string {
	t.Helper()
	if len(u.codes) == 0 {
		t.Fatalf("%s has no unused recovery code left", u.name)
	}
	c := u.codes[0]
	u.codes = u.codes[1:]
	u.burned = append(u.burned, c)
	return c
}

// ---------------------------------------------------------------------------
// Enrolment

var (
	mfaQRRE     = regexp.MustCompile(`<img src="(data:image/png;base64,[^"]+)"`)
	mfaHexCode  = regexp.MustCompile(`^[0-9a-f]{16}$`)
	mfaDeviceRE = regexp.MustCompile(`name="device_id" value="([0-9]+)"`)
)

// generateCodes posts "Generate recovery codes" and returns the 8 codes
// shown.
func (u *mfaUser) generateCodes(t *testing.T, b *acctBrowser) []string {
	t.Helper()
	r := b.post(t, "/manage/account/recovery-codes/generate/", nil)
	acctWant(t, r, 200, "Your recovery codes", "they are shown only this once")
	var codes []string
	seen := map[string]bool{}
	for _, m := range acctRecoveryCodeRE.FindAllStringSubmatch(r.Body, -1) {
		if !mfaHexCode.MatchString(m[1]) || seen[m[1]] {
			t.Fatalf("recovery code %q: want 16 lowercase hex characters, all different", m[1])
		}
		seen[m[1]] = true
		codes = append(codes, m[1])
		u.env.secrets.add("recovery code of "+u.name, m[1])
	}
	if len(codes) != 8 {
		t.Fatalf("got %d recovery codes, want 8:\n%s", len(codes), r.Body)
	}
	u.env.mail.take(t, u.email, "Recovery codes generation notification")
	u.codes, u.burned = codes, nil
	return codes
}

// confirmCodes enters the first recovery code back (burn to confirm).
func (u *mfaUser) confirmCodes(t *testing.T, b *acctBrowser) {
	t.Helper()
	r := b.post(t, "/manage/account/recovery-codes/confirm/", url.Values{"recovery_code_value": {u.takeCode(t)}})
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, b.follow(t, r), 200, "Recovery codes confirmed. You can now add a second factor.",
		"You have <strong>7</strong> unused recovery code(s).")
}

// provisionPage opens the authentication-app page and returns it with the
// secret it shows.
func (u *mfaUser) provisionPage(t *testing.T, b *acctBrowser) (*acctResp, string) {
	t.Helper()
	page := b.get(t, "/manage/account/totp-provision/")
	acctWant(t, page, 200, "Set up an authentication app")
	m := acctTOTPSecretRE.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no TOTP secret on the page:\n%s", page.Body)
	}
	u.env.secrets.add("TOTP secret of "+u.name, m[1])
	return page, m[1]
}

// enrol sets up an authentication app in the signed-in browser b, as its
// owner does on the two-factor page: generate recovery codes, enter one
// back, read the secret, type the app's code. b becomes a known browser.
func (u *mfaUser) enrol(t *testing.T, b *acctBrowser) {
	t.Helper()
	u.enrolBackTo(t, b, "/manage/account/two-factor/")
}

// enrolBackTo is enrol for a browser the management gate sent to the
// two-factor page from back: where it lands once the app is added.
func (u *mfaUser) enrolBackTo(t *testing.T, b *acctBrowser, back string) {
	t.Helper()
	u.generateCodes(t, b)
	u.confirmCodes(t, b)
	_, secret := u.provisionPage(t, b)
	r := b.post(t, "/manage/account/totp-provision/", url.Values{"totp_value": {mfaCodeAt(t, secret, time.Now())}})
	acctWantRedirect(t, r, back)
	acctWant(t, b.follow(t, r), 200, "Authentication app added.")
	u.secret = secret
	u.env.mail.take(t, u.email, "Two-factor method added")
}

// ---------------------------------------------------------------------------
// Logging in

// passwordStep submits the login form; the account has a second factor, so
// the answer is the way to the second step.
func (u *mfaUser) passwordStep(t *testing.T, b *acctBrowser) {
	t.Helper()
	acctWantRedirect(t, b.login(t, u.name, u.pw), "/account/two-factor/")
}

// totp submits an authentication-app code on the second step.
func mfaTOTP(t *testing.T, b *acctBrowser, code string, remember bool) *acctResp {
	t.Helper()
	form := url.Values{"totp_value": {code}}
	if remember {
		form.Set("remember_device", "1")
	}
	return b.post(t, "/account/two-factor/totp/", form)
}

// loginKnown logs in from a browser the account knows: password, then a
// fresh code, then straight in.
func (u *mfaUser) loginKnown(t *testing.T, b *acctBrowser, remember bool) {
	t.Helper()
	u.passwordStep(t, b)
	acctWantRedirect(t, mfaTOTP(t, b, u.code(t), remember), "/manage/account/")
	if !b.signedIn(t) {
		t.Fatalf("%s: not signed in after the second factor", u.name)
	}
}

// loginHeld logs in from a browser the account does not know: password,
// then a fresh code, and the login is held for the emailed confirmation,
// whose link is returned.
func (u *mfaUser) loginHeld(t *testing.T, b *acctBrowser) string {
	t.Helper()
	u.passwordStep(t, b)
	acctWantRedirect(t, mfaTOTP(t, b, u.code(t), false), "/account/confirm-login/")
	mfaWantHeld(t, b)
	return u.confirmLink(t)
}

// confirmLink takes the unrecognized-login email and returns its link.
func (u *mfaUser) confirmLink(t *testing.T) string {
	t.Helper()
	m := u.env.mail.take(t, u.email, "Unrecognized login to your")
	return acctLink(t, u.env, m, "/account/confirm-login/")
}

// mfaWantHeld checks that b shows "Check your email" and is not signed in.
func mfaWantHeld(t *testing.T, b *acctBrowser) {
	t.Helper()
	acctWant(t, b.get(t, "/account/confirm-login/"), 200, "Check your email", "open the link in it in this browser", "Send the email again")
	if b.signedIn(t) {
		t.Fatal("a held login is signed in")
	}
}

// logout logs the browser out.
func mfaLogout(t *testing.T, b *acctBrowser) {
	t.Helper()
	acctWantRedirect(t, b.post(t, "/account/logout/", nil), "/")
}

// ---------------------------------------------------------------------------
// The database

// lastLoginMethod is the two_factor_method of the user's latest
// account:login:success event.
func (u *mfaUser) lastLoginMethod(t *testing.T) string {
	t.Helper()
	add := u.env.queryString(t, `SELECT additional FROM events WHERE user_id = $1 AND tag = 'account:login:success' ORDER BY id DESC LIMIT 1`, u.id)
	var m map[string]any
	if err := json.Unmarshal([]byte(add), &m); err != nil {
		t.Fatalf("login event additional %q: %v", add, err)
	}
	return fmt.Sprint(m["two_factor_method"])
}

// eventAdditional returns the additional data of the user's events of tag,
// oldest first.
func (u *mfaUser) eventAdditional(t *testing.T, tag string) []map[string]any {
	t.Helper()
	rows, err := u.env.sql(t).QueryContext(context.Background(), `SELECT additional FROM events WHERE user_id = $1 AND tag = $2 ORDER BY id`, u.id, tag)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("event %s additional %q: %v", tag, s, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sessionRow reads the browser's session row: its user (0 for none), its
// level and its data.
func mfaSession(t *testing.T, b *acctBrowser) (userID, level int64, data map[string]string) {
	t.Helper()
	raw := b.session()
	if raw == "" {
		t.Fatal("the browser has no session cookie")
	}
	var uid *int64
	var js string
	if err := b.env.sql(t).QueryRowContext(context.Background(), `SELECT user_id, auth_level, data_json FROM sessions WHERE id_hash = $1`,
		session.Hash(raw)).Scan(&uid, &level, &js); err != nil {
		t.Fatalf("the browser's session: %v", err)
	}
	data = map[string]string{}
	if err := json.Unmarshal([]byte(js), &data); err != nil {
		t.Fatalf("session data %q: %v", js, err)
	}
	if uid != nil {
		userID = *uid
	}
	return userID, level, data
}

// setSessionData overwrites the data of the browser's session row, as only
// someone with the database could.
func mfaSetSessionData(t *testing.T, b *acctBrowser, data map[string]string) {
	t.Helper()
	js, _ := json.Marshal(data)
	if n := b.env.exec(t, `UPDATE sessions SET data_json = $1 WHERE id_hash = $2`, string(js), session.Hash(b.session())); n != 1 {
		t.Fatalf("updated %d sessions, want 1", n)
	}
}

// mfaWantLevel checks the browser's session: signed in as the user at the
// assurance level.
func mfaWantLevel(t *testing.T, b *acctBrowser, u *mfaUser, level session.Level) {
	t.Helper()
	uid, lv, _ := mfaSession(t, b)
	if uid != u.id || lv != int64(level) {
		t.Fatalf("session: user %d at level %d, want user %d (%s) at level %d", uid, lv, u.id, u.name, level)
	}
}

// mfaDeviceIDs are the device ids of the "Forget" forms on the two-factor
// page.
func mfaDeviceIDs(page string) []string {
	var ids []string
	for _, m := range mfaDeviceRE.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// mfaWant429 checks a tripped second-factor limiter's answer.
func mfaWant429(t *testing.T, r *acctResp) {
	t.Helper()
	acctWant(t, r, http.StatusTooManyRequests, "There have been too many unsuccessful login attempts.")
	acctWantRetryAfter(t, r, 5*time.Minute)
}
