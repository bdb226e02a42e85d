package mfa

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// TOTP parameters (RFC 6238 with Warehouse's choices, spec §1.2): HMAC-SHA-1,
// 6 digits, 30-second steps, 160-bit secrets. Codes are accepted one step
// either side of now (RFC 6238 §5.2 allows one step of network delay); a
// code from 2 to 10 steps away is refused, with a "clock out of sync" hint
// only while provisioning.
const (
	totpDigits      = 6
	totpPeriod      = 30
	totpSecretBytes = 20
	totpSkew        = 1
	totpSyncSkew    = 10
	totpQRSize      = 256
	// maxCodeInput bounds what NormalizeCode works on: codes are 6 or 16
	// characters, typed with a few separators.
	maxCodeInput = 128
	// totpMethodName is how emails name the method.
	totpMethodName = "authentication app"
)

const (
	msgTOTPDigits    = "TOTP code must be 6 digits."
	msgTOTPInvalid   = "Invalid TOTP code."
	msgTOTPOutOfSync = "Invalid TOTP code. Your device time may be out of sync."
	msgTOTPReplayed  = "This TOTP code has already been used. Wait for your authentication app to show the next code, then enter that one."
	msgNeedRecovery  = "You must generate and safely store recovery codes before enabling two factor authentication on your account."
	msgNeedVerified  = "Verify your email to modify two factor authentication"
	msgLastFactor    = "You cannot remove your last second factor. Add another one first."
	msgNoTOTP        = "You have no authentication app to remove."
	// msgConfirmTOTPRemoval asks for the username typed out, as removing a
	// key asks for its label.
	msgConfirmTOTPRemoval = "Type your username exactly to confirm removing the authentication app."
	msgTOTPSetupExpired   = "The authentication app setup is invalid or has expired. Start again."
)

var errInvalidTOTP = derrors.New(derrors.Invalid, msgTOTPInvalid)

// ErrTOTPReplayed is VerifyTOTP's refusal of a code that was right but is
// used up: the same code again, or one of a step at or before the last
// accepted one. It is a failure like a wrong code (counted, audited as
// replayed_totp), but the person typed what the app showed, so it says
// what to do instead: wait for the next code. Saying so tells a guesser
// nothing worth having: a used-up code can never be accepted again. Test
// with errors.Is.
var ErrTOTPReplayed = derrors.New(derrors.Invalid, msgTOTPReplayed)

// b32 is base32 without padding, the form authenticator apps and oathtool use.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPSetup is what the provisioning page shows. Nothing of it is stored
// until ConfirmTOTP: the caller keeps Secret in the server-side session, so
// an abandoned setup leaves no secret behind and reloading starts afresh.
type TOTPSetup struct {
	Secret    string // base32, no padding, for typing into an app
	URI       string // otpauth://totp/… for the QR code
	QRDataURI string // "data:image/png;base64,…", allowed by CSP img-src data:
}

// NewTOTP makes a fresh 160-bit secret for username and its provisioning URI
// and QR code (SetupFor, in totp_setup.go). It stores nothing.
func (s *Service) NewTOTP(username string) (TOTPSetup, error) {
	raw, err := s.randomBytes(totpSecretBytes)
	if err != nil {
		return TOTPSetup{}, err
	}
	setup := s.SetupFor(username, b32.EncodeToString(raw))
	if setup.QRDataURI == "" {
		return TOTPSetup{}, errors.New("mfa: could not make the TOTP QR code")
	}
	return setup, nil
}

// NormalizeCode is the one normalization of a typed code, applied before it
// is checked and before anything about it is stored: NFKC (so fullwidth
// "１２３４５６" is "123456"), then every whitespace character and '-'
// removed ("123 456", "123-456"). Normalizing once, in one place, means a
// variant of an accepted code is the same code, and so a replay (spec B3).
// Input far longer than any code is returned as is (it cannot be valid), so
// a huge form field costs no normalization.
func NormalizeCode(in string) string {
	if len(in) > maxCodeInput {
		return in
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return r
	}, norm.NFKC.String(in))
}

// isDigits reports whether s is exactly n ASCII digits.
func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// hotp is RFC 4226's HOTP: HMAC-SHA-1 of the big-endian counter, dynamic
// truncation, the last digits decimal digits.
func hotp(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// totpStep is RFC 6238's time step T = floor(unix time / 30). Unix time is
// 64-bit, so steps beyond 2038 (and the RFC's year-2603 vector) are right.
func totpStep(t time.Time) int64 {
	u := t.Unix()
	step := u / totpPeriod
	if u < 0 && u%totpPeriod != 0 {
		step--
	}
	return step
}

// totpCode is the code for a step.
func totpCode(key []byte, step int64, digits int) string { return hotp(key, uint64(step), digits) }

// codeAt reports, in constant time, whether code is the code for step.
func codeAt(key []byte, step int64, code string) bool {
	return subtle.ConstantTimeCompare([]byte(totpCode(key, step, totpDigits)), []byte(code)) == 1
}

// decodeSecret reads a base32 secret as NewTOTP returned it.
func decodeSecret(secret string) ([]byte, error) {
	raw, err := b32.DecodeString(strings.ToUpper(strings.TrimRight(NormalizeCode(secret), "=")))
	if err != nil || len(raw) < 16 {
		return nil, derrors.New(derrors.Invalid, msgTOTPSetupExpired)
	}
	return raw, nil
}

// sealSecret encrypts a TOTP secret for storage with AES-256-GCM. The user
// id is the additional data, so a row copied onto another account does not
// decrypt there. Stored as "v1." + base64(nonce ‖ ciphertext).
func (s *Service) sealSecret(userID int64, raw []byte) (string, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return "", err
	}
	nonce, err := s.randomBytes(aead.NonceSize())
	if err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, raw, totpAD(userID))
	return "v1." + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// openSecret decrypts a stored TOTP secret.
func (s *Service) openSecret(userID int64, enc string) ([]byte, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	b64, ok := strings.CutPrefix(enc, "v1.")
	if !ok {
		return nil, errors.New("mfa: stored TOTP secret has an unknown format")
	}
	sealed, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(sealed) < aead.NonceSize() {
		return nil, errors.New("mfa: stored TOTP secret is corrupt")
	}
	raw, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], totpAD(userID))
	if err != nil {
		// The server secret changed, or the row was tampered with.
		return nil, fmt.Errorf("mfa: decrypt TOTP secret of user %d: %w", userID, err)
	}
	return raw, nil
}

func (s *Service) totpAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.totpKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func totpAD(userID int64) []byte { return []byte("totp_secrets.user_id=" + idKey(userID)) }

// ConfirmTOTP turns on an authenticator app: the secret from NewTOTP (kept
// in the caller's session) becomes the account's TOTP once the user types a
// code from it, proving the app has it. Preconditions (Warehouse's): a
// verified primary email and recovery codes that were stored (one entered
// back), so that losing the phone does not lock the owner out.
//
// It replaces an existing app (one per account), records the event, emails
// the owner and forgets remembered browsers, all in one transaction. The
// matched step is stored as the last used one, so the code typed here
// cannot be replayed at a login.
func (s *Service) ConfirmTOTP(ctx context.Context, userID int64, secret, code string, c account.Client) error {
	raw, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	code = NormalizeCode(code)
	if !isDigits(code, totpDigits) {
		return derrors.New(derrors.Invalid, msgTOTPDigits)
	}
	cur := totpStep(s.now())
	step, ok := int64(0), false
	for st := cur - totpSkew; st <= cur+totpSkew; st++ {
		if codeAt(raw, st, code) {
			step, ok = st, true
		}
	}
	if !ok {
		for d := int64(totpSkew + 1); d <= totpSyncSkew; d++ {
			if codeAt(raw, cur-d, code) || codeAt(raw, cur+d, code) {
				return derrors.New(derrors.Invalid, msgTOTPOutOfSync)
			}
		}
		return errInvalidTOTP
	}
	enc, err := s.sealSecret(userID, raw)
	if err != nil {
		return err
	}
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := canModifyFactors(u); err != nil {
			return err
		}
		if !u.RecoveryConfirmed {
			return derrors.New(derrors.Forbidden, msgNeedRecovery)
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM totp_secrets WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			if err := record(ctx, tx, now, c, selfEvent(u, audit.TwoFactorRemoved, map[string]any{"method": "totp"})); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO totp_secrets (user_id, secret_enc, last_step, created_at) VALUES ($1, $2, $3, $4)`,
			userID, enc, step, now); err != nil {
			return err
		}
		if err := s.ForgetRememberedDevices(ctx, tx, userID); err != nil {
			return err
		}
		return s.notice(ctx, tx, now, c, selfEvent(u, audit.TwoFactorAdded, map[string]any{"method": "totp"}),
			mail.TemplateTwoFactorAdded, map[string]any{"Username": u.Username, "Method": totpMethodName})
	})
}

// canModifyFactors is Warehouse's first precondition for adding or removing
// a second factor: a verified primary address, so the change notice reaches
// the owner and not whoever typed an address at registration.
func canModifyFactors(u *subject) error {
	if !u.PrimaryVerified {
		return derrors.New(derrors.Forbidden, msgNeedVerified)
	}
	return nil
}

// HasTOTP reports whether the user has an authenticator app.
func (s *Service) HasTOTP(ctx context.Context, userID int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM totp_secrets WHERE user_id = $1`, userID).Scan(&n)
	return n > 0, err
}

// VerifyTOTP checks a code at login or re-authentication (spec §1.10).
//
// It is limited first (CheckLimit), then the code must be valid at one step
// either side of now AND later than the last accepted step. The step is
// claimed with a compare-and-swap UPDATE, so of two concurrent submissions
// of one code exactly one wins, and a code at or before an accepted one —
// the same code replayed by a phisher, or the previous step's code after a
// newer one — is refused (spec B3; Warehouse remembers only the last code).
// Every refusal is counted and audited; at login, out-of-sync and wrong
// codes get one message (Warehouse's), and a replay gets ErrTOTPReplayed.
func (s *Service) VerifyTOTP(ctx context.Context, userID int64, code string, c account.Client) error {
	if err := s.CheckLimit(ctx, userID, c.IP); err != nil {
		return err
	}
	code = NormalizeCode(code)
	if !isDigits(code, totpDigits) {
		// Not a guess at the code, so not counted.
		return derrors.New(derrors.Invalid, msgTOTPDigits)
	}
	var enc string
	var last int64
	err := s.db.QueryRowContext(ctx, `SELECT secret_enc, last_step FROM totp_secrets WHERE user_id = $1`, userID).Scan(&enc, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return s.failed(ctx, userID, c, ReasonInvalidTOTP, errInvalidTOTP)
	}
	if err != nil {
		return err
	}
	raw, err := s.openSecret(userID, enc)
	if err != nil {
		return err
	}
	cur := totpStep(s.now())
	step, ok, replay := int64(0), false, false
	for st := cur - totpSkew; st <= cur+totpSkew; st++ {
		if !codeAt(raw, st, code) {
			continue
		}
		if st > last {
			step, ok = st, true
		} else {
			replay = true
		}
	}
	if ok {
		won, err := s.claimStep(ctx, userID, step)
		if err != nil || won {
			return err
		}
		// A concurrent request accepted this step or a later one first.
		replay = true
	}
	if replay {
		return s.failed(ctx, userID, c, ReasonReplayedTOTP, ErrTOTPReplayed)
	}
	return s.failed(ctx, userID, c, ReasonInvalidTOTP, errInvalidTOTP)
}

// claimStep records step as the last accepted one if it is later than the
// stored one, atomically: the compare-and-swap that makes each step usable
// once even when two requests checked the same code at the same moment.
func (s *Service) claimStep(ctx context.Context, userID, step int64) (bool, error) {
	r, err := s.db.ExecContext(ctx, `UPDATE totp_secrets SET last_step = $1 WHERE user_id = $2 AND last_step < $1`, step, userID)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// RemoveTOTP turns the authenticator app off. It refuses to remove the last
// second factor (Warehouse's "Cannot remove last 2FA method"): an account
// that had 2FA must not silently fall back to password only. The caller
// asks for the password first (re-authentication). As removing a security
// key takes its label typed out, removing the app takes the username
// (typedUsername), so that no stray click turns a factor off.
func (s *Service) RemoveTOTP(ctx context.Context, userID int64, typedUsername string, c account.Client) error {
	now := s.clock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		// Lock the user row, as RemoveCredential does, so a concurrent
		// removal of the last security key cannot leave zero factors.
		if _, err := tx.ExecContext(ctx, `UPDATE users SET webauthn_user_handle = webauthn_user_handle WHERE id = $1`, userID); err != nil {
			return err
		}
		u, err := loadSubject(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := canModifyFactors(u); err != nil {
			return err
		}
		if strings.TrimSpace(typedUsername) != u.Username {
			return derrors.New(derrors.Invalid, msgConfirmTOTPRemoval)
		}
		var keys int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, userID).Scan(&keys); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM totp_secrets WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return derrors.New(derrors.NotFound, msgNoTOTP)
		}
		if keys == 0 {
			// Rolled back with the transaction.
			return derrors.New(derrors.Conflict, msgLastFactor)
		}
		if err := s.ForgetRememberedDevices(ctx, tx, userID); err != nil {
			return err
		}
		return s.notice(ctx, tx, now, c, selfEvent(u, audit.TwoFactorRemoved, map[string]any{"method": "totp"}),
			mail.TemplateTwoFactorRemoved, map[string]any{"Username": u.Username, "Method": totpMethodName})
	})
}

// HasTwoFactor is Warehouse's has_two_factor: an authenticator app or at
// least one security key. Recovery codes do not count.
func (s *Service) HasTwoFactor(ctx context.Context, userID int64) (bool, error) {
	return hasTwoFactor(ctx, s.db, userID)
}

func hasTwoFactor(ctx context.Context, q mfaQuerier, userID int64) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM totp_secrets WHERE user_id = $1)
		+ (SELECT count(*) FROM webauthn_credentials WHERE user_id = $1)`, userID).Scan(&n)
	return n > 0, err
}
