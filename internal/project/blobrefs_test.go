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
	"io/fs"
	"os"
	"path/filepath"
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
// a sweep never takes a listed file's bytes, even when it runs while the
// upload is being listed, and an upload that is not listed leaves no bytes
// behind, neither blobs nor staged files.

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type blobFixture struct {
	svc   *Service
	blobs *blob.FS
	root  string
	who   Uploader
}

func newBlobFixture(t *testing.T, d *db.DB, wrap func(blob.Store) blob.Store) *blobFixture {
	t.Helper()
	root := t.TempDir()
	fsys, err := blob.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	var store blob.Store = fsys
	if wrap != nil {
		store = wrap(fsys)
	}
	var uid int64
	if err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ('alice', 'alice', $1) RETURNING id`, testNow).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	svc := NewService(d, store, Options{Limits: Limits{MaxFileSize: 1 << 20, MaxProjectSize: 1 << 30},
		Now: func() time.Time { return testNow }})
	return &blobFixture{svc: svc, blobs: fsys, root: root, who: Uploader{UserID: uid, Username: "alice", CanCreateProjects: true}}
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
	sp, err := f.svc.Spool(context.Background(), bytes.NewReader(data), 1<<20)
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

// staged lists the store's temporary files: uploads being written, or
// what one left behind.
func (f *blobFixture) staged(t *testing.T) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), blob.TempPrefix) {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
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

// interleaved is a blob store that runs a function once, when armed, at
// one moment of an upload: what another goroutine or process could do
// there.
//   - atSync: the upload's file has been checked and flushed, and its
//     transaction is about to start;
//   - atCommit: the file has just been published under its key (a
//     .metadata key does not count).
type interleaved struct {
	blob.Store
	at    moment
	armed atomic.Bool // then runs once when armed; what it does passes straight through
	then  func()

	failMeta atomic.Bool // while set, publishing a .metadata blob fails
}

type moment int

const (
	atSync moment = iota
	atCommit
)

func (s *interleaved) Stage(ctx context.Context) (blob.Staged, error) {
	st, err := s.Store.Stage(ctx)
	if err != nil {
		return nil, err
	}
	return &interleavedStaged{Staged: st, s: s}, nil
}

type interleavedStaged struct {
	blob.Staged
	s *interleaved
}

func (st *interleavedStaged) Sync() error {
	if err := st.Staged.Sync(); err != nil {
		return err
	}
	// The uploaded file is a zip (a wheel); its METADATA is text.
	head := make([]byte, 4)
	if _, err := st.ReadAt(head, 0); err == nil && string(head) == "PK\x03\x04" && st.s.at == atSync && st.s.armed.CompareAndSwap(true, false) {
		st.s.then()
	}
	return nil
}

func (st *interleavedStaged) Commit(ctx context.Context, key string) error {
	isMeta := strings.HasSuffix(key, ".metadata")
	if isMeta && st.s.failMeta.Load() {
		st.Staged.Discard()
		return fmt.Errorf("commit %s: refused by the test", key)
	}
	if err := st.Staged.Commit(ctx, key); err != nil {
		return err
	}
	if !isMeta && st.s.at == atCommit && st.s.armed.CompareAndSwap(true, false) {
		st.s.then()
	}
	return nil
}

// A sweep that runs while an upload is being listed, as `gatehouse sweep
// --older-than 0s` run at the worst moment in another process, cannot take
// the upload's bytes: they are published inside the upload's transaction,
// under the lock the sweep needs, so the sweep waits (here, until its
// deadline) and then finds them listed.
func TestSweepDuringTheUploadKeepsTheUpload(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var swept int
		var sweepErr error
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			st := &interleaved{Store: s, at: atCommit, then: func() {
				// The sweep must not finish while the upload's
				// transaction is open; if it could, it would have
				// removed the file by the deadline.
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				swept, sweepErr = f.svc.SweepOrphans(ctx, time.Now().Add(time.Minute))
			}}
			st.armed.Store(true)
			return st
		})
		res, err := f.upload(t, "1.0", "x = 1\n")
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		if swept != 0 || !errors.Is(sweepErr, context.DeadlineExceeded) {
			t.Fatalf("the sweep during the upload's transaction removed %d blobs (err %v), want 0, stopped by its deadline while waiting for the upload", swept, sweepErr)
		}
		if res.Duplicate {
			t.Errorf("the upload was answered as a duplicate")
		}
		if got, want := f.keys(t), listedKeys(t, d); !slices.Equal(got, want) || len(want) != 2 {
			t.Errorf("blobs: got %v, want the listed %v (a row without its bytes otherwise)", got, want)
		}
		if n, err := f.svc.SweepOrphans(context.Background(), time.Now().Add(time.Minute)); n != 0 || err != nil {
			t.Errorf("a sweep after the upload removed %d blobs (err %v), want 0", n, err)
		}
	})
}

func TestUploadThatLosesTheRaceLeavesNoBlob(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var f *blobFixture
		var winErr error
		var st *interleaved
		f = newBlobFixture(t, d, func(s blob.Store) blob.Store {
			// Between the loser's checks and its transaction, another
			// upload of the same filename with other bytes comes and is
			// listed.
			st = &interleaved{Store: s, at: atSync, then: func() { _, winErr = f.upload(t, "1.0", "winner = True\n") }}
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
		if got := f.staged(t); len(got) != 0 {
			t.Errorf("staged files left: %v, want none", got)
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

// An upload whose transaction fails after its file was published removes
// the file; if it cannot at that moment, the next commit does.
func TestUnlistedBlobIsRemovedAfterTheNextCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var st *failingDeletes
		f := newBlobFixture(t, d, func(s blob.Store) blob.Store {
			st = &failingDeletes{interleaved: &interleaved{Store: s}}
			return st
		})
		if _, err := f.upload(t, "0.9", "first = True\n"); err != nil {
			t.Fatal(err)
		}
		st.failMeta.Store(true)
		st.failing.Store(true)
		if _, err := f.upload(t, "1.0", "failed = True\n"); err == nil {
			t.Fatal("the upload whose metadata could not be stored was accepted")
		}
		if got := len(f.keys(t)); got != 3 {
			t.Fatalf("blobs after the failed upload could not clean up: %d, want 3 (a file listed with its metadata, one file not)", got)
		}
		st.failMeta.Store(false)
		st.failing.Store(false)
		if _, err := f.upload(t, "1.1", "later = True\n"); err != nil {
			t.Fatal(err)
		}
		if got, want := f.keys(t), listedKeys(t, d); !slices.Equal(got, want) {
			t.Errorf("blobs after the next commit:\ngot  %v\nwant %v (the failed upload's removed)", got, want)
		}
		if got := f.staged(t); len(got) != 0 {
			t.Errorf("staged files left: %v, want none", got)
		}
	})
}

// fillingDisk is a blob store whose disk fills up once the upload's file
// has arrived: every staged blob after the first writes to /dev/full, which
// fails as a full disk does (ENOSPC).
type fillingDisk struct {
	blob.Store
	stages atomic.Int32
}

func (s *fillingDisk) Stage(ctx context.Context) (blob.Staged, error) {
	st, err := s.Store.Stage(ctx)
	if err != nil || s.stages.Add(1) == 1 {
		return st, err
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		st.Discard()
		return nil, err
	}
	return &fullStaged{Staged: st, full: full}, nil
}

type fullStaged struct {
	blob.Staged
	full *os.File
}

func (f *fullStaged) Write(p []byte) (int, error) { return f.full.Write(p) }
func (f *fullStaged) Discard() error {
	f.full.Close()
	return f.Staged.Discard()
}

func TestUploadOnAFullDiskIsRefusedAsOutOfSpace(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	f := newBlobFixture(t, dbtest.NewSQLite(t), func(s blob.Store) blob.Store { return &fillingDisk{Store: s} })
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
	if keys, staged := f.keys(t), f.staged(t); len(keys)+len(staged) != 0 {
		t.Errorf("after the refused upload: blobs %v, staged files %v; want none", keys, staged)
	}
}

// An upload arriving on a full disk: the web layer answers what
// OutOfSpace makes of the spool's error (507 with a message), and nothing
// of it stays.
func TestSpoolOntoAFullDiskIsOutOfSpace(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	var disk *fillingDisk
	f := newBlobFixture(t, dbtest.NewSQLite(t), func(s blob.Store) blob.Store {
		disk = &fillingDisk{Store: s}
		disk.stages.Store(1) // full from the start
		return disk
	})
	_, data := testWheel(t, "1.0", "x = 1\n")
	_, err := f.svc.Spool(context.Background(), bytes.NewReader(data), 1<<20)
	if !errors.Is(err, ErrSpoolStore) {
		t.Fatalf("spool onto a full disk: got %v, want ErrSpoolStore", err)
	}
	if full := OutOfSpace(err); !errors.Is(full, derrors.NoSpace) {
		t.Errorf("OutOfSpace(%v) does not match derrors.NoSpace (507)", err)
	} else if msg, _ := derrors.Message(full); !strings.Contains(msg, "out of disk space") {
		t.Errorf("message %q does not say the server is out of disk space", msg)
	}
	if keys, staged := f.keys(t), f.staged(t); len(keys)+len(staged) != 0 {
		t.Errorf("after the refused spool: blobs %v, staged files %v; want none", keys, staged)
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
			st = &interleaved{Store: s, at: atSync, then: func() { _, otherErr = f.upload(t, "1.1", "other = True\n") }}
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
		if got, want := f.keys(t), listedKeys(t, d); !slices.Equal(got, want) {
			t.Errorf("blobs: got %v, want the listed %v", got, want)
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
			st = &interleaved{Store: s, at: atSync, then: func() {
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
		if got := f.staged(t); len(got) != 0 {
			t.Errorf("staged files left: %v, want none", got)
		}
	})
}
