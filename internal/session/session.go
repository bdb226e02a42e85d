// Package session keeps browser sessions on the server.
//
// A session id is 256 random bits, sent to the browser in a cookie and
// stored only as its SHA-256, so a database dump cannot be replayed as a
// cookie. Each session records its assurance level (password only, or second
// factor done), the password date it was made under (a password change ends
// every other session), and when the user last re-entered their password
// ("sudo mode").
//
// Timeouts: a session ends after IdleTimeout without a request and, whatever
// the activity, AbsoluteTimeout after it was created. The id changes at
// login and at every privilege change (Rotate), so an id planted before login
// is worthless after it (session fixation, spec D1).
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Level is how strongly a session's user proved who they are.
type Level int

// Assurance levels.
const (
	Anonymous Level = 0 // no user: holds flash messages or a pending login
	Password  Level = 1 // the password was checked
	TwoFactor Level = 2 // password and a second factor, or a passkey
)

// Defaults for the timeouts.
const (
	DefaultIdleTimeout     = 2 * time.Hour
	DefaultAbsoluteTimeout = 12 * time.Hour
	// ReauthWindow is how long a re-entered password unlocks sensitive pages.
	ReauthWindow = 30 * time.Minute
	// touchEvery bounds how often last_seen_at is written, to keep reads cheap.
	touchEvery = time.Minute
)

// Session is one browser session.
type Session struct {
	IDHash       string
	UserID       int64 // 0 for an anonymous session
	Level        Level
	PasswordDate time.Time // the user's password_date when the session was made
	ReauthAt     time.Time // last re-authentication (zero: never)
	CreatedAt    time.Time
	LastSeenAt   time.Time
	ExpiresAt    time.Time // absolute end
	IP           string
	UserAgent    string
	Data         map[string]string // small values: flash messages, pending flows
}

// Manager creates, loads and ends sessions.
type Manager struct {
	db       *db.DB
	now      func() time.Time
	rand     io.Reader
	idle     time.Duration
	absolute time.Duration
}

// Options configures a Manager; zero values take the defaults.
type Options struct {
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	Now             func() time.Time
	Rand            io.Reader
}

// NewManager returns a Manager.
func NewManager(d *db.DB, o Options) *Manager {
	m := &Manager{db: d, now: o.Now, rand: o.Rand, idle: o.IdleTimeout, absolute: o.AbsoluteTimeout}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	if m.idle <= 0 {
		m.idle = DefaultIdleTimeout
	}
	if m.absolute <= 0 {
		m.absolute = DefaultAbsoluteTimeout
	}
	return m
}

// IdleTimeout and AbsoluteTimeout report the configured timeouts.
func (m *Manager) IdleTimeout() time.Duration     { return m.idle }
func (m *Manager) AbsoluteTimeout() time.Duration { return m.absolute }

// Hash returns the stored form of a raw session id.
func Hash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

func (m *Manager) newID() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(m.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (m *Manager) q(tx *sql.Tx) execQuerier {
	if tx != nil {
		return tx
	}
	return m.db
}

// New starts a session and returns its raw id (for the cookie only).
func (m *Manager) New(ctx context.Context, tx *sql.Tx, s *Session) (string, error) {
	raw, err := m.newID()
	if err != nil {
		return "", err
	}
	now := m.now().UTC()
	s.IDHash = Hash(raw)
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = now, now, now.Add(m.absolute)
	if s.Data == nil {
		s.Data = map[string]string{}
	}
	data, _ := json.Marshal(s.Data)
	_, err = m.q(tx).ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, auth_level, password_date, reauth_at, created_at,
		last_seen_at, expires_at, ip, user_agent, data_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		s.IDHash, nullID(s.UserID), int(s.Level), nullTime(s.PasswordDate), nullTime(s.ReauthAt), now, now, s.ExpiresAt,
		s.IP, truncate(s.UserAgent, 512), string(data))
	if err != nil {
		return "", fmt.Errorf("new session: %w", err)
	}
	return raw, nil
}

// Rotate replaces a session by a new one with a new id, for login and every
// privilege change: the old id stops working at once. The new session
// starts its own absolute lifetime.
func (m *Manager) Rotate(ctx context.Context, tx *sql.Tx, old *Session, next *Session) (string, error) {
	if old != nil && old.IDHash != "" {
		if _, err := m.q(tx).ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, old.IDHash); err != nil {
			return "", err
		}
	}
	return m.New(ctx, tx, next)
}

// ErrNoSession is returned by Load for a missing, expired or idle session.
var ErrNoSession = errors.New("no session")

// Load returns the live session for a raw id, touching its last-seen time.
func (m *Manager) Load(ctx context.Context, raw string) (*Session, error) {
	if raw == "" || len(raw) > 100 {
		return nil, ErrNoSession
	}
	s, err := m.get(ctx, m.db, Hash(raw))
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	if !now.Before(s.ExpiresAt) || now.Sub(s.LastSeenAt) >= m.idle {
		m.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, s.IDHash)
		return nil, ErrNoSession
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		s.LastSeenAt = now
		if _, err := m.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, now, s.IDHash); err != nil {
			return nil, err
		}
	}
	return s, nil
}

const columns = `id_hash, user_id, auth_level, password_date, reauth_at, created_at, last_seen_at, expires_at, ip, user_agent, data_json`

func scan(row interface{ Scan(...any) error }) (*Session, error) {
	var s Session
	var uid sql.NullInt64
	var pd, ra sql.NullTime
	var level int
	var data string
	if err := row.Scan(&s.IDHash, &uid, &level, &pd, &ra, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &s.IP, &s.UserAgent, &data); err != nil {
		return nil, err
	}
	s.UserID, s.Level = uid.Int64, Level(level)
	if pd.Valid {
		s.PasswordDate = pd.Time.UTC()
	}
	if ra.Valid {
		s.ReauthAt = ra.Time.UTC()
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastSeenAt.UTC(), s.ExpiresAt.UTC()
	s.Data = map[string]string{}
	json.Unmarshal([]byte(data), &s.Data)
	return &s, nil
}

func (m *Manager) get(ctx context.Context, q execQuerier, idHash string) (*Session, error) {
	s, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM sessions WHERE id_hash = $1`, idHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoSession
	}
	return s, err
}

// SaveData writes the session's Data map back.
func (m *Manager) SaveData(ctx context.Context, s *Session) error { return m.SaveDataIn(ctx, nil, s) }

// SaveDataIn is SaveData as part of tx (nil: on its own).
func (m *Manager) SaveDataIn(ctx context.Context, tx *sql.Tx, s *Session) error {
	data, _ := json.Marshal(s.Data)
	_, err := m.q(tx).ExecContext(ctx, `UPDATE sessions SET data_json = $1 WHERE id_hash = $2`, string(data), s.IDHash)
	return err
}

// MarkReauth records that the user re-entered their password now.
func (m *Manager) MarkReauth(ctx context.Context, s *Session) error {
	s.ReauthAt = m.now().UTC()
	_, err := m.db.ExecContext(ctx, `UPDATE sessions SET reauth_at = $1 WHERE id_hash = $2`, s.ReauthAt, s.IDHash)
	return err
}

// RecentlyAuthenticated reports whether sensitive pages may be used without
// asking for the password again.
func (m *Manager) RecentlyAuthenticated(s *Session) bool {
	return !s.ReauthAt.IsZero() && m.now().Sub(s.ReauthAt) < ReauthWindow
}

// End deletes one session.
func (m *Manager) End(ctx context.Context, idHash string) error { return m.EndIn(ctx, nil, idHash) }

// EndIn is End as part of tx (nil: on its own).
func (m *Manager) EndIn(ctx context.Context, tx *sql.Tx, idHash string) error {
	_, err := m.q(tx).ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return err
}

// EndUserSession deletes one of a user's sessions; another user's id is
// not found (no IDOR).
func (m *Manager) EndUserSession(ctx context.Context, tx *sql.Tx, userID int64, idHash string) error {
	r, err := m.q(tx).ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2`, idHash, userID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return derrors.New(derrors.NotFound, "That session does not exist or has already ended.")
	}
	return nil
}

// EndAllForUser deletes every session of a user except keepHash (may be "").
func (m *Manager) EndAllForUser(ctx context.Context, tx *sql.Tx, userID int64, keepHash string) (int64, error) {
	r, err := m.q(tx).ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2`, userID, keepHash)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// ListForUser returns a user's live sessions, most recently used first.
func (m *Manager) ListForUser(ctx context.Context, userID int64) ([]Session, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT `+columns+` FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := m.now().UTC()
	var out []Session
	for rows.Next() {
		s, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if now.Before(s.ExpiresAt) && now.Sub(s.LastSeenAt) < m.idle {
			out = append(out, *s)
		}
	}
	return out, rows.Err()
}

// Sweep deletes expired sessions; run it now and then.
func (m *Manager) Sweep(ctx context.Context) (int64, error) {
	now := m.now().UTC()
	// Compared in Go-formatted UTC timestamps written by this package; the
	// small imprecision of text comparison on SQLite only delays a sweep.
	r, err := m.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2`, now, now.Add(-m.idle))
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t.UTC(), Valid: !t.IsZero()} }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
