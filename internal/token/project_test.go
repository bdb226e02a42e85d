package token

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestScopeProjects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		got, err := f.s.ScopeProjects(context.Background(), f.alice)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[{a a Owner} {b b Maintainer}]" {
			t.Errorf("alice's projects = %v, want a (Owner) and b (Maintainer), not bob's c", got)
		}
	})
}

// TestForProject: the tokens that can upload to a project are those of its
// collaborators that are not limited to other projects, not expired and not
// of a disabled account.
func TestForProject(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		carol := addUser(t, d, "carol")
		dave := addUser(t, d, "dave")
		addRole(t, d, f.a, carol, "Maintainer")
		addRole(t, d, f.a, dave, "Maintainer")
		soon := f.clock.Now().Add(time.Hour)
		later := f.clock.Now().Add(48 * time.Hour)

		for _, c := range []struct {
			user     int64
			desc     string
			projects []string
			exp      *time.Time
		}{
			{f.alice, "alice all", nil, nil},
			{f.alice, "alice a+b", []string{"a", "b"}, &later},
			{f.alice, "alice b only", []string{"b"}, nil},
			{f.alice, "alice soon gone", []string{"a"}, &soon},
			{f.bob, "bob all", nil, nil}, // bob has no role on a
			{carol, "carol all", nil, nil},
			{dave, "dave all", nil, nil},
		} {
			f.create(t, c.user, c.desc, c.projects, c.exp)
			f.clock.Advance(time.Second) // newest first, in a known order
		}
		if _, err := d.Exec(`UPDATE users SET disabled = TRUE WHERE id = $1`, dave); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Hour)

		got, err := f.s.ForProject(ctx, f.a)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, pt := range got {
			names = append(names, pt.Username+": "+pt.Description)
		}
		if want := "[alice: alice a+b alice: alice all carol: carol all]"; fmt.Sprint(names) != want {
			t.Errorf("tokens for a = %v, want %s", names, want)
		}
		// Every listed token does upload to a; none of the others does.
		got, err = f.s.ForProject(ctx, f.c)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Username != "bob" {
			t.Errorf("tokens for c = %+v, want bob's", got)
		}
	})
}
