package trustedpub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// ProjectPublishing is what a project's publishing page shows.
type ProjectPublishing struct {
	Publishers []Publisher
	// Only is the "trusted publishing only" setting: uploads with
	// long-lived API tokens are refused.
	Only bool
}

// ForProject returns the project's publishers, oldest first, and its
// setting.
func (s *Service) ForProject(ctx context.Context, projectID int64) (*ProjectPublishing, error) {
	pubs, err := projectPublishers(ctx, s.db, projectID)
	if err != nil {
		return nil, err
	}
	only, err := trustedOnly(ctx, s.db, projectID)
	if err != nil {
		return nil, err
	}
	return &ProjectPublishing{Publishers: pubs, Only: only}, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func projectPublishers(ctx context.Context, q querier, projectID int64) ([]Publisher, error) {
	rows, err := q.QueryContext(ctx, `SELECT p.id, p.kind, p.issuer_url, p.issuer_id, p.lookup_key, p.environment, p.config_json, p.created_at
		FROM trusted_publishers p JOIN project_publishers pp ON pp.publisher_id = p.id
		WHERE pp.project_id = $1 ORDER BY pp.created_at, p.id`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Publisher
	for rows.Next() {
		p, err := scanPublisher(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// AddToProject adds a publisher to a project, in one transaction with its
// event and the notice to every owner. The same identity added twice is a
// conflict; an identity another project uses shares its row.
func (s *Service) AddToProject(ctx context.Context, actor Actor, p *project.Project, in Input) (_ *Publisher, err error) {
	defer derrors.Wrap(&err, "trustedpub.AddToProject(%q)", p.NormalizedName)
	if err := s.registerAttempt(ctx, actor); err != nil {
		return nil, err
	}
	pub, err := s.parseInput(ctx, in)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if pub.issuerOrg != 0 {
			// An organization's issuer serves its projects only.
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM organization_projects WHERE project_id = $1 AND organization_id = $2`, p.ID, pub.issuerOrg).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return invalid("Issuer: %s belongs to an organization that %s is not part of; choose an issuer an administrator registered, or one of the project's organization.", pub.issuerName, p.Name)
			}
			if err != nil {
				return err
			}
		}
		if err := upsertPublisher(ctx, tx, pub, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO project_publishers (project_id, publisher_id, added_by, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, publisher_id) DO NOTHING`, p.ID, pub.ID, actor.Username, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return derrors.New(derrors.Conflict, "This trusted publisher is already registered for %s.", p.Name)
		}
		return s.publisherChanged(ctx, tx, actor, p, pub, audit.PublisherAdded, mail.TemplateTrustedPublisherAdded, nil)
	})
	if err != nil {
		return nil, err
	}
	return pub, nil
}

// RemoveFromProject unbinds a publisher from a project; a publisher no
// project uses any more is deleted, with every token minted for it.
func (s *Service) RemoveFromProject(ctx context.Context, actor Actor, p *project.Project, publisherID int64) (err error) {
	defer derrors.Wrap(&err, "trustedpub.RemoveFromProject(%q, %d)", p.NormalizedName, publisherID)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		pub, err := scanPublisher(tx.QueryRowContext(ctx, `SELECT p.id, p.kind, p.issuer_url, p.issuer_id, p.lookup_key, p.environment, p.config_json, p.created_at
			FROM trusted_publishers p JOIN project_publishers pp ON pp.publisher_id = p.id
			WHERE pp.project_id = $1 AND p.id = $2`, p.ID, publisherID))
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "That publisher is not registered for %s (any more). Reload the page.", p.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM project_publishers WHERE project_id = $1 AND publisher_id = $2`, p.ID, pub.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM trusted_publishers WHERE id = $1
			AND NOT EXISTS (SELECT 1 FROM project_publishers WHERE publisher_id = $1)`, pub.ID); err != nil {
			return err
		}
		return s.publisherChanged(ctx, tx, actor, p, pub, audit.PublisherRemoved, mail.TemplateTrustedPublisherRemoved, nil)
	})
}

// publisherChanged records a publisher's addition or removal on the
// project, with Warehouse's fields and any extra ones, and tells every
// owner.
func (s *Service) publisherChanged(ctx context.Context, tx *sql.Tx, actor Actor, p *project.Project, pub *Publisher, tag, template string, extra map[string]any) error {
	add := map[string]any{
		"publisher": pub.ProviderName(), "id": pub.ID, "specifier": pub.Name(), "url": pub.URL(),
		"submitted_by": actor.Username, "reified_from_pending_publisher": false,
	}
	for k, v := range extra {
		add[k] = v
	}
	if err := audit.Record(ctx, tx, s.now(), audit.Event{ProjectID: p.ID, Tag: tag, ActorID: actor.UserID, Actor: actor.Username,
		IP: actor.Client.IP, UserAgent: actor.Client.UserAgent, Additional: add}); err != nil {
		return err
	}
	return s.tellOwners(ctx, tx, p, template, map[string]any{
		"Project": p.Name, "Publisher": pub.Name(), "By": actor.Username,
		"Link": s.baseURL + "/manage/project/" + p.NormalizedName + "/settings/publishing/",
	})
}

// tellOwners emails every owner of the project through the one notice path.
func (s *Service) tellOwners(ctx context.Context, tx *sql.Tx, p *project.Project, template string, data map[string]any) error {
	return s.tellRoles(ctx, tx, p, template, data, project.RoleOwner)
}

func (s *Service) tellRoles(ctx context.Context, tx *sql.Tx, p *project.Project, template string, data map[string]any, roles ...string) error {
	rows, err := tx.QueryContext(ctx, `SELECT u.id, u.username,
			CASE WHEN min(CASE r.role WHEN 'Owner' THEN 0 ELSE 1 END) = 0 THEN 'Owner' ELSE 'Maintainer' END
		FROM effective_roles r JOIN users u ON u.id = r.user_id
		WHERE r.project_id = $1 AND NOT u.disabled GROUP BY u.id, u.username ORDER BY u.id`, p.ID)
	if err != nil {
		return err
	}
	type who struct {
		id   int64
		name string
	}
	var to []who
	for rows.Next() {
		var (
			w    who
			role string
		)
		if err := rows.Scan(&w.id, &w.name, &role); err != nil {
			rows.Close()
			return err
		}
		for _, r := range roles {
			if r == role {
				to = append(to, w)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, w := range to {
		d := map[string]any{"Username": w.name}
		for k, v := range data {
			d[k] = v
		}
		if err := account.SendNotice(ctx, tx, s.notifier, s.now(), account.Client{}, account.Notice{
			Event: audit.Event{UserID: w.id}, Template: template, Data: d}); err != nil {
			return fmt.Errorf("tell %s: %w", w.name, err)
		}
	}
	return nil
}

// registerAttempt applies Warehouse's limits on publisher registrations
// (100 a day per user and per IP) and counts this attempt, before any work:
// every attempt counts, refused ones too, so the GitHub API lookup behind
// the form cannot be driven without bound.
func (s *Service) registerAttempt(ctx context.Context, actor Actor) error {
	const msg = "There have been too many attempted trusted publisher registrations. Try again later."
	onErr := func(err error) { s.log.Warn("publisher registration limit unavailable", "err", err) }
	userKey := fmt.Sprint(actor.UserID)
	if err := s.userRegister.Enforce(ctx, userKey, msg, onErr); err != nil {
		return err
	}
	if actor.Client.IP != "" {
		if err := s.ipRegister.Enforce(ctx, actor.Client.IP, msg, onErr); err != nil {
			return err
		}
		if err := s.ipRegister.Hit(ctx, nil, actor.Client.IP); err != nil {
			s.log.Warn("count publisher registration", "err", err)
		}
	}
	if err := s.userRegister.Hit(ctx, nil, userKey); err != nil {
		s.log.Warn("count publisher registration", "err", err)
	}
	return nil
}

// projectByID reads a project row for events and emails.
func projectByID(ctx context.Context, q querier, id int64) (*project.Project, error) {
	var p project.Project
	err := q.QueryRowContext(ctx, `SELECT id, name, normalized_name FROM projects WHERE id = $1`, id).Scan(&p.ID, &p.Name, &p.NormalizedName)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// normalized is a name's PEP 503 form.
func normalized(name string) string { return pep.NormalizeName(name) }
