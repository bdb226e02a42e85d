package token

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// count runs a COUNT query.
func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.d.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedEvent is an events row as the tests look at it.
type storedEvent struct {
	userID, projectID, actorID int64
	actor, ip, agent           string
	add                        map[string]any
}

// events returns the events with the tag, oldest first.
func (f *fixture) events(t *testing.T, tag string) []storedEvent {
	t.Helper()
	rows, err := f.d.Query(`SELECT COALESCE(user_id, 0), COALESCE(project_id, 0), COALESCE(actor_id, 0), actor, ip, user_agent, additional
		FROM events WHERE tag = $1 ORDER BY id`, tag)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		var add string
		if err := rows.Scan(&e.userID, &e.projectID, &e.actorID, &e.actor, &e.ip, &e.agent, &add); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(add), &e.add); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCreateAndDeleteAreAudited: spec F5 and J1. Every token made or
// deleted leaves an event on its owner, and a project token one on each of
// its projects, with who did it and from where; a failed deletion (another
// user's token) leaves none and deletes nothing.
func TestCreateAndDeleteAreAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		exp := f.clock.Now().Add(48 * time.Hour)
		raw, tok := f.create(t, f.alice, "ci", []string{"a", "b"}, &exp)
		_, whole := f.create(t, f.alice, "laptop", nil, nil)

		added := f.events(t, audit.APITokenAdded)
		if len(added) != 2 {
			t.Fatalf("%d %s events, want 2", len(added), audit.APITokenAdded)
		}
		e := added[0]
		if e.userID != f.alice || e.actorID != f.alice || e.actor != "alice" || e.ip != "192.0.2.9" || e.agent != "test browser" ||
			e.add["token_id"] != tok.ID || e.add["description"] != "ci" || e.add["scope"] != "projects: a, b" ||
			e.add["expires_at"] != exp.UTC().Truncate(time.Second).Format(time.RFC3339) {
			t.Errorf("added event = %+v", e)
		}
		if added[1].add["scope"] != "user" || added[1].add["expires_at"] != nil {
			t.Errorf("whole-account added event = %+v", added[1])
		}
		projAdded := f.events(t, audit.ProjectAPITokenAdded)
		if len(projAdded) != 2 || projAdded[0].projectID != f.a || projAdded[1].projectID != f.b ||
			projAdded[0].userID != 0 || projAdded[0].actor != "alice" || projAdded[0].add["owner"] != "alice" {
			t.Errorf("project added events = %+v, want one on a and one on b, on no user", projAdded)
		}

		// Bob cannot delete alice's token by its id (spec F5, TOB-PYPI26-11).
		wantKind(t, deleteErr(f.s.Delete(ctx, f.bob, tok.ID, testOrigin)), derrors.NotFound, "API token not found.")
		if n := len(f.events(t, audit.APITokenRemoved)); n != 0 {
			t.Errorf("a refused deletion recorded %d events", n)
		}
		if _, err := f.s.Authenticate(ctx, raw); err != nil {
			t.Fatalf("alice's token after bob's attempt: %v", err)
		}

		cli := Origin{CommandLine: true}
		if _, err := f.s.Delete(ctx, f.alice, tok.ID, cli); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Delete(ctx, f.alice, whole.ID, testOrigin); err != nil {
			t.Fatal(err)
		}
		removed := f.events(t, audit.APITokenRemoved)
		if len(removed) != 2 || removed[0].userID != f.alice || removed[0].actorID != 0 || removed[0].actor != "command line" ||
			removed[0].add["token_id"] != tok.ID || removed[0].add["description"] != "ci" ||
			removed[1].actor != "alice" || removed[1].ip != "192.0.2.9" {
			t.Errorf("removed events = %+v", removed)
		}
		projRemoved := f.events(t, audit.ProjectAPITokenRemoved)
		if len(projRemoved) != 2 || projRemoved[0].projectID != f.a || projRemoved[1].projectID != f.b {
			t.Errorf("project removed events = %+v, want one on a and one on b (the whole-account token has none)", projRemoved)
		}
	})
}

// deleteErr drops Delete's token, for wantKind.
func deleteErr(_ Token, err error) error { return err }
