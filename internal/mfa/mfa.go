// Package mfa is Gatehouse's second-factor domain: authenticator apps
// (TOTP, RFC 6238), recovery codes, the shared second-factor rate limits,
// known and remembered browsers ("devices"), the emailed confirmation of a
// phishable login from an unknown browser, and administrator-assisted
// account recovery. Security keys and passkeys (WebAuthn) live in this
// package too, in the webauthn*.go files, and share the limiter and devices.
//
// What an attacker gets from each store, and why it is built that way:
//
//   - A database dump holds no usable TOTP secret (AES-256-GCM under a key
//     derived from the server secret, bound to the user id), no recovery
//     code (an HMAC under another derived key), no device or login-link
//     token (SHA-256 of 256 random bits).
//   - A phished TOTP code works once: the last accepted RFC 6238 time step
//     is stored and any code at or before it is refused, with an atomic
//     compare-and-swap so two concurrent submissions cannot both win.
//   - Guessing is bounded per account whatever the IP: one per-user limiter
//     for every second factor (spec §1.6, B4).
//   - A phished password plus code from an unknown browser is held until a
//     link sent by email is opened in that same browser, so the victim
//     clicking the link cannot approve the attacker's browser (product.md).
//
// Every change is written in one transaction with its audit event and the
// email it causes (through account.Notifier, into the outbox). Secrets,
// codes and links never reach events or logs.
//
// Time (Options.Now) and randomness (Options.Rand) are injected so tests
// drive TOTP windows, expiry and rate-limit windows without sleeping.
package mfa

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Options configures a Service. DB and Secret are required.
type Options struct {
	DB *db.DB
	// Secret is the server secret. Keys are derived from it with HKDF, one
	// per purpose, so the TOTP encryption key and the recovery-code HMAC key
	// are independent of each other and of every other use of the secret.
	Secret []byte
	// SiteName is the TOTP issuer shown in authenticator apps.
	SiteName string
	// Links are the pages emailed links open (account.Links).
	Links    account.Links
	Notifier account.Notifier // nil: emails are dropped (a warning is logged once)
	Now      func() time.Time
	Rand     io.Reader // nil: crypto/rand
	Log      *slog.Logger
}

// HKDF info strings: changing one changes the derived key, so they are
// versioned rather than edited.
const (
	infoTOTPKey     = "gatehouse totp secret v1"
	infoRecoveryKey = "gatehouse recovery code v1"
	minSecretLen    = 16
)

// Service manages second factors. Its fields are set once by NewService and
// are shared with the WebAuthn half of the package.
type Service struct {
	db          *db.DB
	totpKey     []byte // AES-256-GCM key for totp_secrets.secret_enc
	recoveryKey []byte // HMAC-SHA256 key for recovery_codes.code_hash
	siteName    string
	links       account.Links
	notifier    account.Notifier
	now         func() time.Time
	rand        io.Reader
	log         *slog.Logger
	lim         limiters
}

// NewService returns a second-factor service.
func NewService(o Options) (*Service, error) {
	if o.DB == nil {
		return nil, errors.New("mfa: no database")
	}
	if len(o.Secret) < minSecretLen {
		return nil, fmt.Errorf("mfa: server secret is %d bytes, want at least %d", len(o.Secret), minSecretLen)
	}
	s := &Service{
		db: o.DB, siteName: strings.TrimSpace(o.SiteName), links: o.Links,
		notifier: o.Notifier, now: o.Now, rand: o.Rand, log: o.Log,
	}
	if s.siteName == "" {
		s.siteName = "Gatehouse"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.totpKey, err = hkdf.Key(sha256.New, o.Secret, nil, infoTOTPKey, 32); err != nil {
		return nil, fmt.Errorf("mfa: derive TOTP key: %w", err)
	}
	if s.recoveryKey, err = hkdf.Key(sha256.New, o.Secret, nil, infoRecoveryKey, 32); err != nil {
		return nil, fmt.Errorf("mfa: derive recovery-code key: %w", err)
	}
	s.lim = newLimiters(s.db, s.now)
	return s, nil
}

// clock is the current time as stored: UTC at microsecond precision, which
// PostgreSQL keeps exactly, so a time read back equals the one written.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// randomBytes reads n bytes from the service's randomness.
func (s *Service) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("mfa: read random bytes: %w", err)
	}
	return b, nil
}

// sha256Hex is the stored form of a high-entropy bearer token (device
// cookies, login-confirmation links): a dump of the table cannot be
// replayed, and 256 random bits need no salt or slow hash.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// mfaQuerier is what both *db.DB and *sql.Tx offer.
type mfaQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in tx when it is not nil, else in a new transaction: the
// exported helpers that take a tx let the web layer join them to its own
// (the login that creates the session), and work alone too.
func (s *Service) inTx(ctx context.Context, tx *sql.Tx, fn func(tx *sql.Tx) error) error {
	if tx != nil {
		return fn(tx)
	}
	return s.db.InTx(ctx, fn)
}

// subject is the account a second-factor operation concerns, with what the
// operation needs to decide and to write its email.
type subject struct {
	ID                int64
	Username          string
	PrimaryEmail      string // "" when the user has no address
	PrimaryVerified   bool
	RecoveryConfirmed bool // one recovery code was entered back (users.recovery_confirmed_at)
}

var errNoUser = derrors.New(derrors.NotFound, "No such user.")

// loadSubject reads a user through q. It is the package's own small query
// rather than account.Service.ByID so that mfa needs no account service and
// can read inside its own transactions.
func loadSubject(ctx context.Context, q mfaQuerier, userID int64) (*subject, error) {
	var u subject
	var confirmed sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT u.id, u.username, COALESCE(e.email, ''), COALESCE(e.verified, FALSE), u.recovery_confirmed_at
		FROM users u LEFT JOIN user_emails e ON e.user_id = u.id AND e.is_primary WHERE u.id = $1`, userID).
		Scan(&u.ID, &u.Username, &u.PrimaryEmail, &u.PrimaryVerified, &confirmed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, err
	}
	u.RecoveryConfirmed = confirmed.Valid
	return &u, nil
}

// record appends an audit event in tx, filling in where the client acted from.
func record(ctx context.Context, tx *sql.Tx, now time.Time, c account.Client, e audit.Event) error {
	e.IP, e.UserAgent = c.IP, c.UserAgent
	return audit.Record(ctx, tx, now, e)
}

// selfEvent is an event a user caused on their own account.
func selfEvent(u *subject, tag string, add map[string]any) audit.Event {
	return audit.Event{UserID: u.ID, Tag: tag, ActorID: u.ID, Actor: u.Username, Additional: add}
}

// notice records a security event (none when e.Tag is "") and emails its
// notice, through the one notice path (account.SendNotice: every verified
// address; an unverified primary only for the templates that must reach it).
func (s *Service) notice(ctx context.Context, tx *sql.Tx, now time.Time, c account.Client, e audit.Event, template string, data map[string]any) error {
	return account.SendNotice(ctx, tx, s.notifier, now, c, account.Notice{Event: e, Template: template, Data: data})
}
