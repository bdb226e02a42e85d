// Package db opens Gatehouse's database (SQLite or PostgreSQL), applies the
// embedded migrations and runs transactions.
//
// One SQL text serves both databases: queries use PostgreSQL-style numbered
// placeholders ($1, $2 …), which modernc.org/sqlite binds by number too, and
// stay in the common subset of the two dialects (no ILIKE, arrays, jsonb
// operators or now()). Only DDL differs, so migrations live in one folder per
// dialect with the same numbers (migrations_test.go checks that).
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the SQL database behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations
var migrations embed.FS

// DB is an open database. Queries go through the embedded *sql.DB; writes that
// must be atomic go through InTx.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open connects to url. A url starting with postgres:// or postgresql:// opens
// PostgreSQL through pgx; "sqlite:<path>" (or a bare path) opens a SQLite
// file, created if missing.
//
// SQLite gets one connection: SQLite has a single writer anyway, and one
// connection means no SQLITE_BUSY retries and no lock upgrades. Reads on the
// hot paths (the Simple API) are served from cached bytes and do not queue
// behind it. busy_timeout is set first, then WAL, foreign keys and
// synchronous=FULL so that an acknowledged commit survives a power cut, not
// just a process crash (spec I4).
func Open(ctx context.Context, url string) (*DB, error) {
	var (
		sqldb   *sql.DB
		dialect Dialect
		err     error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dialect = Postgres
		sqldb, err = sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqldb.SetMaxOpenConns(20)
		sqldb.SetMaxIdleConns(10)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
	default:
		dialect = SQLite
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, errors.New("open sqlite: empty path")
		}
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
		sqldb, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		sqldb.SetMaxOpenConns(1)
		sqldb.SetConnMaxIdleTime(0)
		sqldb.SetConnMaxLifetime(0)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqldb.PingContext(pingCtx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return &DB{DB: sqldb, Dialect: dialect}, nil
}

// Migrate applies every pending migration for the database's dialect and
// returns the versions it applied. Safe to run at every start and from
// several instances: goose serialises with a lock on PostgreSQL.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) ([]int64, error) {
	p, err := db.migrations()
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	var applied []int64
	for _, r := range results {
		applied = append(applied, r.Source.Version)
		if log != nil {
			log.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
		}
	}
	return applied, nil
}

// Pending reports whether this binary has migrations the database lacks.
// It takes no lock, so a readiness check never waits behind an instance
// that is migrating. A database migrated further by a newer release is not
// pending: under expand-then-contract (docs/operations.md) the older
// binary still runs on it.
func (db *DB) Pending(ctx context.Context) (bool, error) {
	p, err := db.migrations()
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}

// migrations is the goose provider of the database's dialect.
func (db *DB) migrations() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(db.Dialect))
	if err != nil {
		return nil, err
	}
	gd := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if db.Dialect == Postgres {
		gd = goose.DialectPostgres
		// An advisory lock, so that two instances starting together
		// against one PostgreSQL apply each migration once.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db.DB, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling back
// otherwise. fn must use tx for every statement: on SQLite the pool has one
// connection, so a query on db inside fn would wait for itself.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint failure, on
// either database. Callers use it to turn a lost race into a clear conflict.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || // SQLite
		strings.Contains(s, "SQLSTATE 23505") // PostgreSQL unique_violation
}
