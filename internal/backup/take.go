package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
)

// Options says what to back up and where.
type Options struct {
	DB          *db.DB     // the index's database, open
	DatabaseURL string     // its URL: pg_dump connects with it (PostgreSQL)
	Store       blob.Store // the package files
	SecretFile  string     // the server secret's file; "" when it is configured directly
	Dest        string     // the backup directory: missing or empty
	Progress    Progress   // may be nil
	Now         func() time.Time
	PgDump      string // the pg_dump program (default "pg_dump" on PATH)
}

// Take writes a consistent backup to o.Dest while the server runs.
func Take(ctx context.Context, o Options) (*Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = func(int, int, int64, int64) {}
	}
	if err := requireEmpty(o.Dest); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dest, FilesDir), 0o700); err != nil {
		return nil, err
	}
	m := &Manifest{Format: Format, Created: o.Now().UTC(), Dialect: string(o.DB.Dialect)}
	var err error
	switch o.DB.Dialect {
	case db.SQLite:
		m.Database = SQLiteName
		m.Files, err = snapshotSQLite(ctx, o.DB, filepath.Join(o.Dest, SQLiteName))
	case db.Postgres:
		m.Database = PgDumpName
		m.Files, err = snapshotPostgres(ctx, o, filepath.Join(o.Dest, PgDumpName))
	default:
		err = fmt.Errorf("unknown database kind %q", o.DB.Dialect)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range m.Files {
		m.Bytes += e.Size
	}
	var done int64
	for i, e := range m.Files {
		if err := copyOut(ctx, o.Store, e, filepath.Join(o.Dest, FilesDir, filepath.FromSlash(e.Key))); err != nil {
			return nil, err
		}
		done += e.Size
		o.Progress(i+1, len(m.Files), done, m.Bytes)
	}
	if o.SecretFile != "" {
		if err := copyFile(o.SecretFile, filepath.Join(o.Dest, SecretName)); err != nil {
			return nil, fmt.Errorf("copy the server secret: %w", err)
		}
		m.Secret = SecretName
	}
	if err := writeManifest(o.Dest, m); err != nil {
		return nil, err
	}
	return m, nil
}

// requireEmpty accepts a missing or empty directory: a backup never
// overwrites or mixes with another.
func requireEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%w: %s holds %d entries", ErrNotEmpty, dir, len(ents))
	}
	return nil
}

// ErrNotEmpty is returned (wrapped) for a backup directory, or a restore
// target, that already holds something.
var ErrNotEmpty = errors.New("directory not empty")

// filesQuery lists every blob a database names, with what it must hash
// to: each file and its PEP 658 metadata file.
const filesQuery = `SELECT blob_key, size, sha256_digest, metadata_key, metadata_size, metadata_sha256 FROM files ORDER BY blob_key`

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func listFiles(ctx context.Context, q querier) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, filesQuery)
	if err != nil {
		return nil, fmt.Errorf("list the files: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var mKey, mSHA sql.NullString
		var mSize sql.NullInt64
		if err := rows.Scan(&e.Key, &e.Size, &e.SHA256, &mKey, &mSize, &mSHA); err != nil {
			return nil, err
		}
		out = append(out, e)
		if mKey.Valid {
			out = append(out, Entry{Key: mKey.String, Size: mSize.Int64, SHA256: mSHA.String})
		}
	}
	return out, rows.Err()
}

// snapshotSQLite copies the database with VACUUM INTO, which reads it in
// one transaction (WAL mode lets the server go on writing meanwhile), and
// lists the files from the copy.
func snapshotSQLite(ctx context.Context, d *db.DB, path string) ([]Entry, error) {
	if _, err := d.ExecContext(ctx, `VACUUM INTO $1`, path); err != nil {
		return nil, fmt.Errorf("copy the SQLite database: %w", err)
	}
	snap, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	return listFiles(ctx, snap)
}

// snapshotPostgres runs pg_dump in a snapshot exported by a transaction
// that also lists the files, so that the dump and the list are the same
// moment of the database.
func snapshotPostgres(ctx context.Context, o Options, path string) ([]Entry, error) {
	tx, err := o.DB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var snapshot string
	if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("export a snapshot: %w", err)
	}
	files, err := listFiles(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := pgDump(ctx, o, snapshot, path); err != nil {
		return nil, err
	}
	return files, nil
}

// copyOut copies one blob into the backup, checking its sha256.
func copyOut(ctx context.Context, s blob.Store, e Entry, path string) error {
	f, err := s.Open(ctx, e.Key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("the file %s is listed in the database but not in the file store (deleted while the backup ran?); run the backup again", e.Key)
		}
		return fmt.Errorf("read %s: %w", e.Key, err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), f)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", e.Key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || !strings.EqualFold(got, e.SHA256) {
		return fmt.Errorf("%w: %s in the file store has %d bytes with sha256 %s; the database says %d bytes, sha256 %s", ErrDamaged, e.Key, n, got, e.Size, e.SHA256)
	}
	return nil
}

// ErrDamaged is returned (wrapped) for a file whose bytes do not match
// its digest.
var ErrDamaged = errors.New("file damaged")

// copyFile copies from to a new file to (mode 0600), synced.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFileSync(to, in, 0o600)
}

// writeFileSync writes r to a file and syncs it before it counts as
// written.
func writeFileSync(path string, r io.Reader, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeManifest writes the manifest last, by rename, so that its presence
// means the backup is complete.
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ManifestName+".tmp")
	if err := writeFileSync(tmp, bytes.NewReader(append(b, '\n')), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, ManifestName)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
