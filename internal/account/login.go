package account

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const (
	msgTooManyLogins   = "There have been too many unsuccessful login attempts. Try again later."
	msgInvalidPassword = "The password is invalid. Try again."
	// msgInvalidLogin is the one answer to a wrong username or a wrong
	// password at login, so the form cannot tell which accounts exist
	// (spec A6). Warehouse says "No user found with that username"; we
	// deliberately do not.
	msgInvalidLogin = "The username or password is invalid. Try again."
	msgDisabled     = "Your account has been disabled. Contact an administrator."
)

// CheckLogin checks a username and password (spec §1.1 Login form, §1.10
// step 1). It does not record a login: the web layer calls CompleteLogin
// once any second factor is done too.
//
// Unknown usernames get the same answer as wrong passwords, after a dummy
// argon2id verification so that the time taken does not tell them apart
// either. The per-user limit counts them too, under the same key a real
// account would have, so it trips and answers alike for both (spec A6).
// When the hasher is busy for its whole wait, both get the same 429 (see
// busyError), counted alike (hitBusyLimits).
func (s *Service) CheckLogin(ctx context.Context, username, password string, c Client) (*User, error) {
	if strings.Contains(username, "@") {
		return nil, derrors.New(derrors.Invalid, "Usernames are not the same as email addresses. Enter your username instead of your email address.")
	}
	if username == "" {
		return nil, derrors.New(derrors.Invalid, "Enter your username.")
	}
	key := loginKey(username)
	if err := s.enforceLoginLimits(ctx, c, key); err != nil {
		return nil, err
	}
	u, hash, err := scanUser(s.db.QueryRowContext(ctx, userSelect+` WHERE u.username_key = $1`, usernameKey(username)))
	if errors.Is(err, sql.ErrNoRows) {
		// The same work as for an account, against a hash nothing matches,
		// so the time taken and a busy hasher's 429 are the same too.
		_, _, err := s.verifyPassword(ctx, "", password)
		if err != nil && !isBusy(err) {
			return nil, err
		}
		busy := isBusy(err)
		err = s.db.InTx(ctx, func(tx *sql.Tx) error {
			if busy {
				return s.hitBusyLimits(ctx, tx, c, key)
			}
			return s.hitLoginLimits(ctx, tx, c, key)
		})
		if err != nil {
			return nil, err
		}
		if busy {
			return nil, s.busyError(msgLoginBusy)
		}
		return nil, derrors.New(derrors.Invalid, msgInvalidLogin)
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, u, hash, password, c, key, audit.LoginFailure); err != nil {
		return nil, err
	}
	return u, nil
}

// CheckPassword verifies a signed-in user's password for re-authentication
// ("sudo mode") and before destructive actions. Failures are limited like
// logins, on the same per-user count, and recorded as
// account:reauthenticate:failure.
func (s *Service) CheckPassword(ctx context.Context, userID int64, password string, c Client) error {
	u, hash, err := userByID(ctx, s.db, userID)
	if err != nil {
		return err
	}
	key := loginKey(u.Username)
	if err := s.enforceLoginLimits(ctx, c, key); err != nil {
		return err
	}
	return s.checkPassword(ctx, u, hash, password, c, key, audit.ReauthFailure)
}

// loginKey is the per-user login limit's key for a username as typed: the
// SHA-256 of its lookup key (usernameKey). It exists whether or not an
// account has that name, so unknown names are counted like real ones; it
// joins exactly the spellings the lookup joins ("Alice" and "alice", not
// "alice "), so failures against one account never count against another,
// as with the user-id key it replaces. Hashed so that a row has a fixed
// size whatever was typed, and what was typed into the username box
// (sometimes a password) is not stored as typed.
func loginKey(username string) string {
	sum := sha256.Sum256([]byte(usernameKey(username)))
	return hex.EncodeToString(sum[:])
}

// enforceLoginLimits checks the per-IP, site-wide and per-user limits, in
// that order, before anything else is looked at.
func (s *Service) enforceLoginLimits(ctx context.Context, c Client, key string) error {
	if err := s.lim.ipLogin.Enforce(ctx, c.IP, msgTooManyLogins, s.onLimitErr); err != nil {
		return err
	}
	if err := s.lim.globalLogin.Enforce(ctx, globalKey, msgTooManyLogins, s.onLimitErr); err != nil {
		return err
	}
	return s.lim.userLogin.Enforce(ctx, key, msgTooManyLogins, s.onLimitErr)
}

// hitLoginLimits counts one failed attempt against every login limit; key
// is the per-user one (loginKey).
func (s *Service) hitLoginLimits(ctx context.Context, tx *sql.Tx, c Client, key string) error {
	if err := s.lim.ipLogin.Hit(ctx, tx, c.IP); err != nil {
		return err
	}
	if err := s.lim.globalLogin.Hit(ctx, tx, globalKey); err != nil {
		return err
	}
	return s.lim.userLogin.Hit(ctx, tx, key)
}

// checkPassword is the shared password check, once the limits passed:
// verification (a failure is recorded under failTag and counted by every
// login limiter, the per-user one under key, in one transaction), disabled
// accounts, and the upgrade of an old hash. A busy hasher is recorded
// under failTag too, with the reason "busy", and counted by hitBusyLimits.
func (s *Service) checkPassword(ctx context.Context, u *User, hash, password string, c Client, key, failTag string) error {
	ok, rehash, err := s.verifyPassword(ctx, hash, password)
	busy := isBusy(err)
	switch {
	case errors.Is(err, errUnsupportedHash):
		// An imported hash we cannot read: the user must reset.
		s.log.Error("stored password hash has an unsupported format", "user_id", u.ID)
	case err != nil && !busy:
		return err
	}
	if busy || !ok {
		now := s.clock()
		reason := "invalid_password"
		if busy {
			reason = "busy"
		}
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			e := audit.Event{UserID: u.ID, Tag: failTag, Additional: map[string]any{"reason": reason}}
			if err := record(ctx, tx, now, c, e); err != nil {
				return err
			}
			if busy {
				return s.hitBusyLimits(ctx, tx, c, key)
			}
			return s.hitLoginLimits(ctx, tx, c, key)
		})
		switch {
		case err != nil:
			return err
		case busy:
			return s.busyError(msgLoginBusy)
		case failTag == audit.LoginFailure:
			return derrors.New(derrors.Invalid, msgInvalidLogin)
		}
		return derrors.New(derrors.Invalid, msgInvalidPassword)
	}
	// Checked after the password so a guesser learns nothing about the
	// account's state (Warehouse's order).
	if u.Disabled {
		return derrors.New(derrors.Forbidden, msgDisabled)
	}
	if rehash {
		s.upgradeHash(ctx, u.ID, hash, password)
	}
	return nil
}

// verifyPassword checks password against an account's stored hash, which
// is "" for an unknown user or an account without a password: those are
// checked against the dummy hash, so that every name costs the same and
// meets a busy hasher alike. A password no account can have (empty, or
// longer than the longest allowed) is refused without hashing, whoever
// the account.
func (s *Service) verifyPassword(ctx context.Context, hash, password string) (ok, rehash bool, err error) {
	if password == "" || tooLongToTry(password) {
		return false, false, nil
	}
	if hash == "" {
		_, _, err := s.hasher.verify(ctx, password, s.dummy)
		return false, false, err
	}
	return s.hasher.verify(ctx, password, hash)
}

// tooLongToTry reports whether a submitted password is longer than any
// password can be, so it is refused without normalizing or hashing it. The
// byte bound comes first: normalization is linear, but not free.
func tooLongToTry(pw string) bool {
	return len(pw) > 4*utf8.UTFMax*MaxPasswordLen || utf8.RuneCountInString(normalize(pw)) > MaxPasswordLen
}

// upgradeHash replaces an old-format hash after a successful check. The
// password date stays: the password itself did not change, so sessions
// must not die. Only the hash that was checked is replaced, so a password
// changed meanwhile is never overwritten. Failures are logged: the login
// itself succeeded.
func (s *Service) upgradeHash(ctx context.Context, userID int64, old, password string) {
	fresh, err := s.hasher.Hash(ctx, password)
	if isBusy(err) {
		// Tried again at the next login; a busy hasher is no fault.
		s.log.Debug("password hash not upgraded: the hasher is busy", "user_id", userID)
		return
	}
	if err == nil {
		_, err = s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3`, fresh, userID, old)
	}
	if err != nil {
		s.log.Warn("could not upgrade password hash", "user_id", userID, "err", err)
	}
}

// CompleteLogin records a successful login: last_login, the event
// account:login:success with the second-factor method ("" is "none"), and
// the user's failed-login count is cleared. Pass the transaction that
// creates the session, or nil.
func (s *Service) CompleteLogin(ctx context.Context, tx *sql.Tx, userID int64, method string, c Client) error {
	if tx == nil {
		return s.db.InTx(ctx, func(tx *sql.Tx) error { return s.CompleteLogin(ctx, tx, userID, method, c) })
	}
	if method == "" {
		method = "none"
	}
	now := s.clock()
	var username string
	if err := tx.QueryRowContext(ctx, `UPDATE users SET last_login = $1 WHERE id = $2 RETURNING username`, now, userID).Scan(&username); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return errNoUser
		}
		return err
	}
	e := audit.Event{UserID: userID, Tag: audit.LoginSuccess, ActorID: userID, Actor: username,
		Additional: map[string]any{"two_factor_method": method}}
	if err := record(ctx, tx, now, c, e); err != nil {
		return err
	}
	return s.lim.userLogin.Clear(ctx, tx, loginKey(username))
}
