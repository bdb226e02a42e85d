package org

import (
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

// Only owners register the organization's issuers; each change is in the
// history and emailed to the owners; the issuer goes with the organization.
func TestOrganizationIssuers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		tokens, err := token.NewService(d, token.Options{Secret: []byte(strings.Repeat("org-test-secret-", 4)), Location: "gatehouse.example", HelpURL: base + "/help/", Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		tp, err := trustedpub.New(trustedpub.Options{DB: d, Tokens: tokens, Projects: f.projects, Audience: "gatehouse.example",
			BaseURL: base, SiteName: "Gatehouse", Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		f.s.issuers = tp
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleManager)
		in := trustedpub.CustomIssuerInput{Name: "acme-gitlab", URL: "https://gitlab.acme.example", Claims: "project_path"}
		before := f.snapshot()
		_, err = f.s.AddIssuer(f.ctx, f.actor("bob"), o.ID, in)
		f.refused(err, derrors.Forbidden, "Only an owner", before)
		if n := count(t, d, `SELECT count(*) FROM oidc_issuers`); n != 0 {
			t.Fatalf("%d issuers after the refusal", n)
		}
		ci, err := f.s.AddIssuer(f.ctx, f.actor("alice"), o.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if ci.OrganizationID != o.ID {
			t.Fatalf("issuer %+v", ci)
		}
		if got := f.lastMail("alice"); !strings.Contains(got, "Trusted publishing issuer acme-gitlab (https://gitlab.acme.example) added by alice") {
			t.Errorf("owner's email: %s", got)
		}
		is, err := f.s.OrganizationIssuers(f.ctx, o.ID)
		if err != nil || len(is) != 1 {
			t.Fatalf("issuers %+v %v", is, err)
		}
		if _, err := f.s.RemoveIssuer(f.ctx, f.actor("alice"), o.ID, ci.ID); err != nil {
			t.Fatal(err)
		}
		if n := count(t, d, `SELECT count(*) FROM events WHERE organization_id = $1 AND tag LIKE 'organization:oidc:issuer-%'`, o.ID); n != 2 {
			t.Errorf("%d issuer events, want 2", n)
		}
		// Deleting the organization deletes its issuers.
		if _, err := f.s.AddIssuer(f.ctx, f.actor("alice"), o.ID, in); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Delete(f.ctx, f.actor("alice"), o.ID, "Acme"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, d, `SELECT count(*) FROM oidc_issuers`); n != 0 {
			t.Errorf("%d issuers outlived their organization", n)
		}
	})
}
