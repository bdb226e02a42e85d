package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// holdWriteLock takes SQLite's write lock on path from another connection,
// as another process would, until the test releases it.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	other, err := Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
	}
}

func newSQLite(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	d, err := Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return d, path
}

// While another process holds SQLite's write lock, a transaction waits for
// it without holding the pool's one connection: reads go on meanwhile.
func TestSQLiteWriteWaitsForLockWithoutBlockingReads(t *testing.T) {
	d, path := newSQLite(t)
	release := holdWriteLock(t, path)
	busy := make(chan struct{}, 1)
	d.onBusy = func() {
		select {
		case busy <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- d.InTx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`CREATE TABLE waited (x INTEGER)`)
			return err
		})
	}()
	select {
	case <-busy:
	case err := <-done:
		t.Fatalf("InTx returned %v with the write lock held elsewhere", err)
	case <-time.After(30 * time.Second):
		t.Fatal("InTx never found the write lock taken and let go of the connection")
	}
	read := make(chan error, 1)
	go func() {
		var n int
		read <- d.QueryRow(`SELECT count(*) FROM users`).Scan(&n)
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatalf("read while a write waits: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a read waited behind the write that waits for the lock")
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("InTx after the lock was released: %v", err)
	}
}

// A write that cannot get the lock within the wait fails as unavailable,
// with a message for the client (a 503, not a 500).
func TestSQLiteWriteBusyIsUnavailable(t *testing.T) {
	d, path := newSQLite(t)
	defer holdWriteLock(t, path)()
	d.busyWait = 20 * time.Millisecond
	err := d.InTx(context.Background(), func(tx *sql.Tx) error { return nil })
	if !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("InTx with the lock held: got %v, want an error matching derrors.Unavailable", err)
	}
	if msg, ok := derrors.Message(err); !ok || !strings.Contains(msg, "busy") {
		t.Errorf("message: got %q (ok %v), want one saying the database is busy", msg, ok)
	}
	// The connection's busy timeout, for statements outside transactions,
	// is back to normal.
	var ms int
	if err := d.QueryRow(`PRAGMA busy_timeout`).Scan(&ms); err != nil || ms != int(busyTimeout.Milliseconds()) {
		t.Errorf("busy_timeout after a busy BEGIN: %d (err %v), want %d", ms, err, busyTimeout.Milliseconds())
	}
}

// A PostgreSQL server that cannot be reached makes every query fail as
// unavailable, with a message for the client. The port is one nothing
// listens on.
func TestPostgresUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pool, err := openPostgres(fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?sslmode=disable&connect_timeout=5", port))
	if err != nil {
		t.Fatal(err)
	}
	d := &DB{DB: pool, Dialect: Postgres}
	defer d.Close()
	var n int
	err = d.QueryRow(`SELECT 1`).Scan(&n)
	if !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("query: got %v, want an error matching derrors.Unavailable", err)
	}
	if msg, ok := derrors.Message(err); !ok || !strings.Contains(msg, "unreachable") {
		t.Errorf("message: got %q (ok %v), want one saying the database is unreachable", msg, ok)
	}
	if err := d.InTx(context.Background(), func(*sql.Tx) error { return nil }); !errors.Is(err, derrors.Unavailable) {
		t.Errorf("InTx: got %v, want an error matching derrors.Unavailable", err)
	}
}
