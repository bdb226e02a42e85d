package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// When the database cannot be reached (PostgreSQL restarting, a network
// cut) or is busy beyond busy_timeout (another process holding SQLite's
// write lock), nothing the client did is wrong and nothing was changed:
// the right answer is a fast 503 that says to try again, not a 500 that
// says something broke. Connection failures are marked where they arise
// (a new connection, see unavailableConnector; a transaction, see InTx) as
// derrors.Unavailable, with a message for the client, keeping the driver's
// error for the log.

// unavailableError is a database error that means "not reachable or busy
// now". It matches derrors.Unavailable and the driver's error.
type unavailableError struct {
	err  error
	busy bool // SQLite's lock, not a lost connection
}

func (e *unavailableError) Error() string { return "database unavailable: " + e.err.Error() }

// Unwrap gives errors.As the client's message as a *derrors.Error (which
// matches derrors.Unavailable), and errors.Is the driver's error.
func (e *unavailableError) Unwrap() []error {
	return []error{&derrors.Error{Kind: derrors.Unavailable, Msg: e.message()}, e.err}
}

// message is what the client is told.
func (e *unavailableError) message() string {
	if e.busy {
		return "The database is busy right now, so this was not done. Nothing was changed; try again in a minute."
	}
	return "The database is unreachable right now, so this was not done. Nothing was changed; try again in a minute."
}

// fullError is a write refused because the database's disk is full.
type fullError struct{ err error }

func (e *fullError) Error() string { return "database disk full: " + e.err.Error() }
func (e *fullError) Unwrap() []error {
	return []error{&derrors.Error{Kind: derrors.NoSpace, Msg: e.message()}, e.err}
}
func (e *fullError) message() string {
	return "The server's database has run out of disk space, so this was not stored. Nothing was changed; the index's administrator must free space."
}

// classify marks err as unavailable or full when it is one of those, and
// returns it unchanged otherwise.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ue *unavailableError
	var fe *fullError
	if errors.As(err, &ue) || errors.As(err, &fe) {
		return err
	}
	if isFull(err) {
		return &fullError{err}
	}
	if busy, ok := isUnavailable(err); ok {
		return &unavailableError{err: err, busy: busy}
	}
	return err
}

// isUnavailable reports whether err means the database could not be
// reached or was busy (busy: SQLite's lock).
func isUnavailable(err error) (busy, ok bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary code, without the extended bits
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true, true
		}
		return false, false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return false, true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutdown, crash, starting up
			pe.Code == "53300": // too many connections
			return false, true
		}
		return false, false
	}
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return false, true
	case errors.As(err, &ne) && !errors.Is(err, context.Canceled):
		return false, true
	case strings.Contains(err.Error(), "conn closed"): // pgx, a connection the server dropped
		return false, true
	}
	return false, false
}

// isFull reports whether err is a write refused for lack of disk space.
func isFull(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_FULL
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "53100" // disk_full
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// unavailableConnector marks failures to open a new connection: while
// PostgreSQL is down, every request that needs the database fails there.
type unavailableConnector struct{ driver.Connector }

func (c unavailableConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, &unavailableError{err: err}
	}
	if pc, ok := conn.(*stdlib.Conn); ok {
		return pgConn{pc}, nil
	}
	return conn, nil
}

// A connection can also be lost under a query (PostgreSQL shut down with
// connections open, a network cut): pgConn marks the errors of every
// statement too, so that reads outside transactions (a token check, a file
// lookup) answer 503 as well. It forwards each interface pgx's connection
// implements, so database/sql treats it exactly as pgx's own.
type pgConn struct{ c *stdlib.Conn }

var (
	_ driver.Conn               = pgConn{}
	_ driver.ConnPrepareContext = pgConn{}
	_ driver.ConnBeginTx        = pgConn{}
	_ driver.ExecerContext      = pgConn{}
	_ driver.QueryerContext     = pgConn{}
	_ driver.Pinger             = pgConn{}
	_ driver.NamedValueChecker  = pgConn{}
	_ driver.SessionResetter    = pgConn{}
)

// mark classifies a driver error, leaving driver.ErrBadConn as it is: it
// tells database/sql to retry on another connection.
func mark(err error) error {
	if err == nil || errors.Is(err, driver.ErrBadConn) {
		return err
	}
	return classify(err)
}

func (p pgConn) Prepare(q string) (driver.Stmt, error) {
	st, err := p.c.Prepare(q)
	return st, mark(err)
}

func (p pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := p.c.PrepareContext(ctx, q)
	return st, mark(err)
}

func (p pgConn) Close() error { return p.c.Close() }

func (p pgConn) Begin() (driver.Tx, error) {
	tx, err := p.c.Begin() //nolint:staticcheck // database/sql may call it
	return tx, mark(err)
}

func (p pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := p.c.BeginTx(ctx, opts)
	return tx, mark(err)
}

func (p pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	r, err := p.c.ExecContext(ctx, q, args)
	return r, mark(err)
}

func (p pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := p.c.QueryContext(ctx, q, args)
	return r, mark(err)
}

func (p pgConn) Ping(ctx context.Context) error             { return mark(p.c.Ping(ctx)) }
func (p pgConn) CheckNamedValue(v *driver.NamedValue) error { return p.c.CheckNamedValue(v) }
func (p pgConn) ResetSession(ctx context.Context) error     { return p.c.ResetSession(ctx) }
