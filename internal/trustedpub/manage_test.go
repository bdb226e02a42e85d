package trustedpub

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

// Bad publisher forms are refused with a message and store nothing.
func TestAddPublisherRefusesBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice := actor(f.alice, "alice")
		cases := []struct {
			in   Input
			want string
		}{
			{githubInput("owner", "-octo"), "Owner:"},
			{githubInput("repository", "wid/get"), "Repository:"},
			{githubInput("workflow", "release.txt"), "Workflow:"},
			{githubInput("workflow", ".github/workflows/release.yml"), "Workflow:"},
			{githubInput("environment", `prod"`), "environment"},
			{githubInput("environment", "a\x00b"), "control characters"},
			{githubInput("owner_id", "12ab"), "Owner ID:"},
			{githubInput("owner_id", "999"), "GitHub says the numeric ID of octo is 1001, not 999"},
			{githubInput("owner", "nobody"), "Unknown GitHub user or organization: nobody"},
			{githubInput("reusable_workflow", "octo/shared/publish.yml"), "Reusable workflow:"},
			{Input{Provider: KindGitLab, Fields: map[string]string{"namespace": "acme", "project": "widget", "workflow_filepath": "/ci.yml"}}, "pipeline file"},
			{Input{Provider: KindGitLab, Fields: map[string]string{"namespace": "acme", "project": "widget", "workflow_filepath": "ci.yml", "issuer": "https://gitlab.evil.example"}}, "GitLab instance"},
			{Input{Provider: KindGoogle, Fields: map[string]string{"email": "not-an-email"}}, "Email:"},
			{Input{Provider: KindActiveState, Fields: map[string]string{"organization": "acme", "project": "widget", "actor": "bob"}}, "Actor ID"},
			{Input{Provider: KindCustom, Fields: map[string]string{"issuer": "nope"}}, "Issuer:"},
			{Input{Provider: "bitbucket"}, "Choose a provider"},
			{githubInput("workflow", strings.Repeat("x", 300)+".yml"), "at most 255"},
		}
		for _, c := range cases {
			_, err := f.tp.AddToProject(ctx, alice, f.widget, c.in)
			msg, ok := derrors.Message(err)
			if !errors.Is(err, derrors.Invalid) || !ok || !strings.Contains(msg, c.want) {
				t.Errorf("%v: got %v, want an Invalid error containing %q", c.in.Fields, err, c.want)
			}
		}
		if n := f.count(t, `SELECT count(*) FROM trusted_publishers`) + f.count(t, `SELECT count(*) FROM project_publishers`); n != 0 {
			t.Fatalf("%d publisher rows after refused forms, want 0", n)
		}
		if n := len(f.outbox(t, "alice@example.com")); n != 0 {
			t.Fatalf("%d emails after refused forms", n)
		}
	})
}

// The GitHub API gives the owner's id and canonical spelling; when it
// cannot be asked, an id entered by hand is used, and without one the form
// says how to find it.
func TestGitHubOwnerLookup(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice := actor(f.alice, "alice")
		p, err := f.tp.AddToProject(ctx, alice, f.widget, githubInput("owner", "OCTO"))
		if err != nil {
			t.Fatal(err)
		}
		if p.Config["owner"] != "octo" || p.Config["owner_id"] != "1001" {
			t.Fatalf("stored owner %q id %q, want GitHub's octo 1001", p.Config["owner"], p.Config["owner_id"])
		}
		for _, mode := range []string{"ratelimit", "down"} {
			f.ghAPI.setMode(mode)
			_, err = f.tp.AddToProject(ctx, alice, f.widget, githubInput("workflow", "other.yml"))
			if msg, _ := derrors.Message(err); !errors.Is(err, derrors.Invalid) || !strings.Contains(msg, "enter it by hand") {
				t.Fatalf("API %s, no id: %v", mode, err)
			}
			if _, err := f.tp.AddToProject(ctx, alice, f.widget, githubInput("workflow", mode+".yml", "owner_id", "1001")); err != nil {
				t.Fatalf("API %s, id by hand: %v", mode, err)
			}
		}
	})
}

// Adding and removing: events on the project, emails to every owner, the
// row shared and deleted with its last project, duplicates refused.
func TestAddRemovePublisher(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		if _, err := d.Exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, f.widget.ID, f.bob); err != nil {
			t.Fatal(err)
		}
		p := f.addGitHub(t)
		_, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), f.widget, githubInput())
		if !errors.Is(err, derrors.Conflict) {
			t.Fatalf("the same publisher twice: %v, want a conflict", err)
		}
		for _, who := range []string{"alice@example.com", "bob@example.com"} {
			if got := f.outbox(t, who); len(got) != 1 || got[0] != "[Gatehouse] Trusted publisher added to widget" {
				t.Fatalf("%s got %q, want the added notice", who, got)
			}
		}
		gadget := f.createProject(t, "gadget", f.alice)
		p2, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), gadget, githubInput())
		if err != nil {
			t.Fatal(err)
		}
		if p2.ID != p.ID {
			t.Fatalf("the same identity on two projects got rows %d and %d, want one", p.ID, p2.ID)
		}
		if err := f.tp.RemoveFromProject(ctx, actor(f.bob, "bob"), f.widget, p.ID); err != nil {
			t.Fatal(err)
		}
		if n := f.count(t, `SELECT count(*) FROM trusted_publishers`); n != 1 {
			t.Fatalf("%d publisher rows, want 1 (gadget still uses it)", n)
		}
		if err := f.tp.RemoveFromProject(ctx, actor(f.bob, "bob"), f.widget, p.ID); !errors.Is(err, derrors.NotFound) {
			t.Fatalf("removing twice: %v", err)
		}
		if err := f.tp.RemoveFromProject(ctx, actor(f.alice, "alice"), gadget, p.ID); err != nil {
			t.Fatal(err)
		}
		if n := f.count(t, `SELECT count(*) FROM trusted_publishers`); n != 0 {
			t.Fatalf("%d publisher rows after the last project dropped it, want 0", n)
		}
		if got := f.outbox(t, "bob@example.com"); len(got) != 2 || got[1] != "[Gatehouse] Trusted publisher removed from widget" {
			t.Fatalf("bob got %q", got)
		}
		ev := f.projectEvents(t, f.widget.ID)
		if strings.Join(ev, " ") != audit.PublisherAdded+" "+audit.PublisherRemoved {
			t.Fatalf("widget's events %v", ev)
		}
	})
}

// "Trusted publishing only" and the notice for long-lived tokens.
func TestTrustedPublishingOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice := actor(f.alice, "alice")
		if err := f.tp.SetTrustedPublishingOnly(ctx, alice, f.widget, true); !errors.Is(err, derrors.Invalid) {
			t.Fatalf("turning it on with no publisher: %v, want refused", err)
		}
		if err := f.tp.RefuseLongLived(ctx, f.widget.ID, "widget"); err != nil {
			t.Fatalf("refused with the setting off: %v", err)
		}
		// A long-lived token uploading to a project with a publisher: the
		// owners are told once per token and project.
		f.addGitHub(t)
		for range 2 {
			if err := f.tp.NoteLongLivedUpload(ctx, "token-1", "widget"); err != nil {
				t.Fatal(err)
			}
		}
		var warned int
		for _, s := range f.outbox(t, "alice@example.com") {
			if s == "[Gatehouse] API token used to upload to project widget despite Trusted Publishing enabled" {
				warned++
			}
		}
		if warned != 1 {
			t.Fatalf("%d warnings, want 1", warned)
		}
		if err := f.tp.SetTrustedPublishingOnly(ctx, alice, f.widget, true); err != nil {
			t.Fatal(err)
		}
		err := f.tp.RefuseLongLived(ctx, f.widget.ID, "widget")
		msg, _ := derrors.Message(err)
		if !errors.Is(err, derrors.Forbidden) || !strings.Contains(msg, "GitHub: octo/widget, workflow release.yml") {
			t.Fatalf("with the setting on: %v, want a refusal naming the publisher", err)
		}
		pp, _ := f.tp.ForProject(ctx, f.widget.ID)
		if !pp.Only {
			t.Fatal("ForProject does not show the setting")
		}
		if err := f.tp.SetTrustedPublishingOnly(ctx, alice, f.widget, false); err != nil {
			t.Fatal(err)
		}
		if err := f.tp.RefuseLongLived(ctx, f.widget.ID, "widget"); err != nil {
			t.Fatalf("refused after turning it off: %v", err)
		}
	})
}

func googleInput(email string) Input {
	return Input{Provider: KindGoogle, Fields: map[string]string{"email": email}}
}

// Pending publishers: the rules for registering them, the first exchange
// creating the project, invalidation and expiry.
func TestPendingPublishers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice, bob := actor(f.alice, "alice"), actor(f.bob, "bob")

		for name, want := range map[string]string{"widget": "add the publisher on its publishing page", "-bad-": "is invalid", "os": "Standard Library", "": "Enter the name"} {
			_, err := f.tp.AddPending(ctx, alice, name, googleInput("a@p.iam.gserviceaccount.com"))
			if msg, _ := derrors.Message(err); err == nil || !strings.Contains(msg, want) {
				t.Errorf("pending for %q: %v, want %q", name, err, want)
			}
		}
		if _, err := f.tp.AddPending(ctx, bob, "widget", googleInput("a@p.iam.gserviceaccount.com")); !errors.Is(err, derrors.Conflict) {
			t.Errorf("bob's pending for existing widget: %v", err)
		}
		for i, name := range []string{"one", "two", "three"} {
			if _, err := f.tp.AddPending(ctx, alice, name, googleInput(name+"@p.iam.gserviceaccount.com")); err != nil {
				t.Fatalf("pending %d: %v", i, err)
			}
		}
		if _, err := f.tp.AddPending(ctx, alice, "four", googleInput("four@p.iam.gserviceaccount.com")); err == nil || !strings.Contains(err.Error(), "more than 3") {
			t.Fatalf("a fourth pending publisher: %v", err)
		}
		if _, err := f.tp.AddPending(ctx, bob, "other", googleInput("one@p.iam.gserviceaccount.com")); !errors.Is(err, derrors.Conflict) {
			t.Fatalf("the same identity pending twice: %v", err)
		}

		// The first exchange creates "one", owned by alice.
		tok := func(email string) string {
			return f.google.Sign(oidctest.Google(testAudience, email, "42", f.clock.Now()))
		}
		m := f.mustMint(t, tok("one@p.iam.gserviceaccount.com"))
		if m.CreatedProject != "one" || strings.Join(m.Projects, ",") != "one" {
			t.Fatalf("minted %+v, want project one created", m)
		}
		if r, _ := f.projects.MembershipOf(ctx, "one", f.alice); r == nil || r.Role != "Owner" {
			t.Fatalf("alice's role on one: %+v", r)
		}
		if got := f.outbox(t, "alice@example.com"); len(got) != 1 || got[0] != "[Gatehouse] Trusted publisher created project one" {
			t.Fatalf("alice's mail %q", got)
		}
		// Now a regular publisher: the next token mints for it.
		if m := f.mustMint(t, tok("one@p.iam.gserviceaccount.com")); m.CreatedProject != "" {
			t.Fatalf("second exchange created %q", m.CreatedProject)
		}
		if pend, _ := f.tp.PendingFor(ctx, f.alice); len(pend) != 2 {
			t.Fatalf("%d pending left, want 2", len(pend))
		}

		// Someone else creates "two": alice's pending for it is gone, and
		// she is told.
		f.createProject(t, "Two", f.bob)
		if pend, _ := f.tp.PendingFor(ctx, f.alice); len(pend) != 1 || pend[0].ProjectName != "three" {
			t.Fatalf("pending after bob created two: %+v", pend)
		}
		if got := f.outbox(t, "alice@example.com"); len(got) != 2 || got[1] != "[Gatehouse] Pending trusted publisher invalidated for two" {
			t.Fatalf("alice's mail %q", got)
		}
		f.wantRefused(t, tok("two@p.iam.gserviceaccount.com"), CodeInvalidPublisher, "not found")

		// Five days before "three" expires, alice is reminded, once.
		f.clock.Advance(PendingLifetime - remindBefore - time.Minute)
		if err := f.tp.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.outbox(t, "alice@example.com"); len(got) != 2 {
			t.Fatalf("reminded too early: %q", got)
		}
		f.clock.Advance(2 * time.Minute)
		for range 2 {
			if err := f.tp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.outbox(t, "alice@example.com"); len(got) != 3 || got[2] != "[Gatehouse] Pending trusted publisher for three expiring soon" {
			t.Fatalf("alice's mail %q, want one reminder", got)
		}

		// "three" expires after 30 days, unused: the sweep removes it and
		// tells alice; its token is then refused.
		f.clock.Advance(remindBefore)
		f.wantRefused(t, tok("three@p.iam.gserviceaccount.com"), CodeInvalidPublisher, "not found")
		if err := f.tp.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if pend, _ := f.tp.PendingFor(ctx, f.alice); len(pend) != 0 {
			t.Fatalf("pending after expiry: %+v", pend)
		}
		if got := f.outbox(t, "alice@example.com"); len(got) != 4 || got[3] != "[Gatehouse] Pending trusted publisher expired for three" {
			t.Fatalf("alice's mail %q", got)
		}

		// A pending publisher whose name was taken by its own owner's
		// upload meanwhile: refused, and deleted.
		if _, err := f.tp.AddPending(ctx, bob, "five", googleInput("five@p.iam.gserviceaccount.com")); err != nil {
			t.Fatal(err)
		}
		f.createProject(t, "five", f.bob)
		f.wantRefused(t, tok("five@p.iam.gserviceaccount.com"), CodeInvalidPendingPublisher, "project already exists")
		if pend, _ := f.tp.PendingFor(ctx, f.bob); len(pend) != 0 {
			t.Fatalf("bob's stale pending publisher kept: %+v", pend)
		}
	})
}

// 20 parallel exchanges of one token through a pending publisher create
// one project and mint one token.
func TestPendingRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		if _, err := f.tp.AddPending(ctx, actor(f.alice, "alice"), "racer", googleInput("r@p.iam.gserviceaccount.com")); err != nil {
			t.Fatal(err)
		}
		// Warm the key cache with a refused token.
		f.wantRefused(t, f.google.Sign(oidctest.Google(testAudience, "nobody@p.iam.gserviceaccount.com", "1", f.clock.Now())), CodeInvalidPublisher, "")
		raw := f.google.Sign(oidctest.Google(testAudience, "r@p.iam.gserviceaccount.com", "42", f.clock.Now()))
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			minted int
			errs   []string
		)
		start := make(chan struct{})
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, refusal, err := f.tp.Exchange(ctx, raw, testClient())
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err.Error())
				case refusal == nil:
					minted++
				case refusal.Code != CodeInvalidReuseToken:
					errs = append(errs, refusal.Error())
				}
			}()
		}
		close(start)
		wg.Wait()
		if minted != 1 || len(errs) != 0 {
			t.Fatalf("%d minted, errors %v; want one", minted, errs)
		}
		if n := f.count(t, `SELECT count(*) FROM projects WHERE normalized_name = 'racer'`); n != 1 {
			t.Fatalf("%d projects racer", n)
		}
	})
}

// G8: registrations are rate-limited (100 a day per user), refused
// attempts included.
func TestG8PendingRegistrationFlood(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice := actor(f.alice, "alice")
		for i := range 100 {
			if _, err := f.tp.AddPending(ctx, alice, "flood", googleInput("bad")); !errors.Is(err, derrors.Invalid) {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		_, err := f.tp.AddPending(ctx, alice, "flood", googleInput("ok@p.iam.gserviceaccount.com"))
		if !errors.Is(err, derrors.RateLimited) || !strings.Contains(err.Error(), "too many attempted trusted publisher registrations") {
			t.Fatalf("attempt 101: %v, want rate-limited", err)
		}
		if _, ok := derrors.RetryAfter(err); !ok {
			t.Error("no Retry-After")
		}
		f.clock.Advance(24*time.Hour + time.Second)
		if _, err := f.tp.AddPending(ctx, alice, "flood", googleInput("ok@p.iam.gserviceaccount.com")); err != nil {
			t.Fatalf("a day later: %v", err)
		}
	})
}

// Custom issuers: the admin form's rules.
func TestCustomIssuerForm(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		admin := actor(f.bob, "bob")
		for _, c := range []struct {
			in   CustomIssuerInput
			want string
		}{
			{CustomIssuerInput{Name: "Bad Name", URL: "https://ci.example", Claims: "repository"}, "lower-case"},
			{CustomIssuerInput{Name: "ci", URL: "http://ci.example", Claims: "repository"}, "must use https"},
			{CustomIssuerInput{Name: "ci", URL: "https://ci.example", Claims: ""}, "at least one claim"},
			{CustomIssuerInput{Name: "ci", URL: "https://ci.example", Claims: "aud"}, "checked for every token"},
			{CustomIssuerInput{Name: "ci", URL: "https://ci.example", Claims: "repo-sitory"}, "not a claim name"},
			{CustomIssuerInput{Name: "ci", URL: f.gh.URL, Claims: "repository"}, "built-in issuer"},
		} {
			if _, err := f.tp.AddCustomIssuer(ctx, admin, c.in); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: %v, want %q", c.in, err, c.want)
			}
		}
		ci, err := f.tp.AddCustomIssuer(ctx, admin, CustomIssuerInput{Name: "codeberg", URL: "https://codeberg.org/", Claims: "repository,ref repository"})
		if err != nil {
			t.Fatal(err)
		}
		if ci.URL != "https://codeberg.org" || strings.Join(ci.Claims, ",") != "repository,ref" || ci.Audience != testAudience {
			t.Fatalf("stored %+v", ci)
		}
		if _, err := f.tp.AddCustomIssuer(ctx, admin, CustomIssuerInput{Name: "codeberg", URL: "https://other.example", Claims: "sub"}); !errors.Is(err, derrors.Conflict) {
			t.Fatalf("duplicate name: %v", err)
		}
		if err := f.tp.RemoveCustomIssuer(ctx, admin, ci.ID); err != nil {
			t.Fatal(err)
		}
		if list, _ := f.tp.CustomIssuers(ctx); len(list) != 0 {
			t.Fatalf("issuers after removal: %+v", list)
		}
	})
}
