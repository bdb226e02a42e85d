package project

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/failpoint"
)

// Blobs and the rows that name them
//
// An upload's bytes are staged (temporary files, invisible under any key)
// while it is checked. Removing an unlisted blob is a race with any upload
// of the same bytes that is being listed. Two rules settle it, both under
// the blob's lock (lockBlob):
//
//   - a blob is deleted only by a transaction that holds the lock and finds
//     no row naming it (dropIfUnreferenced);
//   - an upload's staged bytes become blobs under their keys only inside
//     the transaction that lists them, once it holds the lock (storeBlobs).
//
// So a committed row always has its bytes, whichever comes first, and
// neither side waits for anything but the other's transaction. Only a
// crash, or a transaction that fails after storeBlobs, leaves a blob no
// row names: the upload removes it (dropUnlisted), else the next start or
// 'gatehouse sweep' does (SweepOrphans).

// lockBlob takes the lock that orders deleting the blobs of file key with
// listing them. On SQLite every transaction starts with BEGIN IMMEDIATE and
// so already holds the database's one write lock, across processes too. On
// PostgreSQL it is a transaction-scoped advisory lock on the blob's digest.
func (s *Service) lockBlob(ctx context.Context, tx *sql.Tx, fileKey string) error {
	if s.db.Dialect != db.Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, blobLockClass, blobLockID(fileKey))
	return err
}

// blobLockClass is the first key of the advisory locks of blobs ("gh" in
// ASCII), keeping them apart from other uses of advisory locks.
const blobLockClass = 0x6768

// blobLockID is a 32-bit lock id for a file key: the first bytes of its
// blake2b digest (the key's last segment).
func blobLockID(fileKey string) int32 {
	base := path.Base(fileKey)
	if len(base) < 8 {
		return 0 // keys are always digests; any id still locks correctly
	}
	b, err := hex.DecodeString(base[:8])
	if err != nil {
		return 0
	}
	return int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
}

// stageMetadata stages a wheel's METADATA, durably, to be published by
// storeBlobs.
func (s *Service) stageMetadata(ctx context.Context, meta []byte) (blob.Staged, error) {
	st, err := s.blobs.Stage(ctx)
	if err != nil {
		return nil, OutOfSpace(fmt.Errorf("store metadata: %w", err))
	}
	_, err = st.Write(meta)
	if err == nil {
		err = st.Sync()
	}
	if err != nil {
		st.Discard()
		return nil, OutOfSpace(fmt.Errorf("store metadata: %w", err))
	}
	return st, nil
}

// storeBlobs publishes an upload's staged file, and a wheel's staged
// METADATA, under their keys: inside the transaction that lists them,
// after its rows are written (a refused insert publishes nothing), and
// under the blob's lock. Their bytes were synced before the transaction,
// so what remains here is a rename and a directory fsync each.
func (s *Service) storeBlobs(ctx context.Context, tx *sql.Tx, c *Spooled, key string, m *storedMetadata, ms blob.Staged) error {
	if err := s.lockBlob(ctx, tx, key); err != nil {
		return err
	}
	if err := c.store(ctx, key); err != nil {
		return OutOfSpace(err)
	}
	failpoint.Hit("upload-file-stored")
	if ms != nil {
		if err := ms.Commit(ctx, m.key); err != nil {
			return OutOfSpace(fmt.Errorf("store metadata: %w", err))
		}
	}
	return nil
}

// isBlobKey reports whether key has the shape of a file's key (BlobKey) or
// of its metadata's: the sweep leaves anything else alone.
func isBlobKey(key string) bool {
	k := fileKeyOf(key)
	d := path.Base(k)
	if len(d) != 64 || k != BlobKey(d) {
		return false
	}
	_, err := hex.DecodeString(d)
	return err == nil
}

// fileKeyOf is the key of the file a blob belongs to: the key itself, or
// the file's for its PEP 658 metadata.
func fileKeyOf(key string) string { return strings.TrimSuffix(key, ".metadata") }

// referenced reports whether a row names the blob key.
func referenced(ctx context.Context, q querier, key string) (bool, error) {
	var blobKey string
	var metaKey sql.NullString
	err := q.QueryRowContext(ctx, `SELECT blob_key, metadata_key FROM files WHERE blake2_256_digest = $1`,
		path.Base(fileKeyOf(key))).Scan(&blobKey, &metaKey)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return blobKey == key || (metaKey.Valid && metaKey.String == key), nil
}

// dropIfUnreferenced deletes the blob key if no row names it, and reports
// whether it did. See the rules at the top of this file.
func (s *Service) dropIfUnreferenced(ctx context.Context, key string) (bool, error) {
	if !isBlobKey(key) {
		return false, nil // not ours
	}
	// Most blobs are listed: a plain read settles those without a
	// transaction.
	if ref, err := referenced(ctx, s.db, key); err != nil || ref {
		return false, err
	}
	dropped := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockBlob(ctx, tx, fileKeyOf(key)); err != nil {
			return err
		}
		if ref, err := referenced(ctx, tx, key); err != nil || ref {
			return err
		}
		if err := s.blobs.Delete(ctx, key); err != nil {
			return err
		}
		dropped = true
		return nil
	})
	return dropped, err
}

// dropUnlisted removes the blobs an upload wrote when the upload was not
// listed after all (it lost a race at commit, or the database failed), so
// that a refused upload leaves nothing behind. It runs even when the
// client has gone. A failure only leaves an orphan for SweepOrphans.
//
// When the upload failed because the database is unreachable or busy, the
// removal would only fail or wait too: it is queued for after the next
// commit, and the client gets its answer at once.
func (s *Service) dropUnlisted(ctx context.Context, cause error, key string, m *storedMetadata) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	keys := []string{key}
	if m != nil {
		keys = append(keys, m.key)
	}
	for _, k := range keys {
		if errors.Is(cause, derrors.Unavailable) {
			s.unlisted.add(k)
			continue
		}
		if _, err := s.dropIfUnreferenced(ctx, k); err != nil {
			// Most likely the database is down, which is also why the
			// upload failed: try again once it works.
			s.unlisted.add(k)
			s.log.Info("could not remove the blob of an upload that was not listed yet; will retry", "key", k, "err", err)
		}
	}
}

// retryUnlisted removes the blobs dropUnlisted could not, now that a
// commit shows the database works again.
func (s *Service) retryUnlisted(ctx context.Context) {
	keys := s.unlisted.take()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, k := range keys {
		if _, err := s.dropIfUnreferenced(ctx, k); err != nil {
			s.unlisted.add(k)
			s.log.Warn("could not remove the blob of an upload that was not listed; will retry, and the next start or 'gatehouse sweep' removes it", "key", k, "err", err)
		}
	}
}

// unlistedQueue holds keys for retryUnlisted. It is bounded: past that, the
// start-up sweep (or 'gatehouse sweep') removes what is left.
type unlistedQueue struct {
	mu   sync.Mutex
	keys map[string]bool
}

const maxUnlisted = 10000

func (q *unlistedQueue) add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.keys == nil {
		q.keys = map[string]bool{}
	}
	if len(q.keys) < maxUnlisted {
		q.keys[key] = true
	}
}

func (q *unlistedQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.keys) == 0 {
		return nil
	}
	keys := make([]string, 0, len(q.keys))
	for k := range q.keys {
		keys = append(keys, k)
	}
	q.keys = nil
	return keys
}

// SweepOrphans removes package files and metadata files that no file row
// names and that were last written before before, and returns how many it
// removed. They are what a crash between writing an upload's bytes and
// committing it leaves behind. It is safe while uploads are in flight, in
// this process or another (see the rules at the top of this file); before
// only spares them needless work. Each removal is its own transaction.
func (s *Service) SweepOrphans(ctx context.Context, before time.Time) (int, error) {
	n, err := blob.SweepOrphans(ctx, s.blobs, before, s.dropIfUnreferenced)
	if err != nil {
		return n, fmt.Errorf("sweep orphan files: %w", err)
	}
	return n, nil
}
