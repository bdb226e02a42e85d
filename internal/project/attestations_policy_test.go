package project

import (
	"context"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// An organization's "require attestations" holds on its projects, as the
// project's own setting does; a project outside it is not held.
func TestRequireAttestationsFromTheOrganization(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		ctx := context.Background()
		other := f.addProject("Other-Pkg", "alice")
		var orgID int64
		if err := d.QueryRow(`INSERT INTO organizations (name, normalized_name, status, requester, created_at) VALUES ('Acme', 'acme', 'approved', 'alice', $1) RETURNING id`,
			collabT0).Scan(&orgID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(`INSERT INTO organization_projects (project_id, organization_id, created_at) VALUES ($1, $2, $3)`, f.project.ID, orgID, collabT0); err != nil {
			t.Fatal(err)
		}
		check := func(id int64, want bool) {
			t.Helper()
			got, err := requireAttestations(ctx, d, id)
			if err != nil || got != want {
				t.Errorf("project %d: require attestations = %v (%v), want %v", id, got, err, want)
			}
		}
		check(f.project.ID, false)
		if _, err := d.Exec(`UPDATE organizations SET require_attestations = TRUE WHERE id = $1`, orgID); err != nil {
			t.Fatal(err)
		}
		check(f.project.ID, true)
		check(other.ID, false)
		if _, err := d.Exec(`UPDATE projects SET require_attestations = TRUE WHERE id = $1`, other.ID); err != nil {
			t.Fatal(err)
		}
		check(other.ID, true)
	})
}
