// Package org is organizations: a named group of people (Owners, Managers,
// Members) that owns projects, gives its teams roles on them, and holds
// security policies stronger than PyPI's (security keys only, trusted
// publishing only, email confirmation of every login from a new device).
//
// Access is not decided here but in the effective_roles view (migration
// 00008), which every access check already reads: an organization's Owners
// own its projects, its Managers maintain them, and a team's members hold
// the team's role on the organization's projects it is given. So leaving a
// team or the organization, or a project moving out, ends the access at the
// next request, for the web and for API tokens alike. The policies are
// enforced by the gate (web's guards and the upload path) through the
// Check methods of policy.go.
//
// Every public method that changes something is one transaction, which
// re-reads the actor's role inside it (a role lost after the page's guard
// ran cannot act), records its events and queues its emails.
package org

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// The organization roles, most powerful first. Owners can do everything;
// Managers manage teams and projects (and maintain every project); Members
// have what their teams grant.
const (
	RoleOwner   = "Owner"
	RoleManager = "Manager"
	RoleMember  = "Member"
)

// Roles lists the roles, most powerful first.
var Roles = []string{RoleOwner, RoleManager, RoleMember}

// The statuses of an organization.
const (
	StatusPending  = "pending"  // requested, waiting for an administrator
	StatusApproved = "approved" // in use
)

// Actor is who makes a change.
type Actor = project.Actor

// Policies are the security policies an organization (or the site) sets
// for its members.
type Policies struct {
	// PhishingResistant: members must have a security key or passkey to
	// manage or upload; TOTP alone still signs in and browses.
	PhishingResistant bool
	// TrustedOnly: uploads with long-lived API tokens are refused; only
	// trusted publishers publish.
	TrustedOnly bool
	// ConfirmLogins: every login from a device the account does not know
	// waits for the emailed confirmation, security keys included.
	ConfirmLogins bool
	// RequireAttestations (organizations only): uploads to the
	// organization's projects need valid PEP 740 attestations.
	RequireAttestations bool
}

// Any reports whether any policy is on.
func (p Policies) Any() bool {
	return p.PhishingResistant || p.TrustedOnly || p.ConfirmLogins || p.RequireAttestations
}

// Organization is one organization.
type Organization struct {
	ID             int64
	Name           string
	NormalizedName string
	Description    string
	Status         string
	Requester      string
	RequesterID    int64
	CreatedAt      time.Time
	Policies       Policies
}

// Approved reports whether the organization is in use.
func (o *Organization) Approved() bool { return o.Status == StatusApproved }

// Membership is a user's standing in an organization, for the gate.
type Membership struct {
	Org  *Organization
	Role string // RoleOwner, RoleManager, RoleMember, or "" for none
}

// Service manages organizations. Create it with New.
type Service struct {
	db           *db.DB
	projects     *project.Service
	notifier     account.Notifier
	links        account.Links
	baseURL      string
	needApproval bool
	now          func() time.Time
	rand         io.Reader
	log          *slog.Logger
	publishers   func(ctx context.Context, projectID int64) ([]string, error)
	issuers      Issuers
}

// Options are a Service's dependencies.
type Options struct {
	DB       *db.DB
	Projects *project.Service
	// Notifier queues the emails (nil: events only).
	Notifier account.Notifier
	// Links: invitations use VerifyOrganizationRole.
	Links   account.Links
	BaseURL string // for links in emails and messages, without trailing slash
	// NeedApproval: a request waits for an administrator
	// (--organization-approval=required); false creates the organization at
	// once.
	NeedApproval bool
	Now          func() time.Time // default time.Now
	Rand         io.Reader        // invitation tokens; default crypto/rand
	Log          *slog.Logger
	// PublisherNames, if set, names a project's trusted publishers, for the
	// refusal of a long-lived token under "trusted publishing only"
	// (trustedpub.Service.PublisherNames).
	PublisherNames func(ctx context.Context, projectID int64) ([]string, error)
	// Issuers keeps the organizations' own trusted-publishing issuers
	// (trustedpub.Service); nil: organizations cannot register any.
	Issuers Issuers
}

// New returns a Service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: o.DB, projects: o.Projects, notifier: o.Notifier, links: o.Links, baseURL: o.BaseURL,
		needApproval: o.NeedApproval, now: o.Now, rand: o.Rand, log: o.Log, publishers: o.PublisherNames,
		issuers: o.Issuers}
}

// NeedApproval reports whether new organizations wait for an administrator.
func (s *Service) NeedApproval() bool { return s.needApproval }

// clock is the current time as stored: UTC at microsecond precision.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const orgColumns = `o.id, o.name, o.normalized_name, o.description, o.status, o.requester, o.requested_by, o.created_at,
	o.require_phishing_resistant, o.trusted_publishing_only, o.confirm_every_login, o.require_attestations`

func scanOrg(row interface{ Scan(...any) error }) (*Organization, error) {
	var o Organization
	var by sql.NullInt64
	err := row.Scan(&o.ID, &o.Name, &o.NormalizedName, &o.Description, &o.Status, &o.Requester, &by, &o.CreatedAt,
		&o.Policies.PhishingResistant, &o.Policies.TrustedOnly, &o.Policies.ConfirmLogins, &o.Policies.RequireAttestations)
	if err != nil {
		return nil, err
	}
	o.RequesterID, o.CreatedAt = by.Int64, o.CreatedAt.UTC()
	return &o, nil
}

func errNoOrg(name string) error {
	return derrors.New(derrors.NotFound, "There is no organization named %q.", name)
}

// Get returns the approved organization with this name (any spelling that
// normalizes to it). An old name of a renamed organization finds it too:
// renamed says so, so pages can redirect to the new name.
func (s *Service) Get(ctx context.Context, name string) (o *Organization, renamed bool, err error) {
	return getOrg(ctx, s.db, name)
}

func getOrg(ctx context.Context, q querier, name string) (*Organization, bool, error) {
	norm := pep.NormalizeName(name)
	o, err := scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.normalized_name = $1 AND o.status = 'approved'`, norm))
	if err == nil {
		return o, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	o, err = scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organization_old_names n JOIN organizations o ON o.id = n.organization_id
		WHERE n.normalized_name = $1 AND o.status = 'approved'`, norm))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, errNoOrg(name)
	}
	if err != nil {
		return nil, false, err
	}
	return o, true, nil
}

func orgByID(ctx context.Context, q querier, id int64) (*Organization, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "This organization no longer exists.")
	}
	return o, err
}

// MembershipOf returns the organization with this name and the user's role
// in it, for the gate. An old name is followed (Membership.Org has the new
// one).
func (s *Service) MembershipOf(ctx context.Context, name string, userID int64) (*Membership, error) {
	o, _, err := getOrg(ctx, s.db, name)
	if err != nil {
		return nil, err
	}
	r, err := roleIn(ctx, s.db, o.ID, userID)
	if err != nil {
		return nil, err
	}
	return &Membership{Org: o, Role: r}, nil
}

func roleIn(ctx context.Context, q querier, orgID, userID int64) (string, error) {
	var r string
	err := q.QueryRowContext(ctx, `SELECT role FROM organization_roles WHERE organization_id = $1 AND user_id = $2`, orgID, userID).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return r, err
}

// lockOrg reads an approved organization for a change, taking its row lock
// first (on SQLite every write transaction is exclusive anyway), and checks
// that the actor holds one of the allowed roles in it, read inside the
// transaction.
func lockOrg(ctx context.Context, tx *sql.Tx, orgID int64, a Actor, allowed ...string) (*Organization, string, error) {
	r, err := tx.ExecContext(ctx, `UPDATE organizations SET status = status WHERE id = $1 AND status = 'approved'`, orgID)
	if err != nil {
		return nil, "", err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nil, "", derrors.New(derrors.NotFound, "This organization no longer exists.")
	}
	o, err := orgByID(ctx, tx, orgID)
	if err != nil {
		return nil, "", err
	}
	role, err := roleIn(ctx, tx, o.ID, a.UserID)
	if err != nil {
		return nil, "", err
	}
	for _, want := range allowed {
		if role == want {
			return o, role, nil
		}
	}
	return nil, "", errNeedRole(o, allowed)
}

func errNeedRole(o *Organization, allowed []string) error {
	switch {
	case len(allowed) == 1:
		return derrors.New(derrors.Forbidden, "Only an owner of the organization %s can do this.", o.Name)
	case len(allowed) == 2:
		return derrors.New(derrors.Forbidden, "Only an owner or manager of the organization %s can do this.", o.Name)
	}
	return derrors.New(derrors.Forbidden, "You are not a member of the organization %s.", o.Name)
}

// YourOrganization is an organization the user belongs to, for their list.
type YourOrganization struct {
	Organization
	Role string
}

// OrganizationsOf returns the organizations the user is a member of, by
// name.
func (s *Service) OrganizationsOf(ctx context.Context, userID int64) (_ []YourOrganization, err error) {
	defer derrors.Wrap(&err, "org.OrganizationsOf(user %d)", userID)
	rows, err := s.db.QueryContext(ctx, `SELECT `+orgColumns+`, r.role FROM organization_roles r JOIN organizations o ON o.id = r.organization_id
		WHERE r.user_id = $1 ORDER BY o.normalized_name`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []YourOrganization
	for rows.Next() {
		var y YourOrganization
		var by sql.NullInt64
		err := rows.Scan(&y.ID, &y.Name, &y.NormalizedName, &y.Description, &y.Status, &y.Requester, &by, &y.CreatedAt,
			&y.Policies.PhishingResistant, &y.Policies.TrustedOnly, &y.Policies.ConfirmLogins, &y.Policies.RequireAttestations, &y.Role)
		if err != nil {
			return nil, err
		}
		y.RequesterID, y.CreatedAt = by.Int64, y.CreatedAt.UTC()
		out = append(out, y)
	}
	return out, rows.Err()
}

// OrganizationOf returns the organization a project belongs to, or nil.
func (s *Service) OrganizationOf(ctx context.Context, projectID int64) (*Organization, error) {
	return orgOfProject(ctx, s.db, projectID)
}

func orgOfProject(ctx context.Context, q querier, projectID int64) (*Organization, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organization_projects op JOIN organizations o ON o.id = op.organization_id
		WHERE op.project_id = $1`, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("organization of project %d: %w", projectID, err)
	}
	return o, nil
}
