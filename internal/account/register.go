package account

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Registration is the sign-up form.
type Registration struct {
	Username, FullName, Email, Password, Confirm string
}

const (
	msgUsernameTaken = "This username is already being used by another account. Choose a different username."
	msgEmailTaken    = "This email address is already being used by another account. Use a different email."
)

// Register creates an account (spec §1.1 Registration): the address becomes
// an unverified primary and a verification link is emailed. The caller logs
// the new user in at once, as Warehouse does.
func (s *Service) Register(ctx context.Context, r Registration, c Client) (*User, error) {
	if !s.RegistrationOpen(ctx) {
		return nil, derrors.New(derrors.Forbidden, "Registration is closed. Ask an administrator for an account.")
	}
	if err := s.lim.register.Enforce(ctx, c.IP, "Too many accounts have been created from your network. Try again later.", s.onLimitErr); err != nil {
		return nil, err
	}
	if err := s.enforceEmailAdd(ctx, c); err != nil {
		return nil, err
	}
	email := strings.TrimSpace(r.Email)
	if err := checkUsername(r.Username); err != nil {
		return nil, err
	}
	if err := checkFullName(r.FullName); err != nil {
		return nil, err
	}
	if err := checkEmailSyntax(email); err != nil {
		return nil, err
	}
	// Checked here for a prompt answer before the slow password checks; the
	// unique indexes settle races inside the transaction.
	if taken, err := exists(ctx, s.db, `SELECT 1 FROM users WHERE username_key = $1`, usernameKey(r.Username)); err != nil {
		return nil, err
	} else if taken {
		return nil, derrors.New(derrors.Conflict, msgUsernameTaken)
	}
	if err := s.checkEmailFree(ctx, email); err != nil {
		return nil, err
	}
	draft := &User{Username: r.Username, FullName: r.FullName, PrimaryEmail: email}
	if err := s.CheckNewPassword(ctx, r.Password, r.Confirm, draft); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, r.Password)
	if err != nil {
		return nil, s.setPasswordErr(err)
	}

	now := s.clock()
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users (username, username_key, full_name, password_hash, password_date, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			r.Username, usernameKey(r.Username), r.FullName, hash, now, now).Scan(&id)
		if db.IsUniqueViolation(err) {
			return derrors.New(derrors.Conflict, msgUsernameTaken)
		}
		if err != nil {
			return err
		}
		emailID, err := insertEmail(ctx, tx, now, id, email, true)
		if err != nil {
			return err
		}
		u := &User{ID: id, Username: r.Username}
		if err := s.sendVerification(ctx, tx, now, u, emailID, email); err != nil {
			return err
		}
		if err := record(ctx, tx, now, c, selfEvent(u, audit.AccountCreate, map[string]any{"email": email})); err != nil {
			return err
		}
		if err := s.lim.register.Hit(ctx, tx, c.IP); err != nil {
			return err
		}
		return s.lim.emailAdd.Hit(ctx, tx, c.IP)
	})
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return s.ByID(ctx, id)
}

// exists reports whether query returns a row.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	return rows.Next(), rows.Err()
}

// checkEmailFree refuses an address any account already has, ignoring case.
func (s *Service) checkEmailFree(ctx context.Context, addr string) error {
	taken, err := exists(ctx, s.db, `SELECT 1 FROM user_emails WHERE email_key = $1`, emailKey(addr))
	if err != nil {
		return err
	}
	if taken {
		return derrors.New(derrors.Conflict, msgEmailTaken)
	}
	return nil
}

// insertEmail adds an unverified address; a taken address is a conflict.
func insertEmail(ctx context.Context, tx *sql.Tx, now time.Time, userID int64, addr string, primary bool) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at)
		VALUES ($1, $2, $3, $4, FALSE, $5) RETURNING id`, userID, addr, emailKey(addr), primary, now).Scan(&id)
	if db.IsUniqueViolation(err) {
		return 0, derrors.New(derrors.Conflict, msgEmailTaken)
	}
	return id, err
}

// sendVerification stores a verification token for an address and queues
// the email with its link. Every verification email counts against the
// user's email.verify limit, which a completed verification clears.
func (s *Service) sendVerification(ctx context.Context, tx *sql.Tx, now time.Time, u *User, emailID int64, addr string) error {
	raw, err := s.newToken(ctx, tx, now, purposeVerifyEmail, u.ID, emailID, nil)
	if err != nil {
		return err
	}
	err = s.notify(ctx, tx, "verify-email", u.ID, addr, map[string]any{
		"Username": u.Username, "Email": addr, "Link": s.link(s.links.VerifyEmail, raw), "ExpiresIn": tokenExpiresIn,
	})
	if err != nil {
		return err
	}
	return s.lim.emailVerify.Hit(ctx, tx, idKey(u.ID))
}
