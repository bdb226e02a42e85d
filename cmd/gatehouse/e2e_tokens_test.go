package main

// End-to-end: API tokens with Debian's twine against a real server, on
// SQLite and PostgreSQL. A token of a user without a second factor is
// refused with Warehouse's message and works, unchanged, once the user has
// set one up (through the management gate, which brings them back to the
// token page); a token made on the web page uploads, with the page's own
// snippets; a deleted or reported token stops at once and its owner hears
// of a leak by email.

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
)

func TestE2ETokens(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	tools := e2eTools(t)
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{})
			tw := &tokTwine{env: env, bin: tools.twine, home: t.TempDir()}
			t.Run("flows", func(t *testing.T) {
				for _, f := range []struct {
					name string
					fn   func(t *testing.T, env *acctEnv, tw *tokTwine)
				}{
					{"twine-needs-2fa-then-uploads", tokTwineNeeds2FA},
					{"token-made-on-the-web", tokMadeOnTheWeb},
					{"leaked-token-report", tokLeakReport},
					{"unverified-email-comes-back", tokUnverifiedComesBack},
				} {
					t.Run(f.name, func(t *testing.T) {
						t.Parallel()
						f.fn(t, env, tw)
					})
				}
			})
			acctNoSecretsLeaked(t, env)
		})
	}
}

// tokTwine runs Debian's twine against the server.
type tokTwine struct {
	env  *acctEnv
	bin  string
	home string
}

// wheel writes a wheel of project at version to a new directory and
// returns its path.
func (tw *tokTwine) wheel(t *testing.T, project, version string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, e2eWheelName(project, version))
	if err := os.WriteFile(p, e2eWheel(t, project, version, e2eMetadata(project, version)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// upload runs twine upload with the token on the command line.
func (tw *tokTwine) upload(t *testing.T, tok string, files ...string) (string, error) {
	t.Helper()
	args := append([]string{"upload", "--repository-url", tw.env.URL + "/legacy/", "-u", "__token__", "-p", tok,
		"--non-interactive", "--disable-progress-bar"}, files...)
	return e2eExec(tw.home, e2eEnv(tw.home), tw.bin, args...)
}

func (tw *tokTwine) mustUpload(t *testing.T, tok string, files ...string) {
	t.Helper()
	if out, err := tw.upload(t, tok, files...); err != nil {
		t.Fatalf("twine upload: got %v, want success; output:\n%s", err, out)
	}
}

// refused fails unless twine fails and prints want.
func (tw *tokTwine) refused(t *testing.T, tok, want string, files ...string) {
	t.Helper()
	out, err := tw.upload(t, tok, files...)
	if err == nil {
		t.Fatalf("twine upload: got success, want it refused with %q; output:\n%s", want, out)
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
		t.Fatalf("twine output lacks %q:\n%s", want, out)
	}
}

var tokNewTokenRE = regexp.MustCompile(`<code id="new-token" class="secret token">(pypi-[A-Za-z0-9_-]+)</code>`)

// makeToken fills in the token form of the signed-in browser and returns
// the token the page shows once, and the page.
func tokMakeToken(t *testing.T, b *acctBrowser, form url.Values) (string, *acctResp) {
	t.Helper()
	r := b.post(t, "/manage/account/token/", form)
	acctWant(t, r, 200, "shown only this once")
	m := tokNewTokenRE.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no token on the page:\n%s", r.Body)
	}
	b.env.secrets.add("API token made on the web", m[1])
	return m[1], r
}

// Issue 7's test: with Debian's twine, a token of a user without 2FA is
// refused with the spec's message; once 2FA is on, the same token uploads.
// The user sets it up from where the gate sends them, and comes back.
func tokTwineNeeds2FA(t *testing.T, env *acctEnv, tw *tokTwine) {
	u := mfaNewUser(t, env, "tina", true, false)
	tok := env.token(t, u.name, "before 2FA") // the command line makes it anyway, with a warning
	whl := tw.wheel(t, "tina-pkg", "1.0")
	tw.refused(t, tok, "User 'tina', associated with the API token used, does not have two-factor authentication enabled. "+
		"Please enable two-factor authentication before attempting to upload to Gatehouse.", whl)

	b := env.browser(acctFirefox)
	b.mustLogin(t, u.name, u.pw)
	r := b.get(t, "/manage/account/token/")
	acctWantRedirect(t, r, "/manage/account/two-factor/?next="+url.QueryEscape("/manage/account/token/"))
	acctWant(t, b.follow(t, r), 200, "Two-factor authentication must be enabled on your account to perform this action.",
		"then you go back to what you were doing (/manage/account/token/)")
	u.generateCodes(t, b)
	u.confirmCodes(t, b)
	_, secret := u.provisionPage(t, b)
	r = b.post(t, "/manage/account/totp-provision/", url.Values{"totp_value": {mfaCodeAt(t, secret, time.Now())}})
	acctWantRedirect(t, r, "/manage/account/token/")
	acctWant(t, b.follow(t, r), 200, "Authentication app added.", "<h1>API tokens</h1>", "before 2FA")
	u.secret = secret
	env.mail.take(t, u.email, "Two-factor method added")

	// The same token, unchanged.
	tw.mustUpload(t, tok, whl)
	files, _ := env.simpleJSON(t, "tina-pkg")
	if len(files) != 1 || files[0].Filename != filepath.Base(whl) {
		t.Errorf("tina-pkg files after the upload: %+v", files)
	}
}

// A token made on the web page: shown once, with snippets that work as
// they are (the ~/.pypirc one and the environment one, with twine),
// listed with its scope and last use, and deleted with sudo; afterwards
// twine is refused.
func tokMadeOnTheWeb(t *testing.T, env *acctEnv, tw *tokTwine) {
	u := mfaNewUser(t, env, "wanda", true, false)
	b := env.browser(acctChrome)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)
	first := env.token(t, u.name, "first upload")
	tw.mustUpload(t, first, tw.wheel(t, "wanda-one", "1.0"))
	tw.mustUpload(t, first, tw.wheel(t, "wanda-two", "1.0"))

	page := b.get(t, "/manage/account/token/")
	acctWant(t, page, 200, "Make a token", `value="wanda-one"`, `value="wanda-two"`)
	if cc := page.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token page Cache-Control %q, want no-store", cc)
	}
	expDay := time.Now().UTC().AddDate(0, 1, 0)
	exp := expDay.Format(time.DateOnly)
	// The token works until the end of that day, UTC.
	expShown := exp + " 23:59 UTC"
	tok, r := tokMakeToken(t, b, url.Values{"description": {"CI for wanda-one"}, "scope": {"projects"}, "project": {"wanda-one"}, "expires": {exp}})
	if rp := r.Header.Get("Referrer-Policy"); rp != "no-referrer" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the page showing the token: Referrer-Policy %q, Cache-Control %q; want no-referrer, no-store (spec D8)", rp, r.Header.Get("Cache-Control"))
	}
	acctWant(t, r, 200, "Project wanda-one", "repository = "+env.base+"/legacy/")
	// Both tokens, the command line's and this one, are on the record.
	env.wantEvents(t, u.id, map[string]int{audit.APITokenAdded: 2})

	// The ~/.pypirc snippet, pasted as it is.
	pypirc := tokSnippet(t, r.Body, "snip-pypirc")
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".pypirc"), []byte(pypirc+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := regexp.MustCompile(`twine upload --repository (\S+) dist/\*`).FindStringSubmatch(r.Body)
	if repo == nil {
		t.Fatalf("no twine command next to the .pypirc snippet")
	}
	// The snippet names the public base URL (localhost:PORT), which is this
	// listener: twine connects to it as written.
	if out, err := e2eExec(home, e2eEnv(home), tw.bin, "upload", "--repository", repo[1], "--non-interactive", "--disable-progress-bar",
		tw.wheel(t, "wanda-one", "1.1")); err != nil {
		t.Fatalf("twine with the page's .pypirc: %v\n%s\n.pypirc:\n%s", err, out, pypirc)
	}
	// The environment snippet, as CI would set it.
	vars := map[string]string{}
	for _, line := range strings.Split(tokSnippet(t, r.Body, "snip-env"), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			vars[k] = v
		}
	}
	if vars["TWINE_PASSWORD"] != tok || vars["TWINE_USERNAME"] != "__token__" || vars["TWINE_REPOSITORY_URL"] != env.base+"/legacy/" {
		t.Fatalf("environment snippet: %v", vars)
	}
	envHome := t.TempDir()
	envVars := e2eEnv(envHome, "TWINE_REPOSITORY_URL="+vars["TWINE_REPOSITORY_URL"], "TWINE_USERNAME="+vars["TWINE_USERNAME"], "TWINE_PASSWORD="+vars["TWINE_PASSWORD"])
	if out, err := e2eExec(envHome, envVars, tw.bin, "upload", "--non-interactive", "--disable-progress-bar", tw.wheel(t, "wanda-one", "1.2")); err != nil {
		t.Fatalf("twine with the page's environment variables: %v\n%s", err, out)
	}
	uvVars := tokSnippet(t, r.Body, "snip-uv")
	if !strings.Contains(uvVars, "export UV_PUBLISH_URL="+env.base+"/legacy/\n") || !strings.Contains(uvVars, "export UV_PUBLISH_TOKEN="+tok+"\n") {
		t.Errorf("uv snippet:\n%s", uvVars)
	}
	// Limited to wanda-one: refused for wanda-two, with PyPI's words.
	tw.refused(t, tok, "Invalid API Token: project-scoped token is not valid for project: 'wanda-two'", tw.wheel(t, "wanda-two", "1.1"))

	// Never shown again; listed with what it can do and its last use.
	list := b.get(t, "/manage/account/token/")
	if strings.Contains(list.Body, tok) {
		t.Error("the token page shows the token again")
	}
	row := acctSection(t, list.Body, "CI for wanda-one")
	for _, want := range []string{"Project wanda-one", expShown} {
		if !strings.Contains(row, want) {
			t.Errorf("the token list lacks %q:\n%s", want, row)
		}
	}
	if n := env.queryInt(t, `SELECT count(*) FROM api_tokens WHERE user_id = $1 AND description = 'CI for wanda-one' AND last_used_at IS NOT NULL`, u.id); n != 1 {
		t.Error("the token's last use is not recorded")
	}

	// Delete it: sudo first.
	id := env.queryString(t, `SELECT id FROM api_tokens WHERE user_id = $1 AND description = 'CI for wanda-one'`, u.id)
	if n := env.exec(t, `UPDATE sessions SET reauth_at = $1 WHERE user_id = $2`, time.Now().UTC().Add(-31*time.Minute), u.id); n != 1 {
		t.Fatalf("updated %d sessions", n)
	}
	r = b.post(t, "/manage/account/token/delete/", url.Values{"token_id": {id}})
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.loc(), "/account/reauthenticate/") {
		t.Fatalf("delete without recent authentication: %s", r)
	}
	acctWantRedirect(t, b.post(t, "/account/reauthenticate/", url.Values{"password": {u.pw}, "next": {"/manage/account/token/"}}), "/manage/account/token/")
	r = b.post(t, "/manage/account/token/delete/", url.Values{"token_id": {id}})
	acctWantRedirect(t, r, "/manage/account/token/")
	acctWant(t, b.follow(t, r), 200, "API token “CI for wanda-one” deleted. It no longer works.")
	tw.refused(t, tok, "Invalid or non-existent authentication information.", tw.wheel(t, "wanda-one", "1.3"))
	history := b.get(t, "/manage/account/history/")
	acctWant(t, history, 200, "API token created: CI for wanda-one (projects wanda-one)", "API token deleted: CI for wanda-one")
	env.wantEvents(t, u.id, map[string]int{audit.APITokenAdded: 2, audit.APITokenRemoved: 1})
	if n := env.queryInt(t, `SELECT count(*) FROM events WHERE tag = $1 AND project_id = (SELECT id FROM projects WHERE normalized_name = 'wanda-one')`,
		audit.ProjectAPITokenRemoved); n != 1 {
		t.Errorf("%d %s events on wanda-one, want 1", n, audit.ProjectAPITokenRemoved)
	}
}

// tokSnippet returns the text of the <pre> with the id, as a person
// copying it gets it.
func tokSnippet(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<pre id="` + id + `"[^>]*>(.*?)</pre>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no snippet %s on the page", id)
	}
	return html.UnescapeString(m[1])
}

// A leaked token, reported to the server by its value, stops at once and
// its owner is emailed; so does one an administrator revokes with
// 'gatehouse token revoke'.
func tokLeakReport(t *testing.T, env *acctEnv, tw *tokTwine) {
	u := mfaNewUser(t, env, "lars", true, false)
	b := env.browser(acctSafari)
	b.mustLogin(t, u.name, u.pw)
	u.enrol(t, b)
	leaked, _ := tokMakeToken(t, b, url.Values{"description": {"oops, committed"}, "scope": {"user"}})
	other := env.token(t, u.name, "other")
	tw.mustUpload(t, leaked, tw.wheel(t, "lars-pkg", "1.0"))

	report := `[{"token": "` + leaked + `", "type": "pypi_api_token", "url": "https://gist.example.com/lars/1"}]`
	req, err := http.NewRequest("POST", env.URL+"/_/secrets/disclose-token", strings.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("leak report: got %d, want 204", resp.StatusCode)
	}
	tw.refused(t, leaked, "Invalid or non-existent authentication information.", tw.wheel(t, "lars-pkg", "1.1"))
	m := env.mail.take(t, u.email, "Your API credentials from Gatehouse were found on a public webpage")
	for _, want := range []string{`"oops, committed" (whole account)`, "https://gist.example.com/lars/1", env.base + "/manage/account/token/"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("leak email lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text+m.HTML, leaked) {
		t.Error("the leak email holds the token")
	}
	acctWant(t, b.get(t, "/manage/account/history/"), 200, "API token revoked because it was found in public: oops, committed")

	// The administrator's way: the command, the token on standard input.
	var stdout, stderr bytes.Buffer
	args := []string{"token", "revoke", "--url", "https://paste.example.com/x", "--data-dir", env.dataDir, "--database-url", env.dbURL}
	if err := run(context.Background(), args, e2eNoEnv, strings.NewReader(other+"\n"), &stdout, &stderr); err != nil {
		t.Fatalf("gatehouse token revoke: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), `Revoked lars's token "other" (whole account)`) {
		t.Errorf("gatehouse token revoke said %q", stdout.String())
	}
	tw.refused(t, other, "Invalid or non-existent authentication information.", tw.wheel(t, "lars-pkg", "1.1"))
	m = env.mail.take(t, u.email, "An administrator revoked one of your API tokens")
	if !strings.Contains(m.Text, `"other" (whole account)`) {
		t.Errorf("administrator's revocation email:\n%s", m.Text)
	}
	env.wantEvents(t, u.id, map[string]int{audit.APITokenRemovedLeak: 2})
}

// A user whose address is not verified is sent by the gate to verify it,
// and the emailed link, opened in the same browser, brings them back to
// the page they tried (where the gate's next step, a second factor,
// takes over).
func tokUnverifiedComesBack(t *testing.T, env *acctEnv, tw *tokTwine) {
	b := env.browser(acctFirefox)
	b.mustRegister(t, "ulla", "ulla's registration passphrase")
	r := b.get(t, "/manage/account/token/")
	acctWantRedirect(t, r, "/manage/unverified-account/?next="+url.QueryEscape("/manage/account/token/"))
	acctWant(t, b.follow(t, r), 200, "You must verify your primary email address before you can perform this action.",
		"you go back to what you were doing (/manage/account/token/)")
	link := acctLink(t, env, env.mail.take(t, "ulla@example.com", "Email verification"), "/account/verify-email/")
	r = b.get(t, link)
	acctWantRedirect(t, r, "/manage/account/token/")
	r = b.get(t, r.loc())
	acctWantRedirect(t, r, "/manage/account/two-factor/?next="+url.QueryEscape("/manage/account/token/"))
	acctWant(t, b.follow(t, r), 200, "Email address ulla@example.com verified.", "then you go back to what you were doing")
}
