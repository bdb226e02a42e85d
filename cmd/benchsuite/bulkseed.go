package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

// bulkSeed inserts filler projects p0000000 … straight into the SQLite
// database until there are `to` of them (spec Part 4.4: direct insertion,
// one transaction per 50,000 projects, prepared statements), each with one
// release and filesPer wheel rows. The rows are synthetic but unique
// (filenames, digests); no blobs exist, so the files cannot be downloaded,
// which no benchmark does. The server must be stopped: its caches would not
// learn of rows that bypass the journal.
//
// It returns how many projects it added and how long that took, which the
// report records as a proxy for bulk-import speed.
func bulkSeed(ctx context.Context, dataDir string, from, to, filesPer int) (int, time.Duration, error) {
	if to <= from {
		return 0, 0, nil
	}
	start := time.Now()
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(dataDir, "gatehouse.db"))
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	// Bulk loading is not what synchronous=FULL is for: a crash here
	// only loses a benchmark run.
	if _, err := d.ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		return 0, 0, err
	}
	var uploader int64
	if err := d.QueryRowContext(ctx, `SELECT id FROM users WHERE username = $1`, benchUser).Scan(&uploader); err != nil {
		return 0, 0, fmt.Errorf("bulk seed: the benchmark user: %w", err)
	}
	now := time.Now().UTC()
	const batch = 50000
	for lo := from; lo < to; lo += batch {
		hi := min(lo+batch, to)
		if err := d.InTx(ctx, func(tx *sql.Tx) error { return seedBatch(ctx, tx, lo, hi, filesPer, uploader, now) }); err != nil {
			return lo - from, time.Since(start), fmt.Errorf("bulk seed projects %d–%d: %w", lo, hi, err)
		}
	}
	// The planner's statistics, as a long-running index would have them.
	if _, err := d.ExecContext(ctx, `PRAGMA optimize`); err != nil {
		return to - from, time.Since(start), err
	}
	return to - from, time.Since(start), nil
}

func seedBatch(ctx context.Context, tx *sql.Tx, lo, hi, filesPer int, uploader int64, now time.Time) error {
	prep := func(q string) (*sql.Stmt, error) { return tx.PrepareContext(ctx, q) }
	insProject, err := prep(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at, last_serial) VALUES ($1, $2, $3, $4, $5) RETURNING id`)
	if err != nil {
		return err
	}
	defer insProject.Close()
	insRole, err := prep(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`)
	if err != nil {
		return err
	}
	defer insRole.Close()
	insRelease, err := prep(`INSERT INTO releases (project_id, version, canonical_version, summary, requires_python, uploader_id, created_at)
		VALUES ($1, '1.0', '1', 'benchsuite filler', '>=3.8', $2, $3) RETURNING id`)
	if err != nil {
		return err
	}
	defer insRelease.Close()
	insFile, err := prep(`INSERT INTO files (release_id, project_id, filename, packagetype, python_version, requires_python, size,
		md5_digest, sha256_digest, blake2_256_digest, blob_key, uploaded_at, uploader_id)
		VALUES ($1, $2, $3, 'bdist_wheel', 'py3', '>=3.8', 1024, $4, $5, $6, $7, $8, $9)`)
	if err != nil {
		return err
	}
	defer insFile.Close()
	for i := lo; i < hi; i++ {
		name := fillerName(i)
		var pid, rid int64
		if err := insProject.QueryRowContext(ctx, name, name, name, now, int64(i+1)).Scan(&pid); err != nil {
			return err
		}
		if _, err := insRole.ExecContext(ctx, pid, uploader); err != nil {
			return err
		}
		if err := insRelease.QueryRowContext(ctx, pid, uploader, now).Scan(&rid); err != nil {
			return err
		}
		for f := range filesPer {
			fn := fmt.Sprintf("%s-1.0-py3-none-any.whl", name)
			if f > 0 {
				fn = fmt.Sprintf("%s-1.0-%d-py3-none-any.whl", name, f) // build tag keeps names unique
			}
			sum := sha256.Sum256([]byte(fn))
			sha := hex.EncodeToString(sum[:])
			b2 := sha[32:] + sha[:32] // unique like the filename, and not the sha256
			if _, err := insFile.ExecContext(ctx, rid, pid, fn, sha[:32], sha, b2, b2[:2]+"/"+b2[2:4]+"/"+b2+"/"+fn, now, uploader); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillerName is the i-th filler project's name, normalized already.
func fillerName(i int) string { return fmt.Sprintf("p%07d", i) }
