package main

// `gatehouse storage copy`, end to end: the files of a running index move
// from its directory to a real S3 server (versitygw) and back, with
// progress, a summary, resumption and digest checks.

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
)

func TestE2EStorageCopy(t *testing.T) {
	vgw := s3test.Versitygw(t)
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) { e2eStorageCopy(t, dialect, vgw) })
	}
}

func e2eStorageCopy(t *testing.T, dialect string, vgw *s3test.Server) {
	s := e2eStartServer(t, dialect)
	s.createUser(t, "alice")
	tok := s.createToken(t, "alice", "copy test")
	for _, v := range []string{"1.0", "1.1", "2.0"} {
		s.mustUpload(t, tok, e2eWheelForm("copydemo", v, e2eWheelName("copydemo", v), e2eWheel(t, "copydemo", v, e2eMetadata("copydemo", v))))
	}
	filesDir := filepath.Join(s.dataDir, "files")
	want := e2eDirFiles(t, filesDir)
	if len(want) != 6 { // three wheels and their .metadata files
		t.Fatalf("files of the index: %d, want 6: %v", len(want), want)
	}

	bucket := vgw.NewBucket(t)
	s3URL := "s3://" + bucket + "/index"
	// The S3 settings come from AWS's own environment variables, as a
	// deployment set up for the aws CLI has them.
	env := func(k string) string {
		return map[string]string{"AWS_ENDPOINT_URL": vgw.Endpoint, "AWS_REGION": "us-east-1",
			"AWS_ACCESS_KEY_ID": vgw.AccessKey, "AWS_SECRET_ACCESS_KEY": vgw.SecretKey}[k]
	}
	copyFiles := func(from, to string) (stdout, stderr string, err error) {
		var o, e bytes.Buffer
		err = run(context.Background(), []string{"storage", "copy", "--from", from, "--to", to, "--storage-path-style", "on",
			"--data-dir", s.dataDir, "--database-url", s.dbURL}, env, strings.NewReader(""), &o, &e)
		return o.String(), e.String(), err
	}
	mustCopy := func(from, to, summary string) {
		t.Helper()
		out, progress, err := copyFiles(from, to)
		if err != nil {
			t.Fatalf("storage copy --from %s --to %s: %v\n%s", from, to, err, progress)
		}
		if !strings.Contains(out, summary) {
			t.Fatalf("storage copy --from %s --to %s said %q, want %q", from, to, out, summary)
		}
		if !strings.Contains(progress, "6/6 files:") {
			t.Fatalf("storage copy showed no progress to the end: %q", progress)
		}
	}
	inBucket := func() map[string][]byte {
		got := map[string][]byte{}
		for _, o := range vgw.Objects(t, bucket) {
			b, err := os.ReadFile(filepath.Join(vgw.Dir, bucket, o))
			if err != nil {
				t.Fatal(err)
			}
			got[strings.TrimPrefix(o, "index/")] = b
		}
		return got
	}

	// Directory → S3, while the server runs.
	mustCopy(filesDir, s3URL, "Copied 6 file(s)")
	e2eSameFiles(t, "the bucket after the copy", inBucket(), want)

	// Resumed: only what is missing is copied again.
	var first string
	for k := range want {
		if first == "" || k < first {
			first = k
		}
	}
	rm := func() {
		if err := vgw.Client(t).RemoveObject(context.Background(), bucket, "index/"+first, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rm()
	mustCopy(filesDir, s3URL, "Copied 1 file(s)")
	mustCopy(filesDir, s3URL, "Copied 0 file(s) (0 bytes) from "+filesDir+" to "+s3URL+"; 6 were there already; 0 failed.")

	// A damaged source file (same size, one byte changed) is refused by
	// its digest and not written; the others are untouched.
	rm()
	path := filepath.Join(filesDir, filepath.FromSlash(first))
	bad := bytes.Clone(want[first])
	bad[len(bad)/2] ^= 0xff
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := copyFiles(filesDir, s3URL)
	if err == nil || !strings.Contains(err.Error(), "digest is not the one the database records") || !strings.Contains(out, "1 failed") {
		t.Fatalf("copying a damaged file: %v, %q; want a refusal naming its digest and 1 failed", err, out)
	}
	if _, ok := inBucket()[first]; ok {
		t.Fatalf("the damaged file %s was written to the bucket", first)
	}
	if err := os.WriteFile(path, want[first], 0o644); err != nil {
		t.Fatal(err)
	}
	mustCopy(filesDir, s3URL, "Copied 1 file(s)")

	// S3 → a new directory: every file comes back, byte for byte.
	back := filepath.Join(t.TempDir(), "files")
	mustCopy(s3URL, back, "Copied 6 file(s)")
	e2eSameFiles(t, "the directory copied back", e2eDirFiles(t, back), want)

	// Mistakes are told in the command's words.
	if _, _, err := copyFiles(filesDir, filesDir); err == nil || !strings.Contains(err.Error(), "give two different stores") {
		t.Fatalf("--from and --to the same: %v", err)
	}
}

// e2eDirFiles reads every file below dir, by its key (slash-separated path).
func e2eDirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func e2eSameFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d files, want %d", what, len(got), len(want))
	}
	for k, b := range want {
		if !bytes.Equal(got[k], b) {
			t.Fatalf("%s: %s has %d bytes, not the index's %d", what, k, len(got[k]), len(b))
		}
	}
}
