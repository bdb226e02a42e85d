package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// index is a database with one project and n files (each with a metadata
// file), their blobs in a filesystem store.
type index struct {
	db     *db.DB
	store  *blob.FS
	secret string
	keys   []string
}

func newIndex(t *testing.T, d *db.DB, n int) *index {
	t.Helper()
	store, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix := &index{db: d, store: store, secret: filepath.Join(t.TempDir(), "secret.key")}
	if err := os.WriteFile(ix.secret, []byte("00112233\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var pid, rid int64
	if err := d.QueryRow(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ('p', 'p', 'p', $1) RETURNING id`, now).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if err := d.QueryRow(`INSERT INTO releases (project_id, version, canonical_version, created_at) VALUES ($1, '1.0', '1', $2) RETURNING id`, pid, now).Scan(&rid); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := strings.Repeat(string(rune('a'+i)), 100+i)
		meta := "Metadata-Version: 2.1\nName: p\n" + body[:5]
		key := "ab/cd/" + hexSum(body) + "/p-1.0-" + string(rune('a'+i)) + ".whl"
		mkey := key + ".metadata"
		for k, v := range map[string]string{key: body, mkey: meta} {
			if err := store.Put(context.Background(), k, strings.NewReader(v)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Exec(`INSERT INTO files (release_id, project_id, filename, packagetype, python_version, size, md5_digest, sha256_digest,
			blake2_256_digest, blob_key, metadata_sha256, metadata_key, metadata_size, uploaded_at)
			VALUES ($1, $2, $3, 'bdist_wheel', 'py3', $4, '', $5, $6, $7, $8, $9, $10, $11)`,
			rid, pid, filepath.Base(key), len(body), hexSum(body), hexSum(body), key, hexSum(meta), mkey, len(meta), now); err != nil {
			t.Fatal(err)
		}
		ix.keys = append(ix.keys, key, mkey)
	}
	return ix
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (ix *index) take(t *testing.T, dest string) (*Manifest, error) {
	t.Helper()
	return Take(context.Background(), Options{DB: ix.db, Store: ix.store, SecretFile: ix.secret, Dest: dest})
}

// TestBackupAndRestore: a backup lists and holds every file and metadata
// file, with its digest; a restore brings them all back, checked; progress
// is reported to the end.
func TestBackupAndRestore(t *testing.T) {
	ix := newIndex(t, dbtest.NewSQLite(t), 3)
	dest := filepath.Join(t.TempDir(), "b")
	m, err := ix.take(t, dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 6 || m.Secret != SecretName || m.Dialect != "sqlite" {
		t.Fatalf("manifest: %d files, secret %q, dialect %q; want 6, %q, sqlite", len(m.Files), m.Secret, m.Dialect, SecretName)
	}
	if _, err := ReadManifest(dest); err != nil {
		t.Fatal(err)
	}

	target := t.TempDir()
	store, err := blob.NewFS(filepath.Join(target, "files"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var last [2]int
	res, err := Restore(context.Background(), RestoreOptions{Src: dest, Dialect: db.SQLite, SQLitePath: filepath.Join(target, "gatehouse.db"),
		Store: store, SecretFile: filepath.Join(target, "secret.key"),
		Progress: func(done, total int, _, _ int64) { last = [2]int{done, total} }})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Secret || last != [2]int{6, 6} {
		t.Errorf("restore: secret %v, last progress %v; want true, [6 6]", res.Secret, last)
	}
	for _, k := range ix.keys {
		f, err := store.Open(context.Background(), k)
		if err != nil {
			t.Errorf("restored store lacks %s: %v", k, err)
			continue
		}
		f.Close()
	}
	restored, err := db.Open(context.Background(), "sqlite:"+filepath.Join(target, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	var n int
	if err := restored.QueryRow(`SELECT count(*) FROM files`).Scan(&n); err != nil || n != 3 {
		t.Errorf("restored database: %d files, %v; want 3", n, err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "secret.key")); err != nil || string(b) != "00112233\n" {
		t.Errorf("restored secret %q, %v", b, err)
	}
}

// TestBackupRefuses: a backup never writes into a non-empty directory, and
// stops (saying to run it again) when a listed file is gone from the store.
func TestBackupRefuses(t *testing.T) {
	ix := newIndex(t, dbtest.NewSQLite(t), 2)
	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, "old"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.take(t, dest); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("backup into a non-empty directory: %v, want ErrNotEmpty", err)
	}
	if err := ix.store.Delete(context.Background(), ix.keys[1]); err != nil {
		t.Fatal(err)
	}
	dest = filepath.Join(t.TempDir(), "b")
	_, err := ix.take(t, dest)
	if err == nil || !strings.Contains(err.Error(), "run the backup again") {
		t.Errorf("backup with a listed file missing: %v, want an error saying to run it again", err)
	}
	if _, err := ReadManifest(dest); err == nil {
		t.Error("the failed backup has a manifest: it would pass for a complete one")
	}
}

// TestRestoreRefuses: a damaged backup, a non-empty target or a backup of
// the other database kind is refused before anything is written.
func TestRestoreRefuses(t *testing.T) {
	ix := newIndex(t, dbtest.NewSQLite(t), 2)
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := ix.take(t, dest); err != nil {
		t.Fatal(err)
	}
	fresh := func(t *testing.T) (RestoreOptions, *blob.FS, string) {
		target := t.TempDir()
		store, err := blob.NewFS(filepath.Join(target, "files"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return RestoreOptions{Src: dest, Dialect: db.SQLite, SQLitePath: filepath.Join(target, "gatehouse.db"), Store: store,
			SecretFile: filepath.Join(target, "secret.key")}, store, target
	}
	untouched := func(t *testing.T, store *blob.FS, target string) {
		t.Helper()
		n := 0
		store.List(context.Background(), "", func(string, blob.Info) error { n++; return nil })
		if n != 0 {
			t.Errorf("the refused restore stored %d files", n)
		}
		for _, f := range []string{"gatehouse.db", "secret.key"} {
			if _, err := os.Stat(filepath.Join(target, f)); err == nil {
				t.Errorf("the refused restore wrote %s", f)
			}
		}
	}

	t.Run("other database kind", func(t *testing.T) {
		o, store, target := fresh(t)
		o.Dialect = db.Postgres
		if _, err := Restore(context.Background(), o); !errors.Is(err, ErrMismatch) {
			t.Errorf("SQLite backup into PostgreSQL: %v, want ErrMismatch", err)
		}
		untouched(t, store, target)
	})
	t.Run("non-empty store", func(t *testing.T) {
		o, store, target := fresh(t)
		if err := store.Put(context.Background(), "zz/other.whl", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(context.Background(), o); !errors.Is(err, ErrNotEmpty) {
			t.Errorf("restore into a store with files: %v, want ErrNotEmpty", err)
		}
		if _, err := os.Stat(filepath.Join(target, "gatehouse.db")); err == nil {
			t.Error("the refused restore wrote the database")
		}
		o.Force = true
		if _, err := Restore(context.Background(), o); err != nil {
			t.Errorf("the same with Force: %v", err)
		}
	})
	t.Run("damaged backup", func(t *testing.T) {
		o, store, target := fresh(t)
		path := filepath.Join(dest, FilesDir, filepath.FromSlash(ix.keys[2]))
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(path, good, 0o600) })
		bad := append([]byte{}, good...)
		bad[0] ^= 1
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(context.Background(), o); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), ix.keys[2]) {
			t.Errorf("restore of a damaged backup: %v, want ErrDamaged naming %s", err, ix.keys[2])
		}
		untouched(t, store, target)
	})
}
