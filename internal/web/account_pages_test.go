package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestAccountPagesSplit: the account settings, two-factor and sessions,
// API tokens and security history are four pages that link to each other,
// and the settings page no longer carries sessions, browsers or history.
func TestAccountPagesSplit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		b := f.signInAs(t, f.alice)
		nav := []string{`>Account settings</a>`, `href="/manage/account/two-factor/"`, `href="/manage/account/token/"`, `href="/manage/account/history/"`}
		for _, p := range []struct{ path, current string }{
			{"/manage/account/", "Account settings"}, {"/manage/account/two-factor/", "Two-factor and sessions"},
			{"/manage/account/token/", "API tokens"}, {"/manage/account/history/", "Security history"},
		} {
			r := b.get(t, p.path)
			wantPage(t, p.path, r, 200, nav...)
			if !strings.Contains(r.body, `aria-current="page">`+p.current+`</a>`) {
				t.Errorf("%s: the navigation does not mark %q as the current page", p.path, p.current)
			}
		}
		settings := b.get(t, "/manage/account/")
		for _, gone := range []string{"Active sessions", "Recognized browsers", "Security history</h2>", "/manage/account/sessions/"} {
			if strings.Contains(settings.body, gone) {
				t.Errorf("the account settings page still holds %q", gone)
			}
		}
		wantPage(t, "two-factor", b.get(t, "/manage/account/two-factor/"), 200, "Recognized browsers", "Active sessions", "Authentication app")
	})
}

// TestSecurityHistoryPages: the history is paged, newest first, in plain
// words; a bad or missing page number is a 4xx that says where to go.
func TestSecurityHistoryPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		// One event older than 90 days, 120 events of alice, one a minute,
		// then the held recovery-code login and a confirmation link opened
		// elsewhere.
		if err := audit.Record(ctx, d, t0.Add(-91*24*time.Hour), audit.Event{UserID: f.alice, Tag: audit.EmailSent,
			Additional: map[string]any{"subject": "too old"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 120 {
			if err := audit.Record(ctx, d, t0.Add(time.Duration(i-200)*time.Minute), audit.Event{UserID: f.alice, Tag: audit.EmailSent,
				Additional: map[string]any{"to": "alice@example.com", "subject": "number " + strconv.Itoa(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range []audit.Event{
			{UserID: f.alice, Tag: audit.RecoveryCodeUsed},
			{UserID: f.alice, Tag: audit.LoginNewDevice, Additional: map[string]any{"two_factor_method": "recovery-code"}},
			{UserID: f.alice, Tag: audit.LoginFailure, Additional: map[string]any{"reason": "confirm_login_wrong_browser"}},
		} {
			if err := audit.Record(ctx, d, t0, e); err != nil {
				t.Fatal(err)
			}
		}
		b := f.signInAs(t, f.alice)

		first := b.get(t, "/manage/account/history/")
		wantPage(t, "page 1", first, 200, "number 119", "number 73", `href="/manage/account/history/?page=2"`,
			"Recovery code used to log in (it cannot be used again)",
			"Login with a recovery code from an unrecognized browser held until it is confirmed from the emailed link; not logged in yet",
			"Login confirmation link opened in a browser other than the one that logged in")
		if strings.Contains(first.body, "number 72") || strings.Contains(first.body, "Newer events") {
			t.Error("page 1 holds more than 50 events, or links to newer ones")
		}
		for _, internal := range []string{"confirm_login_wrong_browser", "recovery-code", "(totp)", "Logged in with a recovery code"} {
			if strings.Contains(first.body, internal) {
				t.Errorf("the history shows %q", internal)
			}
		}
		second := b.get(t, "/manage/account/history/?page=2")
		wantPage(t, "page 2", second, 200, "number 72", "number 23", `href="/manage/account/history/?page=1"`, `href="/manage/account/history/?page=3"`)
		third := b.get(t, "/manage/account/history/?page=3")
		wantPage(t, "page 3", third, 200, "number 22", "number 0<")
		if strings.Contains(third.body, "?page=4") || strings.Contains(third.body, "too old") {
			t.Error("page 3 links to a page 4, or shows an event older than 90 days")
		}
		wantPage(t, "page 4", b.get(t, "/manage/account/history/?page=4"), 404, "Your security history has no page 4.")
		for _, bad := range []string{"0", "-1", "two", "1e3", "99999999999"} {
			wantPage(t, "page "+bad, b.get(t, "/manage/account/history/?page="+url.QueryEscape(bad)), 400, "The page number must be a whole number, 1 or more")
		}
		// Without a second factor too: the history is the user's to read.
		if _, err := d.Exec(`DELETE FROM totp_secrets WHERE user_id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		wantPage(t, "without 2FA", b.get(t, "/manage/account/history/"), 200, "number 119")
	})
}

var (
	recoveryCodeRE = regexp.MustCompile(`<li><code>([0-9a-f]{16})</code></li>`)
	totpSecretRE   = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
)

// TestGateSendsBackAfterTheFix: refused by the management gate for want of
// a second factor, a user sets one up on the page the gate sent them to
// and lands back on the page they tried. A next that leaves the site is
// ignored.
func TestGateSendsBackAfterTheFix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if _, err := d.Exec(`DELETE FROM totp_secrets WHERE user_id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		b := f.signInAs(t, f.alice)
		r := b.get(t, "/manage/account/token/")
		wantRedirect(t, "the gate", r, "/manage/account/two-factor/?next=%2Fmanage%2Faccount%2Ftoken%2F")
		wantPage(t, "the two-factor page", b.get(t, r.loc), 200, "Two-factor authentication must be enabled on your account to perform this action.",
			`id="next-notice"`, "(/manage/account/token/)")

		codes := b.post(t, "/manage/account/recovery-codes/generate/", nil)
		m := recoveryCodeRE.FindAllStringSubmatch(codes.body, -1)
		if len(m) != 8 {
			t.Fatalf("%d recovery codes, want 8", len(m))
		}
		wantRedirect(t, "confirm codes", b.post(t, "/manage/account/recovery-codes/confirm/", url.Values{"recovery_code_value": {m[0][1]}}), "/manage/account/two-factor/")
		wantPage(t, "still remembered between the steps", b.get(t, "/manage/account/two-factor/"), 200, "(/manage/account/token/)")
		prov := b.get(t, "/manage/account/totp-provision/")
		sec := totpSecretRE.FindStringSubmatch(prov.body)
		if sec == nil {
			t.Fatalf("no secret on the provisioning page:\n%s", prov.body)
		}
		code, err := totp.GenerateCode(sec[1], f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantRedirect(t, "app added", b.post(t, "/manage/account/totp-provision/", url.Values{"totp_value": {code}}), "/manage/account/token/")
		wantPage(t, "back where she was", b.get(t, "/manage/account/token/"), 200, "Authentication app added.", "<h1>API tokens</h1>")
		if n := b.get(t, "/manage/account/two-factor/"); strings.Contains(n.body, `id="next-notice"`) {
			t.Error("the next page is still remembered after it was used")
		}

		// A foreign or odd next is not kept.
		for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
			b.get(t, "/manage/account/two-factor/?next="+url.QueryEscape(next))
			if r := b.get(t, "/manage/account/two-factor/"); strings.Contains(r.body, `id="next-notice"`) {
				t.Errorf("next=%q was kept", next)
			}
		}
	})
}

// TestUnverifiedPageKeepsNext: the gate's other fix-it page remembers
// next, and sends a user whose address is verified by then straight on.
func TestUnverifiedPageKeepsNext(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if _, err := d.Exec(`UPDATE user_emails SET verified = FALSE WHERE user_id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		b := f.signInAs(t, f.alice)
		r := b.get(t, "/manage/account/token/")
		wantRedirect(t, "the gate", r, "/manage/unverified-account/?next=%2Fmanage%2Faccount%2Ftoken%2F")
		wantPage(t, "the unverified page", b.get(t, r.loc), 200, `id="next-notice"`, "(/manage/account/token/)")
		if _, err := d.Exec(`UPDATE user_emails SET verified = TRUE WHERE user_id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		wantRedirect(t, "verified meanwhile", b.get(t, "/manage/unverified-account/"), "/manage/account/token/")
		wantRedirect(t, "and only once", b.get(t, "/manage/unverified-account/"), "/manage/account/")
	})
}

// TestRemoveAuthenticationAppNeedsTheUsername: removing the app is
// confirmed by typing something, as removing a key is; without it nothing
// is removed.
func TestRemoveAuthenticationAppNeedsTheUsername(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		// A second factor besides the app, so that the app may go.
		if _, err := d.Exec(`INSERT INTO webauthn_credentials (user_id, label, label_key, credential_id, credential_json, created_at)
			VALUES ($1, 'YubiKey', 'yubikey', 'cred-1', '{}', $2)`, f.alice, t0); err != nil {
			t.Fatal(err)
		}
		b := f.signInAs(t, f.alice)
		wantPage(t, "the page", b.get(t, "/manage/account/two-factor/"), 200, `name="confirm_username"`, "Type your username, “alice”, to remove the authentication app")
		for _, typed := range []string{"", "Alice", "bob"} {
			r := b.post(t, "/manage/account/totp/remove/", url.Values{"confirm_username": {typed}})
			wantPage(t, "typed "+typed, r, 400, "Type your username exactly to confirm removing the authentication app.")
		}
		if n := f.count(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, f.alice); n != 1 {
			t.Fatal("the app was removed without the username typed")
		}
		wantRedirect(t, "typed alice", b.post(t, "/manage/account/totp/remove/", url.Values{"confirm_username": {"alice"}}), "/manage/account/two-factor/")
		if n := f.count(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, f.alice); n != 0 {
			t.Error("the app is still there")
		}
	})
}

// TestProjectTokensPartial: the rows and the template the project settings
// page includes list exactly the tokens that can upload to the project.
func TestProjectTokensPartial(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "alpha", Version: "1.0"}))
		f.mustUpload(t, wheel(t, meta{Name: "beta", Version: "1.0"}))
		f.mintToken(t, f.alice, "alpha")
		f.mintToken(t, f.alice, "beta")
		bob := addUser(t, d, "bob")
		f.mintToken(t, bob) // bob has no role on alpha
		alpha, err := f.projects.Get(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "/", nil)
		rows, err := f.srv.projectTokens(req, alpha.ID)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := f.srv.templates["tokens.html"].ExecuteTemplate(&buf, "project_tokens", rows); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"API tokens that can upload", "test token " + strconv.FormatInt(f.alice, 10) + " []", "Whole account (all projects, and new ones)",
			"test token " + strconv.FormatInt(f.alice, 10) + " [alpha]", "Project alpha"} {
			if !strings.Contains(out, want) {
				t.Errorf("the partial lacks %q:\n%s", want, out)
			}
		}
		for _, not := range []string{"[beta]", "bob"} {
			if strings.Contains(out, not) {
				t.Errorf("the partial lists a token that cannot upload to alpha (%q):\n%s", not, out)
			}
		}
	})
}
