package main

// End-to-end in a real browser: headless Chromium (Debian's chromium,
// driven by chromedp) registers, follows the emailed verification link,
// looks at the account page and its security history, logs out and comes
// back to the login page. Full-page screenshots of each main page (1280
// pixels wide, and the account pages as a 390-pixel phone) are written to
// $GATEHOUSE_SCREENSHOT_DIR (default: a temp dir), so the look of the pages
// can be checked; scripts/screenshots refreshes docs/screenshots with them.
//
// It skips when /usr/bin/chromium is missing, except in CI
// (GATEHOUSE_TEST_REQUIRE_POSTGRES=1), where scripts/test installs it.

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const acctChromium = "/usr/bin/chromium"

func TestE2EScreenshots(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a browser; skipped with -short")
	}
	if _, err := os.Stat(acctChromium); err != nil {
		e2eSkipOrFail(t, "no Chromium at %s (apt-get install chromium): %v", acctChromium, err)
	}
	t.Parallel()
	dir := os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := acctStart(t, "sqlite", acctOpts{})

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
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	wantText := func(sel string, want ...string) {
		t.Helper()
		got := text(sel)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Fatalf("%s does not say %q:\n%s", sel, w, got)
			}
		}
	}
	shot := func(name string, width int, a chromedp.Action[[]byte]) {
		t.Helper()
		b, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot %s is not a PNG: %v", name, err)
		}
		if width > 0 && img.Bounds().Dx() != width {
			t.Errorf("screenshot %s is %d pixels wide, want %d", name, img.Bounds().Dx(), width)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	desktop := chromedp.EmulateViewport(1280, 900)
	full := chromedp.FullScreenshot(100) // quality 100: PNG

	// Register, as a person: type into the form and press the button.
	do("open the registration page", desktop, chromedp.Navigate(env.URL+"/account/register/"), chromedp.WaitVisible(chromedp.CSS(`form[action="/account/register/"]`)))
	shot("register.png", 1280, full)
	password := "alice's garden party 1865"
	env.secrets.add("password of alice", password)
	do("register",
		chromedp.SendKeys(chromedp.CSS("#full_name"), "Alice Liddell"),
		chromedp.SendKeys(chromedp.CSS("#email"), "alice@example.com"),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.SendKeys(chromedp.CSS("#password_confirm"), password),
		chromedp.Click(chromedp.CSS(`form[action="/account/register/"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#emails-h")),
	)
	wantText("main", "Welcome, alice.", "Your account")

	// The emailed link, opened in the same browser.
	link := acctLink(t, env, env.mail.take(t, "alice@example.com", "Email verification"), "/account/verify-email/")
	do("follow the verification link", chromedp.Navigate(strings.Replace(link, env.base, env.URL, 1)), chromedp.WaitVisible(chromedp.CSS("#emails-h")))
	wantText("main", "Email address alice@example.com verified.")

	// Some history: a wrong password from elsewhere, and a second session.
	acctWant(t, env.browser(acctSafari).login(t, "alice", "not-alices-password"), 400, msgInvalidLogin)
	env.browser(acctChrome).mustLogin(t, "alice", password)

	do("open the account page", chromedp.Navigate(env.URL+"/manage/account/"), chromedp.WaitVisible(chromedp.CSS("#emails-h")))
	wantText("main", "Account settings", "Email addresses", "alice@example.com", "Change password")
	shot("account.png", 1280, full)
	do("open the security history", chromedp.Navigate(env.URL+"/manage/account/history/"), chromedp.WaitVisible(chromedp.CSS("#history-h")))
	wantText("main", "Security history", "Logged in after registering", "Email address verified: alice@example.com",
		"Failed login: wrong password", "Chrome on Windows", "Headless Chrome on Linux")
	shot("security-history.png", 1280, full)
	do("open the two-factor and sessions page", chromedp.Navigate(env.URL+"/manage/account/two-factor/"), chromedp.WaitVisible(chromedp.CSS("#sessions-h")))
	wantText("main", "Recovery codes", "Active sessions", "Chrome on Windows", "this browser")
	shot("two-factor-setup.png", 1280, full)

	// The same pages on a phone, none wider than the screen.
	do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
	for _, p := range []struct{ path, ready, name string }{
		{"/manage/account/", "#emails-h", "account-phone.png"},
		{"/manage/account/history/", "#history-h", "security-history-phone.png"},
		{"/manage/account/two-factor/", "#sessions-h", "two-factor-setup-phone.png"},
	} {
		do("open "+p.path+" on a phone", chromedp.Navigate(env.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		shot(p.name, 390, full)
		overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if overflow {
			t.Errorf("%s is wider than a 390-pixel phone screen (it scrolls sideways)", p.path)
		}
	}

	// Log out with the header's button, then the login page.
	do("log out", desktop, chromedp.Navigate(env.URL+"/manage/account/"), chromedp.WaitVisible(chromedp.CSS("#emails-h")),
		chromedp.Click(chromedp.CSS(`form[action="/account/logout/"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash-success")))
	wantText("main", "You are now logged out.")
	do("open the login page", chromedp.Navigate(env.URL+"/account/login/"), chromedp.WaitVisible(chromedp.CSS(`form[action="/account/login/"]`)))
	shot("login.png", 1280, full)
	wantText("main", "Log in to")
	t.Logf("screenshots in %s", dir)
}

// chromiumAllocator starts headless Debian Chromium with the flags this
// machine needs: no sandbox (tests run as root), no GPU, and no background
// networking, QUIC, component updates or sync (the closed network refuses
// them, many at a time). Its output goes to out, for failure messages.
func chromiumAllocator(t *testing.T, parent context.Context, out *bytes.Buffer) (context.Context, context.CancelFunc) {
	return chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(acctChromium),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
}
