package db_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"sort"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestMigrationsMatch checks that both dialects have the same migration files,
// so neither database falls behind the other.
func TestMigrationsMatch(t *testing.T) {
	list := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return names
	}
	sq, pg := list("migrations/sqlite"), list("migrations/postgres")
	if len(sq) == 0 || len(sq) != len(pg) {
		t.Fatalf("sqlite migrations %v, postgres %v: want the same files", sq, pg)
	}
	for i := range sq {
		if sq[i] != pg[i] {
			t.Errorf("migration %d: sqlite %q, postgres %q", i, sq[i], pg[i])
		}
	}
}

func TestInTxAndUnique(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// A second Migrate is a no-op.
		applied, err := d.Migrate(ctx, nil)
		if err != nil || len(applied) != 0 {
			t.Fatalf("second Migrate: applied %v, err %v; want none", applied, err)
		}
		insert := func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO filename_log (filename, created_at) VALUES ($1, CURRENT_TIMESTAMP)`, "a-1.0.tar.gz")
			return err
		}
		if err := d.InTx(ctx, insert); err != nil {
			t.Fatal(err)
		}
		err = d.InTx(ctx, insert)
		if !db.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: got %v, want a unique violation", err)
		}
		// A failing fn rolls back everything it did.
		boom := errors.New("boom")
		err = d.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO filename_log (filename, created_at) VALUES ($1, CURRENT_TIMESTAMP)`, "b-1.0.tar.gz"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want boom", err)
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM filename_log`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows after rollback: %d (%v), want 1", n, err)
		}
	})
}
