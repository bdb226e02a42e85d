package main

// Helpers of the WebAuthn browser test (e2e_webauthn_browser_test.go): one
// headless Chromium tab, driven by chromedp, whose security keys and
// passkeys are virtual authenticators of the DevTools protocol's WebAuthn
// domain. Every step runs under its own 20-second limit, and a failing step
// reports the page's address, what webauthn.js wrote in its status line and
// everything the page wrote to the console, which is where a broken
// ceremony shows.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// wabStep bounds one step: a page load, a click and the redirect after it,
// or a whole WebAuthn ceremony.
const wabStep = 20 * time.Second

// wabChrome is one Chromium tab at the server's public base URL
// (http://localhost:PORT: a domain, as WebAuthn's RP ID must be, and a
// secure context without TLS).
type wabChrome struct {
	t    *testing.T
	env  *acctEnv
	ctx  context.Context
	base string
	dir  string // screenshots; "" for none

	out     bytes.Buffer // Chromium's own output
	mu      sync.Mutex
	console []string
	allowed []string // console errors the test provokes on purpose

	// pressed is set by pressWebAuthn until the next waitPath, with what
	// the status line said before the press.
	pressed      bool
	statusBefore string
}

// wabStartChrome starts headless Chromium with the flags of the screenshot
// test, enables the WebAuthn domain (from now on only virtual authenticators
// answer navigator.credentials) and collects the console.
func wabStartChrome(t *testing.T, env *acctEnv, shotDir string) *wabChrome {
	t.Helper()
	b := &wabChrome{t: t, env: env, base: env.base, dir: shotDir}
	root, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromiumAllocator(t, root, &b.out)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	b.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.out.String())
		}
	})
	// The first action starts the browser; it runs on the context without a
	// step limit, which would otherwise stop the whole browser.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start Chromium: %v\n%s", err, b.out.String())
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			if m.Exception != nil && m.Stack != nil {
				for _, f := range m.Stack.CallFrames {
					line += fmt.Sprintf("\n      at %s (%s:%d)", f.FunctionName, f.URL, f.LineNumber+1)
				}
			}
			b.mu.Lock()
			b.console = append(b.console, line)
			b.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	return b
}

// consoleText is everything the pages wrote to the console so far.
func (b *wabChrome) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.console) == 0 {
		return "(nothing)"
	}
	return "\n    " + strings.Join(b.console, "\n    ")
}

// consoleErrors are the console's errors and exceptions so far.
func (b *wabChrome) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.console {
		// The site has no favicon.ico; the browser asks for one anyway.
		allowed := strings.Contains(l, "/favicon.ico")
		for _, a := range b.allowed {
			allowed = allowed || strings.Contains(l, a)
		}
		if !allowed && (strings.HasPrefix(l, "error: ") || strings.HasPrefix(l, "exception: ")) {
			out = append(out, l)
		}
	}
	return out
}

// allowConsoleError accepts console errors containing s (a request the
// test makes fail on purpose).
func (b *wabChrome) allowConsoleError(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, s)
}

// wabRun runs an action under the step limit.
func wabRun[T any](b *wabChrome, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, wabStep)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// quick reads something off the page for a failure message, briefly.
func (b *wabChrome) quick(expr string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// fatal fails the test with the state of the page and the console.
func (b *wabChrome) fatal(format string, args ...any) {
	b.t.Helper()
	b.t.Fatalf("%s\n  page: %s\n  webauthn status: %q\n  flash/errors: %q\n  console: %s", fmt.Sprintf(format, args...),
		b.quick(`location.href`),
		b.quick(`(document.getElementById("webauthn-status") || {}).textContent || ""`),
		b.quick(`Array.from(document.querySelectorAll(".flash, .form-error")).map(e => e.textContent.trim()).join(" | ")`),
		b.consoleText())
}

// do runs steps, each group under the step limit.
func (b *wabChrome) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := wabRun(b, chromedp.Steps(steps...)); err != nil {
		b.fatal("%s: %v", what, err)
	}
}

// open loads a page of the server, by path, at the public base URL.
func (b *wabChrome) open(path, readySel string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(readySel)))
}

// path is the current page's path (with its query).
func (b *wabChrome) path() (string, error) {
	loc, err := wabRun(b, chromedp.Location())
	if err != nil {
		return "", err
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	if u.Scheme+"://"+u.Host != b.base {
		return "", fmt.Errorf("the browser left %s for %s", b.base, loc)
	}
	return u.RequestURI(), nil
}

// waitPath waits until the browser shows the page at path (query ignored
// unless path has one) and readySel is visible on it. A WebAuthn ceremony
// that fails shows its message in #webauthn-status: that ends the wait at
// once, with the message.
func (b *wabChrome) waitPath(path, readySel string) {
	b.t.Helper()
	deadline := time.Now().Add(wabStep)
	last := ""
	for {
		p, err := b.path()
		if err == nil {
			last = p
			if !strings.Contains(path, "?") {
				p, _, _ = strings.Cut(p, "?")
			}
			if p == path {
				break
			}
		} else if strings.Contains(err.Error(), "the browser left") {
			b.fatal("waiting for %s: %v", path, err)
		}
		if b.pressed {
			status := b.status()
			if status != "" && status != b.statusBefore && !strings.HasPrefix(status, "(") && !strings.HasPrefix(status, "Follow your browser") {
				b.fatal("waiting for %s, the WebAuthn ceremony failed: %q", path, status)
			}
		}
		if time.Now().After(deadline) {
			b.fatal("the browser is still at %s after %s, want %s", last, wabStep, path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.pressed = false
	b.do("wait for "+readySel+" on "+path, chromedp.WaitVisible(chromedp.CSS(readySel)))
}

// status is what webauthn.js says in the status line ("" when hidden).
func (b *wabChrome) status() string {
	return b.quick(`(() => { const s = document.getElementById("webauthn-status"); return s && !s.hidden ? s.textContent : ""; })()`)
}

// text is the visible text of the first element matching sel.
func (b *wabChrome) text(sel string) string {
	b.t.Helper()
	s, err := wabRun(b, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fatal("text of %s: %v", sel, err)
	}
	return s
}

// wantText fails unless the element's text has every string.
func (b *wabChrome) wantText(sel string, want ...string) {
	b.t.Helper()
	got := b.text(sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			b.fatal("%s does not say %q:\n%s", sel, w, got)
		}
	}
}

// signedInAs checks the header's navigation names the user, with a Log out
// button.
func (b *wabChrome) signedInAs(username string) {
	b.t.Helper()
	b.wantText(`header.site nav a[href="/manage/account/"]`, username)
	b.do("see the Log out button", chromedp.WaitVisible(chromedp.CSS(`header.site form[action="/account/logout/"] button`)))
}

// logout presses the header's Log out button.
func (b *wabChrome) logout() {
	b.t.Helper()
	b.do("log out", chromedp.Click(chromedp.CSS(`header.site form[action="/account/logout/"] button`)))
	b.waitPath("/", ".flash-success")
	b.wantText("main", "You are now logged out.")
}

// passwordLogin types the username and password into the login form and
// submits it.
func (b *wabChrome) passwordLogin(username, password string) {
	b.t.Helper()
	b.open("/account/login/", `form[action="/account/login/"]`)
	b.do("log in with the password",
		chromedp.SendKeys(chromedp.CSS("#username"), username),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`form[action="/account/login/"] button[type="submit"]`)))
}

// shot writes a full-page screenshot (1280 pixels wide) to the screenshot
// directory.
func (b *wabChrome) shot(name string) {
	b.t.Helper()
	if b.dir == "" {
		return
	}
	png1, err := wabRun(b, chromedp.FullScreenshot(100))
	if err != nil {
		b.fatal("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(png1))
	if err != nil {
		b.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if img.Bounds().Dx() != 1280 {
		b.t.Errorf("screenshot %s is %d pixels wide, want 1280", name, img.Bounds().Dx())
	}
	if err := os.WriteFile(filepath.Join(b.dir, name), png1, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// cookies returns the browser's session cookie (recorded as a secret)
// and its device cookie ("" if none).
func (b *wabChrome) cookies() (sess, device string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wabStep)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatalf("Network.getCookies: %v", err)
	}
	for _, c := range res.Cookies {
		switch c.Name {
		case b.env.cookie:
			sess = c.Value
		case "gatehouse_device":
			device = c.Value
		}
		if len(c.Value) >= 16 {
			b.env.secrets.add("browser cookie "+c.Name, c.Value)
		}
	}
	return sess, device
}

// ---------------------------------------------------------------------------
// Virtual authenticators

// wabAuthenticator is a virtual authenticator "plugged into" the tab.
type wabAuthenticator struct {
	b    *wabChrome
	id   cdpwebauthn.AuthenticatorID
	opts cdpwebauthn.VirtualAuthenticatorOptions
}

// wabSecurityKey is a USB security key: CTAP2, no user verification (the
// password is the other factor), touched at once when asked.
func wabSecurityKey() cdpwebauthn.VirtualAuthenticatorOptions {
	return cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21,
		Transport:      cdpwebauthn.AuthenticatorTransportUsb,
		HasResidentKey: true, AutomaticPresenceSimulation: true,
	}
}

// wabPlatformPasskeys is the device's own authenticator: it keeps
// discoverable credentials and verifies the user (a fingerprint that always
// matches).
func wabPlatformPasskeys() cdpwebauthn.VirtualAuthenticatorOptions {
	return cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21,
		Transport:      cdpwebauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}
}

// plug adds a virtual authenticator to the tab.
func (b *wabChrome) plug(opts cdpwebauthn.VirtualAuthenticatorOptions) *wabAuthenticator {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wabStep)
	defer cancel()
	res, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &opts})
	if err != nil {
		b.t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return &wabAuthenticator{b: b, id: res.AuthenticatorID, opts: opts}
}

// unplug removes the authenticator (and the credentials it holds).
func (a *wabAuthenticator) unplug() {
	a.b.t.Helper()
	ctx, cancel := context.WithTimeout(a.b.ctx, wabStep)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwebauthn.RemoveVirtualAuthenticator, cdpwebauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a.id}); err != nil {
		a.b.t.Fatalf("WebAuthn.removeVirtualAuthenticator: %v", err)
	}
}

// credentials are the credentials the authenticator holds.
func (a *wabAuthenticator) credentials() []*cdpwebauthn.Credential {
	a.b.t.Helper()
	ctx, cancel := context.WithTimeout(a.b.ctx, wabStep)
	defer cancel()
	res, err := chromedp.Call(ctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: a.id})
	if err != nil {
		a.b.t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// only returns the one credential the authenticator holds.
func (a *wabAuthenticator) only(what string) *cdpwebauthn.Credential {
	a.b.t.Helper()
	creds := a.credentials()
	if len(creds) != 1 {
		a.b.t.Fatalf("%s: the authenticator holds %d credentials, want 1", what, len(creds))
	}
	return creds[0]
}

// add stores a credential (taken from another authenticator) in this one.
func (a *wabAuthenticator) add(c *cdpwebauthn.Credential) {
	a.b.t.Helper()
	ctx, cancel := context.WithTimeout(a.b.ctx, wabStep)
	defer cancel()
	// cdproto's Credential always sends generateCmtgKeyOnNextOperation,
	// which an authenticator without the CMTG extension refuses; send only
	// the key material and its counter.
	type credential struct {
		CredentialID         []byte  `json:"credentialId"`
		IsResidentCredential bool    `json:"isResidentCredential"`
		RpID                 string  `json:"rpId"`
		PrivateKey           []byte  `json:"privateKey"`
		UserHandle           []byte  `json:"userHandle,omitempty"`
		SignCount            float64 `json:"signCount"`
		UserName             string  `json:"userName,omitempty"`
	}
	type params struct {
		AuthenticatorID cdpwebauthn.AuthenticatorID `json:"authenticatorId"`
		Credential      credential                  `json:"credential"`
	}
	addCredential := cdp.Command[params, cdp.Empty]{Method: cdpwebauthn.CommandAddCredential}
	if _, err := chromedp.Call(ctx, addCredential, params{AuthenticatorID: a.id, Credential: credential{
		CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: c.RpID, PrivateKey: c.PrivateKey,
		UserHandle: c.UserHandle, SignCount: c.SignCount, UserName: c.UserName}}); err != nil {
		a.b.t.Fatalf("WebAuthn.addCredential: %v", err)
	}
}

// pressWebAuthn clicks the page's WebAuthn button (once webauthn.js has
// shown it).
func (b *wabChrome) pressWebAuthn(kind string) {
	b.t.Helper()
	sel := `button[data-webauthn="` + kind + `"]`
	b.do("wait for the WebAuthn button", chromedp.WaitVisible(chromedp.CSS(sel)))
	b.pressed, b.statusBefore = true, b.status()
	b.do("press the WebAuthn button", chromedp.Click(chromedp.CSS(sel)))
}

// waitStatus waits until webauthn.js says something containing want in the
// status line under its button and has enabled the button again (the
// ceremony is over), and returns what it says.
func (b *wabChrome) waitStatus(want string) string {
	b.t.Helper()
	deadline := time.Now().Add(wabStep)
	for {
		got := b.status()
		done := b.quick(`String(!!document.querySelector("button[data-webauthn]:not([disabled])"))`)
		if strings.Contains(got, want) && done == "true" {
			b.pressed = false
			return got
		}
		if time.Now().After(deadline) {
			b.fatal("webauthn.js says %q (button enabled: %s) after %s, want %q", got, done, wabStep, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setUserVerified makes the authenticator's user verification (the
// fingerprint) succeed or fail.
func (a *wabAuthenticator) setUserVerified(ok bool) {
	a.b.t.Helper()
	ctx, cancel := context.WithTimeout(a.b.ctx, wabStep)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwebauthn.SetUserVerified, cdpwebauthn.SetUserVerifiedParams{AuthenticatorID: a.id, IsUserVerified: ok}); err != nil {
		a.b.t.Fatalf("WebAuthn.setUserVerified: %v", err)
	}
}
