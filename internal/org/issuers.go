package org

// An organization's own trusted-publishing issuers: owners register a
// custom OIDC issuer (a self-hosted GitLab, Gitea or Forgejo, any CI) that
// only the organization's projects' publishers may use, as PyPI's
// organizations can since 2025. trustedpub keeps the issuers and decides
// what their tokens may do; this file checks the owner, records the change
// and tells the owners, in the same transaction.

import (
	"context"
	"database/sql"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

// Issuers is trusted publishing's registry of custom issuers
// (trustedpub.Service).
type Issuers interface {
	AddOrganizationIssuerTx(ctx context.Context, tx *sql.Tx, actor trustedpub.Actor, orgID int64, in trustedpub.CustomIssuerInput) (*trustedpub.CustomIssuer, error)
	RemoveOrganizationIssuerTx(ctx context.Context, tx *sql.Tx, orgID, id int64) (*trustedpub.CustomIssuer, error)
	OrganizationIssuers(ctx context.Context, orgID int64) ([]trustedpub.CustomIssuer, error)
}

func (s *Service) issuerRegistry() (Issuers, error) {
	if s.issuers == nil {
		return nil, derrors.New(derrors.Forbidden, "Trusted publishing is turned off on this index.")
	}
	return s.issuers, nil
}

// OrganizationIssuers lists the organization's own issuers.
func (s *Service) OrganizationIssuers(ctx context.Context, orgID int64) ([]trustedpub.CustomIssuer, error) {
	if s.issuers == nil {
		return nil, nil
	}
	return s.issuers.OrganizationIssuers(ctx, orgID)
}

// AddIssuer registers a custom issuer for the organization's projects.
func (s *Service) AddIssuer(ctx context.Context, a Actor, orgID int64, in trustedpub.CustomIssuerInput) (ci *trustedpub.CustomIssuer, err error) {
	defer derrors.Wrap(&err, "org.AddIssuer(%d, %q)", orgID, in.Name)
	reg, err := s.issuerRegistry()
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		if ci, err = reg.AddOrganizationIssuerTx(ctx, tx, trustedpub.Actor(a), o.ID, in); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.OrgIssuerAdded,
			add: map[string]any{"issuer": ci.URL, "name": ci.Name, "claims": ci.Claims}})
	})
	return ci, err
}

// RemoveIssuer deletes one of the organization's issuers, with every
// publisher that used it.
func (s *Service) RemoveIssuer(ctx context.Context, a Actor, orgID, id int64) (ci *trustedpub.CustomIssuer, err error) {
	defer derrors.Wrap(&err, "org.RemoveIssuer(%d, %d)", orgID, id)
	reg, err := s.issuerRegistry()
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		if ci, err = reg.RemoveOrganizationIssuerTx(ctx, tx, o.ID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.OrgIssuerRemoved,
			add: map[string]any{"issuer": ci.URL, "name": ci.Name}})
	})
	return ci, err
}
