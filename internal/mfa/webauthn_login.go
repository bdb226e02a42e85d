package mfa

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// BeginLogin starts an assertion with one of the user's registered keys or
// passkeys: the second step after the password, and re-authentication
// before sensitive pages. allowCredentials lists the user's credentials
// (§5.5) and user verification is discouraged, as for Warehouse's security
// keys: the password (or the open session) is the other factor.
func (w *WebAuthn) BeginLogin(ctx context.Context, userID int64) (optionsJSON, state []byte, err error) {
	defer derrors.Wrap(&err, "webauthn.BeginLogin(%d)", userID)
	recs, err := webAuthnRecords(ctx, w.db, userID)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, derrors.New(derrors.Invalid, "No security key is registered for this account.")
	}
	handle, err := w.userHandle(ctx, userID, true)
	if err != nil {
		return nil, nil, err
	}
	assertion, session, err := w.rp.BeginLogin(webAuthnUserOf(handle, recs), webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if err != nil {
		return nil, nil, err
	}
	if optionsJSON, err = json.Marshal(assertion); err != nil {
		return nil, nil, err
	}
	if state, err = w.encodeState(webAuthnCeremonyLogin, userID, false, session); err != nil {
		return nil, nil, err
	}
	return optionsJSON, state, nil
}

// FinishLogin verifies an assertion for BeginLogin's options (§7.2) and
// returns the credential used. The caller must have deleted state from the
// session first.
//
// The 2FA limits are checked before anything else and every refused
// response counts against them. go-webauthn runs §7.2 "Verifying an
// Authentication Assertion": the credential was allowed and belongs to the
// user, the client data's type, challenge and origin, the RP ID hash, the
// UP flag, BE/BS consistency and the signature. Added here: the exact
// origin, the state's age, one use per challenge, and the signature
// counter (see webAuthnComplete).
func (w *WebAuthn) FinishLogin(ctx context.Context, userID int64, state, responseJSON []byte, c account.Client) (cred *Credential, err error) {
	defer derrors.Wrap(&err, "webauthn.FinishLogin(%d)", userID)
	if err := w.limiter.CheckLimit(ctx, userID, c.IP); err != nil {
		return nil, err
	}
	st, err := w.decodeState(state, webAuthnCeremonyLogin, userID)
	if err != nil {
		return nil, err
	}
	parsed, err := webAuthnParseAssertion(responseJSON)
	if err != nil {
		return nil, w.refuse(ctx, userID, c, "parse assertion", err)
	}
	if !w.checkOriginExactly(parsed.Response.CollectedClientData.Origin) {
		return nil, w.refuse(ctx, userID, c, "origin", fmt.Errorf("origin %q", parsed.Response.CollectedClientData.Origin))
	}
	recs, err := webAuthnRecords(ctx, w.db, userID)
	if err != nil {
		return nil, err
	}
	rec := webAuthnFind(recs, parsed.RawID)
	if rec == nil {
		// §7.2 "identify the user": the credential must be one of
		// this user's (spec C7).
		return nil, w.refuse(ctx, userID, c, "credential not the user's", nil)
	}
	handle, err := w.userHandle(ctx, userID, false)
	if err != nil {
		return nil, err
	}
	var updated *webauthn.Credential
	err = webAuthnSafely(func() (err error) {
		updated, err = w.rp.ValidateLogin(webAuthnUserOf(handle, recs), st.Session, parsed)
		return err
	})
	if err != nil {
		return nil, w.refuse(ctx, userID, c, "verify assertion", err)
	}
	return w.webAuthnComplete(ctx, userID, st, rec, parsed, updated, c)
}

// webAuthnParseAssertion parses a browser's assertion JSON.
func webAuthnParseAssertion(responseJSON []byte) (parsed *protocol.ParsedCredentialAssertionData, err error) {
	err = webAuthnSafely(func() (err error) {
		if len(responseJSON) > webAuthnMaxResponse {
			return fmt.Errorf("response of %d bytes", len(responseJSON))
		}
		parsed, err = protocol.ParseCredentialRequestResponseBytes(responseJSON)
		return err
	})
	return parsed, err
}

// webAuthnUserOf builds the go-webauthn user for an assertion.
func webAuthnUserOf(handle []byte, recs []*webAuthnRecord) *webAuthnUser {
	u := &webAuthnUser{handle: handle}
	for _, r := range recs {
		u.creds = append(u.creds, r.wa)
	}
	return u
}

// webAuthnFind returns the record with this credential id, or nil.
func webAuthnFind(recs []*webAuthnRecord, id []byte) *webAuthnRecord {
	for _, r := range recs {
		if bytes.Equal(r.wa.ID, id) {
			return r
		}
	}
	return nil
}

// refuse counts a failed assertion against the 2FA limits and returns the
// one message every bad response gets. An error while counting wins, so a
// failure is never silently uncounted.
func (w *WebAuthn) refuse(ctx context.Context, userID int64, c account.Client, step string, cause error) error {
	if err := w.limiter.RecordFailure(ctx, userID, c, webAuthnFailureReason); err != nil {
		return err
	}
	return w.webAuthnInvalid(ctx, step, cause)
}

// errWebAuthnCounterRace means the stored counter moved between reading and
// updating it.
var errWebAuthnCounterRace = errors.New("webauthn sign count changed concurrently")

// webAuthnComplete finishes a verified assertion. It refuses a challenge
// already used, applies the clone check and stores the new counter.
//
// §7.2 (signCount step) and §6.1.1 "Signature Counter Considerations": when
// either the stored or the received counter is non-zero, the received one
// must be greater, or two copies of the key may exist. The specification leaves the
// response to the relying party; Gatehouse refuses the login, records
// WebAuthnSignCountError and emails the user. Authenticators that always
// report 0 (many passkey providers) pass. The update is a compare-and-swap
// on the counter read before verifying, so of two assertions racing with
// the same counter only one can win, and the loser is refused as above.
func (w *WebAuthn) webAuthnComplete(ctx context.Context, userID int64, st *webAuthnState, rec *webAuthnRecord,
	parsed *protocol.ParsedCredentialAssertionData, updated *webauthn.Credential, c account.Client) (*Credential, error) {
	used, err := webAuthnChallengeUsed(ctx, w.db, st.Session.Challenge)
	if err != nil {
		return nil, err
	}
	if used {
		return nil, w.refuse(ctx, userID, c, "challenge reused", nil)
	}
	stored, got := rec.SignCount, parsed.Response.AuthenticatorData.Counter
	if (got != 0 || stored != 0) && got <= stored {
		return nil, w.signCountRegression(ctx, userID, rec, got, c)
	}
	updated.Authenticator.SignCount = got
	updated.Authenticator.CloneWarning = false
	credJSON, err := json.Marshal(updated)
	if err != nil {
		return nil, err
	}
	now := w.clock()
	err = w.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := w.consumeChallenge(ctx, tx, userID, st, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webauthn_credentials SET sign_count = $1, credential_json = $2, last_used_at = $3
			WHERE id = $4 AND sign_count = $5`, int64(got), string(credJSON), now, rec.ID, int64(stored))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return errWebAuthnCounterRace
		}
		return nil
	})
	switch {
	case errors.Is(err, errWebAuthnReplay):
		return nil, w.refuse(ctx, userID, c, "challenge reused", err)
	case errors.Is(err, errWebAuthnCounterRace):
		return nil, w.signCountRegression(ctx, userID, rec, got, c)
	case err != nil:
		return nil, err
	}
	out := rec.Credential
	out.SignCount, out.LastUsedAt = got, now
	return &out, nil
}

// signCountRegression records and reports a counter that did not advance.
func (w *WebAuthn) signCountRegression(ctx context.Context, userID int64, rec *webAuthnRecord, got uint32, c account.Client) error {
	now := w.clock()
	err := w.db.InTx(ctx, func(tx *sql.Tx) error {
		who, err := webAuthnLoadContact(ctx, tx, userID)
		if err != nil {
			return err
		}
		return w.notice(ctx, tx, now, who, c, audit.WebAuthnSignCountError, map[string]any{"label": rec.Label, "stored": rec.SignCount, "got": got},
			mail.TemplateWebAuthnSignCount, map[string]any{"Username": who.username, "Label": rec.Label})
	})
	if err != nil {
		return err
	}
	w.log.WarnContext(ctx, "security key signature counter went backwards", "user", userID, "credential", rec.ID,
		"stored", rec.SignCount, "got", got)
	return derrors.New(derrors.Forbidden, webAuthnMsgCloned)
}
