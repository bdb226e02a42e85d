package project

// The fixture of the management tests: a project with two releases and
// three files, its bytes in a real blob store, an owner, a maintainer, a
// stranger and an administrator with verified addresses, and the real mail
// renderer queueing into the outbox.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

var mt0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type mfix struct {
	t      *testing.T
	d      *db.DB
	s      *Service
	blobs  *blob.FS
	clock  *testclock.Clock
	ctx    context.Context
	owner  Actor // alice
	maint  Actor // bob
	other  Actor // carol, no role
	admin  Actor // root
	files  map[string]seededFile
	projID int64
}

type seededFile struct {
	id      int64
	release string
	key     string
	content []byte
}

func newMfix(t *testing.T, d *db.DB) *mfix {
	t.Helper()
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	r, err := mail.NewRenderer("Gatehouse Test", "https://pypi.example.org")
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(mt0)
	f := &mfix{t: t, d: d, blobs: blobs, clock: clock, ctx: context.Background(), files: map[string]seededFile{}}
	f.s = NewService(d, blobs, Options{Limits: Limits{MaxFileSize: 100 << 20, MaxProjectSize: 10 << 30},
		HelpURL: "https://pypi.example.org/help/", Now: clock.Now, Notifier: mail.NewNotifier(r, clock.Now)})
	f.owner = f.user("alice", false)
	f.maint = f.user("bob", false)
	f.other = f.user("carol", false)
	f.admin = f.user("root", true)
	f.exec(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ('Demo-Pkg', 'demo-pkg', 'dem0pkg', $1)`, mt0.Add(-48*time.Hour))
	f.projID = f.int(`SELECT id FROM projects WHERE normalized_name = 'demo-pkg'`)
	f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner'), ($1, $3, 'Maintainer')`, f.projID, f.owner.UserID, f.maint.UserID)
	for _, v := range []string{"1.0", "2.0"} {
		f.exec(`INSERT INTO releases (project_id, version, canonical_version, created_at) VALUES ($1, $2, $3, $4)`,
			f.projID, v, strings.TrimSuffix(v, ".0"), mt0.Add(-24*time.Hour))
	}
	f.addFile("1.0", "demo_pkg-1.0.tar.gz", "sdist", false)
	f.addFile("1.0", "demo_pkg-1.0-py3-none-any.whl", "bdist_wheel", true)
	f.addFile("2.0", "demo_pkg-2.0-py3-none-any.whl", "bdist_wheel", true)
	return f
}

func (f *mfix) user(name string, admin bool) Actor {
	f.t.Helper()
	var id int64
	if err := f.d.QueryRow(`INSERT INTO users (username, username_key, is_admin, created_at) VALUES ($1, $1, $2, $3) RETURNING id`,
		name, admin, mt0).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	f.exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES ($1, $2, $2, TRUE, TRUE, $3)`,
		id, name+"@example.com", mt0)
	return Actor{UserID: id, Username: name}
}

// addFile lists a file of release v, its bytes (and a wheel's metadata)
// in the blob store, and its name in the filename log as uploads log it.
func (f *mfix) addFile(v, filename, kind string, metadata bool) {
	f.t.Helper()
	content := []byte("the bytes of " + filename)
	sum := blake2b.Sum256(content)
	b2 := hex.EncodeToString(sum[:])
	key := BlobKey(b2)
	if err := f.blobs.Put(f.ctx, key, bytes.NewReader(content)); err != nil {
		f.t.Fatal(err)
	}
	var metaKey sql.NullString
	if metadata {
		metaKey = sql.NullString{String: key + ".metadata", Valid: true}
		if err := f.blobs.Put(f.ctx, metaKey.String, strings.NewReader("Metadata-Version: 2.1\n")); err != nil {
			f.t.Fatal(err)
		}
	}
	rel := f.int(`SELECT id FROM releases WHERE project_id = $1 AND version = $2`, f.projID, v)
	var id int64
	err := f.d.QueryRow(`INSERT INTO files (release_id, project_id, filename, packagetype, python_version, size, md5_digest,
		sha256_digest, blake2_256_digest, blob_key, metadata_key, uploaded_at) VALUES ($1, $2, $3, $4, 'py3', $5, 'md5', 'sha', $6, $7, $8, $9) RETURNING id`,
		rel, f.projID, filename, kind, len(content), b2, key, metaKey, mt0.Add(-24*time.Hour)).Scan(&id)
	if err != nil {
		f.t.Fatal(err)
	}
	f.exec(`UPDATE projects SET total_size = total_size + $1 WHERE id = $2`, len(content), f.projID)
	f.exec(`INSERT INTO filename_log (filename, created_at, blake2_256_digest) VALUES ($1, $2, $3)`, filename, mt0, b2)
	f.files[filename] = seededFile{id: id, release: v, key: key, content: content}
}

func (f *mfix) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.d.Exec(q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *mfix) int(q string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.d.QueryRow(q, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (f *mfix) strings(q string, args ...any) []string {
	f.t.Helper()
	rows, err := f.d.Query(q, args...)
	if err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// tags are the project's event tags, oldest first.
func (f *mfix) tags() []string {
	return f.strings(`SELECT tag FROM events WHERE project_id = $1 ORDER BY id`, f.projID)
}

// mail is every queued email as "to: subject", sorted.
func (f *mfix) mail() []string {
	out := f.strings(`SELECT to_addr || ': ' || subject FROM outbox ORDER BY to_addr, id`)
	sort.Strings(out)
	return out
}

// hasBlob reports whether the store holds key.
func (f *mfix) hasBlob(key string) bool {
	_, err := f.blobs.Stat(f.ctx, key)
	return err == nil
}

// dbState is every row of the tables a management action can touch, as
// text, to prove that a refused action changed nothing.
func dbState(t *testing.T, d *db.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"projects", "releases", "files", "filename_log", "roles", "journal", "events", "outbox"} {
		rows, err := d.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var cells []string
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				cells = append(cells, fmt.Sprint(v))
			}
			lines = append(lines, strings.Join(cells, "|"))
		}
		rows.Close()
		sort.Strings(lines)
		fmt.Fprintf(&b, "%s:\n%s\n", table, strings.Join(lines, "\n"))
	}
	return b.String()
}
