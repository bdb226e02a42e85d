package main

import (
	"context"
	"io"
	"log/slog"
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
