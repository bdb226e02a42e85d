package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
)

// RestoreOptions says which backup goes where.
type RestoreOptions struct {
	Src string // the backup directory

	// The target database: a SQLite file, or a PostgreSQL database (empty
	// unless Force) that pg_restore loads.
	Dialect     db.Dialect
	SQLitePath  string
	DatabaseURL string
	PgRestore   string // the pg_restore program (default "pg_restore" on PATH)

	Store      blob.Store // the target file store
	SecretFile string     // where the server secret goes; "" when it is configured directly

	// Force overwrites a database, files and secret that are already
	// there. Without it Restore changes nothing when any of them exists.
	Force    bool
	Progress Progress // verifying the backup, then storing the files
}

// Restored is what a restore did.
type Restored struct {
	Manifest *Manifest
	Secret   bool // the server secret was restored into SecretFile
}

// Restore checks every file of the backup against its digest, refuses a
// target that already holds an index unless Force, and then loads the
// database, stores the files (reading each back to check it) and puts the
// server secret in place.
func Restore(ctx context.Context, o RestoreOptions) (*Restored, error) {
	if o.Progress == nil {
		o.Progress = func(int, int, int64, int64) {}
	}
	m, err := ReadManifest(o.Src)
	if err != nil {
		return nil, err
	}
	if m.Dialect != string(o.Dialect) {
		return nil, fmt.Errorf("%w: the backup is of a %s database and the target is %s; restore into the same kind of database", ErrMismatch, dialectName(m.Dialect), dialectName(string(o.Dialect)))
	}
	// The backup first, whole: a damaged one must not half-replace an index.
	var done int64
	for i, e := range m.Files {
		if err := checkFile(filepath.Join(o.Src, FilesDir, filepath.FromSlash(e.Key)), e); err != nil {
			return nil, err
		}
		done += e.Size
		o.Progress(i+1, len(m.Files), done, m.Bytes)
	}
	if _, err := os.Stat(filepath.Join(o.Src, m.Database)); err != nil {
		return nil, fmt.Errorf("the backup's database: %w", err)
	}
	if !o.Force {
		if err := o.requireEmptyTarget(ctx); err != nil {
			return nil, err
		}
	}

	switch o.Dialect {
	case db.SQLite:
		err = restoreSQLite(filepath.Join(o.Src, m.Database), o.SQLitePath)
	case db.Postgres:
		err = pgRestore(ctx, o.PgRestore, o.DatabaseURL, filepath.Join(o.Src, m.Database), o.Force)
	}
	if err != nil {
		return nil, fmt.Errorf("restore the database: %w", err)
	}
	done = 0
	for i, e := range m.Files {
		if err := storeFile(ctx, o.Store, filepath.Join(o.Src, FilesDir, filepath.FromSlash(e.Key)), e); err != nil {
			return nil, err
		}
		done += e.Size
		o.Progress(i+1, len(m.Files), done, m.Bytes)
	}
	res := &Restored{Manifest: m}
	if m.Secret != "" && o.SecretFile != "" {
		if err := os.MkdirAll(filepath.Dir(o.SecretFile), 0o700); err != nil {
			return nil, err
		}
		if err := copyFile(filepath.Join(o.Src, m.Secret), o.SecretFile); err != nil {
			return nil, fmt.Errorf("restore the server secret: %w", err)
		}
		res.Secret = true
	}
	return res, nil
}

// ErrMismatch is returned (wrapped) for a backup of one kind of database
// restored into the other.
var ErrMismatch = errors.New("backup and target differ")

func dialectName(d string) string {
	if d == string(db.Postgres) {
		return "PostgreSQL"
	}
	return "SQLite"
}

// requireEmptyTarget refuses to go on when the target already holds a
// database, a file or a secret.
func (o RestoreOptions) requireEmptyTarget(ctx context.Context) error {
	var found []string
	switch o.Dialect {
	case db.SQLite:
		for _, p := range []string{o.SQLitePath, o.SQLitePath + "-wal"} {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
				found = append(found, "the database "+p)
				break
			}
		}
	case db.Postgres:
		n, err := pgTables(ctx, o.DatabaseURL)
		if err != nil {
			return err
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("a PostgreSQL database with %d tables", n))
		}
	}
	errFound := errors.New("found")
	err := o.Store.List(ctx, "", func(string, blob.Info) error { return errFound })
	if errors.Is(err, errFound) {
		found = append(found, "package files in the file store")
	} else if err != nil {
		return fmt.Errorf("look into the file store: %w", err)
	}
	if o.SecretFile != "" {
		if _, err := os.Stat(o.SecretFile); err == nil {
			found = append(found, "the server secret "+o.SecretFile)
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: the target already holds %s", ErrNotEmpty, strings.Join(found, ", "))
	}
	return nil
}

// pgTables counts the tables in the target database's schema.
func pgTables(ctx context.Context, databaseURL string) (int, error) {
	d, err := db.Open(ctx, databaseURL)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var n int
	err = d.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n)
	return n, err
}

// restoreSQLite puts the backup's database file in place, by rename, and
// removes the write-ahead log of any database it replaces: SQLite would
// otherwise replay that old log into the restored file.
func restoreSQLite(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		return err
	}
	tmp := to + ".restore-tmp"
	if err := copyFile(from, tmp); err != nil {
		return err
	}
	for _, p := range []string{to + "-wal", to + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(tmp, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkFile compares a file with its entry.
func checkFile(path string, e Entry) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("the backup lacks %s: %w", e.Key, err)
	}
	defer f.Close()
	return checkReader(f, e, "in the backup")
}

func checkReader(r io.Reader, e Entry, where string) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", e.Key, where, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || !strings.EqualFold(got, e.SHA256) {
		return fmt.Errorf("%w: %s %s has %d bytes with sha256 %s; the manifest says %d bytes, sha256 %s", ErrDamaged, e.Key, where, n, got, e.Size, e.SHA256)
	}
	return nil
}

// storeFile puts one file into the store and reads it back.
func storeFile(ctx context.Context, s blob.Store, path string, e Entry) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = s.Put(ctx, e.Key, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("store %s: %w", e.Key, err)
	}
	b, err := s.Open(ctx, e.Key)
	if err != nil {
		return fmt.Errorf("read back %s: %w", e.Key, err)
	}
	defer b.Close()
	return checkReader(b, e, "in the file store")
}
