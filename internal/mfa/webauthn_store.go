package mfa

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// webAuthnQuerier is what both *db.DB and *sql.Tx offer.
type webAuthnQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// webAuthnRecord is a stored credential: what the pages show plus
// go-webauthn's record (public key, flags, transports) from credential_json.
type webAuthnRecord struct {
	Credential
	wa webauthn.Credential
}

const webAuthnSelect = `SELECT id, user_id, label, passkey, created_at, last_used_at, sign_count, credential_json
	FROM webauthn_credentials`

func webAuthnScan(row interface{ Scan(...any) error }) (*webAuthnRecord, error) {
	var r webAuthnRecord
	var lastUsed sql.NullTime
	var count int64
	var raw string
	if err := row.Scan(&r.ID, &r.UserID, &r.Label, &r.Passkey, &r.CreatedAt, &lastUsed, &count, &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(raw), &r.wa); err != nil {
		return nil, fmt.Errorf("webauthn credential %d: %w", r.ID, err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	if lastUsed.Valid {
		r.LastUsedAt = lastUsed.Time.UTC()
	}
	// The column is what the compare-and-swap guards, so it is the truth.
	r.SignCount = uint32(count)
	r.wa.Authenticator.SignCount = r.SignCount
	return &r, nil
}

// webAuthnRecords returns a user's credentials, oldest first.
func webAuthnRecords(ctx context.Context, q webAuthnQuerier, userID int64) ([]*webAuthnRecord, error) {
	rows, err := q.QueryContext(ctx, webAuthnSelect+` WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*webAuthnRecord
	for rows.Next() {
		r, err := webAuthnScan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// webAuthnCredentialKey is how a credential id is stored: base64url, no
// padding, as it travels in JSON.
func webAuthnCredentialKey(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// Credentials returns a user's security keys and passkeys, oldest first.
func (w *WebAuthn) Credentials(ctx context.Context, userID int64) ([]Credential, error) {
	recs, err := webAuthnRecords(ctx, w.db, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, len(recs))
	for i, r := range recs {
		out[i] = r.Credential
	}
	return out, nil
}

// HasPasskey reports whether the user can sign in with a passkey, so the
// login page can offer it and the account page can explain it.
func (w *WebAuthn) HasPasskey(ctx context.Context, userID int64) (bool, error) {
	var n int
	err := w.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1 AND passkey`, userID).Scan(&n)
	return n > 0, err
}

// userHandle returns the user's WebAuthn user handle, creating it on first
// use when create is set (nil when the user has none). It is 32 random
// bytes: §14.6.1 asks that it identify nobody outside this site, so it is
// neither the database id nor the username.
func (w *WebAuthn) userHandle(ctx context.Context, userID int64, create bool) ([]byte, error) {
	var stored sql.NullString
	err := w.db.QueryRowContext(ctx, `SELECT webauthn_user_handle FROM users WHERE id = $1`, userID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "No such user.")
	}
	if err != nil {
		return nil, err
	}
	if !stored.Valid && create {
		b := make([]byte, 32)
		if _, err := io.ReadFull(w.rand, b); err != nil {
			return nil, err
		}
		// Only the first writer wins, so two tabs registering at once end
		// with one handle; both then read it back.
		if _, err := w.db.ExecContext(ctx, `UPDATE users SET webauthn_user_handle = $1 WHERE id = $2 AND webauthn_user_handle IS NULL`,
			base64.RawURLEncoding.EncodeToString(b), userID); err != nil {
			return nil, err
		}
		return w.userHandle(ctx, userID, false)
	}
	if !stored.Valid {
		return nil, nil
	}
	return base64.RawURLEncoding.DecodeString(stored.String)
}

// userByHandle finds the account a passkey names (0 when none does).
func (w *WebAuthn) userByHandle(ctx context.Context, handle []byte) (int64, error) {
	if len(handle) == 0 || len(handle) > 64 { // §5.4.3: at most 64 bytes
		return 0, nil
	}
	var id int64
	err := w.db.QueryRowContext(ctx, `SELECT id FROM users WHERE webauthn_user_handle = $1`,
		base64.RawURLEncoding.EncodeToString(handle)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// webAuthnContact is the account a change concerns: what the preconditions
// need and who the security email goes to.
type webAuthnContact struct {
	userID            int64
	username          string
	email             string // primary address, "" when unverified or absent
	verified          bool   // the primary address is verified
	recoveryConfirmed bool   // one recovery code was entered back
}

func webAuthnLoadContact(ctx context.Context, q webAuthnQuerier, userID int64) (*webAuthnContact, error) {
	c := &webAuthnContact{userID: userID}
	var confirmed sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT u.username, COALESCE(e.email, ''), COALESCE(e.verified, FALSE), u.recovery_confirmed_at
		FROM users u LEFT JOIN user_emails e ON e.user_id = u.id AND e.is_primary WHERE u.id = $1`, userID).
		Scan(&c.username, &c.email, &c.verified, &confirmed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "No such user.")
	}
	if err != nil {
		return nil, err
	}
	c.recoveryConfirmed = confirmed.Valid
	if !c.verified {
		// An unproven address may belong to someone else (Warehouse sends
		// these notices to verified addresses only).
		c.email = ""
	}
	return c, nil
}

// mayModify is Warehouse's first precondition for adding or removing a
// second factor: a verified primary address, so the change notice reaches
// the owner and not whoever typed an address at registration.
func (c *webAuthnContact) mayModify() error {
	if !c.verified {
		return derrors.New(derrors.Forbidden, webAuthnMsgNeedVerified)
	}
	return nil
}

// mayAdd adds Warehouse's second precondition for adding one: recovery
// codes generated and one entered back, so that losing the key does not
// lock the owner out.
func (c *webAuthnContact) mayAdd() error {
	if err := c.mayModify(); err != nil {
		return err
	}
	if !c.recoveryConfirmed {
		return derrors.New(derrors.Forbidden, webAuthnMsgNeedRecovery)
	}
	return nil
}

// notice records an event the user caused on their own account and sends
// its security email, through the one notice path (account.SendNotice).
func (w *WebAuthn) notice(ctx context.Context, tx *sql.Tx, now time.Time, who *webAuthnContact, c account.Client, tag string, add map[string]any,
	template string, data map[string]any) error {
	return account.SendNotice(ctx, tx, w.notifier, now, c, account.Notice{
		Event:    audit.Event{UserID: who.userID, Tag: tag, ActorID: who.userID, Actor: who.username, Additional: add},
		Template: template, Data: data,
	})
}

// webAuthnAudit appends an event the user caused on their own account.
func webAuthnAudit(ctx context.Context, tx *sql.Tx, now time.Time, who *webAuthnContact, c account.Client, tag string, add map[string]any) error {
	return audit.Record(ctx, tx, now, audit.Event{UserID: who.userID, Tag: tag, ActorID: who.userID, Actor: who.username,
		IP: c.IP, UserAgent: c.UserAgent, Additional: add})
}

// The challenge ledger makes every challenge single-use in the database
// (§13.4.3), not only in the caller's session: a session's data is rewritten
// as a whole, so two requests racing with one cookie could both read the
// state before either deletes it. A finished ceremony's challenge is stored,
// hashed, as a used one_time_tokens row whose primary key refuses a second
// use; it is kept until the state could no longer be accepted anyway.
const webAuthnLedgerPurpose = "webauthn-challenge"

func webAuthnLedgerKey(challenge string) string {
	sum := sha256.Sum256([]byte(webAuthnLedgerPurpose + ":" + challenge))
	return hex.EncodeToString(sum[:])
}

// errWebAuthnReplay means the challenge was already used.
var errWebAuthnReplay = errors.New("webauthn challenge already used")

// webAuthnChallengeUsed reports whether a challenge was already consumed.
func webAuthnChallengeUsed(ctx context.Context, q webAuthnQuerier, challenge string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM one_time_tokens WHERE token_hash = $1`, webAuthnLedgerKey(challenge)).Scan(&n)
	return n > 0, err
}

// consumeChallenge records the challenge as used in tx; exactly one caller
// succeeds. It also drops the user's ledger rows that have outlived any
// state they could match, so the ledger stays a handful of rows per user.
func (w *WebAuthn) consumeChallenge(ctx context.Context, tx *sql.Tx, userID int64, st *webAuthnState, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT token_hash, expires_at FROM one_time_tokens WHERE user_id = $1 AND purpose = $2`,
		userID, webAuthnLedgerPurpose)
	if err != nil {
		return err
	}
	var stale []string
	for rows.Next() {
		var h string
		var exp time.Time
		if err := rows.Scan(&h, &exp); err != nil {
			rows.Close()
			return err
		}
		if exp.Before(now) {
			stale = append(stale, h)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, h := range stale {
		if _, err := tx.ExecContext(ctx, `DELETE FROM one_time_tokens WHERE token_hash = $1`, h); err != nil {
			return err
		}
	}
	expires := st.Issued.Add(WebAuthnCeremonyTimeout + time.Minute)
	_, err = tx.ExecContext(ctx, `INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at, used_at)
		VALUES ($1, $2, $3, $4, $5, $4)`, webAuthnLedgerKey(st.Session.Challenge), webAuthnLedgerPurpose, userID, now, expires)
	if db.IsUniqueViolation(err) {
		return errWebAuthnReplay
	}
	return err
}

// RemoveCredential deletes one of the user's security keys or passkeys.
// typedLabel must repeat the key's label, as Warehouse asks, so a key is not
// removed by a slip of the mouse. The last second factor cannot go: the
// account would fall back to a password alone (spec §1.2, has_single_2fa).
// Remembered browsers are forgotten, since they skipped the second factor on
// the strength of a set of factors that has now changed.
func (w *WebAuthn) RemoveCredential(ctx context.Context, userID, credID int64, typedLabel string, c account.Client) error {
	now := w.clock()
	return w.db.InTx(ctx, func(tx *sql.Tx) error {
		// Lock the user row first: two removals racing on PostgreSQL
		// could otherwise each see the other key and leave none. TOTP
		// removal must take the same lock.
		if _, err := tx.ExecContext(ctx, `UPDATE users SET webauthn_user_handle = webauthn_user_handle WHERE id = $1`, userID); err != nil {
			return err
		}
		who, err := webAuthnLoadContact(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := who.mayModify(); err != nil {
			return err
		}
		var label string
		var passkey bool
		err = tx.QueryRowContext(ctx, `SELECT label, passkey FROM webauthn_credentials WHERE id = $1 AND user_id = $2`, credID, userID).
			Scan(&label, &passkey)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "No such security key.")
		}
		if err != nil {
			return err
		}
		if strings.TrimSpace(typedLabel) != label {
			return derrors.New(derrors.Invalid, "Type the key's label exactly to confirm.")
		}
		var keys, totp int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1`, userID).Scan(&keys); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM totp_secrets WHERE user_id = $1`, userID).Scan(&totp); err != nil {
			return err
		}
		if keys <= 1 && totp == 0 {
			return derrors.New(derrors.Conflict, webAuthnMsgLastFactor)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2`, credID, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET remember_until = NULL WHERE user_id = $1`, userID); err != nil {
			return err
		}
		cred := Credential{Label: label, Passkey: passkey}
		return w.notice(ctx, tx, now, who, c, audit.TwoFactorRemoved, map[string]any{"method": "webauthn", "label": label},
			mail.TemplateTwoFactorRemoved, map[string]any{"Username": who.username, "Method": cred.method()})
	})
}
