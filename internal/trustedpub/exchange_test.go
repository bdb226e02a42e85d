package trustedpub

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

// G4: a token is exchanged once; replays are refused up to exp + leeway and
// after a restart, because the jti is in the database, kept long enough.
func TestG4JTIReplay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		c := f.ghClaims()
		exp := f.clock.Now().Add(2 * time.Minute)
		c["exp"] = exp.Unix()
		raw := f.gh.Sign(c)
		f.mustMint(t, raw)
		f.wantRefused(t, raw, CodeInvalidReuseToken, "invalid token: already used")

		// The record outlives the token: kept until past exp + leeway.
		var keep int64
		if err := d.QueryRow(`SELECT keep_until FROM oidc_jtis`).Scan(&keep); err != nil {
			t.Fatal(err)
		}
		if min := exp.Add(Leeway).Unix(); keep <= min {
			t.Fatalf("jti kept until %d, want past exp+leeway %d", keep, min)
		}
		// At exp + leeway - 1 s the token is still valid, so the replay
		// must still be refused, after a sweep too (TOB-PYPI26-1).
		f.clock.Set(exp.Add(Leeway - time.Second))
		if err := f.tp.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.wantRefused(t, raw, CodeInvalidReuseToken, "already used")

		// A restart: a new Service (empty caches) on the same database.
		g := *f
		var err error
		g.tp, err = New(Options{DB: d, Tokens: f.tokens, Projects: f.projects, Audience: testAudience,
			GitHubIssuer: f.gh.URL, GoogleIssuer: f.google.URL, GitHubAPI: f.ghAPI.srv.URL, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		g.wantRefused(t, raw, CodeInvalidReuseToken, "already used")

		// Once the token itself has expired, the sweep may drop the record;
		// the token is refused as expired.
		f.clock.Set(exp.Add(Leeway + jtiMargin + 2*time.Second))
		if err := f.tp.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := f.count(t, `SELECT count(*) FROM oidc_jtis`); n != 0 {
			t.Fatalf("%d jti records after the sweep, want 0", n)
		}
		f.wantRefused(t, raw, CodeInvalidToken, "expired")
	})
}

// G5: 20 parallel exchanges of one token mint exactly one upload token.
func TestG5JTIRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		raw := f.gh.Sign(f.ghClaims())
		// Warm the key cache, so the race is on the database, not on the
		// JWKS fetch.
		f.mustMint(t, f.gh.Sign(f.ghClaims()))
		before := f.count(t, `SELECT count(*) FROM oidc_tokens`)

		const n = 20
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			mu      sync.Mutex
			minted  int
			reused  int
			others  []string
			tokens  []string
			failure error
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				m, refusal, err := f.tp.Exchange(context.Background(), raw, testClient())
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					failure = err
				case refusal == nil:
					minted++
					tokens = append(tokens, m.Token)
				case refusal.Code == CodeInvalidReuseToken:
					reused++
				default:
					others = append(others, refusal.Error())
				}
			}()
		}
		close(start)
		wg.Wait()
		if failure != nil {
			t.Fatalf("an exchange failed: %v", failure)
		}
		if minted != 1 || reused != n-1 || len(others) != 0 {
			t.Fatalf("%d minted, %d refused as reused, others %v; want 1 and %d", minted, reused, others, n-1)
		}
		if after := f.count(t, `SELECT count(*) FROM oidc_tokens`); after != before+1 {
			t.Fatalf("%d tokens in the database after the race, want %d", after, before+1)
		}
	})
}

// G6: every claim the publisher binds.
func TestG6ClaimBinding(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		ok := func(mod func(c oidctest.Claims)) {
			t.Helper()
			c := f.ghClaims()
			mod(c)
			f.mustMint(t, f.gh.Sign(c))
		}
		bad := func(mod func(c oidctest.Claims), want string) {
			t.Helper()
			c := f.ghClaims()
			mod(c)
			f.wantRefused(t, f.gh.Sign(c), CodeInvalidPublisher, want)
		}
		// Case variants of the repository are the same repository on GitHub.
		ok(func(c oidctest.Claims) {
			c["repository"] = "Octo/Widget"
			c["job_workflow_ref"] = "Octo/Widget/.github/workflows/release.yml@refs/heads/main"
		})
		bad(func(c oidctest.Claims) { c["repository"] = "octo/widget2" }, "Publisher with matching claims was not found")
		// The same name, another owner id: a resurrected account.
		bad(func(c oidctest.Claims) { c["repository_owner_id"] = "6666" }, "Publisher with matching claims was not found")
		// Another workflow file, in the same repository.
		bad(func(c oidctest.Claims) {
			c["job_workflow_ref"] = "octo/widget/.github/workflows/ci.yml@refs/heads/main"
			c["workflow_ref"] = c["job_workflow_ref"]
		}, "Publisher with matching claims was not found")
		// The workflow at a ref that is neither the token's ref nor sha.
		bad(func(c oidctest.Claims) {
			c["job_workflow_ref"] = "octo/widget/.github/workflows/release.yml@refs/heads/evil"
			c["workflow_ref"] = c["job_workflow_ref"]
		}, "The job_workflow_ref claim does not match")
		// Pinned by sha is fine.
		ok(func(c oidctest.Claims) {
			c["job_workflow_ref"] = "octo/widget/.github/workflows/release.yml@" + c["sha"].(string)
			c["workflow_ref"] = c["job_workflow_ref"]
		})
		bad(func(c oidctest.Claims) { c["event_name"] = "pull_request_target" }, "'pull_request_target' is not supported")
		for _, claim := range []string{"sub", "repository", "repository_owner", "repository_owner_id", "job_workflow_ref", "ref", "sha"} {
			bad(func(c oidctest.Claims) { delete(c, claim) }, "Missing claim '"+claim+"'")
		}
		bad(func(c oidctest.Claims) { c["repository_owner"] = "mallory" }, "Check failed for required claim 'repository_owner'")

		// An environment on the publisher: the token must carry it
		// (case-insensitively); the environment-less publisher of the
		// same workflow accepts any.
		ctx := context.Background()
		other := f.createProject(t, "gadget", f.alice)
		if _, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), other, githubInput("environment", "PyPI")); err != nil {
			t.Fatal(err)
		}
		c := f.ghClaims()
		c["environment"] = "pypi"
		m := f.mustMint(t, f.gh.Sign(c))
		if strings.Join(m.Projects, ",") != "gadget" {
			t.Fatalf("the token with environment pypi minted for %v, want the environment's publisher (gadget)", m.Projects)
		}
		c = f.ghClaims()
		c["environment"] = "staging"
		m = f.mustMint(t, f.gh.Sign(c))
		if strings.Join(m.Projects, ",") != "widget" {
			t.Fatalf("the token with environment staging minted for %v, want the environment-less publisher (widget)", m.Projects)
		}
		// With only the environment publisher, a token without it fails.
		pubs, _ := f.tp.ForProject(ctx, f.widget.ID)
		if err := f.tp.RemoveFromProject(ctx, actor(f.alice, "alice"), f.widget, pubs.Publishers[0].ID); err != nil {
			t.Fatal(err)
		}
		f.wantRefused(t, f.gh.Sign(f.ghClaims()), CodeInvalidPublisher, "Publisher with matching claims was not found")
	})
}

// Reusable workflows: allowed when the publisher names the reusable
// workflow; refused (with a hint) when it does not.
func TestReusableWorkflow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		reusable := func() oidctest.Claims {
			c := f.ghClaims()
			c["job_workflow_ref"] = "octo/shared/.github/workflows/publish.yml@refs/tags/v2"
			return c
		}
		f.wantRefused(t, f.gh.Sign(reusable()), CodeInvalidPublisher, "reusable workflow octo/shared/.github/workflows/publish.yml@refs/tags/v2")

		// The same workflow naming the reusable one is another publisher:
		// it gets the reusable job's tokens, widget's keeps the plain ones.
		ctx := context.Background()
		gadget := f.createProject(t, "gadget", f.alice)
		if _, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), gadget, githubInput("reusable_workflow", "octo/shared/.github/workflows/publish.yml@refs/tags/v2")); err != nil {
			t.Fatal(err)
		}
		if m := f.mustMint(t, f.gh.Sign(reusable())); strings.Join(m.Projects, ",") != "gadget" {
			t.Fatalf("the reusable job's token is for %v, want gadget", m.Projects)
		}
		if m := f.mustMint(t, f.gh.Sign(f.ghClaims())); strings.Join(m.Projects, ",") != "widget" {
			t.Fatalf("the plain job's token is for %v, want widget", m.Projects)
		}
	})
}

// A publisher that names a reusable workflow, on its own.
func TestReusableWorkflowPublisher(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t, "reusable_workflow", "octo/shared/.github/workflows/publish.yml@refs/tags/v2")
		c := f.ghClaims()
		c["job_workflow_ref"] = "octo/shared/.github/workflows/publish.yml@refs/tags/v2"
		m := f.mustMint(t, f.gh.Sign(c))
		var add string
		if err := d.QueryRow(`SELECT additional FROM events WHERE tag = $1`, audit.ShortLivedTokenAdded).Scan(&add); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(add, `"reusable_workflow_used":true`) || !strings.Contains(add, "octo/shared/.github/workflows/publish.yml") {
			t.Errorf("mint event %s does not record the reusable workflow", add)
		}
		_ = m
		// Another ref of the reusable workflow than the pinned one.
		c = f.ghClaims()
		c["job_workflow_ref"] = "octo/shared/.github/workflows/publish.yml@refs/heads/main"
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidPublisher, "job_workflow_ref claim does not match")
		// Another reusable workflow.
		c = f.ghClaims()
		c["job_workflow_ref"] = "evil/shared/.github/workflows/publish.yml@refs/tags/v2"
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidPublisher, "not found")
		// The caller must still be the publisher's workflow.
		c = f.ghClaims()
		c["job_workflow_ref"] = "octo/shared/.github/workflows/publish.yml@refs/tags/v2"
		c["workflow_ref"] = "octo/widget/.github/workflows/other.yml@refs/heads/main"
		f.wantRefused(t, f.gh.Sign(c), CodeInvalidPublisher, "")
	})
}

// GitLab (gitlab.com and a self-managed instance) and Google.
func TestGitLabAndGoogle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice := actor(f.alice, "alice")
		glHost := strings.TrimPrefix(f.gl.URL, "http://")
		_, err := f.tp.AddToProject(ctx, alice, f.widget, Input{Provider: KindGitLab, Fields: map[string]string{
			"namespace": "acme/tools", "project": "widget", "workflow_filepath": "ci/release.yml", "environment": "Production", "issuer": f.gl.URL}})
		if err != nil {
			t.Fatal(err)
		}
		gl := func(mod func(c oidctest.Claims)) string {
			c := oidctest.GitLab(testAudience, glHost, "acme/tools/widget", "ci/release.yml", f.clock.Now())
			c["environment"] = "Production"
			mod(c)
			return f.gl.Sign(c)
		}
		f.mustMint(t, gl(func(oidctest.Claims) {}))
		f.mustMint(t, gl(func(c oidctest.Claims) {
			c["project_path"] = "ACME/tools/Widget"
			c["sub"] = "project_path:ACME/tools/Widget:ref_type:branch:ref:main"
			c["ci_config_ref_uri"] = glHost + "/ACME/tools/Widget//ci/release.yml@refs/heads/main"
		}))
		f.wantRefused(t, gl(func(c oidctest.Claims) { c["environment"] = "production" }), CodeInvalidPublisher, "Publisher with matching claims was not found")
		f.wantRefused(t, gl(func(c oidctest.Claims) {
			c["ci_config_ref_uri"] = glHost + "/acme/tools/widget//ci/release.yml@refs/heads/other"
		}), CodeInvalidPublisher, "ci_config_ref_uri claim does not match")
		f.wantRefused(t, gl(func(c oidctest.Claims) { c["sub"] = "project_path:acme/tools/widget2:ref:main" }), CodeInvalidPublisher, "'sub'")
		f.wantRefused(t, gl(func(c oidctest.Claims) { delete(c, "ref_path") }), CodeInvalidPublisher, "Missing claim 'ref_path'")
		if _, err := f.tp.AddToProject(ctx, alice, f.widget, Input{Provider: KindGoogle, Fields: map[string]string{"email": "pub@proj.iam.gserviceaccount.com"}}); err != nil {
			t.Fatal(err)
		}
		g := func(mod func(c oidctest.Claims)) string {
			c := oidctest.Google(testAudience, "pub@proj.iam.gserviceaccount.com", "1234567890", f.clock.Now())
			mod(c)
			return f.google.Sign(c)
		}
		f.mustMint(t, g(func(oidctest.Claims) {}))
		f.wantRefused(t, g(func(c oidctest.Claims) { c["email_verified"] = "true" }), CodeInvalidPublisher, "email_verified")
		f.wantRefused(t, g(func(c oidctest.Claims) { c["email"] = "other@proj.iam.gserviceaccount.com" }), CodeInvalidPublisher, "not found")
	})
}

// G7: a token from a custom issuer whose claims match a github.com
// publisher is not matched by it, and a custom issuer's publishers match
// only that issuer's tokens.
func TestG7IssuerIsolation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		ctx := context.Background()
		forgejo := oidctest.New(t)
		admin := actor(f.bob, "bob")
		if _, err := f.tp.AddCustomIssuer(ctx, admin, CustomIssuerInput{Name: "forgejo", URL: forgejo.URL, Claims: "repository, workflow_ref"}); err != nil {
			t.Fatal(err)
		}
		// GitHub-shaped claims, from the custom issuer.
		c := f.ghClaims()
		c["iss"] = forgejo.URL
		f.wantRefused(t, forgejo.Sign(c), CodeInvalidPublisher, "Publisher with matching claims was not found")

		// A publisher at the custom issuer matches its tokens only.
		_, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), f.widget, Input{Provider: KindCustom, Fields: map[string]string{
			"issuer": "forgejo", "claim_repository": "octo/widget", "claim_workflow_ref": c["workflow_ref"].(string)}})
		if err != nil {
			t.Fatal(err)
		}
		c["jti"] = "forgejo-1"
		m := f.mustMint(t, forgejo.Sign(c))
		if !strings.HasPrefix(m.Publisher, "forgejo:") {
			t.Fatalf("minted for %q, want the forgejo publisher", m.Publisher)
		}
		// A second custom issuer with the same claim rules: its token, with
		// the same values, matches nothing.
		gitea := oidctest.New(t)
		if _, err := f.tp.AddCustomIssuer(ctx, admin, CustomIssuerInput{Name: "gitea", URL: gitea.URL, Claims: "repository workflow_ref"}); err != nil {
			t.Fatal(err)
		}
		c2 := f.ghClaims()
		c2["iss"] = gitea.URL
		f.wantRefused(t, gitea.Sign(c2), CodeInvalidPublisher, "not found")
		// And a github.com token is not matched by the forgejo publisher:
		// remove the GitHub one, keep forgejo's.
		pubs, _ := f.tp.ForProject(ctx, f.widget.ID)
		for _, p := range pubs.Publishers {
			if p.Kind == KindGitHub {
				if err := f.tp.RemoveFromProject(ctx, actor(f.alice, "alice"), f.widget, p.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.wantRefused(t, f.gh.Sign(f.ghClaims()), CodeInvalidPublisher, "not found")
		// A custom issuer's tokens must carry its audience: by default ours.
		c3 := f.ghClaims()
		c3["iss"] = forgejo.URL
		c3["aud"] = "https://codeberg.org/octo"
		f.wantRefused(t, forgejo.Sign(c3), CodeInvalidToken, "audience")
	})
}

// G8: the minted token lives 15 minutes, uploads only to the publisher's
// projects, carries no user, and every mint is audited with repository,
// workflow, ref and sha.
func TestG8MintedToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.addGitHub(t)
		ctx := context.Background()
		m := f.mustMint(t, f.gh.Sign(f.ghClaims()))
		if !strings.HasPrefix(m.Token, token.Prefix) {
			t.Fatalf("minted %q, want a %s token", m.Token, token.Prefix)
		}
		if got := m.Expires.Sub(f.clock.Now()); got > 15*time.Minute || got < 15*time.Minute-time.Second {
			t.Fatalf("token lives %v, want 15 minutes", got)
		}
		v, err := f.tokens.Authenticate(ctx, m.Token)
		if err != nil {
			t.Fatal(err)
		}
		if v.UserID != 0 || !v.IsPublisher() || v.CanCreateProjects() {
			t.Fatalf("publisher token identity %+v: want no user, a publisher, no project creation", v.Identity)
		}
		if err := v.PermitsProject("widget", f.widget.ID); err != nil {
			t.Fatalf("not permitted on widget: %v", err)
		}
		other := f.createProject(t, "other", f.alice)
		if err := v.PermitsProject("other", other.ID); err == nil {
			t.Fatal("permitted on a project not bound to the publisher")
		}
		// Attenuation can only narrow it; stripping caveats breaks it.
		if _, err := token.Attenuate(m.Token, `[3,"1"]`); err != nil {
			t.Fatal(err)
		}
		narrowed, _ := token.Attenuate(m.Token, `[3,"`+itoa(f.alice)+`"]`)
		if _, err := f.tokens.Authenticate(ctx, narrowed); err == nil {
			t.Fatal("a RequestUser caveat held for a publisher's token")
		}
		// 15 minutes later it is refused.
		f.clock.Advance(15 * time.Minute)
		if _, err := f.tokens.Authenticate(ctx, m.Token); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("after 15 minutes: %v, want expired", err)
		}
		// Unbinding the project refuses the next use at once.
		f.clock.Set(t0)
		m = f.mustMint(t, f.gh.Sign(f.ghClaims()))
		pubs, _ := f.tp.ForProject(ctx, f.widget.ID)
		if err := f.tp.RemoveFromProject(ctx, actor(f.alice, "alice"), f.widget, pubs.Publishers[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.tokens.Authenticate(ctx, m.Token); err == nil {
			t.Fatal("a token of a removed publisher still authenticates")
		}

		// The audit trail: one mint event per project, with the claims.
		var add string
		if err := d.QueryRow(`SELECT additional FROM events WHERE tag = $1 AND project_id = $2 ORDER BY id LIMIT 1`, audit.ShortLivedTokenAdded, f.widget.ID).Scan(&add); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"repository":"octo/widget"`, `"job_workflow_ref":"octo/widget/.github/workflows/release.yml@refs/heads/main"`, `"ref":"refs/heads/main"`, `"sha":"0123456789abcdef`} {
			if !strings.Contains(add, want) {
				t.Errorf("mint event %s lacks %s", add, want)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// F8 on the OIDC path: a pending publisher whose registrant's account an
// administrator disabled creates nothing (the project would be theirs);
// enabled again, the same publisher works. Uploads with minted tokens
// honour the project's own controls (quarantine, archive) in the upload
// path, as every token does (internal/web's TestF8ConsistentControls).
func TestF8PendingPublisherOfDisabledAccount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		if _, err := f.tp.AddPending(ctx, actor(f.bob, "bob"), "bobs-new", googleInput("ci@p.iam.gserviceaccount.com")); err != nil {
			t.Fatal(err)
		}
		tok := func() string {
			return f.google.Sign(oidctest.Google(testAudience, "ci@p.iam.gserviceaccount.com", "42", f.clock.Now()))
		}
		if _, err := d.Exec(`UPDATE users SET disabled = TRUE WHERE id = $1`, f.bob); err != nil {
			t.Fatal(err)
		}
		f.wantRefused(t, tok(), CodeInvalidPublisher, "the account that registered this pending publisher is disabled")
		if n := f.count(t, `SELECT count(*) FROM projects WHERE normalized_name = 'bobs-new'`) + f.count(t, `SELECT count(*) FROM oidc_jtis`); n != 0 {
			t.Fatalf("a disabled account's pending publisher left %d projects and jti records", n)
		}
		if _, err := d.Exec(`UPDATE users SET disabled = FALSE WHERE id = $1`, f.bob); err != nil {
			t.Fatal(err)
		}
		if m := f.mustMint(t, tok()); m.CreatedProject != "bobs-new" {
			t.Fatalf("minted %+v, want bobs-new created once bob is enabled again", m)
		}
	})
}
