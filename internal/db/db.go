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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver
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

	// SQLite: how long InTx waits for another process's write lock
	// (default busyTimeout), and a hook called each time it finds the lock
	// taken (tests).
	busyWait time.Duration
	onBusy   func()

	// stmts holds QueryRowPrepared's statements by SQL text.
	stmts sync.Map
}

// busyTimeout is how long SQLite waits for another process's write lock.
const busyTimeout = 10 * time.Second

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
		sqldb, err = openPostgres(url)
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
		dsn := "file:" + path + fmt.Sprintf("?_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) + "&_pragma=journal_mode(WAL)" +
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

// openPostgres opens a pool on url whose failures to connect match
// derrors.Unavailable (see unavailable.go).
func openPostgres(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(unavailableConnector{stdlib.GetConnector(*cfg)}), nil
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
//
// An error that means the database is unreachable, busy past busy_timeout
// or out of disk space matches derrors.Unavailable or derrors.NoSpace (see
// unavailable.go), so that the client gets a 503 or 507 and not a 500.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var tx *sql.Tx
	var err error
	if db.Dialect == SQLite {
		var conn *sql.Conn
		conn, tx, err = db.beginSQLite(ctx)
		if conn != nil {
			defer conn.Close()
		}
	} else {
		tx, err = db.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("begin: %w", classify(err))
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return classify(err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", classify(err))
	}
	return nil
}

// beginSQLite starts a write transaction (BEGIN IMMEDIATE, see Open) on
// SQLite. The pool's one connection must not sit in SQLite's busy handler
// while another process holds the write lock (a CLI command, a backup, an
// operator's sqlite3 shell): every other request, reads included, would
// queue behind it for up to busy_timeout. So BEGIN runs with no busy
// timeout, and while the lock is taken the connection goes back to the pool
// between attempts and reads go on; only the writer waits, for up to
// busyTimeout in all, and then fails as busy (a 503).
func (db *DB) beginSQLite(ctx context.Context) (*sql.Conn, *sql.Tx, error) {
	wait := db.busyWait
	if wait == 0 {
		wait = busyTimeout
	}
	deadline := time.Now().Add(wait)
	pause := 2 * time.Millisecond
	for {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, nil, err
		}
		tx, err := tryBegin(ctx, conn)
		if err == nil {
			return conn, tx, nil
		}
		conn.Close()
		if busy, ok := isUnavailable(err); !ok || !busy || time.Now().Add(pause).After(deadline) {
			return nil, nil, err
		}
		if db.onBusy != nil {
			db.onBusy()
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// tryBegin runs BEGIN IMMEDIATE on conn without waiting for the lock, then
// restores the connection's busy timeout (for statements outside
// transactions, which keep waiting in SQLite as before).
func tryBegin(ctx context.Context, conn *sql.Conn) (*sql.Tx, error) {
	restore := fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), restore)
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, restore); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
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
