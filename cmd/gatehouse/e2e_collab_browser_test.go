package main

// The collaboration pages in headless Chromium, on a desktop and on a
// 390-pixel phone: the owner's collaboration page (collaborators, a pending
// and an expired invitation, the invite form with a refusal next to its
// field), the invitee's list of invitations and the page an invitation
// email opens. Screenshots go to
// $GATEHOUSE_SCREENSHOT_DIR (scripts/screenshots refreshes docs/screenshots);
// on the phone no page may scroll sideways.

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

func TestE2ECollaborationScreenshots(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a browser; skipped with -short")
	}
	if _, err := os.Stat(acctChromium); err != nil {
		e2eSkipOrFail(t, "no Chromium at %s (apt-get install chromium): %v", acctChromium, err)
	}
	mfaOathtool(t)
	t.Parallel()
	dir := os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := acctStart(t, "sqlite", acctOpts{})
	const project = "shared-pkg"
	page := "/manage/project/" + project + "/collaboration/"

	// Alice owns the project; bob is a maintainer, carol an owner, dave
	// invited and eve's invitation lapsed.
	alice := mfaNewUser(t, env, "alice", true, false)
	ab := env.browser(acctFirefox)
	ab.mustLogin(t, alice.name, alice.pw)
	alice.enrol(t, ab)
	env.mustUpload(t, env.token(t, "alice", "laptop"), e2eWheelForm(project, "1.0", e2eWheelName(project, "1.0"), e2eWheel(t, project, "1.0", e2eMetadata(project, "1.0"))))
	invite := func(name, role string) {
		t.Helper()
		r := ab.post(t, page, url.Values{"username": {name}, "role_name": {role}})
		acctWantRedirect(t, r, page)
		ab.follow(t, r) // shows, and so clears, the flash
	}
	join := func(name, role string) {
		u := mfaNewUser(t, env, name, true, false)
		b := env.browser(acctChrome)
		b.mustLogin(t, u.name, u.pw)
		u.enrol(t, b)
		invite(name, role)
		id := env.queryInt(t, `SELECT id FROM role_invitations WHERE user_id = $1`, u.id)
		next := "/project/" + project + "/"
		if role == "Owner" {
			next = page
		}
		acctWantRedirect(t, b.post(t, "/manage/account/invitations/", url.Values{"invitation_id": {strconv.FormatInt(id, 10)}, "action": {"accept"}}), next)
	}
	join("bob", "Maintainer")
	join("carol", "Owner")
	mfaNewUser(t, env, "eve", true, false)
	invite("eve", "Maintainer")
	env.exec(t, `UPDATE role_invitations SET expires_at = created_at WHERE user_id = $1`, env.userID(t, "eve"))
	dave := mfaNewUser(t, env, "dave", true, false)
	invite("dave", "Maintainer")
	m := env.mail.take(t, dave.email, "alice has invited you to join the "+project+" project")
	var link string
	for _, l := range m.links() {
		if strings.Contains(l, "/account/verify-project-role/?token=") && !strings.HasSuffix(l, "&decline=1") {
			link = l
		}
	}
	tok, _ := url.Parse(link)
	env.secrets.add("invitation token", tok.Query().Get("token"))
	db := env.browser(acctSafari)
	db.mustLogin(t, dave.name, dave.pw)
	dave.enrol(t, db)

	b := wabStartChrome(t, env, dir)
	as := func(br *acctBrowser) {
		t.Helper()
		sess := br.session()
		env.secrets.add("session cookie", sess)
		if _, err := chromedp.Call(b.ctx, network.SetCookie, network.SetCookieParams{Name: env.cookie, Value: sess, URL: env.base + "/", HTTPOnly: new(true)}); err != nil {
			t.Fatalf("Network.setCookie: %v", err)
		}
	}
	phone := func(name, readySel string) {
		t.Helper()
		b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
			chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(readySel)))
		shot, err := wabRun(b, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		overflow, err := wabRun(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if overflow {
			t.Errorf("%s: the page is wider than a 390-pixel phone screen (it scrolls sideways)", name)
		}
		b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	}

	// The owner's page, then the invite form refusing an unknown user.
	as(ab)
	b.open(page, "#people-h")
	b.wantText("main", "Collaborators", "alice", "bob", "Maintainer", "carol", "dave", "pending, expires", "eve", "expired")
	b.shot("collaboration.png")
	phone("collaboration-phone.png", "#people-h")
	b.open(page, "#username")
	b.allowConsoleError("status of 400 (Bad Request) (" + env.base + page)
	b.do("invite nobody", chromedp.SendKeys(chromedp.CSS("#username"), "nobdoy"),
		chromedp.Click(chromedp.CSS(`form[action="`+page+`"] button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(".field-error")))
	b.wantText(".field-error", `There is no user named "nobdoy".`)
	b.shot("collaboration-invite-error.png")

	// The invitee's list, and the page the emailed link opens.
	as(db)
	b.open("/manage/account/invitations/", "main table.list")
	b.wantText("main", "Pending invitations", project, "Maintainer", "alice")
	phone("invitations-phone.png", "main table.list")
	b.do("open the invitation link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`button[value="accept"]`)))
	b.wantText("main", "Invitation to "+project, "alice invites you to join "+project+" as Maintainer")
	b.shot("invitation.png")
	phone("invitation-phone.png", `button[value="accept"]`)
	b.do("accept", chromedp.Click(chromedp.CSS(`button[value="accept"]`)))
	b.waitPath("/project/"+project+"/", ".flash-success")
	b.wantText(".flash-success", "You are now Maintainer of "+project+".")
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
