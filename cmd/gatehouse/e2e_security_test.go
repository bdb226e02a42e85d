package main

// End-to-end: the account-security checks of
// shared/spec/security-and-performance.md, groups A, D, E and J, against
// the real server over HTTP, on SQLite and on PostgreSQL:
//
//	A1 password policy        A2 hash parameters     A3 per-account limit
//	A4 per-IP limit           A5 hashing DoS         A6 no enumeration
//	D1 session fixation       D2 cookie flags, ids   D3 logout, timeouts
//	D4 sudo mode (e2e_accounts_test.go)              D5 CSRF route walk
//	D7 open redirects         D8 security headers
//	E1–E4 reset links, limits, Host header (here and in e2e_accounts_test.go)
//	J1 audit events and no secret in logs or the database
//
// The real server has no fake clock: where a check needs time to pass (a
// rate-limit window, an idle session), the test moves the stored times in
// the database instead, which is what the passing of time does.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

const (
	msgInvalidLogin  = "The username or password is invalid. Try again."
	msgTooManyLogins = "There have been too many unsuccessful login attempts. Try again later."
	msgCSRF          = "Cross-origin request refused."
)

func TestE2ESecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{
				extra:     []string{"--session-idle", "30m", "--session-max", "1h"},
				allowWarn: []string{`msg="cross-origin request refused"`},
			})
			t.Run("checks", func(t *testing.T) {
				for _, c := range []struct {
					name string
					fn   func(t *testing.T, env *acctEnv)
				}{
					{"A1-password-policy", secPasswordPolicy},
					{"A2-hash-parameters", secHashParameters},
					{"A3-per-account-limit", secPerAccountLimit},
					{"A4-per-ip-limit", secPerIPLimit},
					{"A6-no-enumeration", secNoEnumeration},
					{"D1-session-fixation", secSessionFixation},
					{"D2-cookie-flags-http", secCookieFlagsHTTP},
					{"D3-timeouts", secSessionTimeouts},
					{"D5-csrf-route-walk", secCSRFRouteWalk},
					{"D7-open-redirect", secOpenRedirect},
					{"D8-headers", func(t *testing.T, env *acctEnv) { secHeaders(t, env, false) }},
					{"E2-reset-keeps-second-factor", secResetKeepsSecondFactor},
					{"E3-email-limits", secEmailLimits},
				} {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						c.fn(t, env)
					})
				}
			})
			acctNoSecretsLeaked(t, env)
		})
	}
}

// TestE2ESecurityHTTPS runs the checks that depend on an https base URL
// (the server behind a TLS-terminating proxy): __Host- cookies and HSTS.
func TestE2ESecurityHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{httpsBase: true})
			t.Run("D2-cookie-flags-and-ids", func(t *testing.T) { secCookieFlagsHTTPS(t, env) })
			t.Run("D8-headers", func(t *testing.T) { secHeaders(t, env, true) })
			acctNoSecretsLeaked(t, env)
		})
	}
}

// acctName makes a unique, valid username.
func acctName(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }

// A1: length rules by characters, no composition rule, Unicode normalized,
// no truncation, common passwords refused.
func secPasswordPolicy(t *testing.T, env *acctEnv) {
	long := func(n int, seed string) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%s%d-", seed, i*7919%10007)
		}
		return b.String()[:n]
	}
	cases := []struct {
		name, pw string
		ok       bool
		msg      string
	}{
		{"7 characters", "Qz7#kp2", false, "Password too short: use at least 8 characters."},
		{"8 characters", "Qz7#kp2w", true, ""},
		{"64 characters", long(64, "sixtyfour"), true, ""},
		{"1024 characters", long(1024, "kilo"), true, ""},
		{"4097 characters", long(4097, "toolong"), false, "Password too long: use at most 4096 characters."},
		{"spaces", "correct horse battery staple 7741", true, ""},
		{"8 emoji", "🦊🌲🦉🍄🌙⭐🔥💧", true, ""},
		{"7 emoji", "🦊🌲🦉🍄🌙⭐🔥", false, "Password too short: use at least 8 characters."},
		{"lower-case letters only", "mellifluousotter", true, ""},
		{"common", "qwerty123", false, "This password appears in a list of common passwords. Choose a different password."},
		{"common, other case", "ILoveYou", false, "This password appears in a list of common passwords. Choose a different password."},
	}
	for i, c := range cases {
		name := acctName("pol", i)
		b := env.browser(acctFirefox)
		r := b.register(t, name, c.pw)
		if !c.ok {
			acctWant(t, r, 400, c.msg)
			if env.queryInt(t, `SELECT count(*) FROM users WHERE username_key = $1`, name) != 0 {
				t.Errorf("%s: the account was created", c.name)
			}
			continue
		}
		if r.Code != http.StatusSeeOther {
			t.Errorf("%s: registration refused:\n%s", c.name, r)
			continue
		}
		// The same password logs in from another browser.
		env.browser(acctChrome).mustLogin(t, name, c.pw)
	}

	// NFC and NFD forms of one password are the same password.
	nfc := norm.NFC.String("Crème brûlée à la façon de Zoë 19")
	nfd := norm.NFD.String(nfc)
	if nfc == nfd {
		t.Fatal("the NFC and NFD forms are equal; the test proves nothing")
	}
	b := env.browser(acctFirefox)
	acctWantRedirect(t, b.register(t, "polnfc", nfc), "/manage/account/")
	env.browser(acctChrome).mustLogin(t, "polnfc", nfd)
	env.browser(acctChrome).mustLogin(t, "polnfc", nfc)

	// No truncation: a 100-character password differing at character 90
	// is another password.
	hundred := long(100, "truncation")
	variant := []rune(hundred)
	variant[89] = 'Ж'
	acctWantRedirect(t, env.browser(acctFirefox).register(t, "poltrunc", hundred), "/manage/account/")
	acctWant(t, env.browser(acctChrome).login(t, "poltrunc", string(variant)), 400, msgInvalidLogin)
	env.browser(acctChrome).mustLogin(t, "poltrunc", hundred)
}

// A2: argon2id with OWASP's parameters and a 16-byte salt, unique per user
// even for the same password.
func secHashParameters(t *testing.T, env *acctEnv) {
	pw := "same password for both"
	for _, n := range []string{"hashone", "hashtwo"} {
		acctWantRedirect(t, env.browser(acctFirefox).register(t, n, pw), "/manage/account/")
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)
	var salts, keys []string
	for _, n := range []string{"hashone", "hashtwo"} {
		h := env.queryString(t, `SELECT password_hash FROM users WHERE username_key = $1`, n)
		m := re.FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("%s: stored hash %q is not $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>", n, h)
		}
		salt, err := base64.RawStdEncoding.DecodeString(m[1])
		if err != nil || len(salt) != 16 {
			t.Errorf("%s: salt %q is %d bytes (%v), want 16", n, m[1], len(salt), err)
		}
		key, err := base64.RawStdEncoding.DecodeString(m[2])
		if err != nil || len(key) != 32 {
			t.Errorf("%s: hash is %d bytes (%v), want 32", n, len(key), err)
		}
		salts, keys = append(salts, m[1]), append(keys, m[2])
	}
	if salts[0] == salts[1] || keys[0] == keys[1] {
		t.Errorf("two users with one password share a salt or a hash: %v %v", salts, keys)
	}
}

// A3: 10 wrong passwords from 10 addresses lock the account for a while;
// then even the right password waits; once the window has passed it works
// and clears the count.
func secPerAccountLimit(t *testing.T, env *acctEnv) {
	pw := "victim-correct-password"
	acctWantRedirect(t, env.browser(acctFirefox).register(t, "victim", pw), "/manage/account/")
	id := env.userID(t, "victim")
	for i := 0; i < 10; i++ {
		acctWant(t, env.browser(acctChrome).login(t, "victim", fmt.Sprintf("guess-number-%02d", i)), 400, msgInvalidLogin)
	}
	for _, try := range []string{"guess-number-10", pw} {
		r := env.browser(acctChrome).login(t, "victim", try)
		acctWant(t, r, http.StatusTooManyRequests, msgTooManyLogins)
		acctWantRetryAfter(t, r, 5*time.Minute)
	}
	env.wantEvents(t, id, map[string]int{audit.LoginFailure: 10, audit.LoginSuccess: 1})

	// Five minutes later (the stored attempts moved back) the right
	// password works, and resets the count.
	// The per-user key is the SHA-256 of the lower-cased username.
	sum := sha256.Sum256([]byte("victim"))
	key := "user.login:" + hex.EncodeToString(sum[:])
	if n := env.exec(t, `UPDATE throttle_hits SET at = at - 300001 WHERE key = $1`, key); n != 10 {
		t.Fatalf("moved %d throttle hits of %s, want 10", n, key)
	}
	env.browser(acctChrome).mustLogin(t, "victim", pw)
	if n := env.queryInt(t, `SELECT count(*) FROM throttle_hits WHERE key = $1`, key); n != 0 {
		t.Errorf("%d failed attempts still counted after a successful login", n)
	}
}

// A4: one address trying one password against many usernames is stopped
// after 10, for known and unknown accounts alike; other addresses are not.
func secPerIPLimit(t *testing.T, env *acctEnv) {
	pw := "stuffed-correct-password"
	acctWantRedirect(t, env.browser(acctFirefox).register(t, "stuffed", pw), "/manage/account/")
	attacker := env.browser(acctChrome)
	for i := 0; i < 10; i++ {
		acctWant(t, attacker.login(t, acctName("nosuchuser", i), "password-from-a-dump"), 400, msgInvalidLogin)
	}
	for _, c := range [][2]string{{"nosuchuser10", "password-from-a-dump"}, {"stuffed", pw}} {
		r := attacker.login(t, c[0], c[1])
		acctWant(t, r, http.StatusTooManyRequests, msgTooManyLogins)
		acctWantRetryAfter(t, r, 5*time.Minute)
	}
	env.browser(acctFirefox).mustLogin(t, "stuffed", pw)
}

// A6: a wrong password and an unknown username get the same answer, and
// keep getting the same answer once the per-user limit has tripped for
// both: unknown names are counted like accounts.
func secNoEnumeration(t *testing.T, env *acctEnv) {
	acctWantRedirect(t, env.browser(acctFirefox).register(t, "enumreal", "enum-real-password"), "/manage/account/")
	a := env.browser(acctChrome).login(t, "enumreal", "wrong-password-1")
	b := env.browser(acctChrome).login(t, "enumfake", "wrong-password-1")
	acctWant(t, a, 400, msgInvalidLogin)
	acctSameAnswer(t, a, b, "enumreal", "enumfake")
	// Retry-After counts down from each name's own oldest failure, so its
	// value may differ by a second; its presence and form may not.
	headerNames := func(r *acctResp) string {
		var n []string
		for k := range r.Header {
			switch k {
			case "Date":
			case "Retry-After", "X-Request-Id": // the id differs on every answer
				n = append(n, k)
			default:
				n = append(n, k+"="+r.Header.Get(k))
			}
		}
		sort.Strings(n)
		return strings.Join(n, "\n")
	}
	if headerNames(a) != headerNames(b) {
		t.Errorf("headers differ:\n%s\n---\n%s", headerNames(a), headerNames(b))
	}

	// Through the limit: nine more failures for each name make ten, from
	// two addresses (the per-IP limit stops one address at ten attempts).
	attackers := []*acctBrowser{env.browser(acctChrome), env.browser(acctChrome)}
	for i := 1; i < 10; i++ {
		for _, name := range []string{"enumreal", "enumfake"} {
			acctWant(t, attackers[i%2].login(t, name, fmt.Sprintf("wrong-password-%d", i+1)), 400, msgInvalidLogin)
		}
	}
	// Each name probed from an address of its own, not limited itself, even
	// with the right password: the same refusal for both.
	a = env.browser(acctFirefox).login(t, "enumreal", "enum-real-password")
	b = env.browser(acctFirefox).login(t, "enumfake", "enum-real-password")
	acctWant(t, a, http.StatusTooManyRequests, msgTooManyLogins)
	acctWant(t, b, http.StatusTooManyRequests, msgTooManyLogins)
	acctWantRetryAfter(t, a, 5*time.Minute)
	acctWantRetryAfter(t, b, 5*time.Minute)
	acctSameAnswer(t, a, b, "enumreal", "enumfake")
	if headerNames(a) != headerNames(b) {
		t.Errorf("headers through the limit differ:\n%s\n---\n%s", headerNames(a), headerNames(b))
	}
}

// D1: the session id changes at login; an id planted before (a real
// anonymous one, or a made-up one) is worthless after; ids in URLs are
// ignored.
func secSessionFixation(t *testing.T, env *acctEnv) {
	pw := "fixation-password"
	b := env.browser(acctFirefox)
	acctWantRedirect(t, b.register(t, "fixation", pw), "/manage/account/")
	acctWantRedirect(t, b.post(t, "/account/logout/", nil), "/")
	// The logout's flash gave the browser an anonymous session.
	anon := b.session()
	if anon == "" || env.queryInt(t, `SELECT count(*) FROM sessions WHERE id_hash = $1 AND user_id IS NULL`, session.Hash(anon)) != 1 {
		t.Fatalf("no anonymous session after logging out (cookie %q)", anon)
	}
	// The attacker's browser holds the same id (planted in the victim's).
	attacker := env.browser(acctChrome)
	attacker.setSession(anon)
	b.mustLogin(t, "fixation", pw)
	if got := b.session(); got == anon || got == "" {
		t.Fatalf("the session id did not change at login")
	}
	if env.queryInt(t, `SELECT count(*) FROM sessions WHERE id_hash = $1`, session.Hash(anon)) != 0 {
		t.Error("the planted session still exists after login")
	}
	if attacker.signedIn(t) {
		t.Fatal("the planted id is signed in")
	}

	madeUp := strings.Repeat("A", 43)
	c := env.browser(acctChrome)
	c.setSession(madeUp)
	c.mustLogin(t, "fixation", pw)
	if c.session() == madeUp {
		t.Fatal("a made-up session id was kept at login")
	}
	if env.queryInt(t, `SELECT count(*) FROM sessions WHERE id_hash = $1`, session.Hash(madeUp)) != 0 {
		t.Error("a made-up session id was stored")
	}
	// An id in the URL is not a session.
	r := env.browser(acctChrome).get(t, "/manage/account/?gatehouse_session="+url.QueryEscape(c.session())+"&session="+url.QueryEscape(c.session()))
	acctWantRedirect(t, r, "/account/login/")
}

// D2 with an http base URL: HttpOnly, SameSite=Lax, Path=/, no Domain.
func secCookieFlagsHTTP(t *testing.T, env *acctEnv) {
	b := env.browser(acctFirefox)
	r := b.register(t, "cookiehttp", "cookie-http-password")
	acctWantRedirect(t, r, "/manage/account/")
	c := acctCookie(t, r, "gatehouse_session")
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Secure {
		t.Errorf("session cookie %q: want HttpOnly, SameSite=Lax, Path=/, no Domain, not Secure on http", c.Raw)
	}
	// Logging out clears it with the same attributes.
	r = b.post(t, "/account/logout/", nil)
	for _, c := range r.Cookie {
		if c.Name == "gatehouse_session" && c.MaxAge < 0 && (!c.HttpOnly || c.Path != "/") {
			t.Errorf("clearing cookie %q lacks HttpOnly or Path=/", c.Raw)
		}
	}
}

func acctCookie(t *testing.T, r *acctResp, name string) *http.Cookie {
	t.Helper()
	for _, c := range r.Cookie {
		if c.Name == name && c.Value != "" {
			return c
		}
	}
	t.Fatalf("%s %s set no cookie %s; Set-Cookie: %v", r.Method, r.Path, name, r.Header.Values("Set-Cookie"))
	return nil
}

var acctSessionIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)

// D2 with an https base URL: the __Host- cookie, Secure, HttpOnly,
// SameSite=Lax, Path=/, no Domain; and 1,000 session ids, all distinct and
// at least 256 bits of base64url.
func secCookieFlagsHTTPS(t *testing.T, env *acctEnv) {
	b := env.browser(acctFirefox)
	r := b.register(t, "cookiehttps", "cookie-https-password")
	acctWantRedirect(t, r, "/manage/account/")
	check := func(r *acctResp) {
		t.Helper()
		c := acctCookie(t, r, "__Host-gatehouse_session")
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("session cookie %q: want Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", c.Raw)
		}
		for _, c := range r.Cookie {
			if !c.Secure || !c.HttpOnly {
				t.Errorf("cookie %q is not Secure and HttpOnly on an https site", c.Raw)
			}
			if c.Name == "gatehouse_session" {
				t.Errorf("a cookie without the __Host- prefix: %q", c.Raw)
			}
		}
	}
	check(r)
	acctWantRedirect(t, b.post(t, "/account/logout/", nil), "/")
	r = b.login(t, "cookiehttps", "cookie-https-password")
	acctWantRedirect(t, r, "/manage/account/")
	check(r)
	if !b.signedIn(t) {
		t.Fatal("the __Host- cookie does not sign the browser in")
	}

	// 1,000 new sessions (a logout's flash makes an anonymous one).
	const n = 1000
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for i := w; i < n; i += 8 {
				req, _ := http.NewRequest(http.MethodPost, env.URL+"/account/logout/", strings.NewReader(""))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				for _, c := range resp.Cookies() {
					if c.Name == "__Host-gatehouse_session" {
						ids[i] = c.Value
					}
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, id := range ids {
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if !acctSessionIDRE.MatchString(id) || err != nil || len(raw) < 32 {
			t.Fatalf("session id %d %q is not at least 43 base64url characters (256 bits)", i, id)
		}
		if seen[id] {
			t.Fatalf("session id %q issued twice", id)
		}
		seen[id] = true
		env.secrets.add("session cookie", id)
	}
}

// D3: idle and absolute timeouts, with the configured values (--session-idle
// 30m, --session-max 1h); time passes by moving the stored times back.
func secSessionTimeouts(t *testing.T, env *acctEnv) {
	pw := "timeout-password"
	b := env.browser(acctFirefox)
	acctWantRedirect(t, b.register(t, "timeouts", pw), "/manage/account/")
	hash := session.Hash(b.session())
	var created, expires time.Time
	if err := env.sql(t).QueryRowContext(context.Background(), `SELECT created_at, expires_at FROM sessions WHERE id_hash = $1`, hash).Scan(&created, &expires); err != nil {
		t.Fatal(err)
	}
	if d := expires.Sub(created); d != time.Hour {
		t.Errorf("session lifetime %v, want the configured --session-max 1h", d)
	}
	seen := func(ago time.Duration) {
		t.Helper()
		env.exec(t, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, time.Now().UTC().Add(-ago), hash)
	}
	seen(29 * time.Minute)
	if !b.signedIn(t) {
		t.Fatal("signed out after 29 idle minutes with --session-idle 30m")
	}
	seen(31 * time.Minute)
	if b.signedIn(t) {
		t.Fatal("still signed in after 31 idle minutes with --session-idle 30m")
	}
	if env.queryInt(t, `SELECT count(*) FROM sessions WHERE id_hash = $1`, hash) != 0 {
		t.Error("the idle session was not deleted")
	}

	b.mustLogin(t, "timeouts", pw)
	hash = session.Hash(b.session())
	env.exec(t, `UPDATE sessions SET expires_at = $1 WHERE id_hash = $2`, time.Now().UTC().Add(-time.Second), hash)
	if b.signedIn(t) {
		t.Fatal("still signed in after the absolute timeout")
	}
}

// acctRoute is one route of internal/web/routes.go.
type acctRoute struct{ method, pattern string }

var acctRouteRE = regexp.MustCompile(`mux\.Handle\("(?:([A-Z]+) )?(/[^"]*)"`)

// acctRoutes reads every route from the source of the route table, so a
// new route is walked without anyone adding it here.
func acctRoutes(t *testing.T) []acctRoute {
	t.Helper()
	src, err := os.ReadFile("../../internal/web/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []acctRoute
	for _, m := range acctRouteRE.FindAllStringSubmatch(string(src), -1) {
		out = append(out, acctRoute{m[1], m[2]})
	}
	if len(out) < 30 {
		t.Fatalf("found %d routes in routes.go; the pattern no longer matches how routes are registered", len(out))
	}
	return out
}

// path fills a route pattern's wildcards.
func (r acctRoute) path(id int64) string {
	p := strings.ReplaceAll(r.pattern, "{$}", "")
	repl := map[string]string{
		"{id}": strconv.FormatInt(id, 10), "{project}": "no-such-project", "{version}": "1.0", "{a}": "aa", "{b}": "bb",
		"{digest}": strings.Repeat("0", 64), "{filename}": "x-1.0-py3-none-any.whl", "{file}": "none.css",
	}
	for k, v := range repl {
		p = strings.ReplaceAll(p, k, v)
	}
	p = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(p, "x")
	if p == "/" && r.method == "" {
		return "/no-such-page/"
	}
	return p
}

// D5: every state-changing route refuses a cross-site request from a
// signed-in browser, and nothing changes; no GET changes anything.
func secCSRFRouteWalk(t *testing.T, env *acctEnv) {
	pw := "csrf-admin-password"
	env.createAdmin(t, "csrfadmin", pw)
	env.createUser(t, "csrfvictim")
	adminID, victimID := env.userID(t, "csrfadmin"), env.userID(t, "csrfvictim")
	b := env.browser(acctFirefox)
	b.mustLogin(t, "csrfadmin", pw)
	other := env.browser(acctChrome)
	other.mustLogin(t, "csrfadmin", pw)
	b.enrolTOTP(t) // so that the admin pages open in the GET walk
	if r := b.get(t, "/admin/"); r.Code != http.StatusOK {
		t.Fatalf("the admin pages do not open:\n%s", r)
	}
	emailID := env.queryInt(t, `SELECT id FROM user_emails WHERE user_id = $1`, adminID)
	// A form that would change something on every route if it were
	// accepted.
	form := url.Values{
		"email": {"evil@evil.example"}, "email_id": {strconv.FormatInt(emailID, 10)}, "session": {session.Hash(other.session())},
		"current_password": {pw}, "password": {pw}, "password_confirm": {pw}, "confirm_username": {"csrfadmin"},
		"setting": {"read_only"}, "value": {"on"}, "reason": {"csrf"}, "username": {"csrfadmin"},
		"username_or_email": {"csrfadmin"}, "full_name": {"x"}, "next": {"/"},
	}
	before := secState(t, env, adminID, victimID)

	walked := map[string]bool{}
	for _, rt := range acctRoutes(t) {
		if rt.method == "GET" || rt.method == "HEAD" || strings.HasPrefix(rt.pattern, "/legacy") || strings.HasPrefix(rt.pattern, "/_/") {
			// The upload API is token-authenticated; the /_/ routes (the
			// OIDC exchange, the leaked-token report) authenticate by what
			// the body carries. None of them reads a cookie, so there is no
			// cross-site request to forge.
			continue
		}
		method := rt.method
		if method == "" {
			method = http.MethodPost // the catch-all route, any method
		}
		p := rt.path(victimID)
		for _, hdr := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			{"Sec-Fetch-Site": "same-site", "Origin": "https://sub.gatehouse.test"},
			{"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
		} {
			r := b.do(t, method, p, form, hdr)
			if r.Code != http.StatusForbidden || !strings.Contains(r.Body, msgCSRF) {
				t.Errorf("%s %s with %v: got %d, want 403 %q\n%s", method, p, hdr, r.Code, msgCSRF, r.Body)
			}
		}
		walked[p] = true
	}
	for _, p := range []string{"/account/login/", "/account/logout/", "/account/register/", "/manage/account/emails/add/",
		"/manage/account/password/", "/manage/account/delete/", "/admin/settings/", "/no-such-page/"} {
		if !walked[p] {
			t.Errorf("the route walk did not cover %s", p)
		}
	}
	if len(walked) < 20 {
		t.Errorf("walked %d state-changing routes, want them all (at least 20)", len(walked))
	}

	// No GET or HEAD changes anything either.
	for _, rt := range acctRoutes(t) {
		if rt.method != "GET" {
			continue
		}
		p := rt.path(victimID)
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			b.do(t, m, p, nil, nil) // no 5xx (checked by do)
		}
	}
	r := b.get(t, "/account/logout/")
	if r.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /account/logout/: got %d, want 405", r.Code)
	}
	if !b.signedIn(t) || !other.signedIn(t) {
		t.Fatal("a refused request or a GET ended a session")
	}
	after := secState(t, env, adminID, victimID)
	if before != after {
		t.Errorf("refused cross-site requests or GETs changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// secState is what a request could change about the users: every row of
// every table that belongs to them (by users.id or a user_id column) and
// the site settings; sessions without their last-seen time and data (flash
// messages). Other tests share the server, so nothing global is counted.
func secState(t *testing.T, env *acctEnv, ids ...int64) string {
	t.Helper()
	// Emails the users caused are sent (and recorded) in the background:
	// wait for that first.
	for _, id := range ids {
		deadline := time.Now().Add(20 * time.Second)
		for env.queryInt(t, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND user_id = $1`, id) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("emails of user %d still unsent after 20s", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var tables []string
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if env.dialect == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
	}
	for _, r := range env.rows(t, q) {
		tables = append(tables, strings.TrimPrefix(strings.TrimPrefix(r, "name="), "table_name="))
	}
	in := make([]string, len(ids))
	for i, id := range ids {
		in[i] = strconv.FormatInt(id, 10)
	}
	list := strings.Join(in, ",")
	var b strings.Builder
	for _, table := range tables {
		rows, err := env.sql(t).QueryContext(context.Background(), `SELECT * FROM `+table+` WHERE 1 = 0`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		rows.Close()
		has := func(c string) bool {
			for _, x := range cols {
				if x == c {
					return true
				}
			}
			return false
		}
		var sel string
		switch {
		case table == "sessions":
			sel = `SELECT id_hash, user_id, auth_level, password_date, reauth_at, created_at, expires_at FROM sessions WHERE user_id IN (` + list + `) ORDER BY id_hash`
		case table == "users":
			sel = `SELECT * FROM users WHERE id IN (` + list + `) ORDER BY id`
		case table == "site_settings":
			sel = `SELECT * FROM site_settings ORDER BY name`
		case has("user_id"):
			sel = `SELECT * FROM ` + table + ` WHERE user_id IN (` + list + `)`
		default:
			continue
		}
		rs := env.rows(t, sel)
		sort.Strings(rs)
		fmt.Fprintf(&b, "%s:\n  %s\n", table, strings.Join(rs, "\n  "))
	}
	return b.String()
}

// D7: whatever next= says, login sends the browser to a path of this site.
func secOpenRedirect(t *testing.T, env *acctEnv) {
	pw := "redirect-password"
	b := env.browser(acctFirefox)
	acctWantRedirect(t, b.register(t, "redirects", pw), "/manage/account/")
	bad := []string{"//evil.example", "https://evil.example", `/\evil.example`, "https:evil.example",
		"%2F%2Fevil.example", "javascript:x", "\t//evil.example", "/\t/evil.example", "///evil.example", "\\\\evil.example"}
	sameOrigin := func(loc string) bool {
		u, err := url.Parse(loc)
		return err == nil && strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, `/\`) &&
			u.Scheme == "" && u.Host == "" && !strings.ContainsAny(loc, "\t\r\n\\")
	}
	for _, next := range bad {
		// Signed in, the login page redirects at once.
		r := b.get(t, "/account/login/?next="+url.QueryEscape(next))
		if r.Code != http.StatusSeeOther || !sameOrigin(r.loc()) || r.loc() != "/manage/account/" {
			t.Errorf("GET login?next=%q: got %d to %q, want 303 to /manage/account/", next, r.Code, r.loc())
		}
	}
	acctWantRedirect(t, b.post(t, "/account/logout/", nil), "/")
	for _, next := range bad {
		// The form carries next only as a safe path.
		page := b.get(t, "/account/login/?next="+url.QueryEscape(next))
		if v := acctFormValue(t, page.Body, `action="/account/login/"`, "next"); v != "/manage/account/" {
			t.Errorf("login form for next=%q carries next=%q", next, v)
		}
		r := b.post(t, "/account/login/", url.Values{"username": {"redirects"}, "password": {pw}, "next": {next}})
		if r.Code != http.StatusSeeOther || !sameOrigin(r.loc()) || r.loc() != "/manage/account/" {
			t.Errorf("POST login next=%q: got %d to %q, want 303 to /manage/account/", next, r.Code, r.loc())
		}
		acctWantRedirect(t, b.post(t, "/account/logout/", nil), "/")
	}
	// A safe next is honoured.
	acctWantRedirect(t, b.post(t, "/account/login/", url.Values{"username": {"redirects"}, "password": {pw}, "next": {"/help/?a=1"}}), "/help/?a=1")
}

// D8: the security headers on the login, reset-request, reset and account
// pages; HSTS when the base URL is https; no-store on signed-in pages.
func secHeaders(t *testing.T, env *acctEnv, https bool) {
	name := "headers"
	if https {
		name = "headershttps"
	}
	pw := name + "-password"
	b := env.browser(acctFirefox)
	b.mustRegisterVerified(t, name, pw)
	visitor := env.browser(acctChrome)
	acctWantRedirect(t, visitor.post(t, "/account/request-password-reset/", url.Values{"username_or_email": {name}}), "/account/login/")
	link := acctLink(t, env, env.mail.take(t, name+"@example.com", "Password reset request"), "/account/reset-password/")
	pages := []struct {
		b      *acctBrowser
		path   string
		signed bool
	}{
		{visitor, "/account/login/", false},
		{visitor, "/account/request-password-reset/", false},
		{visitor, link, false},
		{b, "/manage/account/", true},
	}
	for _, p := range pages {
		r := p.b.get(t, p.path)
		acctWant(t, r, 200)
		h := r.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q lacks frame-ancestors 'none' or default-src 'none'", p.path, csp)
		}
		if v := h.Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", p.path, v)
		}
		if v := h.Get("Referrer-Policy"); v != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q, want no-referrer", p.path, v)
		}
		if v := h.Get("Permissions-Policy"); !strings.Contains(v, "camera=()") {
			t.Errorf("%s: Permissions-Policy %q", p.path, v)
		}
		hsts := h.Get("Strict-Transport-Security")
		if https && !strings.HasPrefix(hsts, "max-age=31536000") {
			t.Errorf("%s: Strict-Transport-Security %q on an https site", p.path, hsts)
		}
		if !https && hsts != "" {
			t.Errorf("%s: Strict-Transport-Security %q on a plain http site", p.path, hsts)
		}
		if cc := h.Get("Cache-Control"); p.signed && !strings.Contains(cc, "no-store") {
			t.Errorf("%s (signed in): Cache-Control %q, want no-store", p.path, cc)
		}
	}
}

// E2: a password reset neither signs in nor removes the second factor; the
// next login still asks for it.
func secResetKeepsSecondFactor(t *testing.T, env *acctEnv) {
	b := env.browser(acctFirefox)
	id := b.mustRegisterVerified(t, "resetmfa", "reset-mfa-old-password")
	env.giveSecondFactor(t, "resetmfa")
	v := env.browser(acctChrome)
	acctWantRedirect(t, v.post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"resetmfa"}}), "/account/login/")
	link := acctLink(t, env, env.mail.take(t, "resetmfa@example.com", "Password reset request"), "/account/reset-password/")
	page := v.get(t, link)
	acctWant(t, page, 200, "Choose a new password")
	tok := acctFormValue(t, page.Body, `action="/account/reset-password/"`, "token")
	pw := "reset-mfa-new-password"
	env.secrets.add("password of resetmfa", pw)
	acctWantRedirect(t, v.post(t, "/account/reset-password/", url.Values{"token": {tok}, "password": {pw}, "password_confirm": {pw}}), "/account/login/")
	env.mail.take(t, "resetmfa@example.com", "Password change notification")
	if v.signedIn(t) || b.signedIn(t) {
		t.Fatal("signed in after a reset, or a session from before it survived")
	}
	if n := env.queryInt(t, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, id); n != 1 {
		t.Fatalf("the reset removed the second factor (%d TOTP secrets)", n)
	}
	acctWantRedirect(t, v.login(t, "resetmfa", pw), "/account/two-factor/")
	if v.signedIn(t) {
		t.Fatal("the password alone signed in a user with a second factor")
	}
}

// E3: reset requests are capped at 5 a day per account, with the same
// answer to the visitor and no more than 5 emails; additions of addresses
// are capped at 2 a day per IP.
func secEmailLimits(t *testing.T, env *acctEnv) {
	b := env.browser(acctFirefox)
	b.mustRegisterVerified(t, "flooded", "flooded-password")
	addr := "flooded@example.com"
	reference := env.browser(acctChrome).post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"no-such-account-e3"}})
	for i := 0; i < 7; i++ {
		r := env.browser(acctChrome).post(t, "/account/request-password-reset/", url.Values{"username_or_email": {"flooded"}})
		acctSameAnswer(t, r, reference, "", "")
	}
	for i := 0; i < 5; i++ {
		acctLink(t, env, env.mail.take(t, addr, "Password reset request"), "/account/reset-password/")
	}
	env.noMail(t, addr)
	if n := env.outboxTo(t, addr, "password-reset"); n != 5 {
		t.Errorf("%d reset emails queued, want 5", n)
	}
	env.wantEvents(t, env.userID(t, "flooded"), map[string]int{audit.PasswordResetRequest: 5})

	// Registration counted one address for this IP and verification
	// cleared it; two more additions are allowed, the third is refused.
	for _, a := range []string{"flooded.two@example.org", "flooded.three@example.org"} {
		acctWantRedirect(t, b.post(t, "/manage/account/emails/add/", url.Values{"email": {a}}), "/manage/account/")
	}
	r := b.post(t, "/manage/account/emails/add/", url.Values{"email": {"flooded.four@example.org"}})
	acctWant(t, r, http.StatusTooManyRequests, "Too many emails have been added to this account without verifying them.")
	acctWantRetryAfter(t, r, 24*time.Hour)
	if n := env.outboxTo(t, "flooded.four@example.org", "verify-email"); n != 0 {
		t.Errorf("the refused address got %d verification emails", n)
	}
}

// TestE2EHashDoS (A5) runs alone (not in parallel) so that the process's
// memory is its own: 50 concurrent logins with 1 KB passwords for unknown
// users (each costs a dummy argon2id verification of 19 MiB) are all
// answered without a 5xx (400, or 429 once the hash pool stayed full past
// its wait), and the resident memory grows by far less than 50 × 19 MiB,
// because the pool runs one hash at a time.
func TestE2EHashDoS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			// A one-CPU server's default hash budget and the default wait:
			// the pool's bound is what this test is about.
			env := acctStart(t, dialect, acctOpts{extra: []string{"--hash-cpus", "0.25", "--hash-wait", "1s"}})
			env.browser(acctFirefox).get(t, "/account/login/") // warm up
			runtime.GC()
			debug.FreeOSMemory()
			base := acctRSS(t)
			peak := base
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
						if v, err := acctReadRSS(); err == nil && v > peak {
							peak = v
						}
					}
				}
			}()
			const n = 50
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				b := env.browser(acctFirefox)
				pw := strings.Repeat(fmt.Sprintf("%03d-dos-", i), 128)[:1024]
				env.secrets.add("1 KB password", pw)
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := b.post(t, "/account/login/", url.Values{"username": {acctName("dosuser", i)}, "password": {pw}})
					codes[i] = r.Code
				}()
			}
			wg.Wait()
			close(stop)
			<-sampled
			for i, c := range codes {
				if c != http.StatusBadRequest && c != http.StatusTooManyRequests {
					t.Errorf("login %d: got %d, want 400 or 429", i, c)
				}
			}
			growth := peak - base
			t.Logf("RSS %d MiB before, peak %d MiB during 50 concurrent 1 KB-password logins", base>>20, peak>>20)
			if acctRaceBuild() {
				t.Log("built with -race, whose shadow memory inflates the RSS: the memory bound is not checked")
			} else if growth > 300<<20 {
				t.Errorf("resident memory grew by %d MiB during 50 concurrent logins, want < 300 MiB (is argon2 concurrency bounded?)", growth>>20)
			}
			acctNoSecretsLeaked(t, env)
		})
	}
}

// acctRaceBuild reports whether the test binary was built with -race.
func acctRaceBuild() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			if st.Key == "-race" && st.Value == "true" {
				return true
			}
		}
	}
	return false
}

// acctRSS reads this process's resident set size.
func acctRSS(t *testing.T) int64 {
	t.Helper()
	v, err := acctReadRSS()
	if err != nil {
		t.Skipf("cannot read the resident set size: %v", err)
	}
	return v
}

func acctReadRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %v", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}
