package main

// The API tokens page in headless Chromium: make a token with the form as a
// person does, see it once with its snippets, press a copy button (the one
// script besides webauthn.js, allowed by the CSP as a file of the site), on
// a desktop and on a phone. Screenshots go to $GATEHOUSE_SCREENSHOT_DIR
// like the other browser tests' (scripts/screenshots): tokens.png,
// token-created.png, token-form-error.png and their -phone versions.

import (
	"bytes"
	"context"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

func TestE2EBrowserTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a browser; skipped with -short")
	}
	if _, err := os.Stat(acctChromium); err != nil {
		e2eSkipOrFail(t, "no Chromium at %s (apt-get install chromium): %v", acctChromium, err)
	}
	t.Parallel()
	dir := os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := acctStart(t, "sqlite", acctOpts{})

	// A maintainer with a second factor, two projects and two tokens, set
	// up over HTTP; the browser then takes over her session.
	u := mfaNewUser(t, env, "petra", true, false)
	hb := env.browser(acctFirefox)
	hb.mustLogin(t, u.name, u.pw)
	u.enrol(t, hb)
	first := env.token(t, u.name, "laptop")
	for _, p := range []string{"petra-core", "petra-cli"} {
		env.mustUpload(t, first, e2eWheelForm(p, "1.0", e2eWheelName(p, "1.0"), e2eWheel(t, p, "1.0", e2eMetadata(p, "1.0"))))
	}
	r := hb.post(t, "/manage/account/token/", url.Values{"description": {"nightly build"}, "scope": {"projects"}, "project": {"petra-cli"}, "expires": {"2099-12-31"}})
	acctWant(t, r, 200, "shown only this once")
	if m := tokNewTokenRE.FindStringSubmatch(r.Body); m != nil {
		env.secrets.add("API token made on the web", m[1])
	}

	b := wabStartChrome(t, env, dir)
	ctx, cancel := context.WithTimeout(b.ctx, wabStep)
	_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: env.cookie, Value: hb.session(), URL: b.base + "/"})
	cancel()
	if err != nil {
		t.Fatalf("Network.setCookie: %v", err)
	}
	b.open("/manage/account/token/", "#new-h")
	b.signedInAs(u.name)
	b.wantText("main", "Your tokens", "laptop", "nightly build", "Project petra-cli", "Whole account (all projects, and new ones)")
	b.shot("tokens.png")

	// A mistake first: projects chosen, none ticked. The page comes back
	// with a 400, which the console reports.
	b.allowConsoleError("status of 400 (Bad Request) (" + b.base + "/manage/account/token/:")
	b.do("choose projects but tick none",
		chromedp.SendKeys(chromedp.CSS("#description"), "release CI"),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="projects"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/manage/account/token/"] button[type="submit"]`)))
	b.waitPath("/manage/account/token/", "#scope-error")
	b.wantText("#scope-error", "Tick at least one project, or choose the whole account.")
	b.shot("token-form-error.png")

	// Then right: the name was kept, tick a project, press the button.
	b.do("tick petra-core and make the token",
		chromedp.Click(chromedp.CSS(`input[name="project"][value="petra-core"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/manage/account/token/"] button[type="submit"]`)))
	b.waitPath("/manage/account/token/", "#created-h")
	b.wantText("#created-h", "Token “release CI” created")
	raw := b.text("#new-token")
	if !strings.HasPrefix(raw, "pypi-") {
		b.fatal("the token shown is %q", raw)
	}
	env.secrets.add("API token made in the browser", raw)
	b.wantText("#snip-pypirc", "repository = "+env.base+"/legacy/", "password = "+raw)

	// copy.js shows the copy buttons and answers a press.
	b.do("press Copy token", chromedp.WaitVisible(chromedp.CSS(`button[data-copy="new-token"]`)),
		chromedp.Click(chromedp.CSS(`button[data-copy="new-token"]`)),
		// The status line gets its words when the copy is done.
		chromedp.WaitVisible(chromedp.CSS(`#new-token-status:not(:empty)`)))
	status := b.text("#new-token-status")
	if status != "Copied." && !strings.HasPrefix(status, "Selected") {
		b.fatal("after pressing Copy token the page says %q, want Copied. or Selected…", status)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		b.fatal("console errors (a CSP refusal would show here): %v", errs)
	}
	b.shot("token-created.png")

	// On a phone: the list, the form error and a new token, none wider
	// than the screen.
	phone := func(name string) {
		t.Helper()
		if dir == "" {
			return
		}
		pic, err := wabRun(b, chromedp.FullScreenshot(100))
		if err != nil {
			b.fatal("screenshot %s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(pic))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if img.Bounds().Dx() != 390 {
			t.Errorf("screenshot %s is %d pixels wide, want 390", name, img.Bounds().Dx())
		}
		if err := os.WriteFile(filepath.Join(dir, name), pic, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noOverflow := func(what string) {
		t.Helper()
		wide, err := wabRun(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if wide {
			t.Errorf("%s is wider than a 390-pixel phone screen (it scrolls sideways)", what)
		}
	}
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
	b.open("/manage/account/token/", "#new-h")
	noOverflow("the token page")
	phone("tokens-phone.png")
	b.do("make a whole-account token on the phone",
		chromedp.SendKeys(chromedp.CSS("#description"), "phone test"),
		chromedp.Click(chromedp.CSS(`form[action="/manage/account/token/"] button[type="submit"]`)))
	b.waitPath("/manage/account/token/", "#created-h")
	env.secrets.add("API token made on the phone", b.text("#new-token"))
	noOverflow("the new-token page")
	phone("token-created-phone.png")
}
