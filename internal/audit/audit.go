// Package audit is Gatehouse's security history: an append-only record of
// every security-relevant event (logins, password and email changes, tokens,
// second factors, administrator actions), shown to users on their account
// page and to administrators.
//
// Events are data, not logging. They are written in the same transaction as
// the change they describe, so an event exists exactly when its change does.
// No code path updates or deletes an event, and events outlive the account
// they describe (user_id is not a foreign key).
//
// Secrets never belong in an event: Record drops any "additional" key that
// names one (password, token, code, secret, link, …) as a second line of
// defence behind the callers, and the tests look for leaks (spec J1).
package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

// Event tags, in Warehouse's source:subject:action form (spec §2.1).
const (
	AccountCreate            = "account:create"
	LoginSuccess             = "account:login:success"
	LoginFailure             = "account:login:failure"
	Logout                   = "account:logout"
	ReauthFailure            = "account:reauthenticate:failure"
	EmailAdd                 = "account:email:add"
	EmailRemove              = "account:email:remove"
	EmailVerified            = "account:email:verified"
	EmailReverify            = "account:email:reverify"
	EmailPrimaryChange       = "account:email:primary:change"
	EmailSent                = "account:email:sent"
	PasswordChange           = "account:password:change"
	PasswordReset            = "account:password:reset"
	PasswordResetRequest     = "account:password:reset:request"
	PasswordResetAttempt     = "account:password:reset:attempt"
	SessionRevoked           = "account:session:revoked"
	AccountDelete            = "account:delete"
	APITokenAdded            = "account:api_token:added"
	APITokenRemoved          = "account:api_token:removed"
	APITokenRemovedLeak      = "account:api_token:removed_leak"
	LoginNewDevice           = "account:login:new_device"
	LoginConfirmed           = "account:login:confirmed"
	TwoFactorAdded           = "account:two_factor:method_added"
	TwoFactorRemoved         = "account:two_factor:method_removed"
	DeviceRemembered         = "account:two_factor:device_remembered"
	DeviceRevoked            = "account:device:revoked"
	RecoveryCodesGenerated   = "account:recovery_codes:generated"
	RecoveryCodesRegenerated = "account:recovery_codes:regenerated"
	RecoveryCodeUsed         = "account:recovery_codes:used"
	WebAuthnSignCountError   = "account:two_factor:sign_count_regression"
	AdminAccountRecovery     = "admin:user:account_recovery"
	AdminUserDisabled        = "admin:user:disabled"
	AdminUserEnabled         = "admin:user:enabled"
	AdminRegistrationChanged = "admin:registration:changed"
	AdminReadOnlyChanged     = "admin:read_only:changed"
)

// Project collaboration (spec §2.1). Each change is recorded twice, as
// Warehouse does: on the project (ProjectID set, UserID 0; additional
// target_user, role_name, submitted_by) and on the account it concerns
// (UserID set, ProjectID 0; additional project_name, role_name,
// submitted_by), so the project's history and the person's security
// history each show it once. Accepting an invitation is recorded as an add.
const (
	AccountRoleAdd           = "account:role:add"
	AccountRoleChange        = "account:role:change"
	AccountRoleRemove        = "account:role:remove"
	AccountRoleInvite        = "account:role:invite"
	AccountRoleDeclineInvite = "account:role:decline_invite"
	AccountRoleRevokeInvite  = "account:role:revoke_invite"
	ProjectRoleAdd           = "project:role:add"
	ProjectRoleChange        = "project:role:change"
	ProjectRoleRemove        = "project:role:remove"
	ProjectRoleInvite        = "project:role:invite"
	ProjectRoleDeclineInvite = "project:role:decline_invite"
	ProjectRoleRevokeInvite  = "project:role:revoke_invite"
)

// Trusted publishing (spec §2.1 names; the admin and policy tags are ours).
const (
	PublisherAdded                = "project:oidc:publisher-added"
	PublisherRemoved              = "project:oidc:publisher-removed"
	PendingPublisherAdded         = "account:oidc:pending-publisher-added"
	PendingPublisherRemoved       = "account:oidc:pending-publisher-removed"
	ShortLivedTokenAdded          = "account:short_lived_api_token:added"
	TrustedPublishingOnlyEnabled  = "project:trusted_publishing_only:enabled"
	TrustedPublishingOnlyDisabled = "project:trusted_publishing_only:disabled"
	RequireAttestationsEnabled    = "project:require_attestations:enabled"
	RequireAttestationsDisabled   = "project:require_attestations:disabled"
	OIDCIssuerAdded               = "admin:oidc_issuer:added"
	OIDCIssuerRemoved             = "admin:oidc_issuer:removed"
)

// Project event tags (spec §2.1): recorded with Event.ProjectID set and no
// UserID, so they show in the project's history, not in a person's.
const (
	ProjectAPITokenAdded   = "project:api_token:added"
	ProjectAPITokenRemoved = "project:api_token:removed"
)

// Event is one thing that happened.
type Event struct {
	UserID    int64 // the account it concerns (0: none)
	ProjectID int64 // the project it concerns (0: none)
	// OrganizationID is the organization it concerns (0: none): such
	// events make the organization's history.
	OrganizationID int64
	Tag            string
	ActorID        int64  // who did it (0: the system or an anonymous visitor)
	Actor          string // their username, kept in case the account is deleted
	IP             string
	UserAgent      string
	Additional     map[string]any
}

// Stored is an event as read back.
type Stored struct {
	Event
	ID        int64
	CreatedAt time.Time
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// secretish are substrings of "additional" keys that are never stored.
var secretish = []string{"password", "token", "secret", "code", "otp", "link", "url_with", "cookie", "session_id", "key"}

func clean(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		lk := strings.ToLower(k)
		drop := false
		for _, s := range secretish {
			if strings.Contains(lk, s) && lk != "key_label" && lk != "token_description" && lk != "token_id" {
				drop = true
				break
			}
		}
		if !drop {
			out[k] = v
		}
	}
	return out
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// Record appends an event. Pass the transaction of the change it records.
func Record(ctx context.Context, q execer, now time.Time, e Event) error {
	add, err := json.Marshal(clean(e.Additional))
	if err != nil {
		return err
	}
	if len(e.UserAgent) > 512 {
		e.UserAgent = e.UserAgent[:512]
	}
	_, err = q.ExecContext(ctx, `INSERT INTO events (user_id, project_id, organization_id, tag, actor_id, actor, ip, user_agent, additional, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		nullID(e.UserID), nullID(e.ProjectID), nullID(e.OrganizationID), e.Tag, nullID(e.ActorID), e.Actor, e.IP, e.UserAgent, string(add), now.UTC())
	if err != nil {
		return fmt.Errorf("record event %s: %w", e.Tag, err)
	}
	return nil
}

// Service reads the trail.
type Service struct {
	db  *db.DB
	now func() time.Time
}

// NewService returns a reader of the audit trail.
func NewService(d *db.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: d, now: now}
}

// Record appends an event outside any other transaction.
func (s *Service) Record(ctx context.Context, e Event) error {
	return Record(ctx, s.db, s.now(), e)
}

// ForUser returns a user's events since the given time, newest first.
func (s *Service) ForUser(ctx context.Context, userID int64, since time.Time, limit int) ([]Stored, error) {
	return s.forUser(ctx, userID, since, limit, 0)
}

// ForUserPage returns page (counted from 1) of a user's events since the
// given time, perPage to a page, newest first, and whether an older page
// follows. The pages are counted by offset, so an event recorded between
// two page views shifts the pages by one; a security history can live with
// that, and it needs no count of every event in the window.
func (s *Service) ForUserPage(ctx context.Context, userID int64, since time.Time, page, perPage int) (events []Stored, more bool, err error) {
	if page < 1 || perPage < 1 {
		return nil, false, fmt.Errorf("audit.ForUserPage: page %d, perPage %d", page, perPage)
	}
	events, err = s.forUser(ctx, userID, since, perPage+1, (page-1)*perPage)
	if err != nil {
		return nil, false, err
	}
	if len(events) > perPage {
		return events[:perPage], true, nil
	}
	return events, false, nil
}

func (s *Service) forUser(ctx context.Context, userID int64, since time.Time, limit, offset int) ([]Stored, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, project_id, tag, actor_id, actor, ip, user_agent, additional, created_at
		FROM events WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3`, userID, limit, offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var e Stored
		var uid, pid, aid sql.NullInt64
		var add string
		if err := rows.Scan(&e.ID, &uid, &pid, &e.Tag, &aid, &e.Actor, &e.IP, &e.UserAgent, &add, &e.CreatedAt); err != nil {
			return nil, err
		}
		e.CreatedAt = e.CreatedAt.UTC()
		// Time filtering is done here rather than in SQL: SQLite stores
		// timestamps as text, whose order is not reliable across precisions.
		if e.CreatedAt.Before(since) {
			break
		}
		e.UserID, e.ProjectID, e.ActorID = uid.Int64, pid.Int64, aid.Int64
		json.Unmarshal([]byte(add), &e.Additional)
		out = append(out, e)
	}
	return out, rows.Err()
}
