package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestReadyNeedsCurrentMigrations: /readyz's check passes on a migrated
// database and file store, and fails, saying what to run, when the
// database lacks a migration this binary has.
func TestReadyNeedsCurrentMigrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		store, err := blob.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		a := &app{db: d, blobs: store, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := a.ready(context.Background()); err != nil {
			t.Fatalf("ready on a migrated database: %v", err)
		}
		if _, err := d.Exec(`DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)`); err != nil {
			t.Fatal(err)
		}
		if err := a.ready(context.Background()); err == nil || !strings.Contains(err.Error(), "gatehouse migrate") {
			t.Errorf("ready with a migration missing: %v, want an error saying to run 'gatehouse migrate'", err)
		}
	})
}

// TestReadyNeedsTheFileStore: /readyz's check fails when the files
// directory is gone (a Stat of a missing key still answered "not found"
// then), and its reason names no path: /readyz answers anyone.
func TestReadyNeedsTheFileStore(t *testing.T) {
	d := dbtest.NewSQLite(t)
	dir := t.TempDir() + "/files"
	store, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := &app{db: d, blobs: store, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := a.ready(context.Background()); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = a.ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), "file store") || strings.Contains(err.Error(), dir) {
		t.Errorf("ready without the files directory: %v, want a file-store reason without the path", err)
	}
}
