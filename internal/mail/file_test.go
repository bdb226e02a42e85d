package mail

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestFileSender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	var logBuf bytes.Buffer
	fs, err := NewFileSender(dir, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := verifyMessage(t, 1, "alice@example.org")
	for range 2 {
		if err := fs.Send(context.Background(), testFrom, m); err != nil {
			t.Fatal(err)
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d files, want 2 (and no temporary files): %v", len(entries), entries)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, "-verify-email.eml") || strings.HasPrefix(name, ".") {
			t.Errorf("file name %q", name)
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, readable by others", name, info.Mode())
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := parseEmail(t, raw)
		if p.Type != "multipart/alternative" || p.Subject != "[Gatehouse] Email verification" {
			t.Errorf("%s: type %s, subject %q", name, p.Type, p.Subject)
		}
		if !strings.Contains(p.Text, testLink) || !strings.Contains(p.HTML, testLink) {
			t.Errorf("%s: parts lack the link:\n%s", name, raw)
		}
		if !strings.Contains(p.Header.Get("To"), "alice@example.org") || !strings.Contains(p.Header.Get("From"), "noreply@pypi.example.org") {
			t.Errorf("%s: headers %v", name, p.Header)
		}
		// The log line names the file.
		if !strings.Contains(logBuf.String(), filepath.Join(dir, name)) {
			t.Errorf("log lacks %s:\n%s", name, logBuf.String())
		}
	}

	log := logBuf.String()
	for _, want := range []string{"development mail transport", "email written", testLink, "alice@example.org", "Email verification"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// The embedded default end to end: the worker delivers the outbox to files.
func TestWorkerWithFileSender(t *testing.T) {
	d := dbtest.NewSQLite(t)
	dir := t.TempDir()
	fs, err := NewFileSender(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(d, fs, WorkerOptions{From: testFrom})
	enqueue(t, d, time.Now(), verifyMessage(t, 1, "alice@example.org"))
	if sent, err := w.RunOnce(context.Background()); err != nil || sent != 1 {
		t.Fatalf("RunOnce = %d, %v", sent, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	raw, _ := os.ReadFile(files[0])
	p := parseEmail(t, raw)
	if !strings.HasPrefix(p.Header.Get("Message-Id"), "<gatehouse.") {
		t.Errorf("Message-ID %q", p.Header.Get("Message-Id"))
	}
}
