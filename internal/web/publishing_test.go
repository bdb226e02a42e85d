package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/session"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

// tpFixture is the web fixture with trusted publishing on: a second server
// over the same services, with a local issuer standing in for Google.
type tpFixture struct {
	*fixture
	tp     *trustedpub.Service
	google *oidctest.Issuer
	github *oidctest.Issuer // GitHub Actions; its API knows the owner octo (1001)
	srv    *Server
	tpIn   instance // uploads through the trusted-publishing server
}

func newTPFixture(t *testing.T, d *db.DB) *tpFixture {
	t.Helper()
	return newTPFixtureWith(t, d, fixtureConfig{})
}

func newTPFixtureWith(t *testing.T, d *db.DB, cfg fixtureConfig) *tpFixture {
	t.Helper()
	f := newFixtureWith(t, d, cfg)
	tf := &tpFixture{fixture: f, google: oidctest.New(t), github: oidctest.New(t)}
	ghAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		users := map[string]string{
			"/users/octo":        `{"login": "octo", "id": 1001, "type": "Organization"}`,
			"/users/trailofbits": `{"login": "trailofbits", "id": 2314423, "type": "Organization"}`,
		}
		body, ok := users[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(ghAPI.Close)
	renderer, err := mail.NewRenderer("Gatehouse Test", f.url)
	if err != nil {
		t.Fatal(err)
	}
	tf.tp, err = trustedpub.New(trustedpub.Options{DB: d, Tokens: f.tokens, Projects: f.projects,
		Notifier: mail.NewNotifier(renderer, f.clock.Now), Audience: "gatehouse.test", GoogleIssuer: tf.google.URL,
		GitHubIssuer: tf.github.URL, GitHubAPI: ghAPI.URL,
		BaseURL: f.url, SiteName: "Gatehouse Test", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tf.srv, err = NewServer(Deps{Projects: f.projects, Tokens: f.tokens, Accounts: f.accounts, Sessions: f.sessions,
		Audit: audit.NewService(d, f.clock.Now), MFA: f.mfa, TrustedPub: tf.tp, Log: newTestLogger(t), Orgs: f.orgs,
		Login:   login.NewService(login.Options{DB: d, Accounts: f.accounts, MFA: f.mfa, Sessions: f.sessions, Now: f.clock.Now}),
		BaseURL: f.url, SiteName: "Gatehouse Test", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tf.tpIn = *f.instance
	tf.tpIn.ts = httptest.NewServer(tf.srv)
	t.Cleanup(tf.tpIn.ts.Close)
	tf.tpIn.url = tf.tpIn.ts.URL
	return tf
}

// session signs a user in with two factors; stale makes the password
// entry older than the sudo window.
func (tf *tpFixture) session(t *testing.T, userID int64, stale bool) string {
	t.Helper()
	u, err := tf.accounts.ByID(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	reauth := tf.clock.Now()
	if stale {
		reauth = reauth.Add(-2 * session.ReauthWindow)
	}
	raw, err := tf.sessions.New(context.Background(), nil, &session.Session{UserID: userID, Level: session.TwoFactor,
		PasswordDate: u.PasswordDate, ReauthAt: reauth, IP: "192.0.2.9", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (tf *tpFixture) page(t *testing.T, method, path string, form url.Values, cookie string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: cookie})
	rec := httptest.NewRecorder()
	tf.srv.ServeHTTP(rec, r)
	return rec
}

func (tf *tpFixture) count(t *testing.T, q string) int {
	t.Helper()
	var n int
	if err := tf.db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantRecPage(t *testing.T, rec *httptest.ResponseRecorder, code int, texts ...string) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("got %d (Location %q), want %d:\n%s", rec.Code, rec.Header().Get("Location"), code, rec.Body.String())
	}
	for _, s := range texts {
		if !strings.Contains(rec.Body.String(), s) {
			t.Errorf("page lacks %q:\n%s", s, rec.Body.String())
		}
	}
}

// The project's publishing page: forms that refuse bad input and change
// nothing, adding and removing (with a recent password), the setting.
func TestProjectPublishingPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		fresh, stale := tf.session(t, tf.alice, false), tf.session(t, tf.alice, true)
		const path = "/manage/project/widget/settings/publishing/"

		wantRecPage(t, tf.page(t, "GET", path+"?provider=github&owner=octo&repository=widget", nil, fresh), http.StatusOK,
			"Publishing · widget", "Add GitHub publisher", `value="octo"`, "None yet.", "gatehouse.test")

		rec := tf.page(t, "POST", path, url.Values{"provider": {"google"}, "email": {"not an email"}}, fresh)
		wantRecPage(t, rec, http.StatusBadRequest, "Email: enter the service account", `value="not an email"`)
		if n := tf.count(t, `SELECT count(*) FROM project_publishers`); n != 0 {
			t.Fatalf("a refused form stored %d publishers", n)
		}

		rec = tf.page(t, "POST", path, url.Values{"provider": {"google"}, "email": {"ci@proj.iam.gserviceaccount.com"}}, fresh)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != path {
			t.Fatalf("add: %d %q", rec.Code, rec.Header().Get("Location"))
		}
		if n := tf.count(t, `SELECT count(*) FROM outbox WHERE subject = '[Gatehouse Test] Trusted publisher added to widget'`); n != 1 {
			t.Fatalf("%d added notices queued, want 1", n)
		}
		var id string
		if err := d.QueryRow(`SELECT publisher_id FROM project_publishers`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		wantRecPage(t, tf.page(t, "GET", path, nil, fresh), http.StatusOK, "Google: service account ci@proj.iam.gserviceaccount.com")

		// Removal wants a recent password.
		rec = tf.page(t, "POST", path+"remove/", url.Values{"publisher_id": {id}}, stale)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/account/reauthenticate/") {
			t.Fatalf("remove with a stale password: %d %q", rec.Code, rec.Header().Get("Location"))
		}
		if n := tf.count(t, `SELECT count(*) FROM project_publishers`); n != 1 {
			t.Fatal("removed without a recent password")
		}
		wantRecPage(t, tf.page(t, "POST", path+"remove/", url.Values{"publisher_id": {"x"}}, fresh), http.StatusBadRequest, "missing which item")
		wantRecPage(t, tf.page(t, "POST", path+"only/", url.Values{"only": {"maybe"}}, fresh), http.StatusBadRequest, "on or off")

		// Trusted publishing only, then a long-lived token is refused.
		rec = tf.page(t, "POST", path+"only/", url.Values{"only": {"on"}}, fresh)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("only=on: %d\n%s", rec.Code, rec.Body.String())
		}
		res := tf.tpIn.uploadAs(t, tf.token, wheel(t, meta{Name: "widget", Version: "1.1"}).form(), wheel(t, meta{Name: "widget", Version: "1.1"}))
		if res.code != http.StatusForbidden || !strings.Contains(res.reason, "accepts uploads only from its trusted publishers") ||
			!strings.Contains(res.reason, "Google: service account ci@proj.iam.gserviceaccount.com") {
			t.Fatalf("API token upload with trusted publishing only: %s", res)
		}

		// A publisher token: uploads to widget, not to another project,
		// and cannot create one.
		tf.mustUpload(t, wheel(t, meta{Name: "gadget", Version: "1.0"}))
		m, refusal, err := tf.tp.Exchange(context.Background(),
			tf.google.Sign(oidctest.Google("gatehouse.test", "ci@proj.iam.gserviceaccount.com", "7", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}
		w := wheel(t, meta{Name: "widget", Version: "1.2"})
		if res := tf.tpIn.uploadAs(t, m.Token, w.form(), w); res.code != http.StatusOK {
			t.Fatalf("publisher upload to widget: %s", res)
		}
		g := wheel(t, meta{Name: "gadget", Version: "1.1"})
		if res := tf.tpIn.uploadAs(t, m.Token, g.form(), g); res.code != http.StatusForbidden || !strings.Contains(res.reason, "not one of the trusted publisher's projects") {
			t.Fatalf("publisher upload to gadget: %s", res)
		}
		n := wheel(t, meta{Name: "brand-new", Version: "1.0"})
		if res := tf.tpIn.uploadAs(t, m.Token, n.form(), n); res.code != http.StatusForbidden || !strings.Contains(res.reason, "isn't allowed to create the new project") {
			t.Fatalf("publisher upload creating a project: %s", res)
		}
		// After the 15 minutes the token is refused.
		tf.clock.Advance(16 * time.Minute)
		w = wheel(t, meta{Name: "widget", Version: "1.3"})
		if res := tf.tpIn.uploadAs(t, m.Token, w.form(), w); res.code != http.StatusForbidden || !strings.Contains(res.reason, "token is expired") {
			t.Fatalf("publisher upload after 16 minutes: %s", res)
		}

		// Now remove it, with a fresh session.
		fresh = tf.session(t, tf.alice, false)
		rec = tf.page(t, "POST", path+"remove/", url.Values{"publisher_id": {id}}, fresh)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("remove: %d\n%s", rec.Code, rec.Body.String())
		}
		if n := tf.count(t, `SELECT count(*) FROM trusted_publishers`); n != 0 {
			t.Fatalf("%d publishers after removal", n)
		}
		if n := tf.count(t, `SELECT count(*) FROM outbox WHERE subject = '[Gatehouse Test] Trusted publisher removed from widget'`); n != 1 {
			t.Fatalf("%d removed notices queued, want 1", n)
		}
	})
}

// The account's pending publishers page.
func TestAccountPublishingPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		s := tf.session(t, tf.alice, false)
		const path = "/manage/account/publishing/"
		wantRecPage(t, tf.page(t, "GET", path, nil, s), http.StatusOK, "Pending publishers", "Project name", "None.")
		wantRecPage(t, tf.page(t, "POST", path, url.Values{"provider": {"google"}, "project_name": {"widget"}, "email": {"ci@p.iam.gserviceaccount.com"}}, s),
			http.StatusConflict, "widget already exists and you are a collaborator", "/manage/project/widget/settings/publishing/")
		if n := tf.count(t, `SELECT count(*) FROM pending_publishers`); n != 0 {
			t.Fatalf("a refused form stored %d pending publishers", n)
		}
		rec := tf.page(t, "POST", path, url.Values{"provider": {"google"}, "project_name": {"Fresh.Name"}, "email": {"ci@p.iam.gserviceaccount.com"}}, s)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("add pending: %d\n%s", rec.Code, rec.Body.String())
		}
		wantRecPage(t, tf.page(t, "GET", path, nil, s), http.StatusOK, "Fresh.Name", "Google: service account ci@p.iam.gserviceaccount.com")
		var id string
		if err := d.QueryRow(`SELECT id FROM pending_publishers`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if rec := tf.page(t, "POST", path+"remove/", url.Values{"pending_id": {id}}, s); rec.Code != http.StatusSeeOther {
			t.Fatalf("remove pending: %d", rec.Code)
		}
		if n := tf.count(t, `SELECT count(*) FROM pending_publishers`); n != 0 {
			t.Fatalf("%d pending after removal", n)
		}
	})
}

// The audience endpoint, and the mint endpoint's shapes for bad input.
func TestOIDCEndpoints(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		get := func(srv *Server, path string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			return rec
		}
		wantRecPage(t, get(tf.srv, "/_/oidc/audience"), http.StatusOK, `{"audience":"gatehouse.test"}`)
		// The server without trusted publishing says it is off.
		wantRecPage(t, get(tf.fixture.srv, "/_/oidc/audience"), http.StatusForbidden, `"Trusted publishing functionality not enabled"`)
		post := func(body string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			tf.srv.ServeHTTP(rec, httptest.NewRequest("POST", "/_/oidc/mint-token", strings.NewReader(body)))
			return rec
		}
		for body, want := range map[string]string{
			`[1]`:                           "not a JSON object",
			`{"token": "a.b.c"}`:            "malformed JWT",
			`{"token": "a"} {"token": "b"}`: "not a JSON object",
			`{"token": ` + `"` + strings.Repeat("x", maxMintBody) + `"}`: "larger than 64 KiB",
		} {
			rec := post(body)
			wantRecPage(t, rec, http.StatusUnprocessableEntity, `"message":"Token request failed"`, `"code":"invalid-payload"`, want)
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		}
	})
}

// client is the audit client of direct exchanges.
func (tf *tpFixture) client() account.Client { return account.Client{IP: "192.0.2.1"} }

// POST /_/oidc/burn-token, as uv calls it after its uploads: a minted
// token stops working at once; the answer is 202 whatever the value was, a
// user's API token is left alone, and a body that is not {"token": …} gets
// the mint's 422 shape.
func TestBurnToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		widget, err := tf.projects.Get(context.Background(), "widget")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tf.tp.AddToProject(context.Background(), trustedpub.Actor{UserID: tf.alice, Username: "alice"}, widget,
			trustedpub.Input{Provider: trustedpub.KindGoogle, Fields: map[string]string{"email": "ci@proj.iam.gserviceaccount.com"}}); err != nil {
			t.Fatal(err)
		}
		m, refusal, err := tf.tp.Exchange(context.Background(),
			tf.google.Sign(oidctest.Google("gatehouse.test", "ci@proj.iam.gserviceaccount.com", "7", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}
		burn := func(body string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/_/oidc/burn-token", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			tf.srv.ServeHTTP(rec, r)
			return rec
		}
		w := wheel(t, meta{Name: "widget", Version: "1.1"})
		if res := tf.tpIn.uploadAs(t, m.Token, w.form(), w); res.code != http.StatusOK {
			t.Fatalf("upload before the burn: %s", res)
		}
		// A user's API token is not burned: it is not what the endpoint is for.
		wantRecPage(t, burn(`{"token": "`+tf.token+`"}`), http.StatusAccepted, `"message"`)
		w = wheel(t, meta{Name: "widget", Version: "1.2"})
		if res := tf.tpIn.uploadAs(t, tf.token, w.form(), w); res.code != http.StatusOK {
			t.Fatalf("the user's token after a burn request: %s", res)
		}
		// A forged token with the minted one's id: the signature fails.
		forged := m.Token[:len(m.Token)-4] + "AAAA"
		if forged == m.Token {
			forged = m.Token[:len(m.Token)-4] + "BBBB"
		}
		wantRecPage(t, burn(`{"token": "`+forged+`"}`), http.StatusAccepted)
		if n := tf.count(t, `SELECT count(*) FROM oidc_tokens`); n != 1 {
			t.Fatalf("%d minted tokens after a forged burn, want 1", n)
		}
		wantRecPage(t, burn(`{"token": "`+m.Token+`"}`), http.StatusAccepted)
		w = wheel(t, meta{Name: "widget", Version: "1.3"})
		if res := tf.tpIn.uploadAs(t, m.Token, w.form(), w); res.code != http.StatusForbidden {
			t.Fatalf("upload after the burn: %s, want 403", res)
		}
		// Again, and nonsense: the same answer.
		wantRecPage(t, burn(`{"token": "`+m.Token+`"}`), http.StatusAccepted)
		wantRecPage(t, burn(`{"token": "not a token"}`), http.StatusAccepted)
		for body, want := range map[string]string{
			`nope`:          "not a JSON object",
			`{"token": 1}`:  "token: Input should be a valid string",
			`{"tokens": 1}`: "token: Field required",
		} {
			wantRecPage(t, burn(body), http.StatusUnprocessableEntity, `"code":"invalid-payload"`, want)
		}
		// Without trusted publishing, the endpoint says so.
		rec := httptest.NewRecorder()
		tf.fixture.srv.ServeHTTP(rec, httptest.NewRequest("POST", "/_/oidc/burn-token", strings.NewReader(`{"token": "x"}`)))
		wantRecPage(t, rec, http.StatusForbidden, "Trusted publishing functionality not enabled")
	})
}

// Issue 9 item 4: a long-lived API token that uploads to a project with a
// trusted publisher makes the owners hear of it, once per token and
// project; a publisher's own token, and a project without a publisher,
// make no email.
func TestLongLivedTokenUploadNotice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		const subject = "[Gatehouse Test] API token used to upload to project widget despite Trusted Publishing enabled"
		notices := func() int {
			return tf.count(t, `SELECT count(*) FROM outbox WHERE subject = '`+subject+`'`)
		}
		upload := func(tok, name, version string) {
			t.Helper()
			w := wheel(t, meta{Name: name, Version: version})
			if res := tf.tpIn.uploadAs(t, tok, w.form(), w); res.code != http.StatusOK {
				t.Fatalf("upload %s %s: %s", name, version, res)
			}
		}
		upload(tf.token, "widget", "1.0")
		upload(tf.token, "gadget", "1.0")
		if n := notices(); n != 0 {
			t.Fatalf("%d notices before any publisher", n)
		}
		widget, err := tf.projects.Get(context.Background(), "widget")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tf.tp.AddToProject(context.Background(), trustedpub.Actor{UserID: tf.alice, Username: "alice"}, widget,
			trustedpub.Input{Provider: trustedpub.KindGoogle, Fields: map[string]string{"email": "ci@proj.iam.gserviceaccount.com"}}); err != nil {
			t.Fatal(err)
		}
		upload(tf.token, "widget", "1.1")
		upload(tf.token, "widget", "1.2")
		upload(tf.token, "gadget", "1.1")
		if n := notices(); n != 1 {
			t.Fatalf("%d notices after two uploads with one token, want 1", n)
		}
		upload(tf.mintNamed(t, tf.alice, "a second token"), "widget", "1.3")
		if n := notices(); n != 2 {
			t.Fatalf("%d notices after a second token uploaded, want 2", n)
		}
		m, refusal, err := tf.tp.Exchange(context.Background(),
			tf.google.Sign(oidctest.Google("gatehouse.test", "ci@proj.iam.gserviceaccount.com", "7", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}
		upload(m.Token, "widget", "1.4")
		if n := notices(); n != 2 {
			t.Fatalf("%d notices after the publisher uploaded, want still 2", n)
		}
	})
}

// G8's "for account routes": a token minted for a trusted publisher is no
// credential for any page (account, tokens, the project's publishing
// page), as a user's token is not (TestF6TokenPrivilege).
func TestG8MintedTokenOnAccountRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		widget, err := tf.projects.Get(context.Background(), "widget")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tf.tp.AddToProject(context.Background(), trustedpub.Actor{UserID: tf.alice, Username: "alice"}, widget,
			trustedpub.Input{Provider: trustedpub.KindGoogle, Fields: map[string]string{"email": "ci@proj.iam.gserviceaccount.com"}}); err != nil {
			t.Fatal(err)
		}
		m, refusal, err := tf.tp.Exchange(context.Background(),
			tf.google.Sign(oidctest.Google("gatehouse.test", "ci@proj.iam.gserviceaccount.com", "7", tf.clock.Now())), tf.client())
		if err != nil || refusal != nil {
			t.Fatalf("exchange: %v %v", err, refusal)
		}
		before := dbState(t, d)
		for _, c := range []struct{ method, path string }{
			{"GET", "/manage/account/"}, {"POST", "/manage/account/token/"}, {"GET", "/manage/projects/"},
			{"GET", "/manage/project/widget/settings/publishing/"}, {"POST", "/manage/project/widget/settings/publishing/only/"},
			{"POST", "/manage/account/publishing/"},
		} {
			for _, auth := range []string{basicToken(m.Token), "Bearer " + m.Token} {
				r := httptest.NewRequest(c.method, c.path, strings.NewReader(url.Values{"only": {"on"}, "description": {"x"}, "scope": {"user"}}.Encode()))
				r.Header.Set("Authorization", auth)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				tf.srv.ServeHTTP(rec, r)
				if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/account/login/") {
					t.Errorf("%s %s with the minted token: %d to %q, want the login page", c.method, c.path, rec.Code, rec.Header().Get("Location"))
				}
			}
		}
		if after := dbState(t, d); after != before {
			t.Error("requests with a minted token changed the database")
		}
	})
}
