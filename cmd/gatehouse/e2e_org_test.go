package main

// End to end, on SQLite and PostgreSQL, an organization run from the
// browser: alice requests "Acme", an administrator approves it, alice
// creates a project in it and a team, invites bob by email, bob accepts,
// joins the team, which holds the Maintainer role on the project, and
// uploads with Debian's twine and a token scoped to the project. Off the
// team, the same token is refused. With the "security keys only" policy on,
// bob (who has only an authentication app) is refused with the policy's
// message, in the browser and by twine; he adds a security key in headless
// Chromium (a virtual authenticator), and the same upload works. With
// "trusted publishing only" on, his long-lived token is refused.

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

var (
	orgApproveRE = regexp.MustCompile(`action="/admin/organizations/([0-9]+)/approve/"`)
	orgTeamIDRE  = regexp.MustCompile(`name="team_id" value="([0-9]+)"`)
)

func TestE2EOrganizations(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	tools := e2eTools(t)
	mfaOathtool(t)
	if _, err := os.Stat(acctChromium); err != nil {
		e2eSkipOrFail(t, "no Chromium at %s (apt-get install chromium): %v", acctChromium, err)
	}
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{})
			dir := ""
			if dialect == "sqlite" {
				dir = os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
			}
			orgScenario(t, env, tools, dir)
			acctNoSecretsLeaked(t, env)
		})
	}
}

func orgScenario(t *testing.T, env *acctEnv, tools e2eToolSet, shotDir string) {
	const project = "acme-widget"
	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	version := 0
	// twine uploads a new version of the project with the token.
	twine := func(tok string) (string, error) {
		version++
		v := "1." + string(rune('0'+version))
		path := filepath.Join(work, e2eWheelName(project, v))
		if err := os.WriteFile(path, e2eWheel(t, project, v, e2eMetadata(project, v)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", env.URL+"/legacy/",
			"-u", "__token__", "-p", tok, "--non-interactive", "--disable-progress-bar", path)
		return strings.Join(strings.Fields(out), " "), err
	}
	refused := func(tok, want string) {
		t.Helper()
		before := env.queryInt(t, `SELECT count(*) FROM files`)
		out, err := twine(tok)
		if err == nil {
			t.Fatalf("twine upload: exit 0, want a refusal containing %q\n%s", want, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("twine output:\n%s\nwant it to contain %q", out, want)
		}
		if after := env.queryInt(t, `SELECT count(*) FROM files`); after != before {
			t.Errorf("files: %d after the refused upload, want %d", after, before)
		}
	}
	accepted := func(tok, who string) {
		t.Helper()
		if out, err := twine(tok); err != nil {
			t.Fatalf("%s's twine upload: %v\n%s", who, err, out)
		}
	}

	// The administrator, and alice, each with an authentication app.
	root := mfaNewUser(t, env, "root", true, true)
	rb := env.browser(acctFirefox)
	rb.mustLogin(t, root.name, root.pw)
	root.enrol(t, rb)
	alice := mfaNewUser(t, env, "alice", true, false)
	ab := env.browser(acctFirefox)
	ab.mustLogin(t, alice.name, alice.pw)
	alice.enrol(t, ab)

	// 1. Alice requests Acme; the administrator approves it.
	r := ab.post(t, "/manage/organizations/", url.Values{"name": {"Acme"}, "description": {"Rockets and anvils"}})
	acctWantRedirect(t, r, "/manage/organizations/")
	acctWant(t, ab.follow(t, r), 200, "Your request for the organization Acme was sent to the administrators.")
	// The name is not hers yet; the same name again is refused.
	acctWant(t, ab.post(t, "/manage/organizations/", url.Values{"name": {"ACME"}}), 409, "taken by another organization")
	admin := rb.get(t, "/admin/organizations/")
	acctWant(t, admin, 200, "Acme", "Rockets and anvils")
	m := orgApproveRE.FindStringSubmatch(admin.Body)
	if m == nil {
		t.Fatalf("no approve form on the admin page:\n%s", admin.Body)
	}
	r = rb.post(t, "/admin/organizations/"+m[1]+"/approve/", nil)
	acctWantRedirect(t, r, "/admin/organizations/")
	acctWant(t, rb.follow(t, r), 200, "The organization Acme was approved")
	env.mail.take(t, alice.email, "Your request for the organization Acme was approved")

	// 2. A project in it, and a team.
	orgBase := "/manage/organization/acme/"
	r = ab.post(t, orgBase+"projects/", url.Values{"project_name": {project}})
	acctWantRedirect(t, r, orgBase+"projects/")
	acctWant(t, ab.follow(t, r), 200, "The project "+project+" was created in Acme.")
	r = ab.post(t, orgBase+"teams/", url.Values{"name": {"release"}})
	acctWantRedirect(t, r, orgBase+"teams/")
	teams := ab.follow(t, r)
	acctWant(t, teams, 200, "Team release created.")
	tm := orgTeamIDRE.FindStringSubmatch(teams.Body)
	if tm == nil {
		t.Fatalf("no team form:\n%s", teams.Body)
	}
	teamID := tm[1]

	// 3. Bob is invited by email and accepts.
	bob := mfaNewUser(t, env, "bob", true, false)
	r = ab.post(t, orgBase+"people/", url.Values{"username": {"bob"}, "role_name": {"Member"}})
	acctWantRedirect(t, r, orgBase+"people/")
	acctWant(t, ab.follow(t, r), 200, "Invitation sent to bob.")
	inv := env.mail.take(t, bob.email, "alice has invited you to join the Acme organization")
	var accept string
	for _, l := range inv.links() {
		if strings.HasPrefix(l, env.base+"/account/verify-organization-role/?token=") && !strings.HasSuffix(l, "&decline=1") {
			accept = l
		}
	}
	if accept == "" {
		t.Fatalf("invitation email: links %q\n%s", inv.links(), inv.Text)
	}
	tok, _ := url.Parse(accept)
	env.secrets.add("organization invitation token", tok.Query().Get("token"))
	bb := env.browser(acctChrome)
	bb.mustLogin(t, bob.name, bob.pw)
	bob.enrol(t, bb)
	acctWant(t, bb.get(t, accept), 200, "Invitation to Acme", "as <strong>Member</strong>")
	r = bb.post(t, "/account/verify-organization-role/", url.Values{"token": {tok.Query().Get("token")}, "action": {"accept"}})
	acctWantRedirect(t, r, "/manage/organizations/")
	acctWant(t, bb.follow(t, r), 200, "You are now Member of the organization Acme.")
	env.mail.take(t, alice.email, "A change in the organization Acme")
	env.mail.take(t, bob.email, "A change in the organization Acme")

	// A member cannot invite, let alone as an owner (the POST checks what
	// the page does).
	acctWant(t, bb.post(t, orgBase+"people/", url.Values{"username": {"root"}, "role_name": {"Owner"}}), 403, "Only an owner of the organization Acme")

	// 4. Bob joins the team, which holds Maintainer on the project; he
	// uploads with twine and a token for the project.
	r = ab.post(t, orgBase+"teams/members/", url.Values{"team_id": {teamID}, "username": {"bob"}})
	acctWantRedirect(t, r, orgBase+"teams/")
	acctWant(t, ab.follow(t, r), 200, "bob was added to the team.")
	r = ab.post(t, orgBase+"teams/projects/", url.Values{"team_id": {teamID}, "project_name": {project}, "role_name": {"Maintainer"}})
	acctWantRedirect(t, r, orgBase+"teams/")
	acctWant(t, ab.follow(t, r), 200, "The team is now Maintainer of "+project+".")
	bobToken := env.createToken(t, "bob", "bob's CI", project)
	env.secrets.add("API token bob's CI", bobToken)
	accepted(bobToken, "bob")
	acctWant(t, ab.get(t, "/project/"+project+"/"), 200, `<a href="/org/acme/">Acme</a>`)

	// 5. Off the team, his token is refused at once.
	bobID := bob.id
	r = ab.post(t, orgBase+"teams/members/remove/", url.Values{"team_id": {teamID}, "user_id": {strconv.FormatInt(bobID, 10)}})
	acctWantRedirect(t, r, orgBase+"teams/")
	refused(bobToken, "The user 'bob' isn't allowed to upload to project '"+project+"'.")

	// 6. Security keys only. Alice cannot require them before she has one
	// herself (she would lock herself out); she adds one in Chromium.
	acctWantRedirect(t, ab.post(t, orgBase+"teams/members/", url.Values{"team_id": {teamID}, "username": {"bob"}}), orgBase+"teams/")
	accepted(bobToken, "bob back on the team")
	acctWant(t, ab.post(t, orgBase+"settings/policies/", url.Values{"phishing_resistant": {"on"}}), 400,
		"Add a security key or passkey to your own account first")
	b := wabStartChrome(t, env, shotDir)
	b.plug(wabSecurityKey())
	orgAddKey(t, b, ab, "Alice's key", "/manage/account/two-factor/", "#f-h")
	env.mail.take(t, alice.email, "Two-factor method added")
	r = ab.post(t, orgBase+"settings/policies/", url.Values{"phishing_resistant": {"on"}})
	acctWantRedirect(t, r, orgBase+"settings/")
	acctWant(t, ab.follow(t, r), 200, "The security policies of Acme were saved.")
	for _, who := range []string{alice.email} {
		env.mail.take(t, who, "A change in the organization Acme")
	}

	// Bob, with only an authentication app, is refused by twine and in the
	// browser, with the policy's message and where to add a key, and can
	// still browse.
	policyMsg := "The organization Acme requires its members to use a security key or passkey for this, and your account has none. Add one at " + env.base + "/manage/account/two-factor/"
	refused(bobToken, policyMsg)
	r = bb.get(t, "/manage/project/"+project+"/releases/")
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	acctWant(t, bb.follow(t, r), 200, acctEscape(policyMsg))
	acctWant(t, bb.get(t, "/project/"+project+"/"), 200, project)

	// He adds a security key in Chromium, signed in with his session, and
	// lands back where the policy stopped him (the two-factor page kept
	// the address), which now opens. The same upload works.
	orgAddKey(t, b, bb, "Bob's key", "/manage/project/"+project+"/releases/", "main h1")
	b.wantText("main", project)
	env.mail.take(t, bob.email, "Two-factor method added")
	accepted(bobToken, "bob with a security key")

	// 7. Trusted publishing only: his long-lived token is refused.
	r = ab.post(t, orgBase+"settings/policies/", url.Values{"phishing_resistant": {"on"}, "trusted_publishing_only": {"on"}})
	acctWantRedirect(t, r, orgBase+"settings/")
	refused(bobToken, "Project '"+project+"' belongs to the organization Acme, which accepts uploads only from trusted publishers, not with API tokens.")

	// The history says it all in words, and every change was audited once.
	acctWant(t, ab.get(t, orgBase+"history/"), 200, "bob joined as Member", "bob added to team release by alice",
		"bob removed from team release by alice", "Team release given the Maintainer role on "+project+" by alice",
		"Organization policy “members must use a security key or passkey” turned on by alice",
		"Organization policy “uploads only from trusted publishers” turned on by alice")
	oid := env.queryInt(t, `SELECT id FROM organizations WHERE normalized_name = 'acme'`)
	for tag, n := range map[string]int{"organization:approve": 1, "organization:organization_role:invite": 1, "organization:organization_role:add": 2,
		"organization:team_role:add": 2, "organization:team_role:remove": 1, "organization:policy:phishing_resistant:enabled": 1,
		"organization:policy:trusted_publishing_only:enabled": 1} {
		if got := env.queryInt(t, `SELECT count(*) FROM events WHERE organization_id = $1 AND tag = $2`, oid, tag); got != int64(n) {
			t.Errorf("organization events %s: %d, want %d", tag, got, n)
		}
	}
	env.wantEvents(t, bob.id, map[string]int{"account:organization_role:invite": 1, "account:organization_role:add": 1,
		"account:team_role:add": 2, "account:team_role:remove": 1})

	// The owner's pages, at 1280 pixels and as a 390-pixel phone, which
	// must not scroll sideways; written to $GATEHOUSE_SCREENSHOT_DIR.
	if shotDir == "" {
		return
	}
	orgPlantSession(t, b, ab.session())
	for _, p := range []struct{ path, ready, name string }{
		{"/manage/organizations/", "#orgs-h", "organizations"},
		{orgBase + "projects/", "main h2", "organization-projects"},
		{orgBase + "people/", "#people-h", "organization-people"},
		{orgBase + "teams/", "main h2", "organization-teams"},
		{orgBase + "settings/", "#pol-h", "organization-settings"},
		{orgBase + "history/", "main h2", "organization-history"},
	} {
		b.open(p.path, p.ready)
		b.shot(p.name + ".png")
		b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
			chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		png, err := wabRun(b, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", p.name, err)
		}
		if err := os.WriteFile(filepath.Join(shotDir, p.name+"-phone.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		overflow, err := wabRun(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if overflow {
			t.Errorf("%s: the page is wider than a 390-pixel phone screen (it scrolls sideways)", p.path)
		}
		b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	}
}

// orgAddKey registers a security key in Chromium for the user whose
// session cookie is session, on the page that adds one, and waits for the
// page it goes to next (path, once readySel shows). Adding a factor
// renews the session, so the HTTP browser ab takes Chromium's new cookie.
func orgAddKey(t *testing.T, b *wabChrome, ab *acctBrowser, label, path, readySel string) {
	t.Helper()
	orgPlantSession(t, b, ab.session())
	defer func() {
		sess, _ := b.cookies()
		ab.setSession(sess)
	}()
	b.open("/manage/account/webauthn-provision/", `form[action="/manage/account/webauthn-provision/validate/"]`)
	b.do("name the key", chromedp.WaitVisible(chromedp.CSS(`button[data-webauthn="register"]`)),
		chromedp.SendKeys(chromedp.CSS("#label"), label))
	b.pressWebAuthn("register")
	b.waitPath(path, readySel)
	b.wantText("main", "Security key “"+label+"” added.")
}

// orgPlantSession puts a session cookie value into Chromium, for the
// server's host, so the browser is signed in as that session's user.
func orgPlantSession(t *testing.T, b *wabChrome, value string) {
	t.Helper()
	u, _ := url.Parse(b.base)
	ctx, cancel := context.WithTimeout(b.ctx, wabStep)
	defer cancel()
	httpOnly := true
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: b.env.cookie, Value: value, Domain: u.Hostname(), Path: "/", HTTPOnly: &httpOnly}); err != nil {
		t.Fatalf("Network.setCookie: %v", err)
	}
}
