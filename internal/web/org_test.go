package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/org"
)

// orgFixture: alice owns the organization Acme, bob manages it, carol is a
// member, dave is not in it; the project "acme-rocket" is Acme's and
// "alices-own" is alice's alone.
type orgFixture struct {
	*fixture
	o                        *org.Organization
	bob, carol, dave         int64
	alice, bobB, carB, davB  *browser
	rocketID, aliceProjectID int64
}

func newOrgFixture(t *testing.T, d *db.DB) *orgFixture {
	f := &orgFixture{fixture: newFixture(t, d)}
	ctx := context.Background()
	f.bob, f.carol, f.dave = addUser(t, d, "bob"), addUser(t, d, "carol"), addUser(t, d, "dave")
	a := org.Actor{UserID: f.fixture.alice, Username: "alice"}
	o, err := f.orgs.Request(ctx, a, "Acme", "")
	if err != nil {
		t.Fatal(err)
	}
	root := addUser(t, d, "root")
	makeAdmin(t, d, root)
	if o, err = f.orgs.Approve(ctx, org.Actor{UserID: root, Username: "root"}, o.ID); err != nil {
		t.Fatal(err)
	}
	f.o = o
	for id, role := range map[int64]string{f.bob: org.RoleManager, f.carol: org.RoleMember} {
		if _, err := d.Exec(`INSERT INTO organization_roles (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`, o.ID, id, role, t0); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.orgs.CreateProject(ctx, a, o.ID, "acme-rocket")
	if err != nil {
		t.Fatal(err)
	}
	f.rocketID = p.ID
	f.mustUpload(t, wheel(t, meta{Name: "alices-own", Version: "1.0"}))
	if err := d.QueryRow(`SELECT id FROM projects WHERE normalized_name = 'alices-own'`).Scan(&f.aliceProjectID); err != nil {
		t.Fatal(err)
	}
	f.alice, f.bobB = f.projectBrowser(t, f.fixture.alice, true), f.projectBrowser(t, f.bob, true)
	f.carB, f.davB = f.projectBrowser(t, f.carol, true), f.projectBrowser(t, f.dave, true)
	return f
}

// refusedForm posts a form that must be refused with code and a message,
// changing nothing.
func (f *orgFixture) refusedForm(t *testing.T, b *browser, path string, form url.Values, code int, want string) {
	t.Helper()
	before := dbState(t, f.db)
	r := b.post(t, path, form)
	if r.code != code || !strings.Contains(pageText(t, r), want) {
		t.Errorf("POST %s %v: got %d, want %d with %q\n%.1500s", path, form, r.code, code, want, pageText(t, r))
	}
	if after := dbState(t, f.db); after != before {
		t.Errorf("POST %s %v changed the database", path, form)
	}
}

// PyPI's 2026 audit: a Member or Manager inviting someone as Owner. The
// POST is held to the owner guard the page's forms are shown under, and the
// domain re-checks.
func TestOrgInviteNeedsOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newOrgFixture(t, d)
		path := "/manage/organization/acme/people/"
		for _, b := range []*browser{f.bobB, f.carB} {
			f.refusedForm(t, b, path, url.Values{"username": {"dave"}, "role_name": {"Owner"}}, http.StatusForbidden, "Only an owner of the organization Acme")
		}
		f.refusedForm(t, f.davB, path, url.Values{"username": {"dave"}, "role_name": {"Owner"}}, http.StatusForbidden, "Only an owner of the organization Acme")
		// Members see the people page without the forms.
		r := f.carB.get(t, path)
		if r.code != 200 || strings.Contains(string(r.body), `action="/manage/organization/acme/people/"`) {
			t.Errorf("member's people page: %d, invite form shown: %v", r.code, strings.Contains(string(r.body), "Send invitation"))
		}
		f.alice.postOK(t, path, url.Values{"username": {"dave"}, "role_name": {"Owner"}}, path, "Invitation sent to dave.")
	})
}

// Bad input on the organization forms gets a message and changes nothing.
func TestOrgFormsBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newOrgFixture(t, d)
		f.refusedForm(t, f.davB, "/manage/organizations/", url.Values{"name": {"acme"}}, http.StatusConflict, "taken by another organization")
		f.refusedForm(t, f.davB, "/manage/organizations/", url.Values{"name": {"carol"}}, http.StatusConflict, "a user's name")
		f.refusedForm(t, f.davB, "/manage/organizations/", url.Values{"name": {"../x"}}, http.StatusBadRequest, "is not valid")
		f.alice.postOK(t, "/manage/organization/acme/teams/", url.Values{"name": {"release"}}, "/manage/organization/acme/teams/", "Team release created.")
		teams, err := f.orgs.Teams(context.Background(), f.o.ID)
		if err != nil || len(teams) != 1 {
			t.Fatal(teams, err)
		}
		tid := []string{itoa64(teams[0].ID)}
		base := "/manage/organization/acme/"
		f.refusedForm(t, f.bobB, base+"teams/", url.Values{"name": {"Release"}}, http.StatusConflict, "already has a team named")
		f.refusedForm(t, f.bobB, base+"teams/members/", url.Values{"team_id": tid, "username": {"dave"}}, http.StatusBadRequest, "dave is not a member of Acme")
		f.refusedForm(t, f.bobB, base+"teams/members/", url.Values{"team_id": {"999999"}, "username": {"carol"}}, http.StatusNotFound, "no such team")
		f.refusedForm(t, f.bobB, base+"teams/projects/", url.Values{"team_id": tid, "project_name": {"alices-own"}, "role_name": {"Maintainer"}},
			http.StatusBadRequest, "Acme has no project named")
		f.refusedForm(t, f.bobB, base+"teams/projects/", url.Values{"team_id": tid, "project_name": {"acme-rocket"}, "role_name": {"Emperor"}},
			http.StatusBadRequest, "Choose the team's role")
		// Moving a project you don't own.
		f.refusedForm(t, f.bobB, base+"projects/move-in/", url.Values{"project_name": {"alices-own"}}, http.StatusForbidden, "only move a project you own")
		f.refusedForm(t, f.alice, base+"settings/delete/", url.Values{"confirm_organization_name": {"Acme"}}, http.StatusConflict, "still holds 1 project")
		f.refusedForm(t, f.alice, base+"settings/delete/", url.Values{"confirm_organization_name": {"nope"}}, http.StatusBadRequest, "Type the organization's name")
		f.refusedForm(t, f.alice, base+"people/change/", url.Values{"user_id": {itoa64(f.fixture.alice)}, "role_name": {"Member"}},
			http.StatusBadRequest, "only owner of Acme")
		f.refusedForm(t, f.alice, base+"people/change/", url.Values{"user_id": {"x"}, "role_name": {"Member"}}, http.StatusBadRequest, "missing which item")
	})
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// The policies as the browser meets them: a TOTP-only member is sent to
// add a security key, with the organization's message, from the
// organization's pages and its projects' pages, not from elsewhere; the
// upload path refuses their token with the same words.
func TestOrgPolicyInTheBrowserAndUploads(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newOrgFixture(t, d)
		ctx := context.Background()
		addKey := func(user int64, id string) {
			t.Helper()
			if _, err := d.Exec(`INSERT INTO webauthn_credentials (user_id, label, label_key, credential_id, credential_json, created_at) VALUES ($1, 'k', 'k', $2, '{}', $3)`, user, id, t0); err != nil {
				t.Fatal(err)
			}
		}
		// Alice, the owner, has a key (she could not turn the policy on
		// otherwise); bob, a manager, has only an authentication app.
		addKey(f.fixture.alice, "alice-key")
		a := org.Actor{UserID: f.fixture.alice, Username: "alice"}
		if err := f.orgs.SetPolicies(ctx, a, f.o.ID, org.Policies{PhishingResistant: true}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/manage/organization/acme/projects/", "/manage/project/acme-rocket/settings/"} {
			r := f.bobB.get(t, p)
			if r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/manage/account/two-factor/?next=") {
				t.Fatalf("GET %s under the policy: %d to %q, want the two-factor page", p, r.code, r.header.Get("Location"))
			}
			page := f.bobB.get(t, r.header.Get("Location"))
			if !strings.Contains(pageText(t, page), "The organization Acme requires its members to use a security key or passkey") {
				t.Errorf("the two-factor page lacks the policy's message:\n%.2000s", pageText(t, page))
			}
		}
		// Browsing is not a management action.
		if r := f.bobB.get(t, "/org/acme/"); r.code != 200 {
			t.Errorf("the public page under the policy: %d", r.code)
		}
		if r := f.alice.get(t, "/manage/organization/acme/projects/"); r.code != 200 {
			t.Errorf("alice, with a key: %d", r.code)
		}
		// The upload path: bob's token to Acme's project.
		bobToken := f.mintToken(t, f.bob)
		w := wheel(t, meta{Name: "acme-rocket", Version: "1.0"})
		before := dbState(t, d)
		r := f.uploadAs(t, bobToken, w.form(), w)
		if r.code != http.StatusForbidden || !strings.Contains(r.reason, "The organization Acme requires its members to use a security key or passkey") {
			t.Errorf("upload under the policy: %s", r)
		}
		if dbState(t, d) != before {
			t.Error("the refused upload changed the database")
		}
		// With a key, both work.
		addKey(f.bob, "bob-key")
		if r := f.bobB.get(t, "/manage/organization/acme/projects/"); r.code != 200 {
			t.Errorf("bob with a key: %d", r.code)
		}
		if r := f.uploadAs(t, bobToken, w.form(), w); r.code != http.StatusOK {
			t.Fatalf("bob's upload with a key: %s", r)
		}

		// Trusted publishing only refuses the long-lived token.
		if err := f.orgs.SetPolicies(ctx, a, f.o.ID, org.Policies{PhishingResistant: true, TrustedOnly: true}); err != nil {
			t.Fatal(err)
		}
		w = wheel(t, meta{Name: "acme-rocket", Version: "1.1"})
		before = dbState(t, d)
		r = f.uploadAs(t, bobToken, w.form(), w)
		if r.code != http.StatusForbidden || !strings.Contains(r.reason, "belongs to the organization Acme, which accepts uploads only from trusted publishers") {
			t.Errorf("upload under trusted publishing only: %s", r)
		}
		if dbState(t, d) != before {
			t.Error("the refused upload changed the database")
		}
		// A stranger's token learns nothing of the policies.
		w = wheel(t, meta{Name: "acme-rocket", Version: "1.2"})
		r = f.uploadAs(t, f.mintToken(t, f.dave), w.form(), w)
		if r.code != http.StatusForbidden || strings.Contains(r.reason, "Acme") {
			t.Errorf("a stranger's upload: %s", r)
		}
	})
}

// An old name (before a rename) leads to the new one, for the public page
// and the management pages.
func TestOrgRenameRedirects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newOrgFixture(t, d)
		f.alice.postOK(t, "/manage/organization/acme/settings/rename/", url.Values{"name": {"Acme-Corp"}}, "/manage/organization/acme-corp/settings/",
			"The organization is now called Acme-Corp.")
		for from, to := range map[string]string{"/org/acme/": "/org/acme-corp/", "/manage/organization/acme/teams/": "/manage/organization/acme-corp/teams/"} {
			r := f.alice.get(t, from)
			if r.code != http.StatusMovedPermanently || r.header.Get("Location") != to {
				t.Errorf("GET %s: %d to %q, want 301 to %s", from, r.code, r.header.Get("Location"), to)
			}
		}
		r := f.alice.get(t, "/project/alices-own/")
		if strings.Contains(string(r.body), "/org/") {
			t.Error("a project outside any organization shows one")
		}
	})
}
