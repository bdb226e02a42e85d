// Package dbtest gives tests a fresh, migrated database of each dialect.
//
// Every store test runs through Each, so it runs on SQLite always and on
// PostgreSQL whenever GATEHOUSE_TEST_POSTGRES_URL points at a server (the
// test script starts a throwaway one). With GATEHOUSE_TEST_REQUIRE_POSTGRES=1
// a missing PostgreSQL fails the test instead of skipping it, so CI cannot
// silently test only SQLite.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

// Each runs fn once per available dialect, each with a new empty database.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewPostgres(t)) })
}

// NewSQLite returns a migrated SQLite database in a temp dir.
func NewSQLite(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// PostgresURL returns a URL of a new, empty PostgreSQL database, or skips
// (or fails, when PostgreSQL is required) if no server is configured.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("GATEHOUSE_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatal("GATEHOUSE_TEST_REQUIRE_POSTGRES=1 but GATEHOUSE_TEST_POSTGRES_URL is empty")
		}
		t.Skip("no PostgreSQL: set GATEHOUSE_TEST_POSTGRES_URL (scripts/test does)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "gh_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewPostgres returns a migrated PostgreSQL database of its own.
func NewPostgres(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(context.Background(), nil); err != nil {
		t.Fatal(fmt.Errorf("migrate: %w", err))
	}
	return d
}
