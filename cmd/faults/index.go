package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
)

// The accounts every index gets. alice and bob upload (a verified address
// and a second factor, as PyPI requires); carol signs in with a password.
const (
	carolPassword = "soak-test-password-7Qx"
)

// startServer is newServer, setup and start, for the cases that need
// nothing changed in between; the caller stops (or kills) the server.
func (h *harness) startServer(ctx context.Context, name, dialect string, extra ...string) (*server, map[string]string, error) {
	s, err := h.newServer(ctx, name, dialect, extra...)
	if err != nil {
		return nil, nil, err
	}
	tokens, err := s.setup(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, nil, err
	}
	return s, tokens, nil
}

// newServer makes a new, empty index of dialect: a data directory under the
// harness's work directory and, for PostgreSQL, a new database on the
// harness's cluster. extra are serve flags.
func (h *harness) newServer(ctx context.Context, name, dialect string, extra ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{h: h, name: name + "-" + dialect, dialect: dialect, port: port,
		base: fmt.Sprintf("http://localhost:%d", port), args: extra}
	s.dataDir = filepath.Join(h.work, s.name)
	if err := os.MkdirAll(s.dataDir, 0o750); err != nil {
		return nil, err
	}
	switch dialect {
	case "sqlite":
		s.dbURL = "sqlite:" + filepath.Join(s.dataDir, "gatehouse.db")
	case "postgres":
		if h.pg == nil {
			return nil, errNoPostgres
		}
		s.dbURL, err = h.pg.createDB(ctx, strings.ReplaceAll(s.name, "-", "_"))
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

var errNoPostgres = errors.New("no PostgreSQL server")

// cli runs a gatehouse command on the index and returns its stdout.
func (s *server) cli(ctx context.Context, stdin string, args ...string) (string, error) {
	full := append(append([]string{}, args...), "--data-dir", s.dataDir, "--database-url", s.dbURL, "--base-url", s.base)
	cmd := exec.CommandContext(ctx, s.h.bin, full...)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// setup creates the index (as `migrate --create` does for an operator), the
// users and their API tokens.
func (s *server) setup(ctx context.Context) (tokens map[string]string, err error) {
	if _, err := s.cli(ctx, "", "migrate", "--create"); err != nil {
		return nil, err
	}
	tokens = map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.cli(ctx, "", "user", "create", "--username", u, "--email", u+"@example.com", "--email-verified", "--no-password"); err != nil {
			return nil, err
		}
		if err := s.addSecondFactor(ctx, u); err != nil {
			return nil, err
		}
		out, err := s.cli(ctx, "", "token", "create", "--user", u, "--description", "faults")
		if err != nil {
			return nil, err
		}
		tokens[u] = strings.TrimSpace(out)
	}
	if _, err := s.cli(ctx, carolPassword+"\n", "user", "create", "--username", "carol", "--email", "carol@example.com", "--email-verified", "--password-stdin"); err != nil {
		return nil, err
	}
	return tokens, nil
}

// addSecondFactor gives a user a placeholder authenticator-app row, as the
// end-to-end tests and the benchmark suite do: the upload check only asks
// whether a second factor exists, and the harness never signs in with it.
func (s *server) addSecondFactor(ctx context.Context, username string) error {
	d, err := db.Open(ctx, s.dbURL)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.ExecContext(ctx, `INSERT INTO totp_secrets (user_id, secret_enc, created_at)
		SELECT id, 'fault harness placeholder, never used to sign in', $1 FROM users WHERE username = $2`, time.Now().UTC(), username)
	return err
}

// fileRow is one row of the files table.
type fileRow struct {
	project, filename, version string
	blobKey, metaKey           string
	size                       int64
	sha256, metaSHA256         string
}

// state is what the index holds on disk and in its database.
type state struct {
	rows      []fileRow
	projects  []string // normalized names
	owners    map[string][]string
	blobs     map[string]int64 // key → size, temp files excluded
	temps     []string         // .tmp-* in the files directory (uploads being staged)
	orphans   []string         // blobs no row names
	missing   []string         // rows whose blob (or metadata) is missing or of the wrong size
	corrupt   []string         // rows whose blob's sha256 is wrong (checked rows only)
	integrity string           // PRAGMA integrity_check ("ok"); "n/a" on PostgreSQL
}

func (st *state) byFilename() map[string]fileRow {
	m := map[string]fileRow{}
	for _, r := range st.rows {
		m[r.filename] = r
	}
	return m
}

// inspect reads the database and walks the files. hashFiles selects the
// rows whose blobs are also hashed (nil: none). It works with the server
// stopped (after a kill: SQLite recovers its WAL as any opener would) or
// running.
func (s *server) inspect(ctx context.Context, hashFiles func(filename string) bool) (*state, error) {
	d, err := db.Open(ctx, s.dbURL)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st := &state{blobs: map[string]int64{}, owners: map[string][]string{}, integrity: "n/a"}
	if d.Dialect == db.SQLite {
		rows, err := d.QueryContext(ctx, `PRAGMA integrity_check`)
		if err != nil {
			return nil, err
		}
		var lines []string
		for rows.Next() {
			var l string
			rows.Scan(&l)
			lines = append(lines, l)
		}
		rows.Close()
		st.integrity = strings.Join(lines, "; ")
	}
	rows, err := d.QueryContext(ctx, `SELECT p.normalized_name, f.filename, r.version, f.blob_key, f.metadata_key, f.size, f.sha256_digest, f.metadata_sha256
		FROM files f JOIN projects p ON p.id = f.project_id JOIN releases r ON r.id = f.release_id ORDER BY f.id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r fileRow
		var mk, ms sql.NullString
		if err := rows.Scan(&r.project, &r.filename, &r.version, &r.blobKey, &mk, &r.size, &r.sha256, &ms); err != nil {
			rows.Close()
			return nil, err
		}
		r.metaKey, r.metaSHA256 = mk.String, ms.String
		st.rows = append(st.rows, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	prow, err := d.QueryContext(ctx, `SELECT p.normalized_name, COALESCE(u.username, '') FROM projects p
		LEFT JOIN roles ro ON ro.project_id = p.id AND ro.role = 'Owner' LEFT JOIN users u ON u.id = ro.user_id ORDER BY p.normalized_name`)
	if err != nil {
		return nil, err
	}
	for prow.Next() {
		var p, u string
		prow.Scan(&p, &u)
		if _, ok := st.owners[p]; !ok {
			st.projects = append(st.projects, p)
		}
		if u != "" {
			st.owners[p] = append(st.owners[p], u)
		} else if st.owners[p] == nil {
			st.owners[p] = []string{}
		}
	}
	prow.Close()

	files := filepath.Join(s.dataDir, "files")
	err = filepath.WalkDir(files, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(files, p)
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(e.Name(), blob.TempPrefix) {
			st.temps = append(st.temps, key)
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		st.blobs[key] = fi.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, r := range st.rows {
		named[r.blobKey] = true
		if size, ok := st.blobs[r.blobKey]; !ok || size != r.size {
			st.missing = append(st.missing, r.filename)
		} else if hashFiles != nil && hashFiles(r.filename) {
			if sum, err := sha256File(filepath.Join(files, r.blobKey)); err != nil || sum != r.sha256 {
				st.corrupt = append(st.corrupt, r.filename)
			}
		}
		if r.metaKey != "" {
			named[r.metaKey] = true
			if _, ok := st.blobs[r.metaKey]; !ok {
				st.missing = append(st.missing, r.filename+".metadata")
			} else if hashFiles != nil && hashFiles(r.filename) {
				if sum, err := sha256File(filepath.Join(files, r.metaKey)); err != nil || sum != r.metaSHA256 {
					st.corrupt = append(st.corrupt, r.filename+".metadata")
				}
			}
		}
	}
	for k := range st.blobs {
		if !named[k] {
			st.orphans = append(st.orphans, k)
		}
	}
	return st, nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
