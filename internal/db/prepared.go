package db

import (
	"context"
	"database/sql"
)

// QueryRowPrepared is QueryRowContext for the few queries that run on
// every request of a hot path, such as verifying the API token of a read
// from a private index. The statement is prepared on first use and kept
// (database/sql prepares it again on each connection it meets), so SQLite
// does not parse the SQL text each time: parsing was a third of a token
// check. query must be a constant: every distinct text is kept for the
// life of the DB.
//
// If preparing fails (the database is down, say), the query runs
// unprepared and its Row carries whatever error that gives, so callers see
// the errors they would without this.
func (db *DB) QueryRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return db.QueryRowContext(ctx, query, args...)
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}
