package org

// Security policies, set by an organization's owners for its members on its
// projects, or by an administrator for everyone. The gate calls the Check
// methods: web's project and organization guards and the management gate,
// and the upload path. They read the policies on every call (a primary-key
// lookup or two), so a change holds at the next request on every instance.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// The site_settings rows of the site-wide policies.
const (
	sitePhishingResistant = "policy_phishing_resistant"
	siteTrustedOnly       = "policy_trusted_publishing_only"
	siteConfirmLogins     = "policy_confirm_every_login"
)

// SetPolicies replaces the organization's policies; each one that changes
// is its own event, and the owners are told.
func (s *Service) SetPolicies(ctx context.Context, a Actor, orgID int64, p Policies) (err error) {
	defer derrors.Wrap(&err, "org.SetPolicies(%d)", orgID)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		if p.PhishingResistant && !o.Policies.PhishingResistant {
			if err := requireOwnKey(ctx, tx, a, "manage "+o.Name); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE organizations SET require_phishing_resistant = $2, trusted_publishing_only = $3, confirm_every_login = $4,
			require_attestations = $5 WHERE id = $1`, o.ID, p.PhishingResistant, p.TrustedOnly, p.ConfirmLogins, p.RequireAttestations); err != nil {
			return err
		}
		now := s.clock()
		for _, c := range policyChanges(o.Policies, p, false) {
			if err := s.record(ctx, tx, now, a, o, change{tag: c}); err != nil {
				return err
			}
		}
		return nil
	})
}

// policyChanges lists the event tags of the policies that differ.
func policyChanges(old, new Policies, site bool) []string {
	pick := func(on bool, orgOn, orgOff, siteOn, siteOff string) string {
		switch {
		case site && on:
			return siteOn
		case site:
			return siteOff
		case on:
			return orgOn
		}
		return orgOff
	}
	var out []string
	if old.PhishingResistant != new.PhishingResistant {
		out = append(out, pick(new.PhishingResistant, audit.OrgPolicyPhishingResistantOn, audit.OrgPolicyPhishingResistantOff,
			audit.SitePolicyPhishingResistantOn, audit.SitePolicyPhishingResistantNo))
	}
	if old.TrustedOnly != new.TrustedOnly {
		out = append(out, pick(new.TrustedOnly, audit.OrgPolicyTrustedOnlyOn, audit.OrgPolicyTrustedOnlyOff,
			audit.SitePolicyTrustedOnlyOn, audit.SitePolicyTrustedOnlyOff))
	}
	if !site && old.RequireAttestations != new.RequireAttestations {
		out = append(out, pick(new.RequireAttestations, audit.OrgPolicyAttestationsOn, audit.OrgPolicyAttestationsOff, "", ""))
	}
	if old.ConfirmLogins != new.ConfirmLogins {
		out = append(out, pick(new.ConfirmLogins, audit.OrgPolicyConfirmLoginsOn, audit.OrgPolicyConfirmLoginsOff,
			audit.SitePolicyConfirmLoginsOn, audit.SitePolicyConfirmLoginsOff))
	}
	return out
}

// SitePolicies returns the site-wide policies.
func (s *Service) SitePolicies(ctx context.Context) (Policies, error) {
	return sitePolicies(ctx, s.db)
}

func sitePolicies(ctx context.Context, q querier) (Policies, error) {
	var p Policies
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM site_settings WHERE name IN ($1, $2, $3)`,
		sitePhishingResistant, siteTrustedOnly, siteConfirmLogins)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return p, err
		}
		on := value == "on"
		switch name {
		case sitePhishingResistant:
			p.PhishingResistant = on
		case siteTrustedOnly:
			p.TrustedOnly = on
		case siteConfirmLogins:
			p.ConfirmLogins = on
		}
	}
	return p, rows.Err()
}

// SetSitePolicies replaces the site-wide policies; administrators only.
func (s *Service) SetSitePolicies(ctx context.Context, admin Actor, p Policies) (err error) {
	defer derrors.Wrap(&err, "org.SetSitePolicies")
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var isAdmin, disabled bool
		err := tx.QueryRowContext(ctx, `SELECT is_admin, disabled FROM users WHERE id = $1`, admin.UserID).Scan(&isAdmin, &disabled)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (!isAdmin || disabled)) {
			return derrors.New(derrors.Forbidden, "Only administrators can do this.")
		}
		if err != nil {
			return err
		}
		old, err := sitePolicies(ctx, tx)
		if err != nil {
			return err
		}
		if p.PhishingResistant && !old.PhishingResistant {
			if err := requireOwnKey(ctx, tx, admin, "administer this index"); err != nil {
				return err
			}
		}
		now := s.clock()
		onOff := func(b bool) string {
			if b {
				return "on"
			}
			return "off"
		}
		for name, v := range map[string]bool{sitePhishingResistant: p.PhishingResistant, siteTrustedOnly: p.TrustedOnly, siteConfirmLogins: p.ConfirmLogins} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO site_settings (name, value, updated_at) VALUES ($1, $2, $3)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, onOff(v), now); err != nil {
				return err
			}
		}
		for _, tag := range policyChanges(old, p, true) {
			if err := audit.Record(ctx, tx, now, audit.Event{Tag: tag, ActorID: admin.UserID, Actor: admin.Username,
				IP: admin.Client.IP, UserAgent: admin.Client.UserAgent}); err != nil {
				return err
			}
		}
		return nil
	})
}

// requireOwnKey refuses to turn the security-key policy on for someone who
// has no key: they would lock themselves out of what they just changed.
func requireOwnKey(ctx context.Context, q querier, a Actor, what string) error {
	ok, err := hasSecurityKey(ctx, q, a.UserID)
	if err != nil || ok {
		return err
	}
	return derrors.InField(derrors.Invalid, "phishing_resistant", "Add a security key or passkey to your own account first: with this policy on, you could not %s without one.", what)
}

// addKeyPage is where a member adds a security key or passkey.
func (s *Service) addKeyPage() string { return s.baseURL + "/manage/account/two-factor/" }

func hasSecurityKey(ctx context.Context, q querier, userID int64) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, userID).Scan(&n)
	return n > 0, err
}

// errNeedKey is the refusal of a member without a security key; whose
// names the organization, or "" for the site.
func (s *Service) errNeedKey(whose string) error {
	if whose == "" {
		return derrors.New(derrors.Forbidden, "This index requires a security key or passkey for management actions and uploads, and your account has none. Add one at %s, then try again.", s.addKeyPage())
	}
	return derrors.New(derrors.Forbidden, "The organization %s requires its members to use a security key or passkey for this, and your account has none. Add one at %s, then try again.", whose, s.addKeyPage())
}

// CheckManage applies the site-wide policies to any management action by
// the user: nil, or the refusal to show.
func (s *Service) CheckManage(ctx context.Context, userID int64) error {
	site, err := sitePolicies(ctx, s.db)
	if err != nil || !site.PhishingResistant {
		return err
	}
	return s.requireKey(ctx, userID, "")
}

func (s *Service) requireKey(ctx context.Context, userID int64, whose string) error {
	ok, err := hasSecurityKey(ctx, s.db, userID)
	if err != nil || ok {
		return err
	}
	return s.errNeedKey(whose)
}

// CheckOrganization applies the organization's policies (and the site's)
// to a management action by the user on the organization's own pages.
func (s *Service) CheckOrganization(ctx context.Context, userID int64, o *Organization) error {
	if o.Policies.PhishingResistant {
		return s.requireKey(ctx, userID, o.Name)
	}
	return s.CheckManage(ctx, userID)
}

// CheckProject applies the policies that hold on a project (its
// organization's, the site's) to an action by the user: a management action
// on its pages, or an upload.
func (s *Service) CheckProject(ctx context.Context, userID, projectID int64) error {
	o, err := orgOfProject(ctx, s.db, projectID)
	if err != nil {
		return err
	}
	if o != nil {
		return s.CheckOrganization(ctx, userID, o)
	}
	return s.CheckManage(ctx, userID)
}

// RefuseLongLived returns nil when a long-lived (user) API token may upload
// to the project under the policies, and otherwise the refusal.
func (s *Service) RefuseLongLived(ctx context.Context, projectID int64, projectName string) error {
	site, o, err := s.policiesOn(ctx, projectID)
	if err != nil {
		return err
	}
	return s.refuseLongLived(ctx, site, o, projectID, projectName)
}

// CheckUpload applies every policy that holds on an upload with a user's
// long-lived token to the project (projectID 0: a new one): trusted
// publishing only, then a security key on the account. It reads the site's
// and the organization's policies once for both.
func (s *Service) CheckUpload(ctx context.Context, userID, projectID int64, projectName string) error {
	site, o, err := s.policiesOn(ctx, projectID)
	if err != nil {
		return err
	}
	if err := s.refuseLongLived(ctx, site, o, projectID, projectName); err != nil {
		return err
	}
	switch {
	case o != nil && o.Policies.PhishingResistant:
		return s.requireKey(ctx, userID, o.Name)
	case site.PhishingResistant:
		return s.requireKey(ctx, userID, "")
	}
	return nil
}

// policiesOn reads the site's policies and the project's organization (nil
// for none, or for projectID 0).
func (s *Service) policiesOn(ctx context.Context, projectID int64) (Policies, *Organization, error) {
	site, err := sitePolicies(ctx, s.db)
	if err != nil || projectID == 0 {
		return site, nil, err
	}
	o, err := orgOfProject(ctx, s.db, projectID)
	return site, o, err
}

func (s *Service) refuseLongLived(ctx context.Context, site Policies, o *Organization, projectID int64, projectName string) error {
	if !site.TrustedOnly && (o == nil || !o.Policies.TrustedOnly) {
		return nil
	}
	help := s.baseURL + "/help/#trusted-publishers"
	// Name the publishers to use, or say to add one.
	use := "Add a trusted publisher to the project and publish from CI."
	if s.publishers != nil && projectID != 0 {
		names, err := s.publishers(ctx, projectID)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			use = "Publish from " + strings.Join(names, " or ") + "."
		}
	}
	if site.TrustedOnly {
		return derrors.New(derrors.Forbidden, "This index accepts uploads only from trusted publishers, not with API tokens. %s See %s for more information.", use, help)
	}
	return derrors.New(derrors.Forbidden, "Project '%s' belongs to the organization %s, which accepts uploads only from trusted publishers, not with API tokens. %s See %s for more information.", projectName, o.Name, use, help)
}

// ConfirmEveryLogin reports whether every login of the user from a device
// their account does not know must wait for the emailed confirmation: the
// site says so, or an organization they belong to does.
func (s *Service) ConfirmEveryLogin(ctx context.Context, userID int64) (bool, error) {
	site, err := sitePolicies(ctx, s.db)
	if err != nil || site.ConfirmLogins {
		return site.ConfirmLogins, err
	}
	var n int
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM organization_roles r JOIN organizations o ON o.id = r.organization_id
		WHERE r.user_id = $1 AND o.confirm_every_login AND o.status = 'approved'`, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("organization login policy of user %d: %w", userID, err)
	}
	return n > 0, nil
}
