package upstream

// Pruning the cache: the store keeps every upstream file downloaded once,
// so it grows with what was ever installed. 'gatehouse upstream prune'
// removes the stored copies fetched before a cutoff (--older-than), or not
// downloaded since it (--unused-for); the rows stay, so the next download
// of such a file fetches it again and checks its digest again, as a first
// download does.

import (
	"context"
	"database/sql"
	"time"
)

// PruneBy is what a prune's cutoff is compared with.
type PruneBy int

const (
	// StoredBefore prunes the copies stored before the cutoff.
	StoredBefore PruneBy = iota
	// UnusedSince prunes the copies not downloaded since the cutoff: their
	// last download (to within a day, see downloadedEvery), or their
	// storing if that is later.
	UnusedSince
)

// PruneResult is what Prune removed (or, in a dry run, would remove).
type PruneResult struct {
	Files    int   // files and metadata files
	Bytes    int64 // the files' sizes as their pages gave them
	Projects int   // projects they belong to
}

// Prune removes the stored copies of upstream files, and of their PEP 658
// metadata, stored before cutoff or, by UnusedSince, not downloaded since
// then. A dry run only counts them. Each copy
// is its own step, blob first and then its row, so an interrupted run
// leaves every row true to the store: a row still marked stored has its
// blob, or lost it just now and is unmarked next. Not one transaction: a
// blob store is not transactional, and one copy at a time keeps a large
// cache from holding a long write lock.
func (s *Service) Prune(ctx context.Context, by PruneBy, cutoff time.Time, dryRun bool) (PruneResult, error) {
	type copy struct {
		sha, name string
		size      int64
		metadata  bool
	}
	var todo []copy
	rows, err := s.db.QueryContext(ctx, `SELECT sha256, normalized_name, size, stored_at, metadata_stored_at, downloaded_at FROM upstream_files
		WHERE stored_at IS NOT NULL OR metadata_stored_at IS NOT NULL ORDER BY sha256`)
	if err != nil {
		return PruneResult{}, err
	}
	for rows.Next() {
		var c copy
		var stored, mStored, downloaded sql.NullTime
		if err := rows.Scan(&c.sha, &c.name, &c.size, &stored, &mStored, &downloaded); err != nil {
			rows.Close()
			return PruneResult{}, err
		}
		// Compared here, not in SQL: SQLite keeps timestamps as text.
		old := func(at sql.NullTime) bool {
			if !at.Valid {
				return false
			}
			last := at.Time
			if by == UnusedSince && downloaded.Valid && downloaded.Time.After(last) {
				last = downloaded.Time
			}
			return last.Before(cutoff)
		}
		if old(stored) {
			todo = append(todo, c)
		}
		if old(mStored) {
			todo = append(todo, copy{sha: c.sha, name: c.name, metadata: true})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return PruneResult{}, err
	}
	var res PruneResult
	projects := map[string]bool{}
	for _, c := range todo {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !dryRun {
			if err := s.blobs.Delete(ctx, Key(c.sha, c.metadata)); err != nil {
				return res, err
			}
			col := "stored_at"
			if c.metadata {
				col = "metadata_stored_at"
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE upstream_files SET `+col+` = NULL WHERE sha256 = $1`, c.sha); err != nil {
				return res, err
			}
		}
		res.Files++
		res.Bytes += c.size
		projects[c.name] = true
		res.Projects = len(projects)
	}
	return res, nil
}

// Unstore marks a file's (or its metadata's) stored copy as gone, when a
// download finds its blob missing: pruned under it, or removed by hand.
// The download then fetches it again instead of failing.
func (s *Service) Unstore(ctx context.Context, e *Entry, metadata bool) error {
	col := "stored_at"
	if metadata {
		col = "metadata_stored_at"
	}
	_, err := s.db.ExecContext(ctx, `UPDATE upstream_files SET `+col+` = NULL WHERE sha256 = $1`, e.SHA256)
	return err
}
