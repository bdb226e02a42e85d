// Package account is Gatehouse's account domain: users and their email
// addresses, registration, the password check behind login and re-auth,
// password change and reset, emailed one-time links, account deletion,
// administrator moderation and the site switches.
//
// Every state change is written in one transaction together with its audit
// event (internal/audit), the emails it causes (through Notifier, into the
// outbox) and its rate-limit hits, so none of them can exist without the
// others. Passwords, raw tokens and links never reach events or logs.
//
// Time (Options.Now) and randomness (Options.Rand) are injected so tests
// drive link expiry and rate-limit windows without sleeping.
package account

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// User is one account. PrimaryEmail is "" when the user has no address.
type User struct {
	ID              int64
	Username        string
	FullName        string
	PrimaryEmail    string
	PrimaryVerified bool
	IsAdmin         bool
	Disabled        bool
	DisabledReason  string
	HasPassword     bool
	PasswordDate    time.Time // zero when no password was ever set; sessions compare it
	LastLogin       time.Time // zero before the first login
	CreatedAt       time.Time
}

// Email is one of a user's addresses.
type Email struct {
	ID        int64
	UserID    int64
	Email     string
	Primary   bool
	Verified  bool
	CreatedAt time.Time
}

// Client is who is acting: recorded in events and used as the rate-limit key
// of per-IP limits.
type Client struct {
	IP, UserAgent string
}

// Notifier queues an email inside tx; cmd/gatehouse wires one that renders the template
// with internal/mail and writes the outbox. It must use tx for every
// statement: on SQLite the pool has a single connection.
type Notifier interface {
	Notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error
}

// Options configures a Service. Only DB is required.
type Options struct {
	DB       *db.DB
	Hasher   *Hasher  // nil: two CPUs, no bound on the wait
	Notifier Notifier // nil: emails are dropped (a warning is logged once)
	// Links are the pages emailed links open (see Links).
	Links  Links
	Breach *BreachChecker // nil: no breached-password check
	Now    func() time.Time
	Rand   io.Reader // token randomness; nil: crypto/rand
	Log    *slog.Logger
	// DefaultRegistrationOpen applies until an administrator flips the switch.
	DefaultRegistrationOpen bool
}

// Service manages accounts.
type Service struct {
	db               *db.DB
	hasher           *Hasher
	notifier         Notifier
	links            Links
	breach           *BreachChecker
	now              func() time.Time
	rand             io.Reader
	log              *slog.Logger
	registrationOpen bool
	lim              limiters
	noNotifier       sync.Once // warns once that emails are being dropped
	dummy            string    // see dummyHash
}

// NewService returns an account service.
func NewService(o Options) *Service {
	s := &Service{
		db: o.DB, hasher: o.Hasher, notifier: o.Notifier, links: o.Links,
		breach: o.Breach, now: o.Now, rand: o.Rand, log: o.Log, registrationOpen: o.DefaultRegistrationOpen,
	}
	if s.hasher == nil {
		s.hasher = NewHasher(workpool.New(workpool.Options{CPUs: 2}))
	}
	s.dummy = dummyHash()
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.lim = newLimiters(s.db, s.now)
	return s
}

// DB is the service's database, for callers that must join one of its
// writes (CompleteLogin) with their own in a transaction.
func (s *Service) DB() *db.DB { return s.db }

// clock is the current time as stored: UTC at microsecond precision, which
// PostgreSQL keeps exactly, so a time read back equals the one written
// (sessions compare password_date with ==).
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// querier is what both *db.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func idKey(id int64) string { return strconv.FormatInt(id, 10) }

// usernameKey is a username as users.username_key holds it: lower-cased, so
// "Alice" and "alice" are one account. Every lookup by name and the login
// limit's key (loginKey) go through it, so they cannot disagree.
func usernameKey(name string) string { return strings.ToLower(name) }

// UsernameKey is usernameKey for the packages that find a user by name in
// their own transactions (inviting a collaborator).
func UsernameKey(name string) string { return usernameKey(name) }

// NewUser is what Create needs.
type NewUser struct {
	Username string
	FullName string
	Email    string
	Password string // may be empty: the account then has no password until one is set
	IsAdmin  bool
	// EmailVerified records the address as verified: the administrator
	// running the command vouches for it, so no verification link is needed.
	EmailVerified bool
}

// Create adds a user from the command line (gatehouse user create): the
// address is stored unverified (unless EmailVerified) and no email is sent.
// A password, when given, must pass the same rules as one chosen on the
// registration form (CheckNewPassword): an administrator choosing it for
// someone is no reason to allow "password" or "12345678".
func (s *Service) Create(ctx context.Context, n NewUser) (*User, error) {
	if err := checkUsername(n.Username); err != nil {
		return nil, err
	}
	email := strings.TrimSpace(n.Email)
	if email != "" {
		if err := checkEmailSyntax(email); err != nil {
			return nil, err
		}
	}
	if err := checkFullName(n.FullName); err != nil {
		return nil, err
	}
	var hash string
	if n.Password != "" {
		draft := &User{Username: n.Username, FullName: n.FullName, PrimaryEmail: email}
		if err := s.CheckNewPassword(ctx, n.Password, n.Password, draft); err != nil {
			return nil, err
		}
		var err error
		if hash, err = s.hasher.Hash(ctx, n.Password); err != nil {
			return nil, s.setPasswordErr(err)
		}
	}
	now := s.clock()
	var id int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var pwDate sql.NullTime
		if hash != "" {
			pwDate = sql.NullTime{Time: now, Valid: true}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO users (username, username_key, full_name, password_hash, password_date, is_admin, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			n.Username, usernameKey(n.Username), n.FullName, hash, pwDate, n.IsAdmin, now).Scan(&id)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, "The username %q is already taken. Choose another.", n.Username)
		}
		if err != nil {
			return err
		}
		if email != "" {
			var verifiedAt sql.NullTime
			if n.EmailVerified {
				verifiedAt = sql.NullTime{Time: now, Valid: true}
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at, verified_at)
				VALUES ($1, $2, $3, TRUE, $4, $5, $6)`, id, email, emailKey(email), n.EmailVerified, now, verifiedAt)
			if db.IsUniqueViolation(err) {
				return derrors.New(derrors.Conflict, "The email address %q is already in use by another account.", email)
			}
			if err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, now, audit.Event{UserID: id, Tag: audit.AccountCreate, Actor: "command line",
			Additional: map[string]any{"email": email, "admin": n.IsAdmin}})
	})
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return s.ByID(ctx, id)
}

// userSelect reads a user with their primary address. The password hash is
// read too (scanUser returns it separately) so login needs one query.
const userSelect = `SELECT u.id, u.username, u.full_name, COALESCE(e.email, ''), COALESCE(e.verified, FALSE),
	u.is_admin, u.disabled, u.disabled_reason, u.password_hash, u.password_date, u.last_login, u.created_at
	FROM users u LEFT JOIN user_emails e ON e.user_id = u.id AND e.is_primary`

func scanUser(row interface{ Scan(...any) error }) (*User, string, error) {
	var u User
	var hash string
	var pwDate, lastLogin sql.NullTime
	if err := row.Scan(&u.ID, &u.Username, &u.FullName, &u.PrimaryEmail, &u.PrimaryVerified,
		&u.IsAdmin, &u.Disabled, &u.DisabledReason, &hash, &pwDate, &lastLogin, &u.CreatedAt); err != nil {
		return nil, "", err
	}
	u.HasPassword = hash != ""
	if pwDate.Valid {
		u.PasswordDate = pwDate.Time.UTC()
	}
	if lastLogin.Valid {
		u.LastLogin = lastLogin.Time.UTC()
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, hash, nil
}

var errNoUser = derrors.New(derrors.NotFound, "No such user.")

// userByID loads a user and their password hash through q.
func userByID(ctx context.Context, q querier, id int64) (*User, string, error) {
	u, hash, err := scanUser(q.QueryRowContext(ctx, userSelect+` WHERE u.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", errNoUser
	}
	return u, hash, err
}

// ByID returns a user.
func (s *Service) ByID(ctx context.Context, id int64) (*User, error) {
	return s.ByIDTx(ctx, nil, id)
}

// ByIDTx returns a user, read through tx when it is not nil.
func (s *Service) ByIDTx(ctx context.Context, tx *sql.Tx, id int64) (*User, error) {
	var q querier = s.db
	if tx != nil {
		q = tx
	}
	u, _, err := userByID(ctx, q, id)
	return u, err
}

// ByUsername finds a user, ignoring case.
func (s *Service) ByUsername(ctx context.Context, username string) (*User, error) {
	u, _, err := scanUser(s.db.QueryRowContext(ctx, userSelect+` WHERE u.username_key = $1`, usernameKey(username)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "No user named %q.", username)
	}
	return u, err
}

// List returns every user, by username.
func (s *Service) List(ctx context.Context) ([]User, error) {
	return s.users(ctx, userSelect+` ORDER BY u.username_key`)
}

// Search finds users whose username or any address contains q, ignoring
// case, for the administrators' user list.
func (s *Service) Search(ctx context.Context, q string, limit int) ([]User, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	pattern := "%" + escapeLike(strings.ToLower(strings.TrimSpace(q))) + "%"
	// username_key and email_key are already lower-cased, so the pattern
	// needs no lower() on the column side and LIKE behaves the same on both
	// databases (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
	return s.users(ctx, userSelect+` WHERE u.username_key LIKE $1 ESCAPE '\'
		OR EXISTS (SELECT 1 FROM user_emails x WHERE x.user_id = u.id AND x.email_key LIKE $1 ESCAPE '\')
		ORDER BY u.username_key LIMIT $2`, pattern, limit)
}

// escapeLike makes s match literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (s *Service) users(ctx context.Context, query string, args ...any) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}

// record appends an audit event in tx, filling in who acted and from where.
func record(ctx context.Context, tx *sql.Tx, now time.Time, c Client, e audit.Event) error {
	e.IP, e.UserAgent = c.IP, c.UserAgent
	return audit.Record(ctx, tx, now, e)
}

// selfEvent is an event a user caused on their own account.
func selfEvent(u *User, tag string, add map[string]any) audit.Event {
	return audit.Event{UserID: u.ID, Tag: tag, ActorID: u.ID, Actor: u.Username, Additional: add}
}

// notify queues an email in tx, or drops it when no Notifier is configured.
func (s *Service) notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error {
	if to == "" {
		return nil
	}
	if s.notifier == nil {
		s.noNotifier.Do(func() { s.log.Warn("no notifier configured: account emails are not sent") })
		return nil
	}
	if err := s.notifier.Notify(ctx, tx, template, userID, to, data); err != nil {
		return fmt.Errorf("queue %s email: %w", template, err)
	}
	return nil
}

// onLimitErr logs a limiter's database error; the limiter then fails open.
func (s *Service) onLimitErr(err error) {
	s.log.Warn("rate limiter unavailable; allowing the attempt", "err", err)
}
