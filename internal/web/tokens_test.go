package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

var newTokenRE = regexp.MustCompile(`<code id="new-token" class="secret token">(pypi-[A-Za-z0-9_-]+)</code>`)

// TestTokenPagesGate: the API tokens page and its forms are management
// actions: signed in, a verified primary email, a second factor, and a
// password entered in the last 30 minutes, in that order, each refusal
// going where it is fixed.
func TestTokenPagesGate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		anon := f.get(t, "/manage/account/token/")
		if anon.code != http.StatusSeeOther || anon.header.Get("Location") != "/account/login/?next=%2Fmanage%2Faccount%2Ftoken%2F" {
			t.Errorf("anonymous: got %d to %q, want the login page and back", anon.code, anon.header.Get("Location"))
		}

		bob := addUser(t, d, "bob")
		if _, err := d.Exec(`DELETE FROM totp_secrets WHERE user_id = $1`, bob); err != nil {
			t.Fatal(err)
		}
		nob := f.signInAs(t, bob)
		for _, p := range []struct{ method, path string }{{"GET", "/manage/account/token/"}, {"POST", "/manage/account/token/"}, {"POST", "/manage/account/token/delete/"}} {
			var form url.Values
			if p.method == "POST" {
				form = url.Values{"description": {"x"}, "scope": {"user"}}
			}
			r := nob.do(t, p.method, p.path, form)
			want := "/manage/account/two-factor/"
			if p.method == "GET" {
				want += "?next=%2Fmanage%2Faccount%2Ftoken%2F"
			}
			wantRedirect(t, p.method+" "+p.path+" without a second factor", r, want)
		}
		if _, err := d.Exec(`UPDATE user_emails SET verified = FALSE WHERE user_id = $1`, bob); err != nil {
			t.Fatal(err)
		}
		wantRedirect(t, "without a verified email", nob.get(t, "/manage/account/token/"), "/manage/unverified-account/?next=%2Fmanage%2Faccount%2Ftoken%2F")
		if n := f.count(t, `SELECT count(*) FROM api_tokens WHERE user_id = $1`, bob); n != 0 {
			t.Errorf("a refused request made %d tokens", n)
		}

		alice := f.signInAs(t, f.alice)
		wantPage(t, "alice", alice.get(t, "/manage/account/token/"), 200, "<h1>API tokens</h1>", `aria-current="page">API tokens</a>`)
		alice.forgetReauth(t)
		wantRedirect(t, "alice, 31 minutes later", alice.get(t, "/manage/account/token/"), "/account/reauthenticate/?next=%2Fmanage%2Faccount%2Ftoken%2F")
		r := alice.post(t, "/manage/account/token/", url.Values{"description": {"late"}, "scope": {"user"}})
		if r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/account/reauthenticate/") {
			t.Errorf("POST without recent authentication: got %d to %q, want the password again", r.code, r.loc)
		}
		if n := f.count(t, `SELECT count(*) FROM api_tokens WHERE description = 'late'`); n != 0 {
			t.Error("a token was made without recent authentication")
		}
	})
}

// TestCreateTokenOnTheWeb: a token made on the page is shown once, with
// snippets built from the configured base URL, and uploads.
func TestCreateTokenOnTheWeb(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "alpha", Version: "1.0"}))
		f.mustUpload(t, wheel(t, meta{Name: "beta", Version: "1.0"}))
		f.mustUpload(t, wheel(t, meta{Name: "gamma", Version: "1.0"}))
		b := f.signInAs(t, f.alice)

		page := b.get(t, "/manage/account/token/")
		wantPage(t, "the form", page, 200, `value="alpha"`, `value="beta"`, `value="gamma"`, "(Owner)")
		if strings.Contains(page.body, "copy.") {
			t.Error("copy.js is loaded on a page that shows no token")
		}

		r := b.post(t, "/manage/account/token/", url.Values{"description": {"CI for alpha"}, "scope": {"projects"},
			"project": {"alpha", "beta"}, "expires": {"2026-06-30"}})
		wantPage(t, "created", r, 200, "Token “CI for alpha” created", "shown only this once", "Projects alpha, beta",
			"2026-06-30 23:59 UTC", "repository = "+f.url+"/legacy/", "UV_PUBLISH_URL="+f.url+"/legacy/",
			"TWINE_REPOSITORY_URL="+f.url+"/legacy/", "twine upload --repository gatehouse-test dist/*",
			`data-copy="new-token" hidden`, `<script src="/static/copy.`)
		m := newTokenRE.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("no token on the page:\n%s", r.body)
		}
		raw := m[1]
		if n := strings.Count(r.body, raw); n != 4 {
			t.Errorf("the token appears %d times, want 4 (itself, .pypirc, uv, environment)", n)
		}
		// It uploads to alpha and beta, and nowhere else.
		if res := f.uploadAs(t, raw, wheel(t, meta{Name: "alpha", Version: "2.0"}).form(), wheel(t, meta{Name: "alpha", Version: "2.0"})); res.code != 200 {
			t.Errorf("upload to alpha with the new token: %s", res)
		}
		g := wheel(t, meta{Name: "gamma", Version: "2.0"})
		if res := f.uploadAs(t, raw, g.form(), g); res.code != 403 || !strings.Contains(res.reason, "project-scoped token is not valid for project: 'gamma'") {
			t.Errorf("upload to gamma with a token for alpha and beta: %s", res)
		}

		// Never shown again; the list says what it is and when it was used.
		list := b.get(t, "/manage/account/token/")
		if strings.Contains(list.body, raw) || strings.Contains(list.body, strings.TrimPrefix(raw, "pypi-")[:40]) {
			t.Error("the token list shows the token again")
		}
		wantPage(t, "the list", list, 200, "CI for alpha", "Projects alpha, beta", "2026-06-30 23:59 UTC",
			t0.Format("2006-01-02 15:04")+" UTC") // last used, by the upload
		if e := f.lastEvent(t, audit.APITokenAdded); e.ActorID != f.alice || e.IP == "" || e.UserAgent == "" || e.Additional["description"] != "CI for alpha" {
			t.Errorf("token added event = %+v", e)
		}

		// A whole-account token makes new projects.
		r = b.post(t, "/manage/account/token/", url.Values{"description": {"laptop"}, "scope": {"user"}})
		wantPage(t, "whole account", r, 200, "Whole account (all projects, and new ones)")
		all := newTokenRE.FindStringSubmatch(r.body)[1]
		n := wheel(t, meta{Name: "delta", Version: "1.0"})
		if res := f.uploadAs(t, all, n.form(), n); res.code != 200 {
			t.Errorf("new project with the whole-account token: %s", res)
		}
	})
}

// TestTokenFormBadInput: every refusal is shown next to its field, keeps
// what was typed, and changes nothing in the database.
func TestTokenFormBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "alpha", Version: "1.0"}))
		bob := addUser(t, d, "bob")
		bobs := f.mintToken(t, bob) // bob makes "bobs-project"
		bp := wheel(t, meta{Name: "bobs-project", Version: "1.0"})
		if res := f.uploadAs(t, bobs, bp.form(), bp); res.code != 200 {
			t.Fatal(res)
		}
		b := f.signInAs(t, f.alice)
		if r := b.post(t, "/manage/account/token/", url.Values{"description": {"taken"}, "scope": {"user"}}); r.code != 200 {
			t.Fatalf("first token: %d", r.code)
		}
		before := f.tokenState(t)
		for _, tc := range []struct {
			name  string
			form  url.Values
			code  int
			field string
			msg   string
		}{
			{"no name", url.Values{"description": {"  "}, "scope": {"user"}}, 400, "description", "Specify a token name."},
			{"long name", url.Values{"description": {strings.Repeat("x", 101)}, "scope": {"user"}}, 400, "description", "at most 100 characters"},
			{"duplicate name", url.Values{"description": {"taken"}, "scope": {"user"}}, 409, "description", "API token name already in use"},
			{"no scope", url.Values{"description": {"x"}}, 400, "scope", "Choose what the token may upload to"},
			{"odd scope", url.Values{"description": {"x"}, "scope": {"everything"}}, 400, "scope", "Choose what the token may upload to"},
			{"projects, none ticked", url.Values{"description": {"x"}, "scope": {"projects"}}, 400, "scope", "Tick at least one project"},
			{"whole account and ticked", url.Values{"description": {"x"}, "scope": {"user"}, "project": {"alpha"}}, 400, "scope", "also ticked projects"},
			{"someone else's project", url.Values{"description": {"x"}, "scope": {"projects"}, "project": {"bobs-project"}}, 403, "scope",
				"You are not an owner or maintainer of project 'bobs-project'."},
			{"no such project", url.Values{"description": {"x"}, "scope": {"projects"}, "project": {"nope"}}, 404, "scope", "Project 'nope' does not exist."},
			{"bad project name", url.Values{"description": {"x"}, "scope": {"projects"}, "project": {"-x-"}}, 400, "scope", "is not a valid project name"},
			{"past expiry", url.Values{"description": {"x"}, "scope": {"user"}, "expires": {"2026-02-28"}}, 400, "expires", "The expiry date 2026-02-28 is in the past."},
			{"bad date", url.Values{"description": {"x"}, "scope": {"user"}, "expires": {"31/12/2026"}}, 400, "expires", "Give the expiry date as YYYY-MM-DD"},
		} {
			r := b.post(t, "/manage/account/token/", tc.form)
			if r.code != tc.code {
				t.Errorf("%s: got %d, want %d", tc.name, r.code, tc.code)
			}
			re := regexp.MustCompile(`<p class="field-error" id="` + tc.field + `-error">([^<]*)</p>`)
			m := re.FindStringSubmatch(r.body)
			if m == nil || !strings.Contains(html.UnescapeString(m[1]), tc.msg) {
				t.Errorf("%s: want %q next to the %s field; got %v\n%.4000s", tc.name, tc.msg, tc.field, m, r.body)
			}
			if newTokenRE.MatchString(r.body) {
				t.Errorf("%s: a token was shown", tc.name)
			}
			if d := tc.form.Get("description"); d != "" && len(d) < 100 && !strings.Contains(r.body, `value="`+d+`"`) {
				t.Errorf("%s: the name typed is not kept in the form", tc.name)
			}
		}
		if after := f.tokenState(t); after != before {
			t.Errorf("bad input changed the database:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// tokenState is what token forms could change: the tokens and the events.
func (in *instance) tokenState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	rows, err := in.db.Query(`SELECT id, user_id, description, caveats_json, expires_at FROM api_tokens ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, desc, cav string
		var uid int64
		var exp sql.NullTime
		if err := rows.Scan(&id, &uid, &desc, &cav, &exp); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %s %s %v; ", id, uid, desc, cav, exp)
	}
	b.WriteString("events: " + strings.Repeat("|", in.count(t, `SELECT count(*) FROM events`)))
	return b.String()
}

// lastEvent returns the newest event with the tag.
func (in *instance) lastEvent(t *testing.T, tag string) audit.Stored {
	t.Helper()
	var uid, pid, aid int64
	var e audit.Stored
	var add string
	err := in.db.QueryRow(`SELECT COALESCE(user_id, 0), COALESCE(project_id, 0), COALESCE(actor_id, 0), actor, ip, user_agent, additional
		FROM events WHERE tag = $1 ORDER BY id DESC LIMIT 1`, tag).Scan(&uid, &pid, &aid, &e.Actor, &e.IP, &e.UserAgent, &add)
	if err != nil {
		t.Fatalf("no %s event: %v", tag, err)
	}
	e.Tag, e.UserID, e.ProjectID, e.ActorID = tag, uid, pid, aid
	e.Additional = map[string]any{}
	if err := json.Unmarshal([]byte(add), &e.Additional); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestF5TokenIDOR: spec F5. Deleting needs sudo, works on one's
// own tokens only (another user's id is not found and the token stays),
// and is audited, on the projects too.
func TestF5TokenIDOR(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "alpha", Version: "1.0"}))
		bob := addUser(t, d, "bob")
		bobsRaw, bobsTok, err := f.tokens.Create(ctx, bob, "bob's laptop", nil, nil, token.Origin{CommandLine: true})
		if err != nil {
			t.Fatal(err)
		}
		_, mine, err := f.tokens.Create(ctx, f.alice, "alpha only", []string{"alpha"}, nil, token.Origin{CommandLine: true})
		if err != nil {
			t.Fatal(err)
		}
		b := f.signInAs(t, f.alice)

		// Alice neither sees nor deletes bob's token.
		if page := b.get(t, "/manage/account/token/"); strings.Contains(page.body, "bob's laptop") || strings.Contains(page.body, bobsTok.ID) {
			t.Error("alice's token page shows bob's token")
		}
		before := f.tokenState(t)
		r := b.post(t, "/manage/account/token/delete/", url.Values{"token_id": {bobsTok.ID}})
		wantPage(t, "deleting bob's token", r, 404, "API token not found.")
		r = b.post(t, "/manage/account/token/delete/", url.Values{"token_id": {"../../etc"}})
		wantPage(t, "deleting a made-up id", r, 404, "API token not found.")
		if after := f.tokenState(t); after != before {
			t.Errorf("refused deletions changed the database:\nbefore %s\nafter  %s", before, after)
		}
		if _, err := f.tokens.Authenticate(ctx, bobsRaw); err != nil {
			t.Errorf("bob's token after alice's attempt: %v", err)
		}

		b.forgetReauth(t)
		r = b.post(t, "/manage/account/token/delete/", url.Values{"token_id": {mine.ID}})
		if r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/account/reauthenticate/") {
			t.Errorf("delete without recent authentication: got %d to %q", r.code, r.loc)
		}
		b = f.signInAs(t, f.alice)
		wantRedirect(t, "delete", b.post(t, "/manage/account/token/delete/", url.Values{"token_id": {mine.ID}}), "/manage/account/token/")
		wantPage(t, "after delete", b.get(t, "/manage/account/token/"), 200, "API token “alpha only” deleted. It no longer works.")
		if e := f.lastEvent(t, audit.APITokenRemoved); e.UserID != f.alice || e.ActorID != f.alice || e.Additional["token_id"] != mine.ID {
			t.Errorf("removed event = %+v", e)
		}
		alpha, err := f.projects.Get(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		if e := f.lastEvent(t, audit.ProjectAPITokenRemoved); e.ProjectID != alpha.ID || e.Additional["description"] != "alpha only" {
			t.Errorf("project token removed event = %+v (spec F5: project-token deletions are audited)", e)
		}
	})
}

// TestF5SessionsAreOwnOnly: spec F5's other half. The two-factor and
// sessions page lists only the user's own sessions, and ending one by
// another user's session id ends nothing.
func TestF5SessionsAreOwnOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bob := addUser(t, d, "bob")
		bobs := f.signInAs(t, bob)
		alice := f.signInAs(t, f.alice)
		second := f.signInAs(t, f.alice) // another browser of hers
		bobHash := bobs.sess.IDHash

		page := alice.get(t, "/manage/account/two-factor/")
		wantPage(t, "sessions", page, 200, "Active sessions", "this browser", `name="session" value="`+second.sess.IDHash+`"`)
		if strings.Contains(page.body, bobHash) {
			t.Error("alice's sessions list shows bob's session")
		}
		r := alice.post(t, "/manage/account/sessions/end/", url.Values{"session": {bobHash}})
		if r.code < 400 || r.code >= 500 {
			t.Errorf("ending bob's session: got %d, want a 4xx", r.code)
		}
		if n := f.count(t, `SELECT count(*) FROM sessions WHERE id_hash = $1`, bobHash); n != 1 {
			t.Error("alice ended bob's session")
		}
		wantPage(t, "bob still signed in", bobs.get(t, "/manage/account/"), 200, "<h1>Your account</h1>")
		wantRedirect(t, "end alice's other session", alice.post(t, "/manage/account/sessions/end-others/", nil), "/manage/account/two-factor/")
		if n := f.count(t, `SELECT count(*) FROM sessions WHERE user_id = $1`, f.alice); n != 1 {
			t.Errorf("alice has %d sessions after ending the others, want 1", n)
		}
		if n := f.count(t, `SELECT count(*) FROM sessions WHERE user_id = $1`, bob); n != 1 {
			t.Error("ending alice's other sessions ended bob's")
		}
	})
}

// TestLeakReport: POST /_/secrets/disclose-token revokes the genuine tokens
// it names and answers 204 whatever it found; a body that is not a report
// is a 400 saying what to send, and revokes nothing.
func TestLeakReport(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		post := func(body, ctype string) response {
			t.Helper()
			req, err := http.NewRequest("POST", f.url+"/_/secrets/disclose-token", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			// A scanner is not a browser, but a browser's cross-site
			// post must not matter either: nothing here reads a cookie.
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			req.Header.Set("Origin", "https://scanner.example")
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b := make([]byte, 4096)
			n, _ := resp.Body.Read(b)
			return response{code: resp.StatusCode, header: resp.Header, body: b[:n]}
		}
		for _, tc := range []struct{ name, body, want string }{
			{"not JSON", "token=" + f.token, "The report is not a JSON array."},
			{"an object", `{"token": "` + f.token + `"}`, "The report is not a JSON array."},
			{"empty", `[]`, "The report holds no records."},
			{"no url", `[{"token": "` + f.token + `", "type": "pypi_api_token"}]`, "Record 1 lacks url."},
			{"wrong type", `[{"token": "` + f.token + `", "type": "github_token", "url": ""}]`, `Record 1 has type "github_token"`},
			{"number", `[{"token": 5, "type": "pypi_api_token", "url": ""}]`, "Record 1 is not an object"},
			{"too many", "[" + strings.Repeat(`{"token":"x","type":"pypi_api_token","url":""},`, 100) + `{"token":"x","type":"pypi_api_token","url":""}]`, "send at most 100"},
		} {
			r := post(tc.body, "application/json")
			if r.code != 400 || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("%s: got %d %q, want 400 %q", tc.name, r.code, r.body, tc.want)
			}
		}
		if _, err := f.tokens.Authenticate(context.Background(), f.token); err != nil {
			t.Fatalf("a refused report revoked the token: %v", err)
		}
		// Unknown values: 204, and nothing said.
		if r := post(`[{"token": "pypi-AgEIcHlwaS5vcmc", "type": "pypi_api_token", "url": "https://x.example/"}]`, "application/json"); r.code != 204 || len(r.body) != 0 {
			t.Errorf("unknown token: got %d %q, want 204 and no body", r.code, r.body)
		}
		r := post(`[{"token": "`+f.token+`", "type": "pypi_api_token", "url": "https://gist.example/alice/1", "source": "content"}]`, "application/json")
		if r.code != 204 {
			t.Fatalf("report of alice's token: got %d %q, want 204", r.code, r.body)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Error("the report endpoint set a cookie")
		}
		wl := wheel(t, meta{Name: "leaky", Version: "1.0"})
		if res := f.uploadAs(t, f.token, wl.form(), wl); res.code != 403 || !strings.Contains(res.reason, "Invalid or non-existent authentication information") {
			t.Errorf("upload with the reported token: %s, want 403 invalid auth", res)
		}
		if e := f.lastEvent(t, audit.APITokenRemovedLeak); e.UserID != f.alice || e.Additional["public_url"] != "https://gist.example/alice/1" {
			t.Errorf("leak event = %+v", e)
		}
	})
}

// TestTokensStopWhenTheOwnerLosesWhatUploadsNeed: spec F2, F4, F7, F8. A
// token works only while its owner has a second factor, a verified primary
// email, a role on the project and an enabled account that exists: losing
// any stops it on the next upload, with the reason.
func TestTokensStopWhenTheOwnerLosesWhatUploadsNeed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "shared", Version: "1.0"}))
		root, err := f.accounts.Create(ctx, account.NewUser{Username: "root", Email: "root@example.com", IsAdmin: true, EmailVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		c := account.Client{IP: "192.0.2.1", UserAgent: "test"}
		sharedID := func() int64 {
			p, err := f.projects.Get(ctx, "shared")
			if err != nil {
				t.Fatal(err)
			}
			return p.ID
		}()
		version := 1
		// maintainer makes a user who may upload to "shared", with a
		// whole-account and a project token.
		maintainer := func(name string, password string) (id int64, whole, scoped string) {
			t.Helper()
			u, err := f.accounts.Create(ctx, account.NewUser{Username: name, Email: name + "@example.com", Password: password, EmailVerified: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Exec(`INSERT INTO totp_secrets (user_id, secret_enc, created_at) VALUES ($1, 'unused', $2)`, u.ID, t0); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Maintainer')`, sharedID, u.ID); err != nil {
				t.Fatal(err)
			}
			return u.ID, f.mintToken(t, u.ID), f.mintToken(t, u.ID, "shared")
		}
		upload := func(tok string) uploadResult {
			t.Helper()
			version++
			w := wheel(t, meta{Name: "shared", Version: fmt.Sprintf("1.%d", version)})
			return f.uploadAs(t, tok, w.form(), w)
		}
		works := func(who, tok string) {
			t.Helper()
			if res := upload(tok); res.code != 200 {
				t.Fatalf("%s's token before: %s, want 200", who, res)
			}
		}
		refused := func(who, tok, want string) {
			t.Helper()
			if res := upload(tok); res.code != 403 || !strings.Contains(res.reason, want) {
				t.Errorf("%s's token: got %s, want 403 %q", who, res, want)
			}
		}

		// Loses the second factor: an administrator's account recovery
		// wipes every factor.
		id, whole, scoped := maintainer("carol", "")
		works("carol", whole)
		works("carol", scoped)
		if err := f.mfa.AdminRecover(ctx, root.ID, "root", id, "Checked her passport and a signed commit.", c); err != nil {
			t.Fatal(err)
		}
		refused("carol", whole, "User 'carol', associated with the API token used, does not have two-factor authentication enabled.")
		refused("carol", scoped, "does not have two-factor authentication enabled")

		// Loses the verified primary email.
		id, whole, scoped = maintainer("dave", "")
		works("dave", scoped)
		if _, err := d.Exec(`UPDATE user_emails SET verified = FALSE WHERE user_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		refused("dave", whole, "User 'dave', associated with the API token used, does not have a verified primary email address.")
		refused("dave", scoped, "does not have a verified primary email address")

		// Loses the role (what removing a collaborator does to the roles
		// table).
		id, whole, scoped = maintainer("erin", "")
		works("erin", whole)
		if _, err := d.Exec(`DELETE FROM roles WHERE user_id = $1 AND project_id = $2`, id, sharedID); err != nil {
			t.Fatal(err)
		}
		refused("erin", whole, "The user 'erin' isn't allowed to upload to project 'shared'.")
		refused("erin", scoped, "The user 'erin' isn't allowed to upload to project 'shared'.")
		if pts, err := f.tokens.ForProject(ctx, sharedID); err != nil {
			t.Fatal(err)
		} else {
			for _, pt := range pts {
				if pt.Username == "erin" {
					t.Errorf("the project's token list still shows erin's %q", pt.Description)
				}
			}
		}

		// The account is disabled.
		id, whole, scoped = maintainer("frank", "")
		works("frank", whole)
		if err := f.accounts.SetDisabled(ctx, root.ID, id, true, "spam", c); err != nil {
			t.Fatal(err)
		}
		refused("frank", whole, "Invalid or non-existent authentication information.")
		refused("frank", scoped, "Invalid or non-existent authentication information.")

		// The account is deleted.
		id, whole, scoped = maintainer("grace", "grace's long enough passphrase")
		works("grace", scoped)
		if err := f.accounts.DeleteAccount(ctx, id, "grace's long enough passphrase", c); err != nil {
			t.Fatal(err)
		}
		refused("grace", whole, "Invalid or non-existent authentication information.")
		refused("grace", scoped, "Invalid or non-existent authentication information.")
		if n := f.count(t, `SELECT count(*) FROM api_tokens WHERE user_id = $1`, id); n != 0 {
			t.Errorf("%d tokens of the deleted account remain", n)
		}
	})
}

// TestAdminFlagChangeIsAudited: spec J1 and TOB-PYPI26-4. Turning a site
// switch on the admin page leaves an event naming the administrator.
func TestAdminFlagChangeIsAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if _, err := d.Exec(`UPDATE users SET is_admin = TRUE WHERE id = $1`, f.alice); err != nil {
			t.Fatal(err)
		}
		b := f.signInAs(t, f.alice)
		for _, tc := range []struct {
			setting, value, tag, key string
			want                     any
		}{
			{"read_only", "on", audit.AdminReadOnlyChanged, "read_only", true},
			{"read_only", "off", audit.AdminReadOnlyChanged, "read_only", false},
			{"registration", "closed", audit.AdminRegistrationChanged, "open", false},
		} {
			before := f.count(t, `SELECT count(*) FROM events WHERE tag = $1`, tc.tag)
			wantRedirect(t, tc.setting, b.post(t, "/admin/settings/", url.Values{"setting": {tc.setting}, "value": {tc.value}}), "/admin/")
			if n := f.count(t, `SELECT count(*) FROM events WHERE tag = $1`, tc.tag); n != before+1 {
				t.Errorf("%s=%s: %d new events, want 1", tc.setting, tc.value, n-before)
			}
			if e := f.lastEvent(t, tc.tag); e.ActorID != f.alice || e.Actor != "alice" || e.IP == "" || e.Additional[tc.key] != tc.want {
				t.Errorf("%s=%s: event %+v", tc.setting, tc.value, e)
			}
		}
	})
}
