package main

// Backup and restore (issue 11 §5): a backup taken while twine keeps
// uploading, restored into a new index, holds every upload acknowledged
// before the backup began, every file with the digest the database lists;
// the restored index serves them and takes the old API token.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestE2EBackupWhileUploading(t *testing.T) {
	tools := e2eTools(t)
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) { e2eBackupScenario(t, dialect, tools) })
	}
}

func e2eBackupScenario(t *testing.T, dialect string, tools e2eToolSet) {
	srv := e2eStartServer(t, dialect)
	srv.createUser(t, "alice")
	tok := srv.createToken(t, "alice", "uploads during the backup")
	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 12
	wheels := make([]string, n)
	for i := range wheels {
		v := fmt.Sprintf("1.0.%d", i)
		wheels[i] = filepath.Join(work, e2eWheelName("busy-pkg", v))
		if err := os.WriteFile(wheels[i], e2eWheel(t, "busy-pkg", v, e2eMetadata("busy-pkg", v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	twine := func(url, file string) (string, error) {
		return e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", url+"/legacy/", "-u", "__token__", "-p", tok,
			"--non-interactive", "--disable-progress-bar", file)
	}
	var (
		mu     sync.Mutex
		acked  []string // filenames twine reported uploaded, in order
		failed []string
	)
	for _, w := range wheels[:2] {
		if out, err := twine(srv.URL, w); err != nil {
			t.Fatalf("twine upload %s: %v\n%s", filepath.Base(w), err, out)
		}
		acked = append(acked, filepath.Base(w))
	}

	// Uploads go on in the background while the backup runs.
	stop, done, first := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i, w := range wheels[2:] {
			select {
			case <-stop:
				return
			default:
			}
			out, err := twine(srv.URL, w)
			mu.Lock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v\n%s", filepath.Base(w), err, out))
			} else {
				acked = append(acked, filepath.Base(w))
			}
			mu.Unlock()
			if i == 0 {
				close(first)
			}
		}
	}()
	// And, beside twine, uploads over plain HTTP as fast as they go (as
	// curl would send them), so that some land while the backup runs.
	var rapid []e2eForm
	for i := range 400 {
		v := fmt.Sprintf("3.0.%d", i)
		rapid = append(rapid, e2eWheelForm("busy-pkg", v, e2eWheelName("busy-pkg", v), e2eWheel(t, "busy-pkg", v, e2eMetadata("busy-pkg", v))))
	}
	rapidDone := make(chan struct{})
	go func() {
		defer close(rapidDone)
		for _, f := range rapid {
			select {
			case <-stop:
				return
			default:
			}
			name := ""
			for _, p := range f {
				if p.filename != "" {
					name = p.filename
				}
			}
			body, ct, err := f.encode()
			if err == nil {
				var req *http.Request
				if req, err = http.NewRequest(http.MethodPost, srv.URL+"/legacy/", bytes.NewReader(body)); err == nil {
					req.Header.Set("Content-Type", ct)
					req.SetBasicAuth("__token__", tok)
					var resp *http.Response
					if resp, err = e2eClient.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %s", resp.Status)
						}
					}
				}
			}
			mu.Lock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			} else {
				acked = append(acked, name)
			}
			mu.Unlock()
		}
	}()
	<-first
	mu.Lock()
	before := append([]string(nil), acked...) // acknowledged before the backup began
	mu.Unlock()

	dest := filepath.Join(work, "backup")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"backup", dest, "--data-dir", srv.dataDir, "--database-url", srv.dbURL},
		e2eNoEnv, strings.NewReader(""), &stdout, &stderr)
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	close(stop)
	<-done
	<-rapidDone
	if err != nil {
		t.Fatalf("gatehouse backup: %v\n%s", err, stderr.String())
	}
	if len(failed) > 0 {
		t.Fatalf("uploads failed while the backup ran:\n%s", strings.Join(failed, "\n"))
	}
	t.Logf("%d uploads acknowledged before the backup, %d while it ran; backup output:\n%s%s", len(before), during, stderr.String(), stdout.String())
	if !strings.Contains(stderr.String(), "Copied ") || !strings.Contains(stdout.String(), "Backed up the ") {
		t.Errorf("backup output shows no progress or summary:\n%s%s", stderr.String(), stdout.String())
	}

	// Restore into a new index.
	fresh := filepath.Join(work, "restored")
	freshDB := "sqlite:" + filepath.Join(fresh, "gatehouse.db")
	if dialect == "postgres" {
		freshDB = dbtest.PostgresURL(t)
	}
	restore := func(extra ...string) (string, error) {
		var out, errOut bytes.Buffer
		args := append([]string{"restore", dest, "--data-dir", fresh, "--database-url", freshDB}, extra...)
		err := run(context.Background(), args, e2eNoEnv, strings.NewReader(""), &out, &errOut)
		return errOut.String() + out.String(), err
	}
	if out, err := restore(); err != nil {
		t.Fatalf("gatehouse restore: %v\n%s", err, out)
	} else if !strings.Contains(out, "Checked ") || !strings.Contains(out, "Stored ") || !strings.Contains(out, "Restored the ") {
		t.Errorf("restore output shows no progress or summary:\n%s", out)
	}

	// Every file the restored database lists is in the restored store with
	// the digest listed; every upload acknowledged before the backup is
	// among them.
	rdb, err := db.Open(context.Background(), freshDB)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	rows, err := rdb.Query(`SELECT filename, blob_key, sha256_digest, metadata_key, metadata_sha256 FROM files`)
	if err != nil {
		t.Fatal(err)
	}
	restored := map[string]bool{}
	for rows.Next() {
		var name, key, sum string
		var mKey, mSum *string
		if err := rows.Scan(&name, &key, &sum, &mKey, &mSum); err != nil {
			t.Fatal(err)
		}
		restored[name] = true
		check := func(key, sum string) {
			b, err := os.ReadFile(filepath.Join(fresh, "files", filepath.FromSlash(key)))
			if err != nil {
				t.Errorf("restored store: %v", err)
				return
			}
			if got := e2eSHA256(b); got != sum {
				t.Errorf("restored %s: sha256 %s, the database says %s", key, got, sum)
			}
		}
		check(key, sum)
		if mKey != nil && mSum != nil {
			check(*mKey, *mSum)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, name := range before {
		if !restored[name] {
			t.Errorf("%s was acknowledged before the backup began but is not in the restore", name)
		}
	}
	t.Logf("the restore holds %d of %d acknowledged uploads", len(restored), len(acked))

	// A second restore into the same place is refused and changes nothing.
	dbFile := filepath.Join(fresh, "gatehouse.db")
	stat := func() string {
		if dialect == "postgres" {
			var n int
			if err := rdb.QueryRow(`SELECT count(*) FROM files`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(n)
		}
		b, err := os.ReadFile(dbFile)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	beforeAgain := stat()
	if out, err := restore(); err == nil || !strings.Contains(err.Error(), "is not empty") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore into the restored index: %v, want a refusal naming --force; output:\n%s", err, out)
	}
	if stat() != beforeAgain {
		t.Error("the refused restore changed the database")
	}

	// The restored index serves what it holds and knows the old token
	// (the server secret came back with it).
	rdb.Close()
	srv2 := e2eStartServer(t, dialect, "--data-dir", fresh, "--database-url", freshDB)
	files, _ := srv2.simpleJSON(t, "busy-pkg")
	if len(files) != len(restored) {
		t.Errorf("the restored index lists %d files of busy-pkg, its database %d", len(files), len(restored))
	}
	for _, f := range files {
		resp, err := e2eClient.Get(f.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || e2eSHA256(b) != f.Hashes["sha256"] {
			t.Errorf("GET %s from the restored index: %d, sha256 %s; want 200 with %s", f.Filename, resp.StatusCode, e2eSHA256(b), f.Hashes["sha256"])
		}
	}
	extra := filepath.Join(work, e2eWheelName("busy-pkg", "2.0"))
	if err := os.WriteFile(extra, e2eWheel(t, "busy-pkg", "2.0", e2eMetadata("busy-pkg", "2.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := twine(srv2.URL, extra); err != nil {
		t.Errorf("twine upload to the restored index with the token made before the backup: %v\n%s", err, out)
	}
}
