package account

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gatehouse-index/gatehouse/internal/audit"
)

// Site switches an administrator flips at run time, in site_settings. They
// are read on each use (one primary-key lookup), so every instance sees a
// change at once.
const (
	settingRegistration = "registration" // "open" or "closed"
	settingReadOnly     = "read_only"    // "on" or "off"
)

// setting reads a switch; ok is false when it was never set.
func (s *Service) setting(ctx context.Context, name string) (value string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT value FROM site_settings WHERE name = $1`, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, err
}

// RegistrationOpen reports whether visitors may create accounts. If the
// switch cannot be read it answers closed: failing safe costs a visitor a
// retry, failing open could let accounts in on a locked-down index.
func (s *Service) RegistrationOpen(ctx context.Context) bool {
	v, ok, err := s.setting(ctx, settingRegistration)
	if err != nil {
		s.log.Error("reading the registration switch", "err", err)
		return false
	}
	if !ok {
		return s.registrationOpen
	}
	return v == "open"
}

// ReadOnly reports whether the index refuses changes. If the switch cannot
// be read it answers no: the writes would meet the same database error.
func (s *Service) ReadOnly(ctx context.Context) bool {
	v, _, err := s.setting(ctx, settingReadOnly)
	if err != nil {
		s.log.Error("reading the read-only switch", "err", err)
		return false
	}
	return v == "on"
}

// SetRegistrationOpen opens or closes registration.
func (s *Service) SetRegistrationOpen(ctx context.Context, adminID int64, open bool, c Client) error {
	v := "closed"
	if open {
		v = "open"
	}
	return s.setSetting(ctx, adminID, settingRegistration, v, audit.AdminRegistrationChanged, map[string]any{"open": open}, c)
}

// SetReadOnly turns read-only mode on or off.
func (s *Service) SetReadOnly(ctx context.Context, adminID int64, on bool, c Client) error {
	v := "off"
	if on {
		v = "on"
	}
	return s.setSetting(ctx, adminID, settingReadOnly, v, audit.AdminReadOnlyChanged, map[string]any{"read_only": on}, c)
}

func (s *Service) setSetting(ctx context.Context, adminID int64, name, value, tag string, add map[string]any, c Client) error {
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		admin, err := requireAdmin(ctx, tx, adminID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO site_settings (name, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, value, now)
		if err != nil {
			return err
		}
		return record(ctx, tx, now, c, adminEvent(admin, 0, tag, add))
	})
}
