package org

// Invitations: people join an organization only by invitation, as they
// join a project (internal/project's invitations, whose pattern this
// follows: a 32-byte emailed token of which only the SHA-256 is stored, the
// row deleted when answered, 72 hours to answer). One rule more: an
// invitation is accepted only while its inviter may still send it (PyPI's
// 2026 audit found invitations that outlived the inviter's role).

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// InvitationLifetime is how long an invitation's links work.
const (
	InvitationLifetime  = project.InvitationLifetime
	invitationExpiresIn = "72 hours"
)

// Invitation is a pending (or lapsed) invitation to join an organization.
type Invitation struct {
	ID             int64
	OrgID          int64
	Organization   string
	OrgNormalized  string
	UserID         int64
	Username       string
	Role           string
	InviterID      int64
	Inviter        string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	organizationOK bool // the organization is approved
}

// Expired reports whether the invitation's links have stopped working.
func (i *Invitation) Expired(now time.Time) bool { return !now.Before(i.ExpiresAt) }

const invitationSelect = `SELECT i.id, i.organization_id, o.name, o.normalized_name, i.user_id, u.username, i.role, i.inviter_id, i.inviter,
	i.created_at, i.expires_at, o.status = 'approved'
	FROM organization_invitations i JOIN organizations o ON o.id = i.organization_id JOIN users u ON u.id = i.user_id`

func scanInvitation(row interface{ Scan(...any) error }) (*Invitation, error) {
	var i Invitation
	var inviter sql.NullInt64
	if err := row.Scan(&i.ID, &i.OrgID, &i.Organization, &i.OrgNormalized, &i.UserID, &i.Username, &i.Role, &inviter, &i.Inviter,
		&i.CreatedAt, &i.ExpiresAt, &i.organizationOK); err != nil {
		return nil, err
	}
	i.InviterID, i.CreatedAt, i.ExpiresAt = inviter.Int64, i.CreatedAt.UTC(), i.ExpiresAt.UTC()
	return &i, nil
}

func listInvitations(ctx context.Context, q querier, where string, arg any) ([]Invitation, error) {
	rows, err := q.QueryContext(ctx, invitationSelect+` WHERE `+where+` ORDER BY i.id DESC`, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		i, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *i)
	}
	return out, rows.Err()
}

// Invitations returns the organization's invitations, newest first, lapsed
// ones included.
func (s *Service) Invitations(ctx context.Context, orgID int64) ([]Invitation, error) {
	return listInvitations(ctx, s.db, `i.organization_id = $1`, orgID)
}

// PendingInvitations returns the invitations waiting for the user's answer.
func (s *Service) PendingInvitations(ctx context.Context, userID int64) ([]Invitation, error) {
	all, err := listInvitations(ctx, s.db, `i.user_id = $1`, userID)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	var out []Invitation
	for _, i := range all {
		if !i.Expired(now) && i.organizationOK {
			out = append(out, i)
		}
	}
	return out, nil
}

// Invite invites the user named username to join with the role, and emails
// them the links to answer. Only owners invite, to any role: the role is
// read again here, whatever the page's guard said.
func (s *Service) Invite(ctx context.Context, a Actor, orgID int64, username, roleName string) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "org.Invite(%d, %q)", orgID, username)
	username = strings.TrimSpace(username)
	if username == "" {
		return nil, derrors.InField(derrors.Invalid, "username", "Enter the username of the person to invite.")
	}
	want, err := parseRole(roleName)
	if err != nil {
		return nil, err
	}
	if s.links.VerifyOrganizationRole == "" {
		return nil, errors.New("no invitation link configured (Options.Links.VerifyOrganizationRole)")
	}
	now := s.clock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		var (
			uid      int64
			name     string
			disabled bool
		)
		err = tx.QueryRowContext(ctx, `SELECT id, username, disabled FROM users WHERE username_key = $1`, account.UsernameKey(username)).Scan(&uid, &name, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.InField(derrors.Invalid, "username", "There is no user named %q. Check the spelling: it is the name they log in with.", username)
		}
		if err != nil {
			return err
		}
		if disabled {
			return derrors.InField(derrors.Invalid, "username", "The account %s is disabled and cannot be invited.", name)
		}
		if r, err := roleIn(ctx, tx, o.ID, uid); err != nil {
			return err
		} else if r != "" {
			return derrors.InField(derrors.Conflict, "username", "%s is already a member of %s (%s). To give them another role, change it in the list of members.", name, o.Name, r)
		}
		var verified bool
		err = tx.QueryRowContext(ctx, `SELECT verified FROM user_emails WHERE user_id = $1 AND is_primary`, uid).Scan(&verified)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !verified {
			return derrors.InField(derrors.Invalid, "username", "%s does not have a verified primary email address and cannot be invited yet. Ask them to verify it first.", name)
		}
		old, err := scanInvitation(tx.QueryRowContext(ctx, invitationSelect+` WHERE i.organization_id = $1 AND i.user_id = $2`, o.ID, uid))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case !old.Expired(now):
			return derrors.InField(derrors.Conflict, "username", "%s already has a pending invitation to %s, which expires %s. Revoke it first to send a new one.",
				name, o.Name, old.ExpiresAt.Format("2006-01-02 15:04 UTC"))
		default:
			if _, err := tx.ExecContext(ctx, `DELETE FROM organization_invitations WHERE id = $1`, old.ID); err != nil {
				return err
			}
		}
		raw, hash, err := project.NewInvitationToken(s.rand)
		if err != nil {
			return err
		}
		inv = &Invitation{OrgID: o.ID, Organization: o.Name, OrgNormalized: o.NormalizedName, UserID: uid, Username: name, Role: want,
			InviterID: a.UserID, Inviter: a.Username, CreatedAt: now, ExpiresAt: now.Add(InvitationLifetime), organizationOK: true}
		err = tx.QueryRowContext(ctx, `INSERT INTO organization_invitations (organization_id, user_id, role, token_hash, inviter_id, inviter, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, o.ID, uid, want, hash, a.UserID, a.Username, now, inv.ExpiresAt).Scan(&inv.ID)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, "%s was invited to %s a moment ago. Reload the page.", name, o.Name)
		}
		if err != nil {
			return err
		}
		add := map[string]any{"role_name": want, "target_user": name}
		if err := s.record(ctx, tx, now, a, o, change{tag: audit.OrgRoleInvite, add: add}); err != nil {
			return err
		}
		page := s.links.VerifyOrganizationRole
		return account.SendNotice(ctx, tx, s.notifier, now, a.Client, account.Notice{
			Event: audit.Event{UserID: uid, Tag: audit.AccountOrgRoleInvite, ActorID: a.UserID, Actor: a.Username,
				Additional: map[string]any{"organization_name": o.Name, "role_name": want}},
			Template: mail.TemplateVerifyOrganizationRole,
			Data: map[string]any{"Username": name, "Inviter": a.Username, "Organization": o.Name, "Role": want,
				"AcceptLink": s.links.With(page, raw), "DeclineLink": s.links.With(page, raw) + "&decline=1", "ExpiresIn": invitationExpiresIn}})
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

func errInvitationGone() error {
	return derrors.New(derrors.Gone, "This invitation is no longer valid: it was accepted, declined or withdrawn, or a newer one replaced it. Ask an owner of the organization to invite you again if you still want to join.")
}

func (s *Service) invitationByToken(ctx context.Context, q querier, userID int64, raw string) (*Invitation, error) {
	if raw == "" {
		return nil, derrors.New(derrors.Invalid, "This address lacks its invitation token. Open the link from the invitation email again, or answer from your list of invitations.")
	}
	if len(raw) > 100 {
		return nil, errInvitationGone()
	}
	inv, err := scanInvitation(q.QueryRowContext(ctx, invitationSelect+` WHERE i.token_hash = $1`, project.HashInvitationToken(raw)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errInvitationGone()
	}
	if err != nil {
		return nil, err
	}
	return inv, s.checkAnswerable(inv, userID)
}

func (s *Service) checkAnswerable(inv *Invitation, userID int64) error {
	if inv.UserID != userID {
		return derrors.New(derrors.Forbidden, "This invitation is for another account. Log out, then log in as the invited user to answer it.")
	}
	if !inv.organizationOK {
		return errInvitationGone()
	}
	if inv.Expired(s.clock()) {
		return derrors.New(derrors.Gone, "This invitation to %s expired on %s. Ask an owner of %s to invite you again.",
			inv.Organization, inv.ExpiresAt.Format("2006-01-02 15:04 UTC"), inv.Organization)
	}
	return nil
}

// InvitationByToken returns the invitation an emailed link opens, for the
// page that asks the signed-in user to accept or decline it.
func (s *Service) InvitationByToken(ctx context.Context, userID int64, raw string) (*Invitation, error) {
	return s.invitationByToken(ctx, s.db, userID, raw)
}

// AnswerInvitation accepts or declines the invitation of an emailed token.
func (s *Service) AnswerInvitation(ctx context.Context, a Actor, raw string, accept bool) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "org.AnswerInvitation(user %d)", a.UserID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if inv, err = s.invitationByToken(ctx, tx, a.UserID, raw); err != nil {
			return err
		}
		return s.answer(ctx, tx, a, inv, accept)
	})
	return inv, err
}

// AnswerInvitationByID accepts or declines one of the actor's own pending
// invitations, from their list.
func (s *Service) AnswerInvitationByID(ctx context.Context, a Actor, id int64, accept bool) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "org.AnswerInvitationByID(%d)", id)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		inv, err = scanInvitation(tx.QueryRowContext(ctx, invitationSelect+` WHERE i.id = $1 AND i.user_id = $2`, id, a.UserID))
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "You have no such invitation: it may have been answered or withdrawn already. Reload the page.")
		}
		if err != nil {
			return err
		}
		if err := s.checkAnswerable(inv, a.UserID); err != nil {
			return err
		}
		return s.answer(ctx, tx, a, inv, accept)
	})
	return inv, err
}

func (s *Service) answer(ctx context.Context, tx *sql.Tx, a Actor, inv *Invitation, accept bool) error {
	now := s.clock()
	o, err := orgByID(ctx, tx, inv.OrgID)
	if err != nil {
		return err
	}
	// Deleting the row makes the link single-use: of two answers at once,
	// only one deletes it.
	r, err := tx.ExecContext(ctx, `DELETE FROM organization_invitations WHERE id = $1`, inv.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return errInvitationGone()
	}
	add := map[string]any{"role_name": inv.Role, "target_user": inv.Username, "invited_by": inv.Inviter}
	if !accept {
		return s.record(ctx, tx, now, a, o, change{tag: audit.OrgRoleDeclineInvite, add: add, concerned: inv.UserID, accountTag: audit.AccountOrgRoleDecl})
	}
	// The inviter must still be an owner: an invitation does not outlive
	// the right to send it.
	if r, err := roleIn(ctx, tx, o.ID, inv.InviterID); err != nil {
		return err
	} else if inv.InviterID == 0 || r != RoleOwner {
		return derrors.New(derrors.Gone, "This invitation can no longer be accepted: %s, who sent it, is no longer an owner of %s. Ask a current owner to invite you again.",
			inv.Inviter, o.Name)
	}
	if r, err := roleIn(ctx, tx, o.ID, inv.UserID); err != nil {
		return err
	} else if r != "" {
		return derrors.New(derrors.Conflict, "You are already a member of %s (%s).", o.Name, r)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO organization_roles (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		o.ID, inv.UserID, inv.Role, now); err != nil {
		return err
	}
	return s.record(ctx, tx, now, a, o, change{tag: audit.OrgRoleAdd, add: add, concerned: inv.UserID, accountTag: audit.AccountOrgRoleAdd})
}

// RevokeInvitation withdraws an invitation; its links stop working at once.
func (s *Service) RevokeInvitation(ctx context.Context, a Actor, orgID, invitationID int64) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "org.RevokeInvitation(%d, %d)", orgID, invitationID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		o, _, err := lockOrg(ctx, tx, orgID, a, RoleOwner)
		if err != nil {
			return err
		}
		inv, err = scanInvitation(tx.QueryRowContext(ctx, invitationSelect+` WHERE i.id = $1 AND i.organization_id = $2`, invitationID, o.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "Could not find this invitation to %s: it may have been answered or revoked already. Reload the page.", o.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM organization_invitations WHERE id = $1`, inv.ID); err != nil {
			return err
		}
		return s.record(ctx, tx, s.clock(), a, o, change{tag: audit.OrgRoleRevokeInvite,
			add: map[string]any{"role_name": inv.Role, "target_user": inv.Username}, concerned: inv.UserID, accountTag: audit.AccountOrgRoleRevoke})
	})
	return inv, err
}
