package blob_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A server restarted right after kill -9 finds its dead Put's temp file only
// seconds old. With no other writer alive it must remove it all the same;
// with another writer alive (a second instance on the same files directory)
// it must leave fresh temp files alone, since they may be that writer's.
func TestStartWritingSweepsDeadWritersTempFiles(t *testing.T) {
	root := t.TempDir()
	fresh := filepath.Join(root, "ab", ".tmp-left-by-a-crash")
	plant := func() {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(fresh), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fresh, []byte("half a wheel"), 0o640); err != nil {
			t.Fatal(err)
		}
	}

	plant()
	first := newFS(t, root)
	n, stopFirst, err := first.StartWriting(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("first writer: swept %d temp files, want 1 (a fresh one, no other writer alive)", n)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("the dead writer's temp file is still there: %v", err)
	}

	plant()
	second := newFS(t, root)
	n, stopSecond, err := second.StartWriting(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("second writer, with the first alive: swept %d temp files, want 0", n)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temp file was removed while another writer was alive: %v", err)
	}

	// Both stop (as if they had died): the next writer is alone again.
	stopFirst()
	stopSecond()
	third := newFS(t, root)
	n, stopThird, err := third.StartWriting(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer stopThird()
	if n != 1 {
		t.Errorf("third writer, alone: swept %d temp files, want 1", n)
	}
}
