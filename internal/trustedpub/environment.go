package trustedpub

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// Environment hardening (spec §3.1, Warehouse's
// environment-ignored-in-trusted-publisher). A GitHub or GitLab publisher
// with no environment accepts a job from any environment, or from none. When
// a job that ran in an environment exchanges a token through such a
// publisher, and the publisher serves exactly one project, that project's
// owners are told they can limit the publisher to the environment, with a
// link to the page that does it in one step (ConstrainEnvironment).
// Warehouse sends the email at every exchange; here it goes once per
// publisher and environment, since a CI job that publishes daily would
// otherwise send one a day.

// ignoredEnvironment returns the environment a publisher without one was
// just used from, when its owners should hear of it, and "" otherwise.
func ignoredEnvironment(pub *Publisher, c claims, projectIDs []int64) string {
	if (pub.Kind != KindGitHub && pub.Kind != KindGitLab) || pub.Environment != "" || len(projectIDs) != 1 {
		return ""
	}
	env, _ := c.str("environment")
	if env == "" || checkEnvironment(env) != nil {
		return "" // none, or one the publisher form would not take either
	}
	return env
}

// noteIgnoredEnvironment tells the owners, once per publisher and
// environment, inside the exchange's transaction.
func (s *Service) noteIgnoredEnvironment(ctx context.Context, tx *sql.Tx, pub *Publisher, env string, projectID int64, now time.Time) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO publisher_environment_notices (publisher_id, environment, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (publisher_id, environment) DO NOTHING`, pub.ID, env, now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	p, err := projectByID(ctx, tx, projectID)
	if err != nil {
		return err
	}
	return s.tellOwners(ctx, tx, p, mail.TemplateEnvironmentIgnored, map[string]any{
		"Project": p.Name, "Publisher": pub.Name(), "Environment": env,
		"Link": s.ConstrainLink(p, pub.ID, env),
	})
}

// ConstrainLink is the publishing page with the offer to limit the
// publisher to env, as the email links it.
func (s *Service) ConstrainLink(p *project.Project, publisherID int64, env string) string {
	q := url.Values{"constrain_publisher_id": {strconv.FormatInt(publisherID, 10)}, "constrain_environment": {env}}
	return s.baseURL + "/manage/project/" + p.NormalizedName + "/settings/publishing/?" + q.Encode()
}

// ConstrainEnvironment replaces one of the project's GitHub or GitLab
// publishers that has no environment with the same publisher limited to
// env, in one transaction: the limited publisher is added (or found, if
// the project has it already), the unlimited one removed from the project
// (and deleted, with its tokens, when no other project uses it), both
// recorded with constrained_from_existing_publisher, and every owner told of
// each.
func (s *Service) ConstrainEnvironment(ctx context.Context, actor Actor, p *project.Project, publisherID int64, env string) (_ *Publisher, err error) {
	defer derrors.Wrap(&err, "trustedpub.ConstrainEnvironment(%q, %d)", p.NormalizedName, publisherID)
	env = strings.TrimSpace(env)
	if env == "" {
		return nil, invalid("Environment: enter the environment to limit the publisher to.")
	}
	if err := checkEnvironment(env); err != nil {
		return nil, err
	}
	var limited *Publisher
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		old, err := scanPublisher(tx.QueryRowContext(ctx, `SELECT p.id, p.kind, p.issuer_url, p.issuer_id, p.lookup_key, p.environment, p.config_json, p.created_at
			FROM trusted_publishers p JOIN project_publishers pp ON pp.publisher_id = p.id
			WHERE pp.project_id = $1 AND p.id = $2`, p.ID, publisherID))
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "That publisher is not registered for %s (any more). Reload the page.", p.Name)
		}
		if err != nil {
			return err
		}
		if old.Kind != KindGitHub && old.Kind != KindGitLab {
			return invalid("Only GitHub and GitLab publishers can be limited to an environment.")
		}
		if old.Environment != "" {
			return invalid("The publisher %s is limited to an environment already.", old.Name())
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		limited = &Publisher{Kind: old.Kind, IssuerURL: old.IssuerURL, IssuerID: old.IssuerID, LookupKey: old.LookupKey, Config: map[string]string{}}
		for k, v := range old.Config {
			limited.Config[k] = v
		}
		limited.Config["environment"] = env
		// Normalized as the provider compares it (parseGitHub, parseGitLab).
		limited.Environment = env
		if old.Kind == KindGitHub {
			limited.Environment = strings.ToLower(env)
		}
		if err := upsertPublisher(ctx, tx, limited, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO project_publishers (project_id, publisher_id, added_by, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, publisher_id) DO NOTHING`, p.ID, limited.ID, actor.Username, now)
		if err != nil {
			return err
		}
		extra := map[string]any{"constrained_from_existing_publisher": true}
		if n, _ := res.RowsAffected(); n > 0 {
			if err := s.publisherChanged(ctx, tx, actor, p, limited, audit.PublisherAdded, mail.TemplateTrustedPublisherAdded, extra); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM project_publishers WHERE project_id = $1 AND publisher_id = $2`, p.ID, old.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM trusted_publishers WHERE id = $1
			AND NOT EXISTS (SELECT 1 FROM project_publishers WHERE publisher_id = $1)`, old.ID); err != nil {
			return err
		}
		return s.publisherChanged(ctx, tx, actor, p, old, audit.PublisherRemoved, mail.TemplateTrustedPublisherRemoved, extra)
	})
	if err != nil {
		return nil, err
	}
	return limited, nil
}
