package main

// Backup and restore with the package files in S3 (versitygw): twine
// uploads real distributions to an index on a bucket, `gatehouse backup`
// reads them from the bucket, `gatehouse restore` puts them into a new,
// empty bucket (and refuses one that holds objects), and pip installs from
// the restored index.

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestE2EBackupRestoreS3(t *testing.T) {
	tools := e2eTools(t)
	fx := e2eFixtureSet(t)
	vgw := s3test.Versitygw(t)
	storage := func(bucket string) []string {
		return []string{"--storage-url", "s3://" + bucket + "/index", "--storage-endpoint", vgw.Endpoint, "--storage-region", "us-east-1",
			"--storage-path-style", "on", "--storage-access-key", vgw.AccessKey, "--storage-secret-key", vgw.SecretKey}
	}
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			from := vgw.NewBucket(t)
			srv := e2eStartServer(t, dialect, storage(from)...)
			srv.createUser(t, "alice")
			tok := srv.createToken(t, "alice", "ci")
			home := t.TempDir()
			dep, pkg := fx.dists["demo-dep"], fx.dists["demo-pkg"]
			e2eMustExec(t, home, e2eEnv(home), tools.twine, "upload", "--repository-url", srv.URL+"/legacy/", "-u", "__token__", "-p", tok,
				"--non-interactive", "--disable-progress-bar", dep.wheel, pkg.wheel, pkg.sdist)
			objects := vgw.Objects(t, from)
			if len(objects) < 3 {
				t.Fatalf("objects in the bucket after three uploads: %q", objects)
			}

			cmd := func(args ...string) (string, error) {
				var out, errb bytes.Buffer
				err := run(context.Background(), args, e2eNoEnv, strings.NewReader(""), &out, &errb)
				return errb.String() + out.String(), err
			}
			dest := filepath.Join(t.TempDir(), "backup")
			if out, err := cmd(append([]string{"backup", dest, "--data-dir", srv.dataDir, "--database-url", srv.dbURL}, storage(from)...)...); err != nil {
				t.Fatalf("gatehouse backup: %v\n%s", err, out)
			} else if !strings.Contains(out, "Backed up the ") {
				t.Errorf("backup output:\n%s", out)
			}

			target := func() (dir, dbURL string) {
				dir = t.TempDir()
				dbURL = "sqlite:" + filepath.Join(dir, "gatehouse.db")
				if dialect == "postgres" {
					dbURL = dbtest.PostgresURL(t)
				}
				return dir, dbURL
			}
			// A bucket that holds objects is refused, and nothing is written.
			dir, dbURL := target()
			if out, err := cmd(append([]string{"restore", dest, "--data-dir", dir, "--database-url", dbURL}, storage(from)...)...); err == nil ||
				!strings.Contains(out+err.Error(), "not empty") {
				t.Errorf("restore into the bucket in use: %v, want a refusal saying it is not empty\n%s", err, out)
			}
			if got := vgw.Objects(t, from); len(got) != len(objects) {
				t.Errorf("the refused restore changed the bucket: %d objects, were %d", len(got), len(objects))
			}
			// A new bucket takes it, every object checked.
			to := vgw.NewBucket(t)
			dir, dbURL = target()
			out, err := cmd(append([]string{"restore", dest, "--data-dir", dir, "--database-url", dbURL}, storage(to)...)...)
			if err != nil {
				t.Fatalf("gatehouse restore into a new bucket: %v\n%s", err, out)
			}
			if !strings.Contains(out, "Stored ") || !strings.Contains(out, "--storage-url s3://"+to+"/index") {
				t.Errorf("restore output lacks the progress or the settings to serve it with:\n%s", out)
			}
			if got := vgw.Objects(t, to); len(got) != len(objects) {
				t.Errorf("restored bucket: %d objects, the original %d", len(got), len(objects))
			}
			// pip installs from the restored index, and the old token uploads.
			srv2 := e2eStartServer(t, dialect, append([]string{"--data-dir", dir, "--database-url", dbURL}, storage(to)...)...)
			venv, err := e2eVenv(tools, home)
			if err != nil {
				t.Fatal(err)
			}
			got := e2eMustExec(t, home, e2eEnv(home), filepath.Join(venv, "bin", "pip"), "install", "--index-url", srv2.URL+"/simple/", "demo-pkg")
			if !strings.Contains(got, "demo-dep-0.3") || !strings.Contains(got, "demo-pkg-1.0") {
				t.Errorf("pip install from the restored index:\n%s", got)
			}
			srv2.mustUpload(t, tok, e2eWheelForm("after-restore", "1.0", e2eWheelName("after-restore", "1.0"), e2eWheel(t, "after-restore", "1.0", e2eMetadata("after-restore", "1.0"))))
		})
	}
}
