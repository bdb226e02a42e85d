package trustedpub

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const environmentSubject = "[Gatehouse] Trusted Publisher for project widget can be made more secure"

// Environment hardening (spec §3.1): a publisher with no environment used
// from a job in one makes its owners hear, once, that they can limit it;
// ConstrainEnvironment does, replacing the publisher with the limited one.
func TestEnvironmentHardening(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		alice := actor(f.alice, "alice")
		pub := f.addGitHub(t)
		notices := func() []string {
			var out []string
			for _, s := range f.outbox(t, "alice@example.com") {
				if s == environmentSubject {
					out = append(out, s)
				}
			}
			return out
		}
		withEnv := func(env string) string {
			c := f.ghClaims()
			if env != "" {
				c["environment"] = env
			}
			return f.gh.Sign(c)
		}

		// A job in no environment: nothing to say.
		f.mustMint(t, withEnv(""))
		if n := len(notices()); n != 0 {
			t.Fatalf("%d notices after a job with no environment", n)
		}
		// A job in "PyPI": the owner is told once, with the link that
		// offers the change.
		f.mustMint(t, withEnv("PyPI"))
		f.mustMint(t, withEnv("PyPI"))
		if n := len(notices()); n != 1 {
			t.Fatalf("%d notices after two jobs in the environment PyPI, want 1", n)
		}
		var body string
		if err := d.QueryRow(`SELECT text_body FROM outbox WHERE template = 'environment-ignored-in-trusted-publisher'`).Scan(&body); err != nil {
			t.Fatal(err)
		}
		link := "https://gatehouse.test/manage/project/widget/settings/publishing/?constrain_environment=PyPI&constrain_publisher_id=" + strconv.FormatInt(pub.ID, 10)
		if !strings.Contains(body, link) || !strings.Contains(body, `"PyPI"`) || !strings.Contains(body, "GitHub: octo/widget, workflow release.yml") {
			t.Fatalf("the notice lacks the link %s, the environment or the publisher:\n%s", link, body)
		}

		// Bad requests change nothing.
		state := func() string {
			return strings.Join(f.projectEvents(t, f.widget.ID), " ") + "|" +
				strconv.Itoa(f.count(t, `SELECT count(*) FROM trusted_publishers`)) + "|" + strconv.Itoa(len(f.outbox(t, "alice@example.com")))
		}
		google, err := f.tp.AddToProject(ctx, alice, f.widget, googleInput("a@b.iam.gserviceaccount.com"))
		if err != nil {
			t.Fatal(err)
		}
		before := state()
		for _, c := range []struct {
			id        int64
			env, want string
			kind      error
		}{
			{pub.ID, "", "enter the environment", derrors.Invalid},
			{pub.ID, "py'pi", "must not contain quotes", derrors.Invalid},
			{pub.ID + 1000, "pypi", "not registered for widget", derrors.NotFound},
			{google.ID, "pypi", "Only GitHub and GitLab publishers", derrors.Invalid},
		} {
			_, err := f.tp.ConstrainEnvironment(ctx, alice, f.widget, c.id, c.env)
			msg, _ := derrors.Message(err)
			if !errors.Is(err, c.kind) || !strings.Contains(msg, c.want) {
				t.Errorf("constrain %d to %q: %v, want %q", c.id, c.env, err, c.want)
			}
		}
		if after := state(); after != before {
			t.Fatalf("refused requests changed the state:\n%s\n%s", before, after)
		}

		// The change: the publisher limited to PyPI replaces the old one,
		// recorded as Warehouse records it, and every owner is told.
		limited, err := f.tp.ConstrainEnvironment(ctx, alice, f.widget, pub.ID, "PyPI")
		if err != nil {
			t.Fatal(err)
		}
		if limited.Environment != "pypi" || limited.Name() != "GitHub: octo/widget, workflow release.yml, environment PyPI" {
			t.Fatalf("limited publisher %q, environment %q", limited.Name(), limited.Environment)
		}
		if n := f.count(t, `SELECT count(*) FROM trusted_publishers WHERE id = $1`, pub.ID); n != 0 {
			t.Fatal("the unlimited publisher is still stored")
		}
		rows, err := d.Query(`SELECT tag, additional FROM events WHERE project_id = $1 AND additional LIKE '%constrained_from_existing_publisher%' ORDER BY id`, f.widget.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var tag, add string
			if err := rows.Scan(&tag, &add); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(add, `"constrained_from_existing_publisher":true`) {
				t.Errorf("%s: %s", tag, add)
			}
			got = append(got, tag)
		}
		rows.Close()
		if strings.Join(got, " ") != audit.PublisherAdded+" "+audit.PublisherRemoved {
			t.Fatalf("constrained events %v, want added then removed", got)
		}
		mails := f.outbox(t, "alice@example.com")
		if tail := strings.Join(mails[len(mails)-2:], " / "); tail != "[Gatehouse] Trusted publisher added to widget / [Gatehouse] Trusted publisher removed from widget" {
			t.Fatalf("alice's last emails: %s", tail)
		}
		if _, err := f.tp.ConstrainEnvironment(ctx, alice, f.widget, limited.ID, "other"); !errors.Is(err, derrors.Invalid) {
			t.Fatalf("limiting a limited publisher again: %v", err)
		}

		// Only jobs in PyPI publish now (any case, as GitHub compares
		// environments), and there is nothing more to say.
		f.wantRefused(t, withEnv("staging"), CodeInvalidPublisher, "Publisher with matching claims was not found")
		f.wantRefused(t, withEnv(""), CodeInvalidPublisher, "Publisher with matching claims was not found")
		f.mustMint(t, withEnv("pypi"))
		if n := len(notices()); n != 1 {
			t.Fatalf("%d notices, want still 1", n)
		}

		// A publisher that serves two projects: Warehouse does not offer the
		// change (it would apply to both), nor does Gatehouse.
		gadget := f.createProject(t, "gadget", f.alice)
		both := githubInput("workflow", "both.yml")
		if _, err := f.tp.AddToProject(ctx, alice, f.widget, both); err != nil {
			t.Fatal(err)
		}
		if _, err := f.tp.AddToProject(ctx, alice, gadget, both); err != nil {
			t.Fatal(err)
		}
		c := f.ghClaims()
		c["job_workflow_ref"] = "octo/widget/.github/workflows/both.yml@refs/heads/main"
		c["workflow_ref"] = c["job_workflow_ref"]
		c["environment"] = "pypi"
		f.mustMint(t, f.gh.Sign(c))
		if n := f.count(t, `SELECT count(*) FROM outbox WHERE template = 'environment-ignored-in-trusted-publisher'`); n != 1 {
			t.Fatalf("%d notices, want still 1 (a publisher of two projects is not offered the change)", n)
		}
	})
}
