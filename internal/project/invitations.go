package project

// Invitations: an owner invites a user by username; the user accepts or
// declines from the emailed links or from their list of invitations. The
// emailed token is 32 random bytes; only its SHA-256 is stored (the pattern
// of account's one-time links), and the invitation row is deleted when it
// is answered or revoked, so each link works once.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// InvitationLifetime is how long an invitation's links work. Warehouse
// signs them with its email-token age, a deployment setting; Gatehouse
// uses a fixed three days, long enough for a weekend, short enough that a
// forgotten link in a mailbox soon stops granting anything.
const (
	InvitationLifetime  = 72 * time.Hour
	invitationExpiresIn = "72 hours" // for the email text
)

// Invitation is a pending (or lapsed) invitation to a role on a project.
type Invitation struct {
	ID                int64
	ProjectID         int64
	Project           string // display name
	ProjectNormalized string
	UserID            int64 // the invitee
	Username          string
	Role              string
	Inviter           string
	CreatedAt         time.Time
	ExpiresAt         time.Time
}

// Expired reports whether the invitation's links have stopped working.
func (i *Invitation) Expired(now time.Time) bool { return !now.Before(i.ExpiresAt) }

const invitationSelect = `SELECT i.id, i.project_id, p.name, p.normalized_name, i.user_id, u.username, i.role, i.inviter,
	i.created_at, i.expires_at FROM role_invitations i JOIN projects p ON p.id = i.project_id JOIN users u ON u.id = i.user_id`

func scanInvitation(row interface{ Scan(...any) error }) (*Invitation, error) {
	var i Invitation
	if err := row.Scan(&i.ID, &i.ProjectID, &i.Project, &i.ProjectNormalized, &i.UserID, &i.Username, &i.Role, &i.Inviter,
		&i.CreatedAt, &i.ExpiresAt); err != nil {
		return nil, err
	}
	i.CreatedAt, i.ExpiresAt = i.CreatedAt.UTC(), i.ExpiresAt.UTC()
	return &i, nil
}

// listInvitations returns the invitations matching where (its one argument
// is arg), newest first.
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

// PendingInvitations returns the invitations waiting for the user's
// answer, newest first. Lapsed ones are left out: they can no longer be
// accepted.
func (s *Service) PendingInvitations(ctx context.Context, userID int64) ([]Invitation, error) {
	all, err := listInvitations(ctx, s.db, `i.user_id = $1`, userID)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	var out []Invitation
	for _, i := range all {
		// Compared here, not in SQL: SQLite keeps timestamps as text.
		if !i.Expired(now) {
			out = append(out, i)
		}
	}
	return out, nil
}

// Invite invites the user named username to the role on the project, and
// emails them the links to answer. The invitee must exist, have a verified
// primary address (as on PyPI) and be neither a collaborator already nor
// invited already; a lapsed invitation is replaced.
func (s *Service) Invite(ctx context.Context, a Actor, projectID int64, username, roleName string) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "project.Invite(%d, %q)", projectID, username)
	username = strings.TrimSpace(username)
	if username == "" {
		return nil, derrors.New(derrors.Invalid, "Enter the username of the person to invite.")
	}
	want, err := parseRole(roleName)
	if err != nil {
		return nil, err
	}
	if s.links.VerifyProjectRole == "" {
		return nil, errors.New("no invitation link configured (Options.Links.VerifyProjectRole)")
	}
	now := s.clock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := lockProject(ctx, tx, projectID)
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
			return derrors.New(derrors.Invalid, "There is no user named %q. Check the spelling: it is the name they log in with.", username)
		}
		if err != nil {
			return err
		}
		if uid == a.UserID {
			return derrors.New(derrors.Invalid, "You cannot invite yourself: you are already a collaborator on %s.", p.Name)
		}
		if disabled {
			return derrors.New(derrors.Invalid, "The account %s is disabled and cannot be invited.", name)
		}
		if r, err := role(ctx, tx, p.ID, uid); err != nil {
			return err
		} else if r != "" {
			return derrors.New(derrors.Conflict, "%s is already %s of %s. To give them another role, change it in the list of collaborators.", name, r, p.Name)
		}
		var verified bool
		err = tx.QueryRowContext(ctx, `SELECT verified FROM user_emails WHERE user_id = $1 AND is_primary`, uid).Scan(&verified)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !verified {
			return derrors.New(derrors.Invalid, "%s does not have a verified primary email address and cannot be invited to %s yet. Ask them to verify it first.", name, p.Name)
		}
		old, err := scanInvitation(tx.QueryRowContext(ctx, invitationSelect+` WHERE i.project_id = $1 AND i.user_id = $2`, p.ID, uid))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case !old.Expired(now):
			return derrors.New(derrors.Conflict, "%s already has a pending invitation to %s, which expires %s. Revoke it first to send a new one.",
				name, p.Name, old.ExpiresAt.Format("2006-01-02 15:04 UTC"))
		default:
			// A lapsed invitation gives way to the new one.
			if _, err := tx.ExecContext(ctx, `DELETE FROM role_invitations WHERE id = $1`, old.ID); err != nil {
				return err
			}
		}

		raw, hash, err := NewInvitationToken(s.rand)
		if err != nil {
			return err
		}
		inv = &Invitation{ProjectID: p.ID, Project: p.Name, ProjectNormalized: p.NormalizedName, UserID: uid, Username: name,
			Role: want, Inviter: a.Username, CreatedAt: now, ExpiresAt: now.Add(InvitationLifetime)}
		err = tx.QueryRowContext(ctx, `INSERT INTO role_invitations (project_id, user_id, role, token_hash, inviter_id, inviter, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			p.ID, uid, want, hash, sql.NullInt64{Int64: a.UserID, Valid: a.UserID != 0}, a.Username, now, inv.ExpiresAt).Scan(&inv.ID)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, "%s was invited to %s a moment ago. Reload the page.", name, p.Name)
		}
		if err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, "", fmt.Sprintf("invite %s %s", want, name), a.Username); err != nil {
			return err
		}
		if err := s.recordRoleChange(ctx, tx, now, a, p, Collaborator{UserID: uid, Username: name, Role: want},
			audit.ProjectRoleInvite, audit.AccountRoleInvite, nil); err != nil {
			return err
		}
		page := s.links.VerifyProjectRole
		return s.tell(ctx, tx, now, uid, mail.TemplateVerifyProjectRole, map[string]any{
			"Username": name, "Inviter": a.Username, "Project": p.Name, "Role": want,
			"AcceptLink": s.links.With(page, raw), "DeclineLink": s.links.With(page, raw) + "&decline=1",
			"ExpiresIn": invitationExpiresIn})
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// NewInvitationToken returns a new emailed invitation token (32 bytes from
// r) and the hash stored for it; internal/org's invitations use it too.
func NewInvitationToken(r io.Reader) (raw, hash string, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", "", fmt.Errorf("invitation token: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, HashInvitationToken(raw), nil
}

// HashInvitationToken is the stored hash of an emailed invitation token.
func HashInvitationToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// The refusals of an invitation link, in words the invitee can act on.
var errNoInvitationToken = derrors.New(derrors.Invalid, "This address lacks its invitation token. Open the link from the invitation email again, or answer from your list of invitations.")

func errInvitationGone() error {
	return derrors.New(derrors.Gone, "This invitation is no longer valid: it was accepted, declined or withdrawn, or a newer one replaced it. Ask an owner of the project to invite you again if you still want to join.")
}

// invitationByToken finds the invitation of an emailed token for the user
// userID, refusing one that is gone, lapsed or someone else's.
func (s *Service) invitationByToken(ctx context.Context, q querier, userID int64, raw string) (*Invitation, error) {
	if raw == "" {
		return nil, errNoInvitationToken
	}
	// A real token is 43 characters; anything far off is not worth a query.
	if len(raw) > 100 {
		return nil, errInvitationGone()
	}
	inv, err := scanInvitation(q.QueryRowContext(ctx, invitationSelect+` WHERE i.token_hash = $1`, HashInvitationToken(raw)))
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
		// Nothing about the invitation is shown: it is not this user's.
		return derrors.New(derrors.Forbidden, "This invitation is for another account. Log out, then log in as the invited user to answer it.")
	}
	if inv.Expired(s.clock()) {
		return derrors.New(derrors.Gone, "This invitation to %s expired on %s. Ask an owner of %s to invite you again.",
			inv.Project, inv.ExpiresAt.Format("2006-01-02 15:04 UTC"), inv.Project)
	}
	return nil
}

// InvitationByToken returns the invitation an emailed link opens, for the
// page that asks the signed-in user userID to accept or decline it.
func (s *Service) InvitationByToken(ctx context.Context, userID int64, raw string) (*Invitation, error) {
	return s.invitationByToken(ctx, s.db, userID, raw)
}

// AnswerInvitation accepts or declines the invitation of an emailed token
// for the actor, who must be its invitee.
func (s *Service) AnswerInvitation(ctx context.Context, a Actor, raw string, accept bool) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "project.AnswerInvitation(user %d)", a.UserID)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if inv, err = s.invitationByToken(ctx, tx, a.UserID, raw); err != nil {
			return err
		}
		return s.answer(ctx, tx, a, inv, accept)
	})
	return inv, err
}

// AnswerInvitationByID accepts or declines one of the actor's own pending
// invitations, from their list of invitations.
func (s *Service) AnswerInvitationByID(ctx context.Context, a Actor, id int64, accept bool) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "project.AnswerInvitationByID(%d, user %d)", id, a.UserID)
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
	p, err := lockProject(ctx, tx, inv.ProjectID)
	if err != nil {
		return err
	}
	// Deleting the row is what makes the link single-use: of two answers at
	// once, only one deletes it.
	r, err := tx.ExecContext(ctx, `DELETE FROM role_invitations WHERE id = $1`, inv.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return errInvitationGone()
	}
	who := Collaborator{UserID: inv.UserID, Username: inv.Username, Role: inv.Role}
	if !accept {
		if err := s.recordRoleChange(ctx, tx, now, a, p, who, audit.ProjectRoleDeclineInvite, audit.AccountRoleDeclineInvite,
			map[string]any{"invited_by": inv.Inviter}); err != nil {
			return err
		}
		return s.tellOwners(ctx, tx, now, p.ID, inv.UserID, mail.TemplateProjectInviteDeclined, map[string]any{
			"Invitee": inv.Username, "Project": p.Name, "Role": inv.Role})
	}
	if r, err := role(ctx, tx, p.ID, inv.UserID); err != nil {
		return err
	} else if r != "" {
		return derrors.New(derrors.Conflict, "You are already %s of %s.", r, p.Name)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, $3)`, p.ID, inv.UserID, inv.Role); err != nil {
		return err
	}
	if _, err := s.journal(ctx, tx, p.ID, p.Name, "", fmt.Sprintf("accepted %s %s", inv.Role, inv.Username), a.Username); err != nil {
		return err
	}
	if err := s.recordRoleChange(ctx, tx, now, a, p, who, audit.ProjectRoleAdd, audit.AccountRoleAdd,
		map[string]any{"invited_by": inv.Inviter}); err != nil {
		return err
	}
	if err := s.tellOwners(ctx, tx, now, p.ID, inv.UserID, mail.TemplateCollaboratorAdded, map[string]any{
		"Collaborator": inv.Username, "Project": p.Name, "Role": inv.Role, "Submitter": inv.Inviter}); err != nil {
		return err
	}
	return s.tell(ctx, tx, now, inv.UserID, mail.TemplateAddedAsCollaborator, map[string]any{
		"Username": inv.Username, "Project": p.Name, "Role": inv.Role, "Submitter": inv.Inviter})
}

// RevokeInvitation withdraws an invitation to the project; its links stop
// working at once. The invitee is told unless it had lapsed already.
func (s *Service) RevokeInvitation(ctx context.Context, a Actor, projectID, invitationID int64) (inv *Invitation, err error) {
	defer derrors.Wrap(&err, "project.RevokeInvitation(%d, %d)", projectID, invitationID)
	now := s.clock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := lockProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		inv, err = scanInvitation(tx.QueryRowContext(ctx, invitationSelect+` WHERE i.id = $1 AND i.project_id = $2`, invitationID, p.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "Could not find this invitation to %s: it may have been answered or revoked already. Reload the page.", p.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_invitations WHERE id = $1`, inv.ID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, "", fmt.Sprintf("revoke_invite %s %s", inv.Role, inv.Username), a.Username); err != nil {
			return err
		}
		if err := s.recordRoleChange(ctx, tx, now, a, p, Collaborator{UserID: inv.UserID, Username: inv.Username, Role: inv.Role},
			audit.ProjectRoleRevokeInvite, audit.AccountRoleRevokeInvite, nil); err != nil {
			return err
		}
		if inv.Expired(now) {
			return nil
		}
		return s.tell(ctx, tx, now, inv.UserID, mail.TemplateProjectInviteRevoked, map[string]any{
			"Username": inv.Username, "Project": p.Name, "Role": inv.Role, "Submitter": a.Username})
	})
	return inv, err
}
