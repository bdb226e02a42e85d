package trustedpub

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub/oidctest"
)

// An organization's own issuer serves its projects only: a publisher of it
// on another project, or as a pending publisher, is refused; its tokens
// mint for the organization's projects, and stop once the project moves
// out.
func TestOrganizationIssuer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		var orgID int64
		if err := d.QueryRow(`INSERT INTO organizations (name, normalized_name, status, requester, created_at) VALUES ('Acme', 'acme', 'approved', 'alice', $1) RETURNING id`,
			t0).Scan(&orgID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(`INSERT INTO organization_projects (project_id, organization_id, created_at) VALUES ($1, $2, $3)`, f.widget.ID, orgID, t0); err != nil {
			t.Fatal(err)
		}
		gitlab := oidctest.New(t)
		err := d.InTx(ctx, func(tx *sql.Tx) error {
			_, err := f.tp.AddOrganizationIssuerTx(ctx, tx, actor(f.alice, "alice"), orgID, CustomIssuerInput{Name: "acme-gitlab", URL: gitlab.URL, Claims: "project_path"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Listed for the organization's projects, not for others or as a
		// site issuer.
		other := f.createProject(t, "gadget", f.alice)
		for id, want := range map[int64]bool{f.widget.ID: true, other.ID: false} {
			is, err := f.tp.IssuersFor(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(is) == 1 && is[0].Name == "acme-gitlab"; got != want {
				t.Errorf("issuers for project %d: %+v, want the organization's: %v", id, is, want)
			}
		}
		if site, _ := f.tp.CustomIssuers(ctx); len(site) != 0 {
			t.Errorf("site issuers: %+v", site)
		}
		in := Input{Provider: KindCustom, Fields: map[string]string{"issuer": "acme-gitlab", "claim_project_path": "acme/widget"}}
		if _, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), other, in); err == nil || !strings.Contains(err.Error(), "belongs to an organization that gadget is not part of") {
			t.Fatalf("publisher of the organization's issuer on another project: %v", err)
		}
		if _, err := f.tp.AddPending(ctx, actor(f.alice, "alice"), "brand-new", in); err == nil || !strings.Contains(err.Error(), "serves its projects only") {
			t.Fatalf("pending publisher of the organization's issuer: %v", err)
		}
		if _, err := f.tp.AddToProject(ctx, actor(f.alice, "alice"), f.widget, in); err != nil {
			t.Fatal(err)
		}
		claims := f.ghClaims()
		claims["iss"], claims["project_path"], claims["jti"] = gitlab.URL, "acme/widget", "j1"
		f.mustMint(t, gitlab.Sign(claims))
		// Moved out: the publisher serves no project.
		if _, err := d.Exec(`DELETE FROM organization_projects WHERE project_id = $1`, f.widget.ID); err != nil {
			t.Fatal(err)
		}
		claims["jti"] = "j2"
		f.wantRefused(t, gitlab.Sign(claims), CodeInvalidPublisher, "not bound to any project")
	})
}
