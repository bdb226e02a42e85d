package org

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func TestRequestApproveDecline(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, true)
		o, err := f.s.Request(f.ctx, f.actor("alice"), "Acme", "Rockets and anvils")
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != StatusPending {
			t.Fatalf("status %q, want pending", o.Status)
		}
		// Not usable yet: no owner, not found by name.
		if _, _, err := f.s.Get(f.ctx, "acme"); !errors.Is(err, derrors.NotFound) {
			t.Fatalf("pending organization found: %v", err)
		}
		if _, err := f.s.Approve(f.ctx, f.actor("bob"), o.ID); !errors.Is(err, derrors.Forbidden) {
			t.Fatalf("a non-admin approved: %v", err)
		}
		if _, err := f.s.Approve(f.ctx, f.actor("root"), o.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Approve(f.ctx, f.actor("root"), o.ID); !errors.Is(err, derrors.Conflict) {
			t.Fatalf("approved twice: %v", err)
		}
		m, err := f.s.MembershipOf(f.ctx, "ACME", f.users["alice"])
		if err != nil || m.Role != RoleOwner {
			t.Fatalf("alice after approval: %+v, %v", m, err)
		}
		if got := f.lastMail("alice"); !strings.Contains(got, "was approved") {
			t.Errorf("alice's email: %s", got)
		}

		// A declined request frees its name and says so.
		o2, err := f.s.Request(f.ctx, f.actor("bob"), "Widgets", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Decline(f.ctx, f.actor("root"), o2.ID); err != nil {
			t.Fatal(err)
		}
		if got := f.lastMail("bob"); !strings.Contains(got, "was declined") {
			t.Errorf("bob's email: %s", got)
		}
		if _, err := f.s.Request(f.ctx, f.actor("carol"), "widgets", ""); err != nil {
			t.Fatalf("declined name not free: %v", err)
		}
		if n := count(t, d, `SELECT count(*) FROM events WHERE organization_id = $1 AND tag = 'organization:decline'`, o2.ID); n != 1 {
			t.Errorf("%d decline events", n)
		}
	})
}

func TestNamesAndBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		f.newOrg("Acme", "alice")
		f.addProject("some-project", "alice")
		before := f.snapshot()
		for _, c := range []struct{ name, desc, want string }{
			{"", "", "Enter a name"},
			{"-bad-", "", "is not valid"},
			{"a b", "", "is not valid"},
			{"ACME", "", "taken by another organization"},
			{"aCmE", "", "taken by another organization"},
			{"Bob", "", "a user's name"},
			{"fine", strings.Repeat("x", 401), "too long"},
		} {
			_, err := f.s.Request(f.ctx, f.actor("carol"), c.name, c.desc)
			kind := derrors.Invalid
			if strings.Contains(c.want, "taken") || strings.Contains(c.want, "user's") {
				kind = derrors.Conflict
			}
			f.refused(err, kind, c.want, before)
		}
	})
}

func TestPendingRequestLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, true)
		for _, n := range []string{"one", "two", "three"} {
			if _, err := f.s.Request(f.ctx, f.actor("alice"), n, ""); err != nil {
				t.Fatal(err)
			}
		}
		before := f.snapshot()
		_, err := f.s.Request(f.ctx, f.actor("alice"), "four", "")
		f.refused(err, derrors.Invalid, "3 organization requests waiting", before)
	})
}

// Two concurrent requests for one name: exactly one wins, the other gets
// the name-taken message, and one row exists.
func TestConcurrentRequestsOneWins(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		const n = 8
		users := []string{"alice", "bob", "carol", "dave"}
		for i := len(users); i < n; i++ {
			users = append(users, f.addUserName(i))
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				_, errs[i] = f.s.Request(f.ctx, f.actor(users[i]), "Contested", "")
			}(i)
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, derrors.Conflict):
				if msg, _ := derrors.Message(err); !strings.Contains(msg, "taken") {
					t.Errorf("loser's message: %q", msg)
				}
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d requests won, want exactly 1", won)
		}
		if c := count(t, d, `SELECT count(*) FROM organizations WHERE normalized_name = 'contested'`); c != 1 {
			t.Fatalf("%d rows for the name", c)
		}
		if c := count(t, d, `SELECT count(*) FROM organization_roles r JOIN organizations o ON o.id = r.organization_id WHERE o.normalized_name = 'contested'`); c != 1 {
			t.Fatalf("%d owners", c)
		}
	})
}

func (f *fixture) addUserName(i int) string {
	name := "user" + string(rune('a'+i))
	f.addUser(name)
	return name
}

func TestRenameRedirectsAndDeleteRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleManager)
		before := f.snapshot()
		_, err := f.s.Rename(f.ctx, f.actor("bob"), o.ID, "Acme2")
		f.refused(err, derrors.Forbidden, "Only an owner", before)
		if _, err := f.s.Rename(f.ctx, f.actor("alice"), o.ID, "Acme-Corp"); err != nil {
			t.Fatal(err)
		}
		got, renamed, err := f.s.Get(f.ctx, "acme")
		if err != nil || !renamed || got.Name != "Acme-Corp" {
			t.Fatalf("old name: %+v renamed=%v err=%v", got, renamed, err)
		}
		// The old name stays reserved.
		if _, err := f.s.Request(f.ctx, f.actor("carol"), "acme", ""); !errors.Is(err, derrors.Conflict) {
			t.Fatalf("old name taken by another: %v", err)
		}
		if !strings.Contains(f.lastMail("alice"), "renamed from Acme to Acme-Corp") {
			t.Errorf("owner not told: %s", f.lastMail("alice"))
		}

		// Delete: only with the typed name, only without projects.
		p, err := f.s.CreateProject(f.ctx, f.actor("alice"), o.ID, "rocket")
		if err != nil {
			t.Fatal(err)
		}
		before = f.snapshot()
		_, err = f.s.Delete(f.ctx, f.actor("alice"), o.ID, "wrong")
		f.refused(err, derrors.Invalid, "Type the organization's name", before)
		_, err = f.s.Delete(f.ctx, f.actor("alice"), o.ID, "Acme-Corp")
		f.refused(err, derrors.Conflict, "still holds 1 project", before)
		if _, err := f.s.MoveOut(f.ctx, f.actor("alice"), o.ID, p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Delete(f.ctx, f.actor("alice"), o.ID, "acme-corp"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.s.Get(f.ctx, "acme-corp"); !errors.Is(err, derrors.NotFound) {
			t.Fatalf("deleted organization still found: %v", err)
		}
		// The project moved out kept an owner: alice.
		if r := f.role(p.ID, "alice"); r != "Owner" {
			t.Errorf("alice's role on the moved-out project: %q", r)
		}
	})
}
