package project

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// The rules of blobrefs.go, tested on both databases with a real blob store:
// a sweep never takes a listed file's bytes, even when it runs between an
// upload's write and its commit, and an upload that is not listed leaves no
// bytes behind.

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type blobFixture struct {
	svc   *Service
	blobs *blob.FS
	who   Uploader
}

func newBlobFixture(t *testing.T, d *db.DB, wrap func(blob.Store) blob.Store) *blobFixture {
	t.Helper()
	fs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	var store blob.Store = fs
	if wrap != nil {
		store = wrap(fs)
	}
	var uid int64
	if err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ('alice', 'alice', $1) RETURNING id`, testNow).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	svc := NewService(d, store, Options{Limits: Limits{MaxFileSize: 1 << 20, MaxProjectSize: 1 << 30}, TempDir: t.TempDir(),
		Now: func() time.Time { return testNow }})
	return &blobFixture{svc: svc, blobs: fs, who: Uploader{UserID: uid, Username: "alice", CanCreateProjects: true}}
}

// testWheel is a minimal valid wheel of demo at version; payload varies
// its bytes.
func testWheel(t *testing.T, version, payload string) (filename string, data []byte) {
	t.Helper()
	di := "demo-" + version + ".dist-info/"
	members := [][2]string{
		{"demo/__init__.py", payload},
		{di + "METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: " + version + "\n"},
		{di + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, m := range members {
		sum := sha256.Sum256([]byte(m[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", m[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(m[1]))
	}
	record.WriteString(di + "RECORD,,\n")
	members = append(members, [2]string{di + "RECORD", record.String()})
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		w, err := zw.Create(m[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, m[1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return "demo-" + version + "-py3-none-any.whl", b.Bytes()
}

// upload runs AcceptUpload for a wheel, as the web layer would.
func (f *blobFixture) upload(t *testing.T, version, payload string) (UploadResult, error) {
	t.Helper()
	name, data := testWheel(t, version, payload)
	sum := sha256.Sum256(data)
	fields, err := Sanitize(map[string][]string{":action": {"file_upload"}, "protocol_version": {"1"}, "metadata_version": {"2.1"},
		"name": {"demo"}, "version": {version}, "filetype": {"bdist_wheel"}, "pyversion": {"py3"}, "sha256_digest": {hex.EncodeToString(sum[:])}})
	if err != nil {
		t.Fatal(err)
	}
	form, err := ParseForm(fields)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := Spool(bytes.NewReader(data), f.svc.tempDir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	return f.svc.AcceptUpload(context.Background(), f.who, &Upload{Form: form, Filename: name, ContentType: "application/octet-stream", Content: sp})
}

// keys lists every blob in the store.
func (f *blobFixture) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	if err := f.blobs.List(context.Background(), "", func(k string, _ blob.Info) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

// listedKeys are the blob keys the files table names.
func listedKeys(t *testing.T, d *db.DB) []string {
	t.Helper()
	rows, err := d.Query(`SELECT blob_key, metadata_key FROM files`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k, m string
		if err := rows.Scan(&k, &m); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k, m)
	}
	slices.Sort(keys)
	return keys
}

func TestSweepOrphansRemovesOnlyUnlistedBlobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newBlobFixture(t, d, nil)
		if _, err := f.upload(t, "1.0", "x = 1\n"); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		orphan := BlobKey(strings.Repeat("ab", 32))
		for _, k := range []string{orphan, orphan + ".metadata", "notes/not-a-package-file"} {
			if err := f.blobs.Put(ctx, k, strings.NewReader("left by a crash")); err != nil {
				t.Fatal(err)
			}
		}
		n, err := f.svc.SweepOrphans(ctx, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("SweepOrphans removed %d blobs, want 2 (the orphan and its metadata)", n)
		}
		want := append(listedKeys(t, d), "notes/not-a-package-file")
		slices.Sort(want)
		if got := f.keys(t); !slices.Equal(got, want) {
			t.Errorf("blobs after the sweep:\ngot  %v\nwant %v (the listed file and metadata, and the key that is not a package file's)", got, want)
		}

		// Blobs written after the cut-off are left for a later sweep.
		if err := f.blobs.Put(ctx, orphan, strings.NewReader("new")); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.SweepOrphans(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("SweepOrphans with an old cut-off: removed %d (err %v), want 0", n, err)
		}
	})
}

// interleaved is a blob store that runs a function right after the first
// Put of a package file (not a .metadata file) has made it durable: what
// another goroutine or process could do between an upload's write and its
// commit.
type interleaved struct {
	blob.Store
	armed atomic.Bool // then runs once when armed, and a Put it makes passes straight through
	then  func()
}

func (s *interleaved) Put(ctx context.Context, key string, r io.Reader) error {
	if err := s.Store.Put(ctx, key, r); err != nil {
		return err
	}
	if !strings.HasSuffix(key, ".metadata") && s.armed.CompareAndSwap(true, false) {
		s.then()
	}
	return nil
}

func TestSweepBetweenWriteAndCommitKeepsTheUpload(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var swept int
		var sweepErr error
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			st := &interleaved{Store: s, then: func() {
				// A sweep with no grace at all, as `gatehouse sweep
				// --older-than 0s` run at the worst moment.
				swept, sweepErr = f.svc.SweepOrphans(context.Background(), time.Now().Add(time.Minute))
			}}
			st.armed.Store(true)
			return st
		})
		res, err := f.upload(t, "1.0", "x = 1\n")
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		if sweepErr != nil || swept != 1 {
			t.Fatalf("the interleaved sweep removed %d blobs (err %v), want 1: the upload's file, not yet listed", swept, sweepErr)
		}
		if res.Duplicate {
			t.Errorf("the upload was answered as a duplicate")
		}
		if got, want := f.keys(t), listedKeys(t, d); !slices.Equal(got, want) || len(want) != 2 {
			t.Errorf("blobs: got %v, want the listed %v (a row without its bytes otherwise)", got, want)
		}
	})
}

func TestUploadThatLosesTheRaceLeavesNoBlob(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var winErr error
		var st *interleaved
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			// Between the loser's write and its commit, another upload of
			// the same filename with other bytes comes and is listed.
			st = &interleaved{Store: s, then: func() { _, winErr = f.upload(t, "1.0", "winner = True\n") }}
			return st
		})
		if _, err := f.upload(t, "0.9", "first = True\n"); err != nil {
			t.Fatal(err)
		}
		st.armed.Store(true)
		_, err := f.upload(t, "1.0", "loser = True\n")
		if winErr != nil {
			t.Fatalf("the winning upload: %v", winErr)
		}
		if err == nil || !strings.Contains(err.Error(), "File already exists") {
			t.Fatalf("the losing upload: got %v, want File already exists", err)
		}
		if got, want := f.keys(t), listedKeys(t, d); !slices.Equal(got, want) || len(want) != 4 {
			t.Errorf("blobs: got %v, want only the listed %v", got, want)
		}
	})
}

// failingDeletes is a blob store whose Delete fails while armed, as when
// the database is down at the moment a refused upload cleans up.
type failingDeletes struct {
	*interleaved
	failing atomic.Bool
}

func (s *failingDeletes) Delete(ctx context.Context, key string) error {
	if s.failing.Load() {
		return fmt.Errorf("delete %s: refused by the test", key)
	}
	return s.interleaved.Delete(ctx, key)
}

func TestUnlistedBlobIsRemovedAfterTheNextCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var st *failingDeletes
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			st = &failingDeletes{interleaved: &interleaved{Store: s, then: func() { f.upload(t, "1.0", "winner = True\n") }}}
			return st
		})
		if _, err := f.upload(t, "0.9", "first = True\n"); err != nil {
			t.Fatal(err)
		}
		st.armed.Store(true)
		st.failing.Store(true)
		if _, err := f.upload(t, "1.0", "loser = True\n"); err == nil {
			t.Fatal("the losing upload was accepted")
		}
		if got := len(f.keys(t)); got != 6 {
			t.Fatalf("blobs after the loser could not clean up: %d, want 6 (two files listed, one not, each with metadata)", got)
		}
		st.failing.Store(false)
		if _, err := f.upload(t, "1.1", "later = True\n"); err != nil {
			t.Fatal(err)
		}
		if got, want := f.keys(t), listedKeys(t, d); !slices.Equal(got, want) {
			t.Errorf("blobs after the next commit:\ngot  %v\nwant %v (the loser's removed)", got, want)
		}
	})
}

// devFull is a blob store on a full disk: every write fails as the kernel
// fails it (/dev/full answers ENOSPC).
type devFull struct{ blob.Store }

func (devFull) Put(ctx context.Context, key string, r io.Reader) error {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, r)
	return err
}

func TestUploadOnAFullDiskIsRefusedAsOutOfSpace(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	f := newBlobFixture(t, dbtest.NewSQLite(t), func(s blob.Store) blob.Store { return devFull{s} })
	_, err := f.upload(t, "1.0", "x = 1\n")
	if !errors.Is(err, derrors.NoSpace) {
		t.Fatalf("upload onto a full disk: got %v, want an error matching derrors.NoSpace (507)", err)
	}
	if msg, ok := derrors.Message(err); !ok || !strings.Contains(msg, "out of disk space") {
		t.Errorf("message: got %q (ok %v), want one saying the server is out of disk space", msg, ok)
	}
	if rows := listedKeys(t, f.svc.db); len(rows) != 0 {
		t.Errorf("rows after the refused upload: %v, want none", rows)
	}
}

// Two files of a new project uploaded at once by its future owner (CI jobs
// in parallel): both are accepted, whichever creates the project.
func TestParallelUploadsCreatingOneProjectBothSucceed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var otherErr error
		var st *interleaved
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			st = &interleaved{Store: s, then: func() { _, otherErr = f.upload(t, "1.1", "other = True\n") }}
			return st
		})
		st.armed.Store(true)
		if _, err := f.upload(t, "1.0", "first = True\n"); err != nil {
			t.Errorf("the upload whose project was created under it: %v", err)
		}
		if otherErr != nil {
			t.Errorf("the upload that created the project: %v", otherErr)
		}
		if got := len(listedKeys(t, d)); got != 4 {
			t.Errorf("listed blobs: %d, want 4 (two wheels and their metadata)", got)
		}
	})
}

// Two users create one project at once: one owns it, and the other is told
// what it would be told a moment later, that it may not upload to it.
func TestOtherUserCreatingTheProjectMeanwhileIsForbidden(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var bobErr error
		var st *interleaved
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			st = &interleaved{Store: s, then: func() {
				alice := f.who
				var bob int64
				if err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ('bob', 'bob', $1) RETURNING id`, testNow).Scan(&bob); err != nil {
					bobErr = err
					return
				}
				f.who = Uploader{UserID: bob, Username: "bob", CanCreateProjects: true}
				_, bobErr = f.upload(t, "1.1", "bob = True\n")
				f.who = alice
			}}
			return st
		})
		st.armed.Store(true)
		_, err := f.upload(t, "1.0", "alice = True\n")
		if bobErr != nil {
			t.Fatalf("bob's upload, which creates the project: %v", bobErr)
		}
		if !errors.Is(err, derrors.Forbidden) || !strings.Contains(err.Error(), "isn't allowed to upload to project") {
			t.Errorf("alice's upload: got %v, want 403 isn't allowed to upload to project", err)
		}
		if got := len(listedKeys(t, d)); got != 2 {
			t.Errorf("listed blobs: %d, want bob's file and metadata", got)
		}
		if got := len(f.keys(t)); got != 2 {
			t.Errorf("blobs: %d, want only bob's 2 (alice's removed)", got)
		}
	})
}
