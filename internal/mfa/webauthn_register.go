package mfa

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// webAuthnMaxResponse bounds the JSON a browser may post back. Real
// responses are a few kilobytes; anything far larger is not worth parsing.
const webAuthnMaxResponse = 64 << 10

// BeginRegistration starts adding a security key (passkey false) or a
// passkey for u. It returns the options for navigator.credentials.create()
// as JSON ({"publicKey": …}, binary fields base64url) and the state to keep
// in the server-side session until FinishRegistration.
//
// A security key asks for no discoverable credential and discourages user
// verification (§5.4.6, §5.8.6), as Warehouse does, so any FIDO key works
// without a PIN. A passkey must be discoverable and verify the user
// (residentKey and userVerification "required"): it will later sign in on
// its own, so it must be a full factor by itself. The user's existing
// credentials are excluded (§5.4 excludeCredentials), so an authenticator
// cannot be registered twice.
func (w *WebAuthn) BeginRegistration(ctx context.Context, u *account.User, passkey bool) (optionsJSON []byte, state []byte, err error) {
	defer derrors.Wrap(&err, "webauthn.BeginRegistration(%d)", u.ID)
	who, err := webAuthnLoadContact(ctx, w.db, u.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := who.mayAdd(); err != nil {
		return nil, nil, err
	}
	handle, err := w.userHandle(ctx, u.ID, true)
	if err != nil {
		return nil, nil, err
	}
	recs, err := webAuthnRecords(ctx, w.db, u.ID)
	if err != nil {
		return nil, nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(recs))
	for i, r := range recs {
		exclude[i] = r.wa.Descriptor()
	}
	sel := protocol.AuthenticatorSelection{
		ResidentKey:        protocol.ResidentKeyRequirementDiscouraged,
		RequireResidentKey: protocol.ResidentKeyNotRequired(),
		UserVerification:   protocol.VerificationDiscouraged,
	}
	if passkey {
		sel = protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		}
	}
	display := u.FullName
	if strings.TrimSpace(display) == "" {
		display = u.Username
	}
	user := &webAuthnUser{handle: handle, name: u.Username, displayName: display}
	creation, session, err := w.rp.BeginRegistration(user,
		webauthn.WithAuthenticatorSelection(sel),
		webauthn.WithExclusions(exclude),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, nil, err
	}
	if optionsJSON, err = json.Marshal(creation); err != nil {
		return nil, nil, err
	}
	if state, err = w.encodeState(webAuthnCeremonyRegister, u.ID, passkey, session); err != nil {
		return nil, nil, err
	}
	return optionsJSON, state, nil
}

// FinishRegistration verifies the browser's response to BeginRegistration's
// options (§7.1) and stores the new credential under label. The caller must
// have deleted state from the session first, so it serves one attempt.
//
// go-webauthn runs §7.1 "Registering a New Credential": the client data's
// type, challenge and origin, the RP ID hash, the UP flag (and UV for a
// passkey), the attestation statement and BE/BS consistency. Added here:
// the exact origin, the state's age on the injected clock, credential ids
// of at most 1023 bytes that no account already has (§7.1, "credentialId is
// not yet registered for any user"), and one use per challenge. The
// preconditions are Warehouse's: a verified primary address and stored
// recovery codes. Storing, the audit event, forgetting remembered browsers
// and the email form one transaction.
func (w *WebAuthn) FinishRegistration(ctx context.Context, u *account.User, label string, state []byte, responseJSON []byte, c account.Client) (cred *Credential, err error) {
	defer derrors.Wrap(&err, "webauthn.FinishRegistration(%d)", u.ID)
	label, err = webAuthnCheckLabel(label)
	if err != nil {
		return nil, err
	}
	st, err := w.decodeState(state, webAuthnCeremonyRegister, u.ID)
	if err != nil {
		return nil, err
	}
	var parsed *protocol.ParsedCredentialCreationData
	err = webAuthnSafely(func() (err error) {
		if len(responseJSON) > webAuthnMaxResponse {
			return fmt.Errorf("response of %d bytes", len(responseJSON))
		}
		parsed, err = protocol.ParseCredentialCreationResponseBytes(responseJSON)
		return err
	})
	if err != nil {
		return nil, w.webAuthnInvalid(ctx, "parse attestation", err)
	}
	if len(parsed.RawID) > webAuthnMaxCredentialID {
		return nil, w.webAuthnInvalid(ctx, "credential id length", fmt.Errorf("%d bytes", len(parsed.RawID)))
	}
	if !w.checkOriginExactly(parsed.Response.CollectedClientData.Origin) {
		return nil, w.webAuthnInvalid(ctx, "origin", fmt.Errorf("origin %q", parsed.Response.CollectedClientData.Origin))
	}
	handle, err := w.userHandle(ctx, u.ID, false)
	if err != nil {
		return nil, err
	}
	var wc *webauthn.Credential
	err = webAuthnSafely(func() (err error) {
		wc, err = w.rp.CreateCredential(&webAuthnUser{handle: handle, name: u.Username}, st.Session, parsed)
		return err
	})
	if err != nil {
		return nil, w.webAuthnInvalid(ctx, "verify attestation", err)
	}
	// §7.1, backup flags step: BE=0 with BS=1 is impossible for an honest
	// authenticator. go-webauthn refuses it too; keep the rule visible.
	if !wc.Flags.BackupEligible && wc.Flags.BackupState {
		return nil, w.webAuthnInvalid(ctx, "backup flags", nil)
	}
	credJSON, err := json.Marshal(wc)
	if err != nil {
		return nil, err
	}
	now := w.clock()
	credKey := webAuthnCredentialKey(wc.ID)
	labelKey := strings.ToLower(label)
	out := &Credential{UserID: u.ID, Label: label, Passkey: st.Passkey, CreatedAt: now, SignCount: wc.Authenticator.SignCount}
	err = w.db.InTx(ctx, func(tx *sql.Tx) error {
		who, err := webAuthnLoadContact(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if err := who.mayAdd(); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1 AND label_key = $2`,
			u.ID, labelKey).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return webAuthnLabelInUse(label)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE credential_id = $1`, credKey).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return derrors.New(derrors.Conflict, "Credential ID already in use")
		}
		if err := w.consumeChallenge(ctx, tx, u.ID, st, now); err != nil {
			if errors.Is(err, errWebAuthnReplay) {
				return w.webAuthnInvalid(ctx, "challenge reused", err)
			}
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO webauthn_credentials
			(user_id, label, label_key, credential_id, credential_json, sign_count, passkey, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			u.ID, label, labelKey, credKey, string(credJSON), int64(wc.Authenticator.SignCount), st.Passkey, now).Scan(&out.ID)
		if db.IsUniqueViolation(err) {
			// Lost a race with a concurrent registration.
			if strings.Contains(err.Error(), "credential_id") {
				return derrors.New(derrors.Conflict, "Credential ID already in use")
			}
			return webAuthnLabelInUse(label)
		}
		if err != nil {
			return err
		}
		// Remembered browsers skipped the second factor on the strength of
		// the old set of factors; like every factor change, this one ends
		// that.
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET remember_until = NULL WHERE user_id = $1`, u.ID); err != nil {
			return err
		}
		// "kind", not "passkey": audit drops every key containing "key".
		return w.notice(ctx, tx, now, who, c, audit.TwoFactorAdded, map[string]any{"method": "webauthn", "label": label, "kind": out.kind()},
			mail.TemplateTwoFactorAdded, map[string]any{"Username": who.username, "Method": out.method()})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func webAuthnLabelInUse(label string) error {
	return derrors.New(derrors.Conflict, "Label '%s' already in use", label)
}

// webAuthnCheckLabel applies Warehouse's label rules (required, at most 64
// characters) and refuses control characters, since labels appear in
// emails and the security history.
func webAuthnCheckLabel(label string) (string, error) {
	label = strings.TrimSpace(label)
	switch {
	case label == "":
		return "", derrors.New(derrors.Invalid, "Enter a label for the key.")
	case !utf8.ValidString(label) || strings.ContainsFunc(label, unicode.IsControl):
		return "", derrors.New(derrors.Invalid, "The label must not contain control characters.")
	case utf8.RuneCountInString(label) > WebAuthnMaxLabel:
		return "", derrors.New(derrors.Invalid, "The label must be at most %d characters.", WebAuthnMaxLabel)
	}
	return label, nil
}

// webAuthnSafely runs a step that parses attacker-controlled bytes and turns
// a panic in it into an error: a malformed response must be a 400, never a
// crashed request.
func webAuthnSafely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}
