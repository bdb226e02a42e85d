package main

// End-to-end: the account flows of a person with a browser, over HTTP
// against the real server started by run(), with every email received by
// an in-test SMTP server and every emailed link followed with the person's
// cookie jar. On SQLite and on PostgreSQL.
//
//   - registration, email verification, adding a second address, making it
//     primary, removing the first, the verification-resend limit (spec §1.4)
//   - login and logout, cookie replay after logout (D3)
//   - password change ending other sessions, the sessions list, "End" and
//     "Log out all other sessions" (D3)
//   - password reset: identical answers for unknown accounts, the link,
//     single use, binding to the last login and the password date, a
//     verification token on the reset URL, unverified addresses, the Host
//     header (E1, E2, E4, A6)
//   - sudo mode (D4)
//   - account deletion (§1.1)
//   - administration: admin pages, search, disabling an account (session
//     and API token stop at once), closed registration, read-only mode
//
// Link expiry needs a moving clock, which the real server does not have; it
// is tested in internal/account (TestPasswordResetInvalidation and
// TestVerifyEmail, with an injected clock).
// Each server ends with spec J1's search for leaked secrets.

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

func TestE2EAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
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
					{"email-addresses", acctEmailAddresses},
					{"resend-limit-counts-registration", acctResendLimit},
					{"login-logout", acctLoginLogout},
					{"password-change-and-sessions", acctPasswordChangeSessions},
					{"password-reset", acctPasswordReset},
					{"sudo-mode", acctSudoMode},
					{"account-deletion", acctDeletion},
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

// acctWaitEvents waits until the user has n events of tag: account:email:sent
// is recorded by the mail worker just after the SMTP server took the
// message.
func acctWaitEvents(t *testing.T, env *acctEnv, userID int64, tag string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := env.events(t, userID)[tag]
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("user %d has %d %s events, want %d", userID, got, tag, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Scenario 1: registration → verify → second address → primary → remove,
// and the verification-resend limit.
func acctEmailAddresses(t *testing.T, env *acctEnv) {
	b := env.browser(acctFirefox)
	first, second := "erin@example.com", "erin.work@example.org"
	id := b.mustRegister(t, "erin", "erin's long passphrase 42")

	// The emailed link, followed in the same browser, verifies the address
	// and the banner goes.
	b.verify(t, first)
	page := b.get(t, "/manage/account/")
	acctWant(t, page, 200, first)
	if strings.Contains(page.Body, "Your primary email address") {
		t.Errorf("the unverified-address banner is still shown after verification:\n%s", page.Body)
	}

	// A second address: a verification link to it, a notice to the first.
	r := b.post(t, "/manage/account/emails/add/", url.Values{"email": {second}})
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, b.follow(t, r), 200, "Email "+second+" added. We sent it a verification link.")
	addMail := env.mail.take(t, second, "Email verification")
	firstLink := acctLink(t, env, addMail, "/account/verify-email/")
	notice := env.mail.take(t, first, "A new email '"+second+"' has been added to your account 'erin'")
	if !strings.Contains(notice.Text, second) {
		t.Errorf("the new-email-added notice does not name the new address:\n%s", notice.Text)
	}
	if strings.Contains(notice.Text, "token=") {
		t.Errorf("the new-email-added notice carries a link with a token:\n%s", notice.Text)
	}
	secondID := env.queryInt(t, `SELECT id FROM user_emails WHERE email = $1`, second)
	firstID := env.queryInt(t, `SELECT id FROM user_emails WHERE email = $1`, first)

	// An unverified address cannot become primary.
	r = b.post(t, "/manage/account/emails/primary/", url.Values{"email_id": {strconv.FormatInt(secondID, 10)}})
	acctWant(t, r, 400, "Verify this email address before making it your primary address.")

	// Resending: the limit is 3 verification emails per 6 hours, and the
	// one sent when the address was added counts.
	resend := url.Values{"email_id": {strconv.FormatInt(secondID, 10)}}
	var lastLink string
	for i := 0; i < 2; i++ {
		r = b.post(t, "/manage/account/emails/resend/", resend)
		acctWantRedirect(t, r, "/manage/account/")
		acctWant(t, b.follow(t, r), 200, "Verification email sent.")
		lastLink = acctLink(t, env, env.mail.take(t, second, "Email verification"), "/account/verify-email/")
	}
	r = b.post(t, "/manage/account/emails/resend/", resend)
	acctWant(t, r, http.StatusTooManyRequests, "Too many incomplete attempts to verify email address(es) for erin.")
	acctWantRetryAfter(t, r, 6*time.Hour)
	if n := env.outboxTo(t, second, "verify-email"); n != 3 {
		t.Errorf("%d verification emails queued for %s, want 3 (the limit)", n, second)
	}

	// The newest link verifies; the first one is then refused.
	r = b.get(t, lastLink)
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, b.follow(t, r), 200, "Email address "+second+" verified.")
	r = b.get(t, firstLink)
	acctWant(t, b.follow(t, r), 200, "This email address is already verified.")

	// Making it primary tells the old address.
	r = b.post(t, "/manage/account/emails/primary/", url.Values{"email_id": {strconv.FormatInt(secondID, 10)}})
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, b.follow(t, r), 200, "Primary email address changed.")
	change := env.mail.take(t, first, "Primary email change notification")
	if !strings.Contains(change.Text, second) || !strings.Contains(change.Text, first) {
		t.Errorf("the primary-email-change notice does not name both addresses:\n%s", change.Text)
	}
	env.noMail(t, second) // the notice goes to the old address only

	// The primary cannot be removed; the old address can.
	r = b.post(t, "/manage/account/emails/remove/", url.Values{"email_id": {strconv.FormatInt(secondID, 10)}})
	acctWant(t, r, 400, "Cannot remove primary email address")
	r = b.post(t, "/manage/account/emails/remove/", url.Values{"email_id": {strconv.FormatInt(firstID, 10)}})
	acctWantRedirect(t, r, "/manage/account/")
	page = b.follow(t, r)
	acctWant(t, page, 200, "Email address removed.")
	if emailsTable := acctSection(t, page.Body, `id="emails-h"`); strings.Contains(emailsTable, first) {
		t.Errorf("the removed address %s is still listed:\n%s", first, emailsTable)
	}
	if got := env.rows(t, `SELECT email, is_primary, verified FROM user_emails WHERE user_id = $1`, id); len(got) != 1 ||
		!strings.Contains(got[0], "email="+second) {
		t.Errorf("addresses: got %v, want only %s", got, second)
	}

	env.wantEvents(t, id, map[string]int{
		audit.AccountCreate: 1, audit.LoginSuccess: 1, audit.EmailVerified: 2, audit.EmailAdd: 1,
		audit.EmailReverify: 2, audit.EmailPrimaryChange: 1, audit.EmailRemove: 1,
	})
	// Every email sent is recorded once: 4 verification emails, the
	// new-address notice and the primary-change notice.
	acctWaitEvents(t, env, id, audit.EmailSent, 6)

	// The security history shows the events, newest first.
	page = b.get(t, "/manage/account/history/")
	acctWant(t, page, 200, "Security history", "Primary email changed from "+first+" to "+second,
		"Email address removed: "+first, "Firefox on Linux")
}

// Scenario 1, the resend limit: the verification sent at registration is
// one of the three.
func acctResendLimit(t *testing.T, env *acctEnv) {
	b := env.browser(acctChrome)
	id := b.mustRegister(t, "faye", "faye-registers-2day!")
	addr := "faye@example.com"
	env.mail.take(t, addr, "Email verification")
	emailID := env.queryInt(t, `SELECT id FROM user_emails WHERE user_id = $1`, id)
	form := url.Values{"email_id": {strconv.FormatInt(emailID, 10)}}
	for i := 0; i < 2; i++ {
		r := b.post(t, "/manage/account/emails/resend/", form)
		acctWantRedirect(t, r, "/manage/account/")
		env.mail.take(t, addr, "Email verification")
	}
	r := b.post(t, "/manage/account/emails/resend/", form)
	acctWant(t, r, http.StatusTooManyRequests, "Too many incomplete attempts to verify email address(es) for faye.")
	acctWantRetryAfter(t, r, 6*time.Hour)
	env.noMail(t, addr)
	if n := env.outboxTo(t, addr, "verify-email"); n != 3 {
		t.Errorf("%d verification emails queued, want 3", n)
	}
	env.wantEvents(t, id, map[string]int{audit.EmailReverify: 2})
}

// acctWantRetryAfter checks a 429's Retry-After: whole seconds, more than
// zero, at most the limit's window.
func acctWantRetryAfter(t *testing.T, r *acctResp, window time.Duration) {
	t.Helper()
	ra := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n <= 0 || time.Duration(n)*time.Second > window {
		t.Errorf("%s %s: Retry-After %q, want whole seconds in (0, %v]", r.Method, r.Path, ra, window)
	}
}

// Scenario 2: logout is POST only and ends the session on the server.
func acctLoginLogout(t *testing.T, env *acctEnv) {
	b := env.browser(acctFirefox)
	pw := "gus-has-a-good-password"
	id := b.mustRegisterVerified(t, "gus", pw)

	// A GET (a link, an image) cannot log anyone out.
	r := b.get(t, "/account/logout/")
	if r.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /account/logout/: got %d, want 405", r.Code)
	}
	if !b.signedIn(t) {
		t.Fatal("GET /account/logout/ ended the session")
	}

	cookie := b.session()
	r = b.post(t, "/account/logout/", nil)
	acctWantRedirect(t, r, "/")
	acctWant(t, b.follow(t, r), 200, "You are now logged out.")
	if b.signedIn(t) {
		t.Fatal("still signed in after logging out")
	}
	// The old cookie, replayed, is worthless: the session is gone from the
	// server, not just from the browser.
	replay := env.browser(acctFirefox)
	replay.setSession(cookie)
	if replay.signedIn(t) {
		t.Fatal("the session cookie still works after logout")
	}
	if n := env.queryInt(t, `SELECT count(*) FROM sessions WHERE id_hash = $1`, session.Hash(cookie)); n != 0 {
		t.Errorf("the session row survived logout")
	}

	// Wrong password, then the right one.
	acctWant(t, b.login(t, "gus", "not-gus-password"), 400, "The username or password is invalid. Try again.")
	b.mustLogin(t, "gus", pw)
	env.wantEvents(t, id, map[string]int{audit.LoginSuccess: 2, audit.LoginFailure: 1})
}

// Scenario 2: the sessions list, "End", "Log out all other sessions", and
// a password change ending every other session.
func acctPasswordChangeSessions(t *testing.T, env *acctEnv) {
	pw, pw2 := "hana-first-password", "hana-second-password"
	b1 := env.browser(acctFirefox)
	id := b1.mustRegisterVerified(t, "hana", pw)
	b2, b3 := env.browser(acctChrome), env.browser(acctSafari)
	b2.mustLogin(t, "hana", pw)
	b3.mustLogin(t, "hana", pw)

	// Every browser is listed, this one marked, on the two-factor and
	// sessions page.
	page := b1.get(t, "/manage/account/two-factor/")
	acctWant(t, page, 200, "Firefox on Linux", "Chrome on Windows", "Safari on iOS", b2.ip, b3.ip, "Log out all other sessions")
	if n := strings.Count(page.Body, `<span class="badge ok">this browser</span>`); n != 1 {
		t.Errorf("%d sessions marked \"this browser\", want 1", n)
	}
	h3 := session.Hash(b3.session())
	if !strings.Contains(page.Body, `name="session" value="`+h3+`"`) {
		t.Fatalf("the sessions list offers no End button for the Safari session")
	}
	if strings.Contains(page.Body, `name="session" value="`+session.Hash(b1.session())+`"`) {
		t.Errorf("the sessions list offers to end the current session with End")
	}

	// End one.
	r := b1.post(t, "/manage/account/sessions/end/", url.Values{"session": {h3}})
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, b1.follow(t, r), 200, "Session ended.")
	if b3.signedIn(t) {
		t.Fatal("the ended session still works")
	}
	if !b2.signedIn(t) || !b1.signedIn(t) {
		t.Fatal("ending one session ended another")
	}

	// Log out all the others.
	b3.mustLogin(t, "hana", pw)
	r = b1.post(t, "/manage/account/sessions/end-others/", nil)
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, b1.follow(t, r), 200, "2 other session(s) ended.")
	if b2.signedIn(t) || b3.signedIn(t) {
		t.Fatal("other sessions survived \"Log out all other sessions\"")
	}
	if !b1.signedIn(t) {
		t.Fatal("\"Log out all other sessions\" ended the current one")
	}

	// A password change: the wrong current password is refused; the right
	// one changes it, gives this browser a new session id and ends the
	// session of the other browser, which was signed in before.
	b2.mustLogin(t, "hana", pw)
	change := url.Values{"current_password": {"hana-wrong-password"}, "password": {pw2}, "password_confirm": {pw2}}
	acctWant(t, b1.post(t, "/manage/account/password/", change), 400, "The password is invalid. Try again.")
	env.secrets.add("wrong password", "hana-wrong-password")
	before := b1.session()
	change.Set("current_password", pw)
	env.secrets.add("password of hana", pw2)
	r = b1.post(t, "/manage/account/password/", change)
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, b1.follow(t, r), 200, "Password changed. Every other session has been logged out.")
	if b1.session() == before || b1.session() == "" {
		t.Errorf("the session id did not change with the password")
	}
	if b2.signedIn(t) {
		t.Fatal("the other browser is still signed in after the password change")
	}
	if !b1.signedIn(t) {
		t.Fatal("the browser that changed the password was signed out")
	}
	m := env.mail.take(t, "hana@example.com", "Password change notification")
	if strings.Contains(m.Text, pw2) || strings.Contains(m.Text, "token=") {
		t.Errorf("the password-change notice holds the password or a link:\n%s", m.Text)
	}
	acctWant(t, b2.login(t, "hana", pw), 400, "The username or password is invalid. Try again.")
	b2.mustLogin(t, "hana", pw2)

	env.wantEvents(t, id, map[string]int{
		audit.PasswordChange: 1, audit.ReauthFailure: 1, audit.SessionRevoked: 2, audit.LoginFailure: 1,
		audit.LoginSuccess: 6, // registration, b2, b3, b3, b2, b2
	})
}

// Scenario 3: password reset (spec E1, E2, E4, A6).
func acctPasswordReset(t *testing.T, env *acctEnv) {
	pw, pw2, pw3 := "ivan-old-password", "ivan-new-password", "ivan-third-password"
	b := env.browser(acctFirefox)
	id := b.mustRegisterVerified(t, "ivan", pw)
	other := env.browser(acctChrome)
	other.mustLogin(t, "ivan", pw)

	resets := func() int64 {
		return env.queryInt(t, `SELECT count(*) FROM outbox WHERE template IN ('password-reset', 'password-reset-unverified')`)
	}
	// An existing and an unknown account get the same answer: status,
	// location, cookie names, and the page after the redirect.
	existing, unknown := env.browser(acctSafari), env.browser(acctSafari)
	rE := existing.post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"ivan"}})
	queued := resets()
	rU := unknown.post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"nobody-like-ivan"}})
	acctSameAnswer(t, rE, rU, "", "")
	acctSameAnswer(t, existing.follow(t, rE), unknown.follow(t, rU), "", "")
	if resets() != queued {
		t.Errorf("a reset request for an unknown account queued an email")
	}
	m := env.mail.take(t, "ivan@example.com", "Password reset request")
	link := acctLink(t, env, m, "/account/reset-password/")

	// The person follows the link in the browser they asked from.
	page := existing.get(t, link)
	acctWant(t, page, 200, "Choose a new password", "For the account <strong>ivan</strong>.")
	tok := acctFormValue(t, page.Body, `action="/account/reset-password/"`, "token")
	acctWant(t, existing.post(t, "/account/reset-password/", url.Values{"token": {tok}, "password": {pw2}, "password_confirm": {pw3}}),
		400, "Your passwords don't match. Try again.")
	env.secrets.add("password of ivan", pw2)
	env.secrets.add("mistyped confirmation", pw3)
	r := existing.post(t, "/account/reset-password/", url.Values{"token": {tok}, "password": {pw2}, "password_confirm": {pw2}})
	acctWantRedirect(t, r, "/account/login/")
	acctWant(t, existing.follow(t, r), 200, "Your password has been reset. Log in with your new password.")
	// A reset does not sign in (spec E2), and it ends every session.
	if existing.signedIn(t) {
		t.Error("the reset signed the visitor in")
	}
	if b.signedIn(t) || other.signedIn(t) {
		t.Fatal("sessions from before the reset still work")
	}
	env.mail.take(t, "ivan@example.com", "Password change notification")
	acctWant(t, existing.login(t, "ivan", pw), 400, "The username or password is invalid. Try again.")

	// The link works once.
	r = env.browser(acctFirefox).get(t, link)
	acctWantRedirect(t, r, "/account/request-password-reset/")
	fresh := env.browser(acctFirefox)
	acctWant(t, fresh.follow(t, fresh.get(t, link)), 200, "This password reset link has already been used. Request a new one.")
	acctWant(t, fresh.post(t, "/account/reset-password/", url.Values{"token": {tok}, "password": {pw3}, "password_confirm": {pw3}}),
		400, "This password reset link has already been used. Request a new one.")

	// Spec E4: a request whose Host and X-Forwarded-Host name another site
	// still gets a link to the configured base URL.
	r = env.browser(acctSafari).do(t, http.MethodPost, "/account/request-password-reset/",
		url.Values{"username_or_email": {"ivan@example.com"}},
		map[string]string{"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
	acctWantRedirect(t, r, "/account/login/")
	m = env.mail.take(t, "ivan@example.com", "Password reset request")
	if strings.Contains(m.Text+m.HTML, "evil.example") {
		t.Errorf("the reset email names the Host header's site:\n%s", m.Text)
	}
	link2 := acctLink(t, env, m, "/account/reset-password/")

	// A link dies when the user logs in after it was sent.
	b.mustLogin(t, "ivan", pw2)
	r = fresh.get(t, link2)
	acctWantRedirect(t, r, "/account/request-password-reset/")
	acctWant(t, fresh.follow(t, r), 200, "This password reset link is no longer valid because you have logged in since it was sent.")

	// … and when the password is changed elsewhere after it was sent.
	acctWantRedirect(t, env.browser(acctSafari).post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"ivan"}}), "/account/login/")
	link3 := acctLink(t, env, env.mail.take(t, "ivan@example.com", "Password reset request"), "/account/reset-password/")
	env.secrets.add("password of ivan", pw3)
	r = b.post(t, "/manage/account/password/", url.Values{"current_password": {pw2}, "password": {pw3}, "password_confirm": {pw3}})
	acctWantRedirect(t, r, "/manage/account/")
	env.mail.take(t, "ivan@example.com", "Password change notification")
	acctWant(t, fresh.follow(t, fresh.get(t, link3)), 200,
		"This password reset link is no longer valid because your password has been changed since it was sent.")

	// A verification token is no reset token (and is not used up by the
	// attempt).
	r = b.post(t, "/manage/account/emails/add/", url.Values{"email": {"ivan.alt@example.org"}})
	acctWantRedirect(t, r, "/manage/account/")
	env.mail.take(t, "ivan@example.com", "has been added to your account")
	vlink := acctLink(t, env, env.mail.take(t, "ivan.alt@example.org", "Email verification"), "/account/verify-email/")
	vtok := strings.TrimPrefix(vlink, env.base+"/account/verify-email/?token=")
	acctWant(t, fresh.follow(t, fresh.get(t, "/account/reset-password/?token="+vtok)), 200, "Invalid password reset link. Request a new one.")
	acctWant(t, fresh.post(t, "/account/reset-password/", url.Values{"token": {vtok}, "password": {pw2}, "password_confirm": {pw2}}),
		400, "Invalid password reset link. Request a new one.")
	acctWant(t, b.follow(t, b.get(t, vlink)), 200, "Email address ivan.alt@example.org verified.")

	// An unverified primary address gets a note without a link, and the
	// visitor sees the usual answer.
	jb := env.browser(acctChrome)
	jid := jb.mustRegister(t, "jill", "jill-never-verifies")
	env.mail.take(t, "jill@example.com", "Email verification")
	v := env.browser(acctSafari)
	rJ := v.post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"jill"}})
	acctSameAnswer(t, rJ, rU, "", "")
	note := env.mail.take(t, "jill@example.com", "Password reset requested for unverified email")
	if strings.Contains(note.Text+note.HTML, "/account/reset-password/") || strings.Contains(note.Text, "token=") {
		t.Errorf("the note to an unverified address carries a reset link:\n%s", note.Text)
	}

	env.wantEvents(t, id, map[string]int{
		audit.PasswordResetRequest: 3, audit.PasswordReset: 1, audit.PasswordChange: 1, audit.EmailVerified: 2,
	})
	env.wantEvents(t, jid, map[string]int{audit.PasswordResetAttempt: 1, audit.PasswordResetRequest: 0})
}

// acctSection returns the <section> of the page that holds marker.
func acctSection(t *testing.T, page, marker string) string {
	t.Helper()
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("the page lacks %q", marker)
	}
	start := strings.LastIndex(page[:i], "<section")
	end := strings.Index(page[i:], "</section>")
	if start < 0 || end < 0 {
		t.Fatalf("%q is not inside a <section>", marker)
	}
	return page[start : i+end]
}

// acctSameAnswer fails t unless two answers have the same status,
// location, Set-Cookie names and body (with name1 in a's body and name2 in
// b's replaced).
func acctSameAnswer(t *testing.T, a, b *acctResp, name1, name2 string) {
	t.Helper()
	if a.Code != b.Code || a.loc() != b.loc() {
		t.Errorf("answers differ: %d to %q vs %d to %q", a.Code, a.loc(), b.Code, b.loc())
	}
	names := func(r *acctResp) string {
		var n []string
		for _, c := range r.Cookie {
			n = append(n, c.Name)
		}
		return strings.Join(n, ",")
	}
	if names(a) != names(b) {
		t.Errorf("Set-Cookie names differ: %q vs %q", names(a), names(b))
	}
	ba, bb := a.Body, b.Body
	if name1 != "" {
		ba, bb = strings.ReplaceAll(ba, name1, "NAME"), strings.ReplaceAll(bb, name2, "NAME")
	}
	if ba != bb {
		t.Errorf("bodies differ:\n%s\n---\n%s", ba, bb)
	}
}

// Scenario 4 (spec D4): sensitive changes with a password entered more than
// 30 minutes ago go through the password prompt first.
func acctSudoMode(t *testing.T, env *acctEnv) {
	pw := "kim-sudo-password"
	b := env.browser(acctFirefox)
	id := b.mustRegisterVerified(t, "kim", pw)
	stale := func(age time.Duration) {
		if n := env.exec(t, `UPDATE sessions SET reauth_at = $1 WHERE user_id = $2`, time.Now().UTC().Add(-age), id); n != 1 {
			t.Fatalf("updated %d sessions, want 1", n)
		}
	}
	hash := env.queryString(t, `SELECT password_hash FROM users WHERE id = $1`, id)
	emails := func() int64 { return env.queryInt(t, `SELECT count(*) FROM user_emails WHERE user_id = $1`, id) }
	fromAccount := map[string]string{"Referer": env.base + "/manage/account/"}
	reauth := "/account/reauthenticate/?next=" + url.QueryEscape("/manage/account/")

	stale(31 * time.Minute)
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/manage/account/emails/add/", url.Values{"email": {"kim.two@example.org"}}},
		{"/manage/account/password/", url.Values{"current_password": {pw}, "password": {"kim-next-password"}, "password_confirm": {"kim-next-password"}}},
		{"/manage/account/delete/", url.Values{"confirm_username": {"kim"}, "password": {pw}}},
	} {
		r := b.do(t, http.MethodPost, c.path, c.form, fromAccount)
		acctWantRedirect(t, r, reauth)
	}
	env.secrets.add("password not set", "kim-next-password")
	if emails() != 1 || env.queryString(t, `SELECT password_hash FROM users WHERE id = $1`, id) != hash {
		t.Fatal("a sensitive change went through without re-authentication")
	}
	r := b.get(t, "/manage/account/delete/")
	acctWantRedirect(t, r, "/account/reauthenticate/?next="+url.QueryEscape("/manage/account/delete/"))

	// The prompt: a wrong password is refused, the right one goes on.
	page := b.follow(t, r)
	acctWant(t, page, 200, "Confirm your password", "Confirm your password to continue.")
	next := acctFormValue(t, page.Body, `action="/account/reauthenticate/"`, "next")
	acctWant(t, b.post(t, "/account/reauthenticate/", url.Values{"password": {"kim-wrong-password"}, "next": {next}}),
		400, "The password is invalid. Try again.")
	env.secrets.add("wrong password", "kim-wrong-password")
	r = b.post(t, "/account/reauthenticate/", url.Values{"password": {pw}, "next": {next}})
	acctWantRedirect(t, r, "/manage/account/delete/")
	acctWant(t, b.follow(t, r), 200, "Delete your account")

	r = b.post(t, "/manage/account/emails/add/", url.Values{"email": {"kim.two@example.org"}})
	acctWantRedirect(t, r, "/manage/account/")
	if emails() != 2 {
		t.Fatal("the address was not added after re-authentication")
	}
	// 29 minutes is recent enough.
	stale(29 * time.Minute)
	twoID := env.queryInt(t, `SELECT id FROM user_emails WHERE email = 'kim.two@example.org'`)
	r = b.do(t, http.MethodPost, "/manage/account/emails/remove/", url.Values{"email_id": {strconv.FormatInt(twoID, 10)}}, fromAccount)
	acctWantRedirect(t, r, "/manage/account/")
	if emails() != 1 {
		t.Fatal("the address was not removed with a 29-minute-old password")
	}
	env.wantEvents(t, id, map[string]int{audit.ReauthFailure: 1, audit.EmailAdd: 1, audit.EmailRemove: 1, audit.PasswordChange: 0, audit.AccountDelete: 0})
}

// Scenario 5: account deletion is refused while the user is a project's
// only owner, and allowed otherwise; the audit trail stays.
func acctDeletion(t *testing.T, env *acctEnv) {
	pw := "lena-deletes-her-account"
	b := env.browser(acctFirefox)
	id := b.mustRegisterVerified(t, "lena", pw)
	tok := env.token(t, "lena", "ci")
	now := time.Now().UTC()
	pid := env.queryInt(t, `INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ('lena-proj', 'lena-proj', 'lenaproj', $1) RETURNING id`, now)
	env.exec(t, `INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, pid, id)

	form := url.Values{"confirm_username": {"lena"}, "password": {pw}}
	acctWant(t, b.post(t, "/manage/account/delete/", url.Values{"confirm_username": {"Lena2"}, "password": {pw}}), 400,
		"Type your username exactly to confirm.")
	acctWant(t, b.post(t, "/manage/account/delete/", form), http.StatusConflict,
		"Cannot delete account with active project ownerships. Transfer or delete these projects first: lena-proj")
	if env.queryInt(t, `SELECT count(*) FROM users WHERE id = $1`, id) != 1 {
		t.Fatal("the account was deleted while the only owner of a project")
	}

	// With a second owner the account can go.
	env.createUser(t, "mona")
	env.exec(t, `INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, pid, env.userID(t, "mona"))
	r := b.post(t, "/manage/account/delete/", form)
	acctWantRedirect(t, r, "/")
	acctWant(t, b.follow(t, r), 200, "Your account has been deleted.")
	if b.signedIn(t) {
		t.Fatal("still signed in after deleting the account")
	}
	env.mail.take(t, "lena@example.com", "Account deletion notification")
	for _, q := range []string{`SELECT count(*) FROM users WHERE id = $1`, `SELECT count(*) FROM sessions WHERE user_id = $1`,
		`SELECT count(*) FROM user_emails WHERE user_id = $1`, `SELECT count(*) FROM api_tokens WHERE user_id = $1`,
		`SELECT count(*) FROM roles WHERE user_id = $1`} {
		if n := env.queryInt(t, q, id); n != 0 {
			t.Errorf("%s: %d rows left", q, n)
		}
	}
	acctWant(t, env.browser(acctFirefox).login(t, "lena", pw), 400, "The username or password is invalid. Try again.")
	// Her API token died with the account.
	rep := env.upload(t, tok, e2eWheelForm("lena-proj", "1.0", e2eWheelName("lena-proj", "1.0"),
		e2eWheel(t, "lena-proj", "1.0", e2eMetadata("lena-proj", "1.0"))))
	if rep.code != http.StatusForbidden || !strings.Contains(rep.status, "Invalid or non-existent authentication information") {
		t.Errorf("upload with a deleted account's token: got %q, want 403 Invalid or non-existent authentication information", rep.status)
	}
	// The audit trail outlives the account.
	env.wantEvents(t, id, map[string]int{audit.AccountCreate: 1, audit.EmailVerified: 1, audit.AccountDelete: 1})
}

// Scenario 6: administration, on a server of its own (the site switches
// are global).
func TestE2EAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{})
			acctAdminScenario(t, env)
			acctNoSecretsLeaked(t, env)
		})
	}
}

func acctAdminScenario(t *testing.T, env *acctEnv) {
	adminPW := "root-admin-passphrase"
	env.createAdmin(t, "root", adminPW)
	rootID := env.userID(t, "root")

	bobPW := "bob-is-not-an-admin"
	bob := env.browser(acctChrome)
	bobID := bob.mustRegisterVerified(t, "bob", bobPW)
	// Uploads need a second factor; bob gets one in the database (the
	// browser flows that enrol factors are tested elsewhere). His session
	// from registration stays signed in.
	env.giveSecondFactor(t, "bob")
	bobTok := env.token(t, "bob", "laptop")
	wheel := func(version string) e2eForm {
		return e2eWheelForm("bob-proj", version, e2eWheelName("bob-proj", version), e2eWheel(t, "bob-proj", version, e2eMetadata("bob-proj", version)))
	}
	env.mustUpload(t, bobTok, wheel("1.0"))

	// Admin pages do not exist for anyone else.
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, c := range []struct{ method, path string }{
		{"GET", "/admin/"}, {"GET", "/admin/?q=root"}, {"GET", "/admin/users/" + id(rootID) + "/"},
		{"POST", "/admin/users/" + id(rootID) + "/disable/"}, {"POST", "/admin/users/" + id(bobID) + "/enable/"},
		{"POST", "/admin/settings/"},
	} {
		var form url.Values
		if c.method == "POST" {
			form = url.Values{"setting": {"read_only"}, "value": {"on"}, "reason": {"x"}}
		}
		acctWant(t, bob.do(t, c.method, c.path, form, nil), 404, "There is no page at this address.")
	}
	if strings.Contains(bob.get(t, "/manage/account/").Body, `href="/admin/"`) {
		t.Error("the header links to the admin pages for a non-admin")
	}
	acctWantRedirect(t, env.browser(acctFirefox).get(t, "/admin/"), "/account/login/")
	if env.queryInt(t, `SELECT count(*) FROM site_settings`) != 0 || env.queryInt(t, `SELECT count(*) FROM users WHERE disabled`) != 0 {
		t.Fatal("a non-admin changed a setting or an account")
	}

	admin := env.browser(acctFirefox)
	admin.mustLogin(t, "root", adminPW)
	// Admin pages need what management needs: a verified address and a
	// second factor.
	r := admin.get(t, "/admin/")
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, admin.follow(t, r), 200, "Two-factor authentication must be enabled on your account to perform this action.")
	// Once the app is added, back to the page the gate refused.
	admin.enrolTOTPBackTo(t, "/admin/")
	page := admin.get(t, "/admin/")
	acctWant(t, page, 200, "<h1>Administration</h1>", "/admin/users/"+id(bobID)+"/", "/admin/users/"+id(rootID)+"/",
		"Registration is <strong>open</strong>", "Read-only mode is <strong>off</strong>")
	// Search by username (any case) and by address.
	for _, q := range []string{"BOB", "bob@example"} {
		page = admin.get(t, "/admin/?q="+url.QueryEscape(q))
		acctWant(t, page, 200, "/admin/users/"+id(bobID)+"/")
		if strings.Contains(page.Body, "/admin/users/"+id(rootID)+"/") {
			t.Errorf("search %q lists root", q)
		}
	}
	acctWant(t, admin.get(t, "/admin/?q="+url.QueryEscape("%")), 200, "No users match.")

	// Disabling: bob's session and his API token stop at once.
	if !bob.signedIn(t) {
		t.Fatal("bob is not signed in")
	}
	r = admin.post(t, "/admin/users/"+id(bobID)+"/disable/", url.Values{"reason": {"spam uploads"}})
	acctWantRedirect(t, r, "/admin/users/"+id(bobID)+"/")
	acctWant(t, admin.follow(t, r), 200, "Disabled bob: every session and API token stopped working.", "spam uploads", "Enable this account")
	if bob.signedIn(t) {
		t.Fatal("a disabled user's session still works")
	}
	if rep := env.upload(t, bobTok, wheel("2.0")); rep.code != http.StatusForbidden ||
		!strings.Contains(rep.status, "Invalid or non-existent authentication information") {
		t.Fatalf("upload with a disabled user's token: got %q, want 403", rep.status)
	}
	acctWant(t, bob.login(t, "bob", bobPW), 403, "Your account has been disabled. Contact an administrator.")
	acctWant(t, bob.login(t, "bob", "bob-guesses-wrong"), 400, "The username or password is invalid. Try again.")

	r = admin.post(t, "/admin/users/"+id(bobID)+"/enable/", nil)
	acctWantRedirect(t, r, "/admin/users/"+id(bobID)+"/")
	acctWant(t, admin.follow(t, r), 200, "Enabled bob.")
	env.mustUpload(t, bobTok, wheel("2.0"))
	// His password is accepted again (the second step follows).
	acctWantRedirect(t, bob.login(t, "bob", bobPW), "/account/two-factor/")

	setting := func(name, value, want string) {
		t.Helper()
		r := admin.post(t, "/admin/settings/", url.Values{"setting": {name}, "value": {value}})
		acctWantRedirect(t, r, "/admin/")
		acctWant(t, admin.follow(t, r), 200, "Setting saved.", want)
	}

	// carl, signed in, for read-only mode below.
	carlPW := "carl-password-for-ro"
	carl := env.browser(acctFirefox)
	carlID := carl.mustRegisterVerified(t, "carl", carlPW)

	// Closed registration: the page says so and the form is refused.
	setting("registration", "closed", "Registration is <strong>closed</strong>")
	visitor := env.browser(acctSafari)
	page = visitor.get(t, "/account/register/")
	acctWant(t, page, 200, "Registration is closed on this index. Ask an administrator for an account.")
	if strings.Contains(page.Body, `action="/account/register/"`) {
		t.Error("the closed registration page still shows the form")
	}
	acctWant(t, visitor.register(t, "newbie", "newbie-password-1"), 403, "Registration is closed on this index.")
	if env.queryInt(t, `SELECT count(*) FROM users WHERE username_key = 'newbie'`) != 0 {
		t.Fatal("an account was created while registration was closed")
	}

	// Read-only mode: changes are refused, except signing in and out and
	// the switch itself; uploads are refused.
	setting("read_only", "on", "Read-only mode is <strong>on</strong>")
	const ro = "Read-only mode: changes are temporarily disabled. Try again later."
	acctWant(t, carl.post(t, "/manage/account/emails/add/", url.Values{"email": {"carl2@example.org"}}), 503, ro)
	acctWant(t, carl.post(t, "/manage/account/sessions/end-others/", nil), 503, ro)
	acctWant(t, visitor.post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"bob"}}), 503, ro)
	acctWant(t, visitor.register(t, "newbie", "newbie-password-1"), 503, ro)
	acctWant(t, admin.post(t, "/admin/users/"+id(bobID)+"/disable/", nil), 503, ro)
	if rep := env.upload(t, bobTok, wheel("3.0")); rep.code != http.StatusForbidden ||
		!strings.Contains(rep.status, "Read-only mode: Uploads are temporarily disabled.") {
		t.Fatalf("upload in read-only mode: got %q, want 403 Read-only mode: Uploads are temporarily disabled.", rep.status)
	}
	acctWantRedirect(t, carl.post(t, "/account/logout/", nil), "/")
	carl.mustLogin(t, "carl", carlPW)
	if n := env.queryInt(t, `SELECT count(*) FROM user_emails WHERE user_id = $1`, carlID); n != 1 {
		t.Errorf("carl has %d addresses after read-only refusals, want 1", n)
	}
	setting("read_only", "off", "Read-only mode is <strong>off</strong>")
	env.mustUpload(t, bobTok, wheel("3.0"))
	setting("registration", "open", "Registration is <strong>open</strong>")
	visitor.mustRegister(t, "newbie", "newbie-password-1")

	env.wantEvents(t, bobID, map[string]int{audit.AdminUserDisabled: 1, audit.AdminUserEnabled: 1})
	if got := env.rows(t, `SELECT tag, actor FROM events WHERE user_id IS NULL AND project_id IS NULL ORDER BY id`); fmt.Sprint(got) !=
		"[tag=admin:registration:changed | actor=root tag=admin:read_only:changed | actor=root tag=admin:read_only:changed | actor=root tag=admin:registration:changed | actor=root]" {
		t.Errorf("site events: got %v", got)
	}
}
