package trustedpub

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

func trustedOnly(ctx context.Context, q querier, projectID int64) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM trusted_publishing_only WHERE project_id = $1`, projectID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SetTrustedPublishingOnly turns the project's "trusted publishing only"
// setting on or off. On, uploads with long-lived API tokens are refused and
// only the project's trusted publishers can publish; it needs a publisher
// first, or nobody could.
func (s *Service) SetTrustedPublishingOnly(ctx context.Context, actor Actor, p *project.Project, on bool) (err error) {
	defer derrors.Wrap(&err, "trustedpub.SetTrustedPublishingOnly(%q, %v)", p.NormalizedName, on)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		was, err := trustedOnly(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		if was == on {
			return nil
		}
		if on {
			pubs, err := projectPublishers(ctx, tx, p.ID)
			if err != nil {
				return err
			}
			if len(pubs) == 0 {
				return invalid("Add a trusted publisher first: with none, nobody could upload to %s.", p.Name)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO trusted_publishing_only (project_id, set_by, created_at) VALUES ($1, $2, $3)`,
				p.ID, actor.Username, s.now().UTC().Truncate(time.Microsecond)); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `DELETE FROM trusted_publishing_only WHERE project_id = $1`, p.ID); err != nil {
			return err
		}
		tag := audit.TrustedPublishingOnlyEnabled
		if !on {
			tag = audit.TrustedPublishingOnlyDisabled
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{ProjectID: p.ID, Tag: tag, ActorID: actor.UserID, Actor: actor.Username,
			IP: actor.Client.IP, UserAgent: actor.Client.UserAgent})
	})
}

// PublisherNames returns the names of the project's trusted publishers, as
// refusals name them ("GitHub repository o/r, workflow w.yml").
func (s *Service) PublisherNames(ctx context.Context, projectID int64) ([]string, error) {
	pubs, err := projectPublishers(ctx, s.db, projectID)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(pubs))
	for i, p := range pubs {
		names[i] = p.Name()
	}
	return names, nil
}

// RefuseLongLived returns nil when a long-lived (user) API token may upload
// to the project, and otherwise the refusal naming the publishers to use.
func (s *Service) RefuseLongLived(ctx context.Context, projectID int64, projectName string) error {
	if projectID == 0 {
		return nil
	}
	only, err := trustedOnly(ctx, s.db, projectID)
	if err != nil || !only {
		return err
	}
	pubs, err := projectPublishers(ctx, s.db, projectID)
	if err != nil {
		return err
	}
	names := make([]string, len(pubs))
	for i, p := range pubs {
		names[i] = p.Name()
	}
	return derrors.New(derrors.Forbidden,
		"Project '%s' accepts uploads only from its trusted publishers, not with API tokens. Publish from %s. See %s/help/#trusted-publishers for more information.",
		projectName, strings.Join(names, " or "), s.baseURL)
}

// NoteLongLivedUpload tells the project's owners and maintainers, once per
// token and project, that a long-lived API token uploaded to a project that
// has a trusted publisher (Warehouse's
// api-token-used-in-trusted-publisher-project email).
func (s *Service) NoteLongLivedUpload(ctx context.Context, tokenID, normalizedName string) (err error) {
	defer derrors.Wrap(&err, "trustedpub.NoteLongLivedUpload(%q)", normalizedName)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var p project.Project
		err := tx.QueryRowContext(ctx, `SELECT id, name, normalized_name FROM projects WHERE normalized_name = $1`, normalizedName).
			Scan(&p.ID, &p.Name, &p.NormalizedName)
		if err != nil {
			return err
		}
		pubs, err := projectPublishers(ctx, tx, p.ID)
		if err != nil || len(pubs) == 0 {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO token_publisher_warnings (token_id, project_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (token_id, project_id) DO NOTHING`, tokenID, p.ID, s.now().UTC())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return s.tellRoles(ctx, tx, &p, mail.TemplateTokenUsedWithPublisher, map[string]any{
			"Project": p.Name, "Publisher": pubs[0].Name(),
			"Link": s.baseURL + "/manage/project/" + p.NormalizedName + "/settings/publishing/",
		}, project.RoleOwner, project.RoleMaintainer)
	})
}
