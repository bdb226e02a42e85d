// Package account holds Gatehouse's users: creation with the username rules,
// lookup and listing, and password hashing.
package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// User is one account.
type User struct {
	ID        int64
	Username  string
	FullName  string
	Email     string
	IsAdmin   bool
	Disabled  bool
	CreatedAt time.Time
}

// Service manages accounts.
type Service struct {
	db     *db.DB
	now    func() time.Time
	hasher *Hasher
}

// NewService returns an account service. now may be nil (time.Now).
func NewService(d *db.DB, hasher *Hasher, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: d, now: now, hasher: hasher}
}

// usernameRE is Warehouse's rule: letters, digits, '.', '_' and '-', starting
// and ending with a letter or digit, at most 50 characters.
var usernameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$`)

// NewUser is what Create needs.
type NewUser struct {
	Username string
	FullName string
	Email    string
	Password string // may be empty: the account then signs in with no password until one is set
	IsAdmin  bool
}

// Create adds a user. Usernames are unique ignoring case.
func (s *Service) Create(ctx context.Context, n NewUser) (*User, error) {
	if !usernameRE.MatchString(n.Username) {
		return nil, derrors.New(derrors.Invalid, "The username %q is invalid. Usernames can contain letters (A-Z, a-z), numbers (0-9), periods (.), hyphens (-) and underscores (_), must start and finish with a letter or number, and be at most 50 characters.", n.Username)
	}
	if n.Email != "" {
		if a, err := mail.ParseAddress(n.Email); err != nil || a.Address != n.Email || len(n.Email) > 254 {
			return nil, derrors.New(derrors.Invalid, "The email address %q isn't valid. Try again.", n.Email)
		}
	}
	if len(n.FullName) > 100 {
		return nil, derrors.New(derrors.Invalid, "The name is too long. Choose a name with 100 characters or less.")
	}
	var hash string
	if n.Password != "" {
		if err := CheckPasswordLength(n.Password); err != nil {
			return nil, err
		}
		var err error
		if hash, err = s.hasher.Hash(ctx, n.Password); err != nil {
			return nil, err
		}
	}
	u := &User{Username: n.Username, FullName: n.FullName, Email: n.Email, IsAdmin: n.IsAdmin, CreatedAt: s.now().UTC()}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var pwDate sql.NullTime
		if hash != "" {
			pwDate = sql.NullTime{Time: u.CreatedAt, Valid: true}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO users (username, username_key, full_name, password_hash, password_date, is_admin, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			u.Username, strings.ToLower(u.Username), u.FullName, hash, pwDate, u.IsAdmin, u.CreatedAt).Scan(&u.ID)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, "The username %q is already taken. Choose another.", n.Username)
		}
		if err != nil || n.Email == "" {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at)
			VALUES ($1, $2, $3, TRUE, FALSE, $4)`, u.ID, n.Email, strings.ToLower(n.Email), u.CreatedAt)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, "The email address %q is already in use by another account.", n.Email)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// userColumns selects a user with their primary email ('' if none).
const userColumns = `id, username, full_name,
	COALESCE((SELECT email FROM user_emails e WHERE e.user_id = users.id AND e.is_primary), ''),
	is_admin, disabled, created_at`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	if err := row.Scan(&u.ID, &u.Username, &u.FullName, &u.Email, &u.IsAdmin, &u.Disabled, &u.CreatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// ByUsername finds a user, ignoring case.
func (s *Service) ByUsername(ctx context.Context, username string) (*User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username_key = $1`, strings.ToLower(username)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "No user named %q.", username)
	}
	return u, err
}

// List returns every user, by username.
func (s *Service) List(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username_key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}
