package mfa

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"sort"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Devices are browsers (product.md "Where we go beyond Warehouse"). Warehouse
// recognizes a device by its IP address, which VPNs, CGNAT and mobile
// networks break in both directions: a user's own laptop looks new at every
// network change, and an attacker behind the victim's carrier NAT looks
// known. Here a browser holds a random 256-bit device token in a cookie and
// the server keeps its SHA-256 per user, so a known device is one that
// completed a login the server trusted, and it can be listed and revoked.
//
// "Remembered" is a separate, shorter-lived grant on top of "known": a
// remembered browser skips the second factor for 30 days (Warehouse's
// REMEMBER_DEVICE_DAYS). Unlike Warehouse's cookie, which holds only the
// user id and survives a password change, the grant is server-side and is
// withdrawn whenever the password or a second factor changes.
const (
	deviceTokenBytes = 32
	rememberFor      = 30 * 24 * time.Hour
	maxDeviceAgent   = 512
)

// Device is a browser the user has signed in from.
type Device struct {
	ID            int64
	UserAgent     string
	IP            string // the last IP it was used from
	CreatedAt     time.Time
	LastUsedAt    time.Time
	RememberUntil time.Time // zero if not remembered (or no longer)
}

// wellFormedDeviceToken reports whether tok looks like a token we mint.
func wellFormedDeviceToken(tok string) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil && len(b) == deviceTokenBytes
}

// DeviceKnown reports whether the browser holding deviceToken has signed in
// to this account before with a login the server trusted (a WebAuthn or
// passkey login, or a confirmed email link).
func (s *Service) DeviceKnown(ctx context.Context, userID int64, deviceToken string) (bool, error) {
	if !wellFormedDeviceToken(deviceToken) {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices WHERE user_id = $1 AND token_hash = $2`,
		userID, sha256Hex(deviceToken)).Scan(&n)
	return n > 0, err
}

// MarkDeviceKnown records that the browser holding deviceToken completed a
// trusted login for the user, and returns the token for the cookie (set it
// again every time: it may be new).
//
// The browser's token is kept only if the server minted it (some account
// already has a device row for it), so that several accounts used in one
// browser share one cookie; any other value — empty, malformed, or chosen
// by whoever could write the cookie — is replaced by a fresh random token,
// so a device token cannot be planted. Use a __Host- cookie so that a
// sibling subdomain cannot write it either.
func (s *Service) MarkDeviceKnown(ctx context.Context, tx *sql.Tx, userID int64, deviceToken string, c account.Client) (string, error) {
	now := s.clock()
	ua := truncate(c.UserAgent, maxDeviceAgent)
	err := s.inTx(ctx, tx, func(tx *sql.Tx) error {
		if wellFormedDeviceToken(deviceToken) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM devices WHERE token_hash = $1`, sha256Hex(deviceToken)).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				deviceToken = ""
			}
		} else {
			deviceToken = ""
		}
		if deviceToken == "" {
			b, err := s.randomBytes(deviceTokenBytes)
			if err != nil {
				return err
			}
			deviceToken = base64.RawURLEncoding.EncodeToString(b)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, token_hash, user_agent, ip, created_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (user_id, token_hash) DO UPDATE SET user_agent = excluded.user_agent, ip = excluded.ip, last_used_at = excluded.last_used_at`,
			userID, sha256Hex(deviceToken), ua, c.IP, now)
		return err
	})
	if err != nil {
		return "", err
	}
	return deviceToken, nil
}

// RememberDevice lets the (known) browser holding deviceToken skip the
// second factor for 30 days. Call MarkDeviceKnown first.
func (s *Service) RememberDevice(ctx context.Context, tx *sql.Tx, userID int64, deviceToken string, c account.Client) error {
	now := s.clock()
	return s.inTx(ctx, tx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		var id int64
		err = tx.QueryRowContext(ctx, `UPDATE devices SET remember_until = $1 WHERE user_id = $2 AND token_hash = $3 RETURNING id`,
			now.Add(rememberFor), userID, sha256Hex(deviceToken)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errors.New("mfa: remember a device that is not known (call MarkDeviceKnown first)")
		}
		if err != nil {
			return err
		}
		return record(ctx, tx, now, c, selfEvent(u, audit.DeviceRemembered, map[string]any{"device_id": id}))
	})
}

// Remembered reports whether the browser holding deviceToken may skip the
// second factor now.
func (s *Service) Remembered(ctx context.Context, userID int64, deviceToken string) (bool, error) {
	if !wellFormedDeviceToken(deviceToken) {
		return false, nil
	}
	var until sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT remember_until FROM devices WHERE user_id = $1 AND token_hash = $2`,
		userID, sha256Hex(deviceToken)).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Compared here, not in SQL: SQLite keeps timestamps as text.
	return until.Valid && s.now().Before(until.Time), nil
}

// Devices lists the user's browsers, most recently used first.
func (s *Service) Devices(ctx context.Context, userID int64) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_agent, ip, created_at, last_used_at, remember_until
		FROM devices WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		var until sql.NullTime
		if err := rows.Scan(&d.ID, &d.UserAgent, &d.IP, &d.CreatedAt, &d.LastUsedAt, &until); err != nil {
			return nil, err
		}
		d.CreatedAt, d.LastUsedAt = d.CreatedAt.UTC(), d.LastUsedAt.UTC()
		if until.Valid && s.now().Before(until.Time) {
			d.RememberUntil = until.Time.UTC()
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUsedAt.After(out[j].LastUsedAt) })
	return out, nil
}

// RevokeDevice forgets one of the user's browsers: its next phishable login
// needs the emailed confirmation again and it no longer skips the second
// factor. Another user's device id is "not found", never revealed.
func (s *Service) RevokeDevice(ctx context.Context, userID, deviceID int64, c account.Client) error {
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		var ua string
		err = tx.QueryRowContext(ctx, `DELETE FROM devices WHERE id = $1 AND user_id = $2 RETURNING user_agent`, deviceID, userID).Scan(&ua)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "No such device.")
		}
		if err != nil {
			return err
		}
		return record(ctx, tx, now, c, selfEvent(u, audit.DeviceRevoked, map[string]any{"device_id": deviceID, "device": ua}))
	})
}

// ForgetRememberedDevices withdraws every "remember this browser" grant of
// the user, so that a changed password or second factor cannot be skipped
// by a browser remembered before the change (for instance an attacker's,
// which is why the owner changed them). Called by every factor change here;
// the web layer calls it after a password change or reset. tx may be nil.
func (s *Service) ForgetRememberedDevices(ctx context.Context, tx *sql.Tx, userID int64) error {
	return s.inTx(ctx, tx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE devices SET remember_until = NULL WHERE user_id = $1 AND remember_until IS NOT NULL`, userID)
		return err
	})
}
