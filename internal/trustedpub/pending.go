package trustedpub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// Pending is a pending publisher: a publisher for a project that does not
// exist yet. The first exchange of a token it matches creates the project,
// owned by the user who registered it. It does not reserve the name:
// whoever creates the project first has it, and the pending publisher is
// then deleted and its owner told.
type Pending struct {
	ID          int64
	ProjectName string
	UserID      int64
	Publisher   Publisher
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

const pendingColumns = `id, project_name, added_by, kind, issuer_url, issuer_id, lookup_key, environment, config_json, created_at, expires_at`

func scanPending(row interface{ Scan(...any) error }) (*Pending, error) {
	var (
		pp       Pending
		issuerID sql.NullInt64
		cj       string
	)
	p := &pp.Publisher
	if err := row.Scan(&pp.ID, &pp.ProjectName, &pp.UserID, &p.Kind, &p.IssuerURL, &issuerID, &p.LookupKey, &p.Environment, &cj, &pp.CreatedAt, &pp.ExpiresAt); err != nil {
		return nil, err
	}
	p.IssuerID = issuerID.Int64
	pp.CreatedAt, pp.ExpiresAt = pp.CreatedAt.UTC(), pp.ExpiresAt.UTC()
	p.CreatedAt = pp.CreatedAt
	if err := json.Unmarshal([]byte(cj), &p.Config); err != nil {
		return nil, fmt.Errorf("pending publisher %d: config: %w", pp.ID, err)
	}
	return &pp, nil
}

// PendingFor lists a user's pending publishers, oldest first.
func (s *Service) PendingFor(ctx context.Context, userID int64) ([]Pending, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+pendingColumns+` FROM pending_publishers WHERE added_by = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		p, err := scanPending(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// AddPending registers a pending publisher for a project name that is free
// now. At most MaxPending per user; each expires after PendingLifetime.
func (s *Service) AddPending(ctx context.Context, actor Actor, projectName string, in Input) (_ *Pending, err error) {
	defer derrors.Wrap(&err, "trustedpub.AddPending(%q)", projectName)
	if err := s.registerAttempt(ctx, actor); err != nil {
		return nil, err
	}
	if projectName == "" {
		return nil, invalid("Enter the name of the project the publisher will create.")
	}
	if err := s.projects.CheckNewName(ctx, projectName); err != nil {
		if errors.Is(err, derrors.Conflict) {
			if m, merr := s.projects.MembershipOf(ctx, pep.NormalizeName(projectName), actor.UserID); merr == nil && m.Role != "" {
				return nil, derrors.New(derrors.Conflict, "%s already exists and you are a collaborator: add the publisher on its publishing page, %s/manage/project/%s/settings/publishing/.",
					m.Project.Name, s.baseURL, m.Project.NormalizedName)
			}
		}
		return nil, err
	}
	pub, err := s.parseInput(ctx, in)
	if err != nil {
		return nil, err
	}
	if pub.issuerOrg != 0 {
		// A pending publisher makes a project of the user's own, which an
		// organization's issuer cannot serve.
		return nil, invalid("Issuer: %s belongs to an organization and serves its projects only; choose an issuer an administrator registered.", pub.issuerName)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	pp := &Pending{ProjectName: projectName, UserID: actor.UserID, Publisher: *pub, CreatedAt: now, ExpiresAt: now.Add(PendingLifetime)}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pending_publishers WHERE added_by = $1`, actor.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPending {
			return invalid("You can't register more than %d pending trusted publishers at once. Remove one, or wait until one has created its project.", MaxPending)
		}
		cj, err := json.Marshal(pub.Config)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO pending_publishers (project_name, normalized_name, ultranormalized_name, added_by,
			kind, issuer_url, issuer_id, lookup_key, environment, config_json, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			projectName, pep.NormalizeName(projectName), pep.UltranormalizeName(projectName), actor.UserID,
			pub.Kind, pub.IssuerURL, nullID(pub.IssuerID), pub.LookupKey, pub.Environment, string(cj), now, pp.ExpiresAt).Scan(&pp.ID)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, "This trusted publisher has already been registered. Please contact the administrators of %s if this wasn't intentional.", s.site())
		}
		if err != nil {
			return err
		}
		return account.SendNotice(ctx, tx, s.notifier, s.now(), actor.Client, account.Notice{Event: audit.Event{
			UserID: actor.UserID, Tag: audit.PendingPublisherAdded, ActorID: actor.UserID, Actor: actor.Username,
			Additional: map[string]any{"project": projectName, "publisher": pub.ProviderName(), "specifier": pub.Name()},
		}})
	})
	if err != nil {
		return nil, err
	}
	return pp, nil
}

// RemovePending deletes one of the user's pending publishers.
func (s *Service) RemovePending(ctx context.Context, actor Actor, id int64) (err error) {
	defer derrors.Wrap(&err, "trustedpub.RemovePending(%d)", id)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		pp, err := scanPending(tx.QueryRowContext(ctx, `SELECT `+pendingColumns+` FROM pending_publishers WHERE id = $1 AND added_by = $2`, id, actor.UserID))
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "That pending publisher is not registered (any more). Reload the page.")
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_publishers WHERE id = $1`, id); err != nil {
			return err
		}
		return account.SendNotice(ctx, tx, s.notifier, s.now(), actor.Client, account.Notice{Event: audit.Event{
			UserID: actor.UserID, Tag: audit.PendingPublisherRemoved, ActorID: actor.UserID, Actor: actor.Username,
			Additional: map[string]any{"project": pp.ProjectName, "publisher": pp.Publisher.ProviderName(), "specifier": pp.Publisher.Name(), "submitted_by": actor.Username},
		}})
	})
}

// remindBefore is when, before it expires, a pending publisher's owner is
// reminded (Warehouse: 5 days).
const remindBefore = 5 * 24 * time.Hour

// expirePending deletes the pending publishers past their lifetime, each
// in its own transaction with its event and email, and reminds the owners
// of those that expire within remindBefore, once.
func (s *Service) expirePending(ctx context.Context) error {
	now := s.now()
	rows, err := s.db.QueryContext(ctx, `SELECT `+pendingColumns+`, reminded_at IS NOT NULL FROM pending_publishers ORDER BY id`)
	if err != nil {
		return err
	}
	var expired, remind []Pending
	for rows.Next() {
		var reminded bool
		pp, err := scanPending(rowWith{rows, &reminded})
		if err != nil {
			rows.Close()
			return err
		}
		// Compared here, not in SQL: SQLite keeps timestamps as text.
		switch {
		case !now.Before(pp.ExpiresAt):
			expired = append(expired, *pp)
		case !reminded && !now.Before(pp.ExpiresAt.Add(-remindBefore)):
			remind = append(remind, *pp)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, pp := range remind {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE pending_publishers SET reminded_at = $1 WHERE id = $2 AND reminded_at IS NULL`, now.UTC(), pp.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil // another instance reminded
			}
			return account.SendNotice(ctx, tx, s.notifier, now, account.Client{}, account.Notice{
				Event:    audit.Event{UserID: pp.UserID},
				Template: mail.TemplatePendingPublisherReminder,
				Data: map[string]any{"Username": usernameOf(ctx, tx, pp.UserID), "Project": pp.ProjectName, "Publisher": pp.Publisher.Name(),
					"Expires": pp.ExpiresAt.Format("2006-01-02"), "Link": s.baseURL + "/manage/account/publishing/"},
			})
		})
		if err != nil {
			return fmt.Errorf("remind of pending publisher %d: %w", pp.ID, err)
		}
	}
	for _, pp := range expired {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM pending_publishers WHERE id = $1`, pp.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil // another instance got there first
			}
			return account.SendNotice(ctx, tx, s.notifier, s.now(), account.Client{}, account.Notice{
				Event: audit.Event{UserID: pp.UserID, Tag: audit.PendingPublisherRemoved, Actor: "system:ttl-expired",
					Additional: map[string]any{"project": pp.ProjectName, "publisher": pp.Publisher.ProviderName(), "specifier": pp.Publisher.Name(), "submitted_by": "system:ttl-expired"}},
				Template: mail.TemplatePendingPublisherExpired,
				Data:     map[string]any{"Username": usernameOf(ctx, tx, pp.UserID), "Project": pp.ProjectName, "Publisher": pp.Publisher.Name(), "Link": s.baseURL + "/manage/account/publishing/"},
			})
		})
		if err != nil {
			return fmt.Errorf("expire pending publisher %d: %w", pp.ID, err)
		}
	}
	return nil
}

// rowWith scans a row's leading columns with scanPending and the last one
// into extra.
type rowWith struct {
	row   interface{ Scan(...any) error }
	extra any
}

func (r rowWith) Scan(dest ...any) error { return r.row.Scan(append(dest, r.extra)...) }

func usernameOf(ctx context.Context, q rowQuerier, userID int64) string {
	var name string
	if err := q.QueryRowContext(ctx, `SELECT username FROM users WHERE id = $1`, userID).Scan(&name); err != nil {
		return ""
	}
	return name
}

func (s *Service) site() string {
	if s.siteName == "" {
		return "this index"
	}
	return s.siteName
}

// PendingInvalidator deletes other users' pending publishers for a name
// when a project of that name is created, and tells each of them: pending
// publishers do not reserve names. project.Service calls it (its OnCreate
// hook) in the transaction that creates the project, whether an upload or
// a pending publisher's first exchange creates it.
type PendingInvalidator struct {
	Notifier account.Notifier
	BaseURL  string
	Now      func() time.Time
}

// ProjectCreated is the hook.
func (v PendingInvalidator) ProjectCreated(ctx context.Context, tx *sql.Tx, projectID int64, name string, creatorID int64) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+pendingColumns+` FROM pending_publishers WHERE ultranormalized_name = $1 AND added_by <> $2`,
		pep.UltranormalizeName(name), creatorID)
	if err != nil {
		return err
	}
	var gone []Pending
	for rows.Next() {
		pp, err := scanPending(rows)
		if err != nil {
			rows.Close()
			return err
		}
		gone = append(gone, *pp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, pp := range gone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_publishers WHERE id = $1`, pp.ID); err != nil {
			return err
		}
		err := account.SendNotice(ctx, tx, v.Notifier, now(), account.Client{}, account.Notice{
			Event: audit.Event{UserID: pp.UserID, Tag: audit.PendingPublisherRemoved, Actor: "system:project-created",
				Additional: map[string]any{"project": pp.ProjectName, "publisher": pp.Publisher.ProviderName(), "specifier": pp.Publisher.Name(), "reason": "the project was created by someone else"}},
			Template: mail.TemplatePendingPublisherInvalidated,
			Data:     map[string]any{"Username": usernameOf(ctx, tx, pp.UserID), "Project": pp.ProjectName, "Publisher": pp.Publisher.Name(), "Link": strings.TrimRight(v.BaseURL, "/") + "/manage/account/publishing/"},
		})
		if err != nil {
			return err
		}
	}
	return nil
}
