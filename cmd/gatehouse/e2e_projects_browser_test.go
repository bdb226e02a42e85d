package main

// The project management pages in headless Chromium: full-page screenshots
// at 1280 pixels and, for the pages with forms, at 390 as on a phone, into
// $GATEHOUSE_SCREENSHOT_DIR (scripts/screenshots refreshes docs/screenshots
// with them). No page may scroll sideways on the phone. Skips without
// Chromium, except in CI.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

func TestE2EProjectScreenshots(t *testing.T) {
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
	// An upstream (never asked: every name here is local) and a cooldown,
	// for the pull-through cache's admin page.
	env := acctStart(t, "sqlite", acctOpts{extra: []string{"--upstream", "http://127.0.0.1:9/simple/", "--upstream-min-age", "72h"}})

	// An owner with a second factor, two releases (one yanked), a
	// maintainer, and the owner an administrator too, for the admin pages.
	alice := mfaNewUser(t, env, "alice", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, alice.name, alice.pw)
	alice.enrol(t, b)
	tok := env.token(t, "alice", "screenshots")
	for _, v := range []string{"1.0", "1.1", "2.0"} {
		name := e2eWheelName("demo-tool", v)
		if r := env.upload(t, tok, e2eWheelForm("Demo-Tool", v, name, e2eWheel(t, "demo-tool", v, e2eMetadata("Demo-Tool", v)))); r.code != http.StatusOK {
			t.Fatalf("upload %s: %s", name, r.status)
		}
	}
	r := b.post(t, "/manage/project/demo-tool/release/1.1/yank/", url.Values{"confirm_yank_version": {"1.1"}, "yanked_reason": {"breaks on Windows"}})
	acctWantRedirect(t, r, "/manage/project/demo-tool/release/1.1/")
	bob := mfaNewUser(t, env, "bob", true, false)
	env.exec(t, `INSERT INTO roles (project_id, user_id, role) SELECT id, $1, 'Maintainer' FROM projects WHERE normalized_name = 'demo-tool'`, bob.id)
	env.exec(t, `UPDATE users SET is_admin = TRUE WHERE id = $1`, alice.id)
	env.token(t, "bob", "bob's laptop") // listed on the settings page: it can upload to demo-tool
	// A trusted publisher with no environment, for the publishing page and
	// its offer (the hardening email's link) to limit it to one. GitLab:
	// adding one calls no other site.
	r = b.post(t, "/manage/project/demo-tool/settings/publishing/", url.Values{"provider": {"gitlab"}, "namespace": {"acme"},
		"project": {"demo-tool"}, "workflow_filepath": {".gitlab-ci.yml"}})
	acctWantRedirect(t, r, "/manage/project/demo-tool/settings/publishing/")
	publisherID := env.queryString(t, `SELECT CAST(publisher_id AS TEXT) FROM project_publishers`)

	root, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var chromeOut bytes.Buffer
	actx, cancelAlloc := chromiumAllocator(t, root, &chromeOut)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	defer func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", chromeOut.String())
		}
	}()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// The browser takes over the signed-in session.
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: env.cookie, Value: b.session(), URL: env.URL + "/"}); err != nil {
		t.Fatalf("Network.setCookie: %v", err)
	}
	shot := func(name string, width int) {
		t.Helper()
		png1, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(png1))
		if err != nil {
			t.Fatalf("screenshot %s is not a PNG: %v", name, err)
		}
		if img.Bounds().Dx() != width {
			t.Errorf("screenshot %s is %d pixels wide, want %d", name, img.Bounds().Dx(), width)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png1, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantText := func(page string, want ...string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		if err != nil {
			t.Fatalf("%s: text: %v", page, err)
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Fatalf("%s does not say %q:\n%s", page, w, got)
			}
		}
	}
	noSideways := func(page string) {
		t.Helper()
		over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if over {
			t.Errorf("%s is wider than a 390-pixel phone screen (it scrolls sideways)", page)
		}
	}
	desktop := chromedp.EmulateViewport(1280, 900)
	phone := chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch)

	pages := []struct {
		shot, path, ready string
		want              []string
		phone             bool
	}{
		{"projects.png", "/manage/projects/", "table.list", []string{"Your projects", "Demo-Tool", "Owner"}, true},
		{"project-settings.png", "/manage/project/demo-tool/settings/", "#delete-h", []string{"About this project", "API tokens that can upload", "bob's laptop", "Archive project", "Delete project"}, true},
		{"project-publishing.png", "/manage/project/demo-tool/settings/publishing/?constrain_publisher_id=" + publisherID + "&constrain_environment=pypi", "#constrain-h",
			[]string{"Limit a publisher to an environment", "GitLab: acme/demo-tool, CI file .gitlab-ci.yml", "Trusted publishing only"}, true},
		{"project-releases.png", "/manage/project/demo-tool/releases/", "table.list", []string{"2.0", "breaks on Windows"}, false},
		{"project-release.png", "/manage/project/demo-tool/release/2.0/", "#yank-h", []string{"Yank release", "Delete release", "Delete this file…"}, true},
		{"project-history.png", "/manage/project/demo-tool/history/", "table.list", []string{"Release 1.1 yanked by alice: breaks on Windows"}, false},
		{"admin-project.png", "/admin/projects/demo-tool/", "#limits-h", []string{"Quarantine", "Limits", "bob (Maintainer)"}, false},
		{"admin-upstream.png", "/admin/upstream/", "#early-h", []string{"http://127.0.0.1:9/simple/", "younger than 3 days", "No version is allowed early."}, true},
	}
	for _, p := range pages {
		do("open "+p.path, desktop, chromedp.Navigate(env.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		wantText(p.path, p.want...)
		shot(p.shot, 1280)
		if p.phone {
			do("open "+p.path+" on a phone", phone, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(p.ready)))
			shot(strings.TrimSuffix(p.shot, ".png")+"-phone.png", 390)
			noSideways(p.path)
		}
	}

	// A refused form, as a person meets it: the message next to the field.
	do("type the wrong version", desktop, chromedp.Navigate(env.URL+"/manage/project/demo-tool/release/2.0/"), chromedp.WaitVisible(chromedp.CSS("#yank-h")),
		chromedp.SendKeys(chromedp.CSS("#confirm_delete_version"), "1.0"),
		chromedp.Click(chromedp.CSS(`form[action$="/release/2.0/delete/"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm_delete_version-error")))
	wantText("the refused deletion", fmt.Sprintf("%q is not the version 2.0. Type it exactly as shown to confirm.", "1.0"))
	do("scroll to the error", chromedp.ScrollIntoView(chromedp.CSS("#confirm_delete_version-error")))
	shot("project-release-error.png", 1280)
	if n := env.queryInt(t, `SELECT count(*) FROM releases`); n != 3 {
		t.Errorf("releases after the refused deletion: %d, want 3", n)
	}
	// An administrator lets a security fix through the cooldown.
	do("allow a version early", desktop, chromedp.Navigate(env.URL+"/admin/upstream/"), chromedp.WaitVisible(chromedp.CSS("#early-h")),
		chromedp.SendKeys(chromedp.CSS("#project"), "Requests"), chromedp.SendKeys(chromedp.CSS("#version"), "2.32.4"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/upstream/early/"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/admin/upstream/early/remove/"]`)))
	wantText("the early version", "requests 2.32.4 is allowed before its cooldown", "alice")
	shot("admin-upstream-early.png", 1280)
	if n := env.queryInt(t, `SELECT count(*) FROM upstream_early_versions WHERE normalized_name = 'requests' AND version = '2.32.4'`); n != 1 {
		t.Errorf("early versions after the form: %d, want 1", n)
	}
	t.Logf("screenshots in %s", dir)
	acctNoSecretsLeaked(t, env)
}
