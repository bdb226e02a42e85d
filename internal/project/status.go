package project

import (
	"context"
	"database/sql"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// maxReasonLen bounds the free text of a yank or a quarantine.
const maxReasonLen = 500

// Archive marks a project archived (PEP 792): it refuses uploads and stays
// installable, for a project its owners no longer expect to update. Owners
// only, and not while quarantined. PyPI sends no email for it, and neither
// does this.
func (s *Service) Archive(ctx context.Context, a Actor, normalizedName string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := ownedForChange(ctx, tx, a, normalizedName)
		if err != nil {
			return err
		}
		if p.Status == StatusArchived {
			return derrors.New(derrors.Conflict, "%s is already archived.", p.Name)
		}
		if err := s.setStatus(ctx, tx, a, p, StatusArchived, "archive project"); err != nil {
			return err
		}
		return s.record(ctx, tx, a, p, audit.ProjectArchiveEnter, nil)
	})
}

// Unarchive makes an archived project active again: it takes uploads.
func (s *Service) Unarchive(ctx context.Context, a Actor, normalizedName string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := ownedForChange(ctx, tx, a, normalizedName)
		if err != nil {
			return err
		}
		if p.Status != StatusArchived {
			return derrors.New(derrors.Conflict, "%s is not archived.", p.Name)
		}
		if err := s.setStatus(ctx, tx, a, p, StatusActive, "unarchive project"); err != nil {
			return err
		}
		return s.record(ctx, tx, a, p, audit.ProjectArchiveExit, nil)
	})
}

// Quarantine is for administrators: the project refuses uploads and
// changes, and nothing of it is served (PEP 792: an index MUST NOT offer a
// quarantined project's files), so pip cannot install it. Its owners still
// see it, and every owner and maintainer is emailed with the reason. An
// archived project can be quarantined; lifting the quarantine makes it
// active, as on PyPI.
func (s *Service) Quarantine(ctx context.Context, a Actor, normalizedName, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return derrors.InField(derrors.Invalid, "reason", "Say why the project is quarantined: its owners are told.")
	}
	if utf8.RuneCountInString(reason) > maxReasonLen {
		return derrors.InField(derrors.Invalid, "reason", "The reason is too long: at most %d characters.", maxReasonLen)
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := requireAdmin(ctx, tx, a); err != nil {
			return err
		}
		p, err := getProject(ctx, tx, normalizedName)
		if err != nil {
			return err
		}
		if p.Status == StatusQuarantined {
			return derrors.New(derrors.Conflict, "%s is already quarantined.", p.Name)
		}
		if err := s.setStatus(ctx, tx, a, p, StatusQuarantined, "project quarantined"); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.ProjectQuarantineEnter, map[string]any{"reason": reason}); err != nil {
			return err
		}
		cs, err := collaborators(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		return s.tellCollaborators(ctx, tx, cs, p, mail.TemplateProjectQuarantined, map[string]any{"Reason": reason})
	})
}

// ClearQuarantine lifts a quarantine: the project is active again, and its
// owners and maintainers are told.
func (s *Service) ClearQuarantine(ctx context.Context, a Actor, normalizedName string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := requireAdmin(ctx, tx, a); err != nil {
			return err
		}
		p, err := getProject(ctx, tx, normalizedName)
		if err != nil {
			return err
		}
		if p.Status != StatusQuarantined {
			return derrors.New(derrors.Conflict, "%s is not quarantined.", p.Name)
		}
		if err := s.setStatus(ctx, tx, a, p, StatusActive, "project quarantine cleared"); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.ProjectQuarantineExit, nil); err != nil {
			return err
		}
		cs, err := collaborators(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		return s.tellCollaborators(ctx, tx, cs, p, mail.TemplateQuarantineCleared, nil)
	})
}

// setStatus changes the status and journals it: the journal entry moves
// the project's serial, which is what makes every instance drop its cached
// Simple API page (the page carries the status).
func (s *Service) setStatus(ctx context.Context, tx *sql.Tx, a Actor, p *Project, status, action string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE projects SET status = $1, status_changed_at = $2 WHERE id = $3`,
		status, s.now().UTC(), p.ID); err != nil {
		return err
	}
	_, err := s.journal(ctx, tx, p.ID, p.Name, "", action, a.Username)
	return err
}
