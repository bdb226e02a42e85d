package project

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// LimitsForm is what an administrator sets on a project, as typed: an
// empty value takes the site's default.
type LimitsForm struct {
	UploadLimitMiB    string // largest file, in MiB
	TotalSizeLimitGiB string // all files together, in GiB
	ReleaseAgeDays    string // no new files on a release older than this
}

// Upper bounds of what the form takes, so that a typo cannot overflow.
const (
	maxUploadLimitMiB = 1 << 20 // 1 TiB
	maxTotalLimitGiB  = 1 << 20
	maxReleaseAgeDays = 36500
)

// SetLimits sets a project's upload limits and release-age policy, for
// administrators (on PyPI the limits are an administrator's too; the
// release-age override is theirs here as well, because the policy guards
// installers against a hijacked owner account adding files to a release
// everyone trusts, and an owner's switch would hand that account the key).
// Each value that changes is its own event. Nothing changes unless every
// value is good.
func (s *Service) SetLimits(ctx context.Context, a Actor, normalizedName string, f LimitsForm) error {
	upload, err := parseLimit(f.UploadLimitMiB, "upload_limit", maxUploadLimitMiB, "The largest file", "MiB")
	if err != nil {
		return err
	}
	total, err := parseLimit(f.TotalSizeLimitGiB, "total_size_limit", maxTotalLimitGiB, "The total size", "GiB")
	if err != nil {
		return err
	}
	days, err := parseLimit(f.ReleaseAgeDays, "release_age_days", maxReleaseAgeDays, "The number of days", "days")
	if err != nil {
		return err
	}
	if upload.Valid {
		upload.Int64 <<= 20
	}
	if total.Valid {
		total.Int64 <<= 30
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := requireAdmin(ctx, tx, a); err != nil {
			return err
		}
		p, err := getProject(ctx, tx, normalizedName)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET upload_limit = $1, total_size_limit = $2, release_age_days = $3 WHERE id = $4`,
			upload, total, days, p.ID); err != nil {
			return err
		}
		changes := []struct {
			old, new sql.NullInt64
			tag      string
			shown    func(int64) string
		}{
			{p.UploadLimit, upload, audit.AdminProjectUploadLimit, func(n int64) string { return strconv.FormatInt(n>>20, 10) + " MiB" }},
			{p.TotalSizeLimit, total, audit.AdminProjectTotalSizeLimit, func(n int64) string { return strconv.FormatInt(n>>30, 10) + " GiB" }},
			{p.ReleaseAgeDays, days, audit.AdminProjectReleaseAge, func(n int64) string { return strconv.FormatInt(n, 10) }},
		}
		for _, c := range changes {
			if c.old == c.new {
				continue
			}
			add := map[string]any{}
			if c.new.Valid {
				add["limit"] = c.shown(c.new.Int64)
				if c.tag == audit.AdminProjectReleaseAge {
					add = map[string]any{"days": c.new.Int64}
				}
			}
			if err := s.record(ctx, tx, a, p, c.tag, add); err != nil {
				return err
			}
		}
		return nil
	})
}

// parseLimit reads one whole number between 1 and most; "" is none.
func parseLimit(v, field string, most int64, what, unit string) (sql.NullInt64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return sql.NullInt64{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > most {
		return sql.NullInt64{}, derrors.InField(derrors.Invalid, field,
			"%s must be a whole number of %s from 1 to %d, or empty for the site's default; got %q.", what, unit, most, v)
	}
	return sql.NullInt64{Int64: n, Valid: true}, nil
}

// ReleaseAgeDays is the release-age policy that applies to p.
func (s *Service) ReleaseAgeDays(p *Project) int {
	if p != nil && p.ReleaseAgeDays.Valid {
		return int(p.ReleaseAgeDays.Int64)
	}
	return s.limits.ReleaseAgeDays
}

// SiteLimits returns the site's defaults, for the pages that show what
// applies when a project sets none.
func (s *Service) SiteLimits() Limits { return s.limits }
