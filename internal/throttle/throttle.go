// Package throttle limits how often something may happen: failed logins,
// emails sent, password resets, registrations. Counts live in the database
// (table throttle_hits), so a limit holds across every instance and across
// restarts, with no Redis.
//
// Each counted attempt is one row; a limit counts the rows of a key inside a
// moving window, as Warehouse's limiter does ("10 per 5 minutes"). Rows older
// than the longest window are deleted as the key is hit again, and Sweep
// removes the rows of keys that are never hit again, so the table stays
// small.
package throttle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Limit is "N per Per".
type Limit struct {
	N   int
	Per time.Duration
}

func (l Limit) String() string { return fmt.Sprintf("%d per %s", l.N, l.Per) }

// Limiter applies one or more limits to keys in one namespace.
type Limiter struct {
	db     *db.DB
	name   string
	limits []Limit
	now    func() time.Time
}

// New returns a limiter called name (the key namespace, e.g. "ip.login").
// A limit longer than MaxWindow is a programming error: Sweep would forget
// hits it still counts.
func New(d *db.DB, name string, now func() time.Time, limits ...Limit) *Limiter {
	for _, l := range limits {
		if l.Per > MaxWindow {
			panic(fmt.Sprintf("throttle %s: limit %s is longer than MaxWindow (%s)", name, l, MaxWindow))
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{db: d, name: name, limits: limits, now: now}
}

// Name is the limiter's namespace.
func (l *Limiter) Name() string { return l.name }

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (l *Limiter) key(k string) string { return l.name + ":" + k }

// Check reports whether key is under every limit. When it is not, retryAfter
// says when the next attempt would be allowed. On a database error it fails
// open (ok=true) and returns the error for the caller to log: a broken
// limiter must not lock everyone out.
func (l *Limiter) Check(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	return l.check(ctx, l.db, key)
}

func (l *Limiter) check(ctx context.Context, q execQuerier, key string) (bool, time.Duration, error) {
	now := l.now().UnixMilli()
	ok := true
	var wait time.Duration
	for _, lim := range l.limits {
		// The N-th most recent hit inside the window: while it is inside, the
		// key is at the limit; when it leaves the window, one more is allowed.
		var at int64
		err := q.QueryRowContext(ctx, `SELECT at FROM throttle_hits WHERE key = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3`,
			l.key(key), now-lim.Per.Milliseconds(), lim.N-1).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return true, 0, fmt.Errorf("throttle %s: %w", l.name, err)
		}
		ok = false
		if w := time.Duration(at+lim.Per.Milliseconds()-now) * time.Millisecond; w > wait {
			wait = w
		}
	}
	if !ok && wait < time.Second {
		wait = time.Second
	}
	return ok, wait.Round(time.Second), nil
}

// Hit counts one attempt for key. Pass a transaction to count it atomically
// with the change it limits, or nil to use the database directly.
func (l *Limiter) Hit(ctx context.Context, tx *sql.Tx, key string) error {
	var q execQuerier = l.db
	if tx != nil {
		q = tx
	}
	now := l.now().UnixMilli()
	if _, err := q.ExecContext(ctx, `INSERT INTO throttle_hits (key, at) VALUES ($1, $2)`, l.key(key), now); err != nil {
		return fmt.Errorf("throttle %s: %w", l.name, err)
	}
	var longest time.Duration
	for _, lim := range l.limits {
		longest = max(longest, lim.Per)
	}
	_, err := q.ExecContext(ctx, `DELETE FROM throttle_hits WHERE key = $1 AND at <= $2`, l.key(key), now-longest.Milliseconds())
	return err
}

// Clear forgets every attempt for key (e.g. after a successful verification).
func (l *Limiter) Clear(ctx context.Context, tx *sql.Tx, key string) error {
	var q execQuerier = l.db
	if tx != nil {
		q = tx
	}
	_, err := q.ExecContext(ctx, `DELETE FROM throttle_hits WHERE key = $1`, l.key(key))
	return err
}

// Describe renders the limits for messages, e.g. "5 per 5m0s".
func (l *Limiter) Describe() string {
	var parts []string
	for _, lim := range l.limits {
		parts = append(parts, lim.String())
	}
	return strings.Join(parts, ", ")
}

// Enforce checks key and, when it is over a limit, returns a
// derrors.RateLimited error with msg that says when to retry
// (derrors.RetryAfter). Database errors fail open (nil) after being passed
// to onErr.
func (l *Limiter) Enforce(ctx context.Context, key, msg string, onErr func(error)) error {
	ok, wait, err := l.Check(ctx, key)
	if err != nil && onErr != nil {
		onErr(err)
	}
	if ok {
		return nil
	}
	return derrors.Limited(wait, "%s", msg)
}
