package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// The answers when the password hasher stayed busy for its whole wait
// (workpool.ErrBusy): %s is "N seconds", the hasher's RetryAfter. The
// first is for checking a password (login, re-authentication), the second
// for setting one (registration, change, reset).
const (
	msgLoginBusy       = "Too many sign-ins are in progress; try again in %s."
	msgSetPasswordBusy = "Too many passwords are being checked right now; try again in %s."
)

// isBusy reports whether err is the hasher refusing work for now.
func isBusy(err error) bool { return errors.Is(err, workpool.ErrBusy) }

// busyError is the 429 for a busy hasher: a derrors.Limited error, so the
// web layer answers it with Retry-After like any tripped limit. Its text
// and Retry-After are constants of the configuration, the same for every
// caller, so the answer tells nothing about who asked or who else is
// signing in.
func (s *Service) busyError(msg string) error {
	wait := s.hasher.RetryAfter()
	n := int(wait.Seconds())
	unit := "seconds"
	if n == 1 {
		unit = "second"
	}
	return derrors.Limited(wait, msg, fmt.Sprintf("%d %s", n, unit))
}

// setPasswordErr maps a failure to hash a new password: a busy hasher
// becomes its 429, anything else is returned as it is. Nothing is counted:
// no password was tried, and the limits of registration and reset count
// what they guard (accounts made, emails sent), which did not happen.
func (s *Service) setPasswordErr(err error) error {
	if isBusy(err) {
		return s.busyError(msgSetPasswordBusy)
	}
	return err
}

// hitBusyLimits counts a login turned away because the hasher was busy
// against the per-IP and per-user login limits, as a failed attempt is: a
// client that keeps a full hasher fuller is soon stopped by its own limit
// before it reaches the hasher at all, and a name's answer stays the same
// whether or not an account has it. The site-wide limit is not hit: it
// exists to bound hashing, and this attempt did none; counting these cheap
// refusals would let one flood close sign-in for everyone in seconds.
func (s *Service) hitBusyLimits(ctx context.Context, tx *sql.Tx, c Client, key string) error {
	if err := s.lim.ipLogin.Hit(ctx, tx, c.IP); err != nil {
		return err
	}
	return s.lim.userLogin.Hit(ctx, tx, key)
}
