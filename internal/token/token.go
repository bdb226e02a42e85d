// Package token implements API tokens for uploads, compatible with PyPI's.
//
// A token is "pypi-" followed by a version-2 binary macaroon in base64url
// without padding, byte for byte what Warehouse produces with pymacaroons.
// The macaroon's location is the server's host and its identifier is the
// token's id (a random UUID, the primary key of api_tokens). Its first-party
// caveats are Warehouse's JSON caveats:
//
//	[0, expires_at, not_before]   Expiration (unix seconds)
//	[1, ["name", …]]              ProjectName (PEP 503 normalized names)
//	[2, ["id", …]]                ProjectID (our project ids, in decimal)
//	[3, "user id"]                RequestUser
//
// plus the legacy object forms Warehouse still accepts. A whole-account
// token carries RequestUser; a project token carries ProjectName and
// ProjectID for one or more projects (PyPI allows only one); either may add
// Expiration. Clients may attenuate a token (pypitoken's restrict, or
// [Attenuate]) by appending caveats, which can only narrow it.
//
// # Keys and what the database holds
//
// Warehouse stores a random root key per token. We store no key material:
// the root key is HMAC-SHA256(server secret, "gatehouse api token v1\x00" +
// id), computed when needed. A database dump alone therefore cannot verify
// or mint tokens; an attacker also needs the server secret. api_tokens keeps
// the id, owner, description, a display summary (permissions), the issued
// caveats (caveats_json) and timestamps, none of which is secret.
//
// # Verification
//
// Following Warehouse, [Service.Authenticate] loads the token's row (an
// unknown or deleted token, or a disabled owner, means no identity at all),
// checks the signature with the derived root key, and then checks the
// presented caveats together with the issued caveats from the database, so
// that the server's restrictions hold even if a client removed them (which
// would break the signature anyway). Project caveats are checked per request
// by [Verified.PermitsProject]. Whether the owner still has a role on the
// project is the caller's business, as in Warehouse, where the token only
// ever narrows the user's own permissions.
package token

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// MaxDescriptionLen is the longest token description, in characters
// (Warehouse's limit).
const MaxDescriptionLen = 100

// Service mints, lists, deletes, revokes and verifies API tokens.
type Service struct {
	db       *db.DB
	secret   []byte
	location string
	helpURL  string
	notifier account.Notifier
	links    account.Links
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
}

// Options configure a Service.
type Options struct {
	// Secret is the server secret the root keys are derived from, at least
	// 32 bytes. Changing it invalidates every token.
	Secret []byte
	// Location is the macaroon location, the server's host such as
	// "localhost:8080" (Warehouse uses the request's domain). It is only a
	// hint and is not covered by the signature.
	Location string
	// HelpURL is the help page, such as "http://localhost:8080/help/",
	// that error messages point to (with an #anchor appended).
	HelpURL string
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Rand is the source of token ids; default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives failures of best-effort bookkeeping (last-used
	// updates); default discards them. Tokens are never logged.
	Logger *slog.Logger
	// Notifier queues the email telling an owner that their token leaked
	// and was revoked; nil records the event without an email.
	Notifier account.Notifier
	// Links holds the API tokens page (Links.Tokens) those emails link to.
	Links account.Links
}

// NewService returns a Service storing tokens in d.
func NewService(d *db.DB, o Options) (*Service, error) {
	if len(o.Secret) < 32 {
		return nil, errors.New("token.NewService: secret must be at least 32 bytes")
	}
	if o.Location == "" {
		return nil, errors.New("token.NewService: location is required")
	}
	if o.HelpURL == "" {
		return nil, errors.New("token.NewService: help URL is required")
	}
	s := &Service{
		db:       d,
		secret:   append([]byte(nil), o.Secret...),
		location: o.Location,
		helpURL:  o.HelpURL,
		notifier: o.Notifier,
		links:    o.Links,
		now:      o.Now,
		rand:     o.Rand,
		log:      o.Logger,
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
	return s, nil
}

// Token describes an issued token. It never holds the raw token, which is
// shown once, at creation.
type Token struct {
	ID          string
	UserID      int64
	Description string
	// Permissions is the summary shown to users: "user" for a
	// whole-account token, "projects: a, b" for a project token, each
	// after "read: " for a read-only token.
	Permissions string
	// ReadOnly tokens read the index (--read-access authenticated) and
	// never upload.
	ReadOnly bool
	// Projects are the normalized names a project token is limited to;
	// empty for a whole-account token.
	Projects   []string
	ExpiresAt  *time.Time
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// Create mints a token for userID and returns the raw token, to be shown
// once, with its description.
//
// With no projects the token acts for the whole account. Otherwise it is
// limited to the named projects, each of which must exist and be one the
// user holds a role on; unlike PyPI, several projects are allowed. The
// description is required, at most 100 characters and unique among the
// user's tokens. expiresAt, if set, must be in the future; it is kept to the
// second, since the caveat counts unix seconds.
//
// The token, account:api_token:added on the owner and
// project:api_token:added on each project it is limited to are written in
// one transaction. A refusal names the form field it is about
// (derrors.FieldOf: "description", "scope" or "expires") and changes
// nothing.
func (s *Service) Create(ctx context.Context, userID int64, description string, projects []string, expiresAt *time.Time, by Origin) (raw string, t Token, err error) {
	defer derrors.Wrap(&err, "token.Create(user %d)", userID)
	return s.create(ctx, userID, description, projects, expiresAt, by, false)
}

// CreateReadOnly mints a read-only token: it installs from the index (all
// of it, or the projects given, which the user must hold a role on) and is
// refused by the upload API.
func (s *Service) CreateReadOnly(ctx context.Context, userID int64, description string, projects []string, expiresAt *time.Time, by Origin) (raw string, t Token, err error) {
	defer derrors.Wrap(&err, "token.CreateReadOnly(user %d)", userID)
	return s.create(ctx, userID, description, projects, expiresAt, by, true)
}

func (s *Service) create(ctx context.Context, userID int64, description string, projects []string, expiresAt *time.Time, by Origin, readOnly bool) (raw string, t Token, err error) {

	description = strings.TrimSpace(description)
	if err := checkDescription(description); err != nil {
		return "", Token{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if expiresAt != nil {
		if !expiresAt.After(now) {
			return "", Token{}, derrors.InField(derrors.Invalid, FieldExpires, "The token's expiry must be in the future.")
		}
		e := time.Unix(expiresAt.Unix(), 0).UTC()
		expiresAt = &e
	}
	names, err := normalizeProjects(projects)
	if err != nil {
		return "", Token{}, err
	}
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", Token{}, fmt.Errorf("token id: %w", err)
	}
	id := u.String()

	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		username, err := checkUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		ids, err := ownedProjectIDs(ctx, tx, userID, names)
		if err != nil {
			return err
		}
		caveats := issuedCaveats(userID, names, ids, now, expiresAt)
		if readOnly {
			caveats = append(caveats, readOnlyCaveat())
		}
		raw, err = mint(rootKey(s.secret, id), id, s.location, caveats)
		if err != nil {
			return fmt.Errorf("mint: %w", err)
		}
		t = Token{
			ID:          id,
			UserID:      userID,
			Description: description,
			Permissions: permissionsSummary(names, readOnly),
			Projects:    names,
			ReadOnly:    readOnly,
			ExpiresAt:   expiresAt,
			CreatedAt:   now,
		}
		if err := insertToken(ctx, tx, t, caveats); err != nil {
			return err
		}
		return recordChange(ctx, tx, now, by, username, t, ids, true)
	})
	if err != nil {
		return "", Token{}, err
	}
	return raw, t, nil
}

// checkDescription applies Warehouse's rules (required, ≤ 100 characters)
// and refuses control characters, which have no place in a label and which
// PostgreSQL would refuse anyway (NUL).
func checkDescription(d string) error {
	if d == "" {
		return derrors.InField(derrors.Invalid, FieldDescription, "Specify a token name.")
	}
	if !utf8.ValidString(d) || strings.IndexFunc(d, unicode.IsControl) >= 0 {
		return derrors.InField(derrors.Invalid, FieldDescription, "The token name must not contain control characters.")
	}
	if utf8.RuneCountInString(d) > MaxDescriptionLen {
		return derrors.InField(derrors.Invalid, FieldDescription, "The token name must be at most %d characters long.", MaxDescriptionLen)
	}
	return nil
}

// normalizeProjects validates the requested project names and returns their
// PEP 503 forms without duplicates, in the order given.
func normalizeProjects(projects []string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, p := range projects {
		p = strings.TrimSpace(p)
		if !pep.ValidProjectName(p) {
			return nil, derrors.InField(derrors.Invalid, FieldScope, "%q is not a valid project name.", p)
		}
		n := pep.NormalizeName(p)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, nil
}

// checkUser makes sure the owner exists, so that a bad id is a clear error
// rather than a foreign-key failure, and returns their username for the
// audit events.
func checkUser(ctx context.Context, tx *sql.Tx, userID int64) (string, error) {
	var username string
	err := tx.QueryRowContext(ctx, `SELECT username FROM users WHERE id = $1`, userID).Scan(&username)
	if errors.Is(err, sql.ErrNoRows) {
		return "", derrors.New(derrors.NotFound, "User not found.")
	}
	return username, err
}

// ownedProjectIDs returns the id of each named project, refusing a project
// that does not exist or on which the user holds no role: a token can only
// narrow its owner's own rights.
func ownedProjectIDs(ctx context.Context, tx *sql.Tx, userID int64, names []string) ([]int64, error) {
	ids := make([]int64, 0, len(names))
	for _, name := range names {
		var (
			id      int64
			hasRole bool
		)
		err := tx.QueryRowContext(ctx, `
			SELECT p.id, EXISTS (SELECT 1 FROM effective_roles r WHERE r.project_id = p.id AND r.user_id = $2)
			FROM projects p
			WHERE p.normalized_name = $1`, name, userID).Scan(&id, &hasRole)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, derrors.InField(derrors.NotFound, FieldScope, "Project '%s' does not exist.", name)
		}
		if err != nil {
			return nil, err
		}
		if !hasRole {
			return nil, derrors.InField(derrors.Forbidden, FieldScope, "You are not an owner or maintainer of project '%s'.", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// issuedCaveats returns the caveats a new token carries, as Warehouse
// issues them: RequestUser for a whole-account token, ProjectName and
// ProjectID for a project token, then Expiration (valid from now) if the
// token expires.
func issuedCaveats(userID int64, names []string, ids []int64, now time.Time, expiresAt *time.Time) []string {
	var caveats []string
	if len(names) == 0 {
		caveats = append(caveats, requestUserCaveat(userID))
	} else {
		idStrs := make([]string, len(ids))
		for i, id := range ids {
			idStrs[i] = fmt.Sprint(id)
		}
		caveats = append(caveats, projectNameCaveat(names), projectIDCaveat(idStrs))
	}
	if expiresAt != nil {
		caveats = append(caveats, expirationCaveat(expiresAt.Unix(), now.Unix()))
	}
	return caveats
}

func permissionsSummary(names []string, readOnly bool) string {
	s := "user"
	if len(names) > 0 {
		s = "projects: " + strings.Join(names, ", ")
	}
	if readOnly {
		s = "read: " + s
	}
	return s
}

func insertToken(ctx context.Context, tx *sql.Tx, t Token, caveats []string) error {
	cj, err := json.Marshal(caveats)
	if err != nil {
		return err
	}
	var exp sql.NullTime
	if t.ExpiresAt != nil {
		exp = sql.NullTime{Time: *t.ExpiresAt, Valid: true}
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO api_tokens (id, user_id, description, caveats_json, permissions, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.ID, t.UserID, t.Description, string(cj), t.Permissions, exp, t.CreatedAt)
	if db.IsUniqueViolation(err) {
		// Warehouse's words; the kind says it clashes with an existing
		// token, so callers can say which and suggest another name.
		return derrors.InField(derrors.Conflict, FieldDescription, "API token name already in use")
	}
	return err
}

// List returns the user's tokens, newest first.
func (s *Service) List(ctx context.Context, userID int64) (_ []Token, err error) {
	defer derrors.Wrap(&err, "token.List(user %d)", userID)
	rows, err := s.db.QueryContext(ctx, `
		SELECT `+tokenColumns+`
		FROM api_tokens t
		WHERE t.user_id = $1
		ORDER BY t.created_at DESC, t.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tokens []Token
	for rows.Next() {
		t, _, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, t)
	}
	return tokens, rows.Err()
}

// tokenColumns are what scanToken reads, in its order.
const tokenColumns = `t.id, t.user_id, t.description, t.caveats_json, t.permissions, t.expires_at, t.created_at, t.last_used_at`

// scanToken reads tokenColumns (and any extra destinations after them) and
// returns the token with its stored caveats.
func scanToken(row interface{ Scan(...any) error }, extra ...any) (Token, string, error) {
	var (
		t              Token
		caveatsJSON    string
		expires, lastU sql.NullTime
	)
	dest := append([]any{&t.ID, &t.UserID, &t.Description, &caveatsJSON, &t.Permissions, &expires, &t.CreatedAt, &lastU}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Token{}, "", err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt = timePtr(expires)
	t.LastUsedAt = timePtr(lastU)
	t.Projects, t.ReadOnly = projectsOf(caveatsJSON)
	return t, caveatsJSON, nil
}

// projectsOf returns the project names in stored issued caveats, and
// whether they make the token read-only.
func projectsOf(caveatsJSON string) (names []string, readOnly bool) {
	var caveats []string
	if json.Unmarshal([]byte(caveatsJSON), &caveats) != nil {
		return nil, false
	}
	for _, s := range caveats {
		c, err := parseCaveat([]byte(s))
		switch {
		case err != nil:
		case c.tag == tagProjectName:
			names = append(names, c.values...)
		case c.tag == tagReadOnly:
			readOnly = true
		}
	}
	return names, readOnly
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// Delete removes one of the user's tokens; it stops working at once. A
// token of another user is reported as missing, and left alone.
// account:api_token:removed and, for a project token,
// project:api_token:removed on each of its projects are recorded in the
// same transaction (spec F5: no deletion goes unaudited). It returns the
// token deleted.
func (s *Service) Delete(ctx context.Context, userID int64, id string, by Origin) (deleted Token, err error) {
	defer derrors.Wrap(&err, "token.Delete(user %d, %q)", userID, id)
	if _, err := uuid.Parse(id); err != nil {
		// Not an id we could have issued; checked here so that odd bytes
		// never reach PostgreSQL (which refuses invalid UTF-8).
		return Token{}, errNotFound
	}
	now := s.now().UTC()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var username string
		t, caveatsJSON, err := scanToken(tx.QueryRowContext(ctx, `
			SELECT `+tokenColumns+`, u.username
			FROM api_tokens t JOIN users u ON u.id = t.user_id
			WHERE t.id = $1 AND t.user_id = $2`, id, userID), &username)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = $1 AND user_id = $2`, id, userID); err != nil {
			return err
		}
		deleted = t
		return recordChange(ctx, tx, now, by, username, t, projectIDsOf(caveatsJSON), false)
	})
	if err != nil {
		return Token{}, err
	}
	return deleted, nil
}

var errNotFound = derrors.New(derrors.NotFound, "API token not found.")
