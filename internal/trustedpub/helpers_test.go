package trustedpub

// Shared fixture: a real Service over a dbtest database (SQLite and
// PostgreSQL), the real token and project services, the real mail renderer
// writing to the outbox, local OIDC issuers standing in for GitHub, GitLab
// and Google (oidctest), and a stand-in GitHub API for owner lookups.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

const testAudience = "gatehouse.test"

var (
	t0         = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	testSecret = bytes.Repeat([]byte("trustedpub-secret"), 2)
)

type fixture struct {
	d        *db.DB
	clock    *testclock.Clock
	gh       *oidctest.Issuer // stands in for GitHub Actions
	gl       *oidctest.Issuer // a self-managed GitLab
	google   *oidctest.Issuer
	ghAPI    *fakeGitHubAPI
	tokens   *token.Service
	projects *project.Service
	tp       *Service
	alice    int64 // owner of "widget"
	bob      int64
	widget   *project.Project
}

type fixtureOpts struct {
	providers    []string
	fetchTimeout time.Duration
	disabled     bool
}

func newFixture(t *testing.T, d *db.DB) *fixture { return newFixtureWith(t, d, fixtureOpts{}) }

func newFixtureWith(t *testing.T, d *db.DB, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{d: d, clock: testclock.New(t0)}
	f.gh, f.gl, f.google = oidctest.New(t), oidctest.New(t), oidctest.New(t)
	f.ghAPI = newFakeGitHubAPI(t)
	f.ghAPI.add("octo", 1001)
	f.ghAPI.add("Mallory", 6666)
	var err error
	f.tokens, err = token.NewService(d, token.Options{Secret: testSecret, Location: "gatehouse.test", HelpURL: "https://gatehouse.test/help/", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	renderer, err := mail.NewRenderer("Gatehouse", "https://gatehouse.test")
	if err != nil {
		t.Fatal(err)
	}
	notifier := mail.NewNotifier(renderer, f.clock.Now)
	inv := PendingInvalidator{Notifier: notifier, BaseURL: "https://gatehouse.test", Now: f.clock.Now}
	f.projects = project.NewService(d, blobs, project.Options{
		Limits:  project.Limits{MaxFileSize: 1 << 20, MaxProjectSize: 1 << 30},
		HelpURL: "https://gatehouse.test/help/", Now: f.clock.Now, OnCreate: inv.ProjectCreated,
	})
	f.tp, err = New(Options{
		DB: d, Tokens: f.tokens, Projects: f.projects, Notifier: notifier,
		Audience: testAudience, Disabled: o.disabled, Providers: o.providers,
		GitHubIssuer: f.gh.URL, GoogleIssuer: f.google.URL, GitLabIssuers: []string{GitLabIssuer, f.gl.URL},
		GitHubAPI: f.ghAPI.srv.URL, FetchTimeout: o.fetchTimeout,
		BaseURL: "https://gatehouse.test", SiteName: "Gatehouse", Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.alice = addUser(t, d, "alice")
	f.bob = addUser(t, d, "bob")
	f.widget = f.createProject(t, "widget", f.alice)
	return f
}

func addUser(t *testing.T, d *db.DB, name string) int64 {
	t.Helper()
	var id int64
	if err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ($1, $2, $3) RETURNING id`, name, name, t0).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES ($1, $2, $2, TRUE, TRUE, $3)`,
		id, name+"@example.com", t0); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) createProject(t *testing.T, name string, owner int64) *project.Project {
	t.Helper()
	var p *project.Project
	err := f.d.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		p, err = f.projects.CreateInTx(context.Background(), tx, name, owner, "owner")
		return err
	})
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

// actor is a user acting from a browser.
func actor(id int64, name string) Actor {
	return Actor{UserID: id, Username: name}
}

// githubInput is the form for a GitHub publisher of octo/widget's
// release.yml.
func githubInput(extra ...string) Input {
	in := Input{Provider: KindGitHub, Fields: map[string]string{"owner": "octo", "repository": "widget", "workflow": "release.yml"}}
	for i := 0; i+1 < len(extra); i += 2 {
		in.Fields[extra[i]] = extra[i+1]
	}
	return in
}

// addGitHub registers octo/widget's release.yml on widget.
func (f *fixture) addGitHub(t *testing.T, extra ...string) *Publisher {
	t.Helper()
	p, err := f.tp.AddToProject(context.Background(), actor(f.alice, "alice"), f.widget, githubInput(extra...))
	if err != nil {
		t.Fatalf("add GitHub publisher: %v", err)
	}
	return p
}

// ghClaims are the claims of a job in octo/widget's release.yml, now.
func (f *fixture) ghClaims() oidctest.Claims {
	c := oidctest.GitHub(testAudience, "octo/widget", "1001", "release.yml", f.clock.Now())
	c["iss"] = f.gh.URL
	return c
}

// exchange runs an exchange and fails t on an internal error.
func (f *fixture) exchange(t *testing.T, raw string) (*Minted, *Error) {
	t.Helper()
	m, refusal, err := f.tp.Exchange(context.Background(), raw, testClient())
	if err != nil {
		t.Fatalf("exchange: internal error %v", err)
	}
	return m, refusal
}

// mustMint exchanges a token that must be accepted.
func (f *fixture) mustMint(t *testing.T, raw string) *Minted {
	t.Helper()
	m, refusal := f.exchange(t, raw)
	if refusal != nil {
		t.Fatalf("exchange refused: %s", refusal)
	}
	return m
}

// wantRefused exchanges a token that must be refused with code, and
// whose description holds want.
func (f *fixture) wantRefused(t *testing.T, raw, code, want string) {
	t.Helper()
	before := f.count(t, `SELECT count(*) FROM oidc_tokens`)
	m, refusal := f.exchange(t, raw)
	if refusal == nil {
		t.Fatalf("exchange accepted (token for %v), want %s (%s)", m.Projects, code, want)
	}
	if refusal.Code != code || !strings.Contains(refusal.Description, want) {
		t.Fatalf("refused with %s %q, want %s containing %q", refusal.Code, refusal.Description, code, want)
	}
	if after := f.count(t, `SELECT count(*) FROM oidc_tokens`); after != before {
		t.Fatalf("a refused exchange minted: %d tokens, then %d", before, after)
	}
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.d.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// outbox returns the subjects of the emails queued to addr.
func (f *fixture) outbox(t *testing.T, addr string) []string {
	t.Helper()
	rows, err := f.d.Query(`SELECT subject FROM outbox WHERE to_addr = $1 ORDER BY id`, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// events returns the tags of a project's events.
func (f *fixture) projectEvents(t *testing.T, projectID int64) []string {
	t.Helper()
	rows, err := f.d.Query(`SELECT tag FROM events WHERE project_id = $1 ORDER BY id`, projectID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// fakeGitHubAPI answers GET /users/<login> like api.github.com.
type fakeGitHubAPI struct {
	srv   *httptest.Server
	mu    sync.Mutex
	users map[string]int64
	mode  string // "", "ratelimit", "down"
	hits  int
}

func newFakeGitHubAPI(t *testing.T) *fakeGitHubAPI {
	a := &fakeGitHubAPI{users: map[string]int64{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.hits++
		switch a.mode {
		case "ratelimit":
			http.Error(w, `{"message":"API rate limit exceeded"}`, http.StatusForbidden)
			return
		case "down":
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		login, ok := strings.CutPrefix(r.URL.Path, "/users/")
		for name, id := range a.users {
			if ok && strings.EqualFold(name, login) {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{"login": name, "id": id, "type": "Organization"})
				return
			}
		}
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeGitHubAPI) add(login string, id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[login] = id
}

func (a *fakeGitHubAPI) setMode(m string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mode = m
}

func testClient() account.Client {
	return account.Client{IP: "192.0.2.1", UserAgent: "gh-action-pypi-publish"}
}
