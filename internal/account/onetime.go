package account

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// Emailed links carry a one-time token: 32 random bytes, base64url. Only its
// SHA-256 is stored, so a database dump holds no usable link; used_at makes
// it single-use and the purpose binds it to one action (a verification
// token is no reset token).
const (
	purposeVerifyEmail   = "email-verify"
	purposeResetPassword = "password-reset"

	// tokenLifetime is Warehouse's default token max age (6 h).
	tokenLifetime  = 6 * time.Hour
	tokenExpiresIn = "6 hours" // for the email text
)

// oneTime is a stored token.
type oneTime struct {
	hash      string
	purpose   string
	userID    int64
	emailID   int64 // 0: none
	bound     map[string]string
	expiresAt time.Time
	used      bool
}

func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// newToken stores a token in tx and returns the raw value for the link.
func (s *Service) newToken(ctx context.Context, tx *sql.Tx, now time.Time, purpose string, userID, emailID int64, bound map[string]string) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	raw := base64.RawURLEncoding.EncodeToString(b)
	if bound == nil {
		bound = map[string]string{}
	}
	bj, err := json.Marshal(bound)
	if err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO one_time_tokens (token_hash, purpose, user_id, email_id, bound_json, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		hashToken(raw), purpose, userID, sql.NullInt64{Int64: emailID, Valid: emailID != 0}, string(bj), now, now.Add(tokenLifetime))
	return raw, err
}

// loadToken returns the stored token for raw, or nil when there is none.
func loadToken(ctx context.Context, q querier, raw string) (*oneTime, error) {
	// A real token is 43 characters; anything far off is not worth a query.
	if raw == "" || len(raw) > 100 {
		return nil, nil
	}
	t := &oneTime{hash: hashToken(raw)}
	var emailID sql.NullInt64
	var bound string
	var usedAt sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT purpose, user_id, email_id, bound_json, expires_at, used_at
		FROM one_time_tokens WHERE token_hash = $1`, t.hash).Scan(&t.purpose, &t.userID, &emailID, &bound, &t.expiresAt, &usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t.emailID, t.used, t.expiresAt = emailID.Int64, usedAt.Valid, t.expiresAt.UTC()
	if err := json.Unmarshal([]byte(bound), &t.bound); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *oneTime) expired(now time.Time) bool { return !now.Before(t.expiresAt) }

// errTokenRace is returned when a token was used between loading and
// consuming it: a concurrent request won.
var errTokenRace = errors.New("token already used")

// consume marks the token used; exactly one caller can succeed.
func (t *oneTime) consume(ctx context.Context, tx *sql.Tx, now time.Time) error {
	r, err := tx.ExecContext(ctx, `UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL`, now, t.hash)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return errTokenRace
	}
	return nil
}

// link builds an emailed link from the configured base URL.
func (s *Service) link(page, raw string) string { return s.links.With(page, raw) }
