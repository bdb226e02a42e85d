package project

// PEP 708 alternate locations: the project pages on other indexes that a
// project's owners say hold this same project (its PyPI page, say), so that
// an installer that merges several indexes may merge them without taking
// one for an attacker's copy. The Simple API lists them on the project's
// page as alternate-locations.

import (
	"context"
	"database/sql"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// The bounds of a project's alternate locations.
const (
	MaxAlternateLocations = 10
	MaxAlternateURL       = 500 // bytes
)

// AlternateLocations returns the project's alternate locations, in their
// owners' order.
func (s *Service) AlternateLocations(ctx context.Context, projectID int64) ([]string, error) {
	return alternateLocations(ctx, s.db, projectID)
}

// ParseAlternateLocations reads the alternate locations of a form: URLs
// separated by new lines or spaces, each an absolute http or https URL with
// a host and no user name or password, at most MaxAlternateLocations of at
// most MaxAlternateURL bytes. A URL given twice counts once.
func ParseAlternateLocations(text string) ([]string, error) {
	var out []string
	for _, u := range strings.Fields(text) {
		if len(u) > MaxAlternateURL {
			return nil, derrors.InField(derrors.Invalid, "alternate_locations", "An alternate location can be at most %d characters long; %q… is longer.", MaxAlternateURL, u[:40])
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil || p.Fragment != "" {
			return nil, derrors.InField(derrors.Invalid, "alternate_locations",
				"%q is not the address of a project's page on another index. Give absolute http or https URLs with no user name, password or #fragment, such as https://pypi.org/simple/example/.", u)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) > MaxAlternateLocations {
		return nil, derrors.InField(derrors.Invalid, "alternate_locations", "Give at most %d alternate locations; you gave %d.", MaxAlternateLocations, len(out))
	}
	return out, nil
}

// SetAlternateLocations replaces the project's alternate locations with
// those in text (ParseAlternateLocations; empty removes them all). Owners
// only, and audited; a journal entry moves the project's serial, so every
// instance renders its page again.
func (s *Service) SetAlternateLocations(ctx context.Context, a Actor, normalizedName, text string) (err error) {
	defer derrors.Wrap(&err, "project.SetAlternateLocations(%q)", normalizedName)
	urls, err := ParseAlternateLocations(text)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := ownedForChange(ctx, tx, a, normalizedName)
		if err != nil {
			return err
		}
		old, err := alternateLocations(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		if slices.Equal(old, urls) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM project_alternate_locations WHERE project_id = $1`, p.ID); err != nil {
			return err
		}
		for i, u := range urls {
			if _, err := tx.ExecContext(ctx, `INSERT INTO project_alternate_locations (project_id, position, url) VALUES ($1, $2, $3)`, p.ID, i, u); err != nil {
				return err
			}
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, "", "set alternate locations", a.Username); err != nil {
			return err
		}
		return s.record(ctx, tx, a, p, audit.ProjectAlternateLocationsChange, map[string]any{
			"alternate_locations": strings.Join(urls, " "), "previous_alternate_locations": strings.Join(old, " ")})
	})
}

func alternateLocations(ctx context.Context, q querier, projectID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT url FROM project_alternate_locations WHERE project_id = $1 ORDER BY position`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
