package project

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// Yank marks a release yanked (PEP 592): installers skip it unless it is
// pinned exactly, and it stays downloadable. The owner types the version to
// confirm, as on PyPI; the reason is optional and shown to installers.
// Every owner and maintainer is emailed.
func (s *Service) Yank(ctx context.Context, a Actor, normalizedName, version, confirm, reason string) error {
	reason = strings.TrimSpace(reason)
	if utf8.RuneCountInString(reason) > maxReasonLen {
		return derrors.InField(derrors.Invalid, "yanked_reason", "The reason is too long: at most %d characters.", maxReasonLen)
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, rel, err := s.releaseForChange(ctx, tx, a, normalizedName, version)
		if err != nil {
			return err
		}
		if err := confirmName("confirm_yank_version", confirm, rel.Version, "the version "+rel.Version); err != nil {
			return err
		}
		if rel.Yanked {
			return derrors.New(derrors.Conflict, "Release %s is already yanked.", rel.Version)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET yanked = TRUE, yanked_reason = $1 WHERE id = $2`, reason, rel.ID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, rel.Version, "yank release", a.Username); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.ProjectReleaseYank, map[string]any{"version": rel.Version,
			"canonical_version": rel.CanonicalVersion, "yanked_reason": reason, "submitted_by": a.Username}); err != nil {
			return err
		}
		shown := reason
		if shown == "" {
			shown = "None provided"
		}
		return s.tellAboutRelease(ctx, tx, a, p, rel, mail.TemplateYankedRelease, map[string]any{"Reason": shown})
	})
}

// Unyank makes a yanked release installable again; the owner types the
// version to confirm.
func (s *Service) Unyank(ctx context.Context, a Actor, normalizedName, version, confirm string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, rel, err := s.releaseForChange(ctx, tx, a, normalizedName, version)
		if err != nil {
			return err
		}
		if err := confirmName("confirm_unyank_version", confirm, rel.Version, "the version "+rel.Version); err != nil {
			return err
		}
		if !rel.Yanked {
			return derrors.New(derrors.Conflict, "Release %s is not yanked.", rel.Version)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET yanked = FALSE, yanked_reason = '' WHERE id = $1`, rel.ID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, rel.Version, "unyank release", a.Username); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.ProjectReleaseUnyank, map[string]any{"version": rel.Version,
			"canonical_version": rel.CanonicalVersion, "submitted_by": a.Username}); err != nil {
			return err
		}
		return s.tellAboutRelease(ctx, tx, a, p, rel, mail.TemplateUnyankedRelease, nil)
	})
}

// releaseForChange loads an owned project and one of its releases, in tx.
// A version that does not parse names no release.
func (s *Service) releaseForChange(ctx context.Context, tx *sql.Tx, a Actor, normalizedName, version string) (*Project, *Release, error) {
	p, err := ownedForChange(ctx, tx, a, normalizedName)
	if err != nil {
		return nil, nil, err
	}
	v, err := pep.ParseVersion(version)
	if err != nil {
		return nil, nil, derrors.New(derrors.NotFound, "%s has no release %s.", p.Name, version)
	}
	rel, err := getRelease(ctx, tx, p.ID, v)
	if errors.Is(err, derrors.NotFound) {
		return nil, nil, derrors.New(derrors.NotFound, "%s has no release %s.", p.Name, version)
	}
	if err != nil {
		return nil, nil, err
	}
	return p, rel, nil
}

// tellAboutRelease emails the collaborators about a change to a release.
func (s *Service) tellAboutRelease(ctx context.Context, tx *sql.Tx, a Actor, p *Project, rel *Release, template string, data map[string]any) error {
	cs, err := collaborators(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	d := map[string]any{"Version": rel.Version, "ReleaseDate": day(rel.CreatedAt), "Submitter": a.Username, "SubmitterRole": roleOf(cs, a.UserID)}
	for k, v := range data {
		d[k] = v
	}
	return s.tellCollaborators(ctx, tx, cs, p, template, d)
}
