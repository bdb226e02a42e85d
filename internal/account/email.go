package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

const (
	msgEmailNotFound    = "Email address not found."
	msgInvalidVerify    = "Invalid verification link"
	msgVerifyExpired    = "This verification link has expired. Request a new one."
	msgAlreadyVerified  = "This email address is already verified."
	msgTooManyEmailsFmt = "Too many emails have been added to this account without verifying them. Check your inbox and follow the verification links. (IP: %s)"
)

const emailSelect = `SELECT id, user_id, email, is_primary, verified, created_at FROM user_emails`

func scanEmail(row interface{ Scan(...any) error }) (*Email, error) {
	var e Email
	if err := row.Scan(&e.ID, &e.UserID, &e.Email, &e.Primary, &e.Verified, &e.CreatedAt); err != nil {
		return nil, err
	}
	e.CreatedAt = e.CreatedAt.UTC()
	return &e, nil
}

// Emails returns a user's addresses, the primary first.
func (s *Service) Emails(ctx context.Context, userID int64) ([]Email, error) {
	return emailsOf(ctx, s.db, userID)
}

func emailsOf(ctx context.Context, q querier, userID int64) ([]Email, error) {
	rows, err := q.QueryContext(ctx, emailSelect+` WHERE user_id = $1 ORDER BY is_primary DESC, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Email
	for rows.Next() {
		e, err := scanEmail(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

// userEmail loads one of the user's addresses; another user's id is not
// found, so ids cannot be probed (no IDOR).
func userEmail(ctx context.Context, q querier, userID, emailID int64) (*Email, error) {
	e, err := scanEmail(q.QueryRowContext(ctx, emailSelect+` WHERE id = $1 AND user_id = $2`, emailID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, msgEmailNotFound)
	}
	return e, err
}

func (s *Service) enforceEmailAdd(ctx context.Context, c Client) error {
	return s.lim.emailAdd.Enforce(ctx, c.IP, fmt.Sprintf(msgTooManyEmailsFmt, c.IP), s.onLimitErr)
}

// AddEmail adds an unverified address, emails it a verification link and
// tells every other verified address of the account (spec §1.4), so a
// hijacker adding their own address cannot do it unnoticed.
func (s *Service) AddEmail(ctx context.Context, userID int64, addr string, c Client) (*Email, error) {
	if err := s.enforceEmailAdd(ctx, c); err != nil {
		return nil, err
	}
	addr = strings.TrimSpace(addr)
	if err := checkEmailSyntax(addr); err != nil {
		return nil, err
	}
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := s.checkEmailFree(ctx, addr); err != nil {
		return nil, err
	}
	now := s.clock()
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		others, err := emailsOf(ctx, tx, userID)
		if err != nil {
			return err
		}
		if len(others) >= MaxEmailsPerUser {
			return derrors.New(derrors.Invalid, "You can't add more than %d email addresses to your account. Remove one first.", MaxEmailsPerUser)
		}
		if id, err = insertEmail(ctx, tx, now, userID, addr, false); err != nil {
			return err
		}
		if err := s.sendVerification(ctx, tx, now, u, id, addr); err != nil {
			return err
		}
		for _, o := range others {
			if !o.Verified {
				continue
			}
			if err := s.notify(ctx, tx, "new-email-added", userID, o.Email, map[string]any{"Username": u.Username, "NewEmail": addr}); err != nil {
				return err
			}
		}
		if err := record(ctx, tx, now, c, selfEvent(u, audit.EmailAdd, map[string]any{"email": addr})); err != nil {
			return err
		}
		return s.lim.emailAdd.Hit(ctx, tx, c.IP)
	})
	if err != nil {
		return nil, err
	}
	return userEmail(ctx, s.db, userID, id)
}

// RemoveEmail deletes one of the user's addresses other than the primary.
func (s *Service) RemoveEmail(ctx context.Context, userID, emailID int64, c Client) error {
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		e, err := userEmail(ctx, tx, userID, emailID)
		if err != nil {
			return err
		}
		if e.Primary {
			return derrors.New(derrors.Invalid, "Cannot remove primary email address")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_emails WHERE id = $1`, e.ID); err != nil {
			return err
		}
		return record(ctx, tx, now, c, selfEvent(u, audit.EmailRemove, map[string]any{"email": e.Email}))
	})
}

// SetPrimary makes a verified address the primary one and tells the old
// primary, so a hijacker moving the account's mail away is noticed. (The
// web layer requires re-authentication, and a second factor, first.)
func (s *Service) SetPrimary(ctx context.Context, userID, emailID int64, c Client) error {
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		e, err := userEmail(ctx, tx, userID, emailID)
		if err != nil {
			return err
		}
		if e.Primary {
			return nil
		}
		if !e.Verified {
			return derrors.New(derrors.Invalid, "Verify this email address before making it your primary address.")
		}
		emails, err := emailsOf(ctx, tx, userID)
		if err != nil {
			return err
		}
		var old *Email
		if len(emails) > 0 && emails[0].Primary {
			old = &emails[0]
		}
		// Unset first: at most one primary per user is a unique index.
		if _, err := tx.ExecContext(ctx, `UPDATE user_emails SET is_primary = FALSE WHERE user_id = $1 AND is_primary`, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE user_emails SET is_primary = TRUE WHERE id = $1`, e.ID); err != nil {
			return err
		}
		oldAddr := ""
		if old != nil {
			oldAddr = old.Email
		}
		if err := record(ctx, tx, now, c, selfEvent(u, audit.EmailPrimaryChange, map[string]any{"old": oldAddr, "new": e.Email})); err != nil {
			return err
		}
		// The notice goes to the old address only if it was proven to be
		// the user's: an unverified one may be a stranger's.
		if old == nil || !old.Verified {
			return nil
		}
		return s.notify(ctx, tx, "primary-email-change", userID, old.Email,
			map[string]any{"Username": u.Username, "OldEmail": old.Email, "NewEmail": e.Email})
	})
}

// ResendVerification emails a new verification link for an unverified
// address, at most 3 per 6 hours per user (counting the first sending).
func (s *Service) ResendVerification(ctx context.Context, userID, emailID int64, c Client) error {
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return err
	}
	e, err := userEmail(ctx, s.db, userID, emailID)
	if err != nil {
		return err
	}
	if e.Verified {
		return derrors.New(derrors.Invalid, msgAlreadyVerified)
	}
	msg := fmt.Sprintf("Too many incomplete attempts to verify email address(es) for %s. Complete a pending verification or wait before attempting again.", u.Username)
	if err := s.lim.emailVerify.Enforce(ctx, idKey(userID), msg, s.onLimitErr); err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.sendVerification(ctx, tx, now, u, e.ID, e.Email); err != nil {
			return err
		}
		return record(ctx, tx, now, c, selfEvent(u, audit.EmailReverify, map[string]any{"email": e.Email}))
	})
}

// VerifyEmail follows a verification link. The token must belong to the
// signed-in user: a link opened in someone else's session does nothing.
func (s *Service) VerifyEmail(ctx context.Context, userID int64, rawToken string, c Client) (*Email, error) {
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	var verified *Email
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := loadToken(ctx, tx, rawToken)
		if err != nil {
			return err
		}
		if t == nil || t.purpose != purposeVerifyEmail || t.userID != userID {
			return derrors.New(derrors.NotFound, msgInvalidVerify)
		}
		e, err := userEmail(ctx, tx, userID, t.emailID)
		if err != nil {
			// The address was removed (its tokens go with it, so this is a
			// race at most).
			return derrors.New(derrors.NotFound, msgInvalidVerify)
		}
		if e.Verified {
			return derrors.New(derrors.Invalid, msgAlreadyVerified)
		}
		if t.used {
			return derrors.New(derrors.Invalid, msgInvalidVerify)
		}
		if t.expired(now) {
			return derrors.New(derrors.Invalid, msgVerifyExpired)
		}
		if err := t.consume(ctx, tx, now); err != nil {
			if errors.Is(err, errTokenRace) {
				return derrors.New(derrors.Invalid, msgInvalidVerify)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE user_emails SET verified = TRUE, verified_at = $1 WHERE id = $2`, now, e.ID); err != nil {
			return err
		}
		e.Verified = true
		verified = e
		if err := record(ctx, tx, now, c, selfEvent(u, audit.EmailVerified, map[string]any{"email": e.Email, "primary": e.Primary})); err != nil {
			return err
		}
		if err := s.lim.emailAdd.Clear(ctx, tx, c.IP); err != nil {
			return err
		}
		return s.lim.emailVerify.Clear(ctx, tx, idKey(userID))
	})
	return verified, err
}

// ReplaceUnverifiedPrimary lets a user who mistyped their address at
// sign-up replace it ("fix an unverified primary"). Only while the primary is
// unverified and the user has no project: otherwise changing the address
// goes through adding, verifying and switching the primary, which notifies
// the old address.
func (s *Service) ReplaceUnverifiedPrimary(ctx context.Context, userID int64, addr string, c Client) error {
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return err
	}
	if u.PrimaryVerified {
		return derrors.New(derrors.Forbidden, "Your primary email address is already verified. Add another address and make it primary instead.")
	}
	if has, err := exists(ctx, s.db, `SELECT 1 FROM roles WHERE user_id = $1`, userID); err != nil {
		return err
	} else if has {
		return derrors.New(derrors.Forbidden, "Accounts with projects cannot replace their primary email address this way. Contact an administrator.")
	}
	if err := s.enforceEmailAdd(ctx, c); err != nil {
		return err
	}
	if err := s.lim.emailChange.Enforce(ctx, idKey(userID), "Too many attempts to change the email address. Try again later.", s.onLimitErr); err != nil {
		return err
	}
	addr = strings.TrimSpace(addr)
	if err := checkEmailSyntax(addr); err != nil {
		return err
	}
	if err := s.checkEmailFree(ctx, addr); err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		// Re-read in the transaction: the primary may have been verified
		// since.
		cur, _, err := userByID(ctx, tx, userID)
		if err != nil {
			return err
		}
		if cur.PrimaryVerified {
			return derrors.New(derrors.Forbidden, "Your primary email address is already verified. Add another address and make it primary instead.")
		}
		// Deleting the old primary deletes its pending verification links.
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_emails WHERE user_id = $1 AND is_primary`, userID); err != nil {
			return err
		}
		id, err := insertEmail(ctx, tx, now, userID, addr, true)
		if err != nil {
			return err
		}
		if err := s.sendVerification(ctx, tx, now, u, id, addr); err != nil {
			return err
		}
		e := selfEvent(u, audit.EmailPrimaryChange, map[string]any{"old": cur.PrimaryEmail, "new": addr, "replaced_unverified": true})
		if err := record(ctx, tx, now, c, e); err != nil {
			return err
		}
		if err := s.lim.emailAdd.Hit(ctx, tx, c.IP); err != nil {
			return err
		}
		return s.lim.emailChange.Hit(ctx, tx, idKey(userID))
	})
}
