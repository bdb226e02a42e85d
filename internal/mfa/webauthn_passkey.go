package mfa

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// BeginPasskeyLogin starts a sign-in with a passkey alone, before anyone has
// said who they are. allowCredentials is empty, so the authenticator offers
// its discoverable credentials for this site (§5.5, §6.2.2 "Client-side
// discoverable credential"), and user verification is required: a passkey
// replaces both the password and the second factor, so the authenticator
// must prove the person (PIN or biometrics) as well as possession.
func (w *WebAuthn) BeginPasskeyLogin(ctx context.Context) (optionsJSON, state []byte, err error) {
	defer derrors.Wrap(&err, "webauthn.BeginPasskeyLogin")
	assertion, session, err := w.rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, nil, err
	}
	if optionsJSON, err = json.Marshal(assertion); err != nil {
		return nil, nil, err
	}
	if state, err = w.encodeState(webAuthnCeremonyPasskey, 0, false, session); err != nil {
		return nil, nil, err
	}
	return optionsJSON, state, nil
}

// FinishPasskeyLogin verifies a discoverable assertion and returns the
// account it signs in. The caller must have deleted state from the session
// first, and must still refuse disabled accounts as a password login does.
//
// §7.2 "identify the user" for a discoverable credential: the response's
// userHandle names the account (users.webauthn_user_handle), and the
// credential must be one of that account's passkeys; a security key
// registered as a second factor does not sign in alone even if it happens
// to be discoverable. The UV flag must be set (§7.2, UV step). Once the
// account is known the 2FA limits apply to it; a response naming no
// account gets the generic error and counts against nobody, so it cannot
// lock anyone out.
func (w *WebAuthn) FinishPasskeyLogin(ctx context.Context, state, responseJSON []byte, c account.Client) (userID int64, cred *Credential, err error) {
	defer derrors.Wrap(&err, "webauthn.FinishPasskeyLogin")
	st, err := w.decodeState(state, webAuthnCeremonyPasskey, 0)
	if err != nil {
		return 0, nil, err
	}
	parsed, err := webAuthnParseAssertion(responseJSON)
	if err != nil {
		return 0, nil, w.webAuthnInvalid(ctx, "parse assertion", err)
	}
	userID, err = w.userByHandle(ctx, parsed.Response.UserHandle)
	if err != nil {
		return 0, nil, err
	}
	if userID == 0 {
		return 0, nil, w.webAuthnInvalid(ctx, "unknown user handle", nil)
	}
	if err := w.limiter.CheckLimit(ctx, userID, c.IP); err != nil {
		return 0, nil, err
	}
	if !w.checkOriginExactly(parsed.Response.CollectedClientData.Origin) {
		return 0, nil, w.refuse(ctx, userID, c, "origin", fmt.Errorf("origin %q", parsed.Response.CollectedClientData.Origin))
	}
	recs, err := webAuthnRecords(ctx, w.db, userID)
	if err != nil {
		return 0, nil, err
	}
	rec := webAuthnFind(recs, parsed.RawID)
	if rec == nil || !rec.Passkey {
		return 0, nil, w.refuse(ctx, userID, c, "credential not a passkey of the named user", nil)
	}
	if !parsed.Response.AuthenticatorData.Flags.UserVerified() {
		return 0, nil, w.refuse(ctx, userID, c, "user not verified", nil)
	}
	handle, err := w.userHandle(ctx, userID, false)
	if err != nil {
		return 0, nil, err
	}
	user := webAuthnUserOf(handle, recs)
	var updated *webauthn.Credential
	err = webAuthnSafely(func() (err error) {
		_, updated, err = w.rp.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			return user, nil
		}, st.Session, parsed)
		return err
	})
	if err != nil {
		return 0, nil, w.refuse(ctx, userID, c, "verify assertion", err)
	}
	cred, err = w.webAuthnComplete(ctx, userID, st, rec, parsed, updated, c)
	if err != nil {
		return 0, nil, err
	}
	return userID, cred, nil
}
