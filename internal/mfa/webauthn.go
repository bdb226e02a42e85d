package mfa

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// WebAuthn (security keys and passkeys) is the phishing-resistant factor: the
// browser binds every signature to the site's origin, so a look-alike site
// cannot relay it. Security keys are a second factor after the password;
// passkeys (discoverable credentials with user verification) also sign in
// on their own, and either re-authenticates a session for sensitive pages.
//
// The cryptography and most of W3C WebAuthn §7.1 (registration) and §7.2
// (assertion) are go-webauthn's. This file and its siblings add what a
// relying party must decide or store itself: an exact origin allow-list,
// ceremony expiry measured on the injected clock, single use of each
// challenge, global uniqueness of credential ids, credential ownership, the
// clone check on the signature counter with a compare-and-swap update, rate
// limits, the audit trail and the security emails.

// WebAuthnCeremonyTimeout is how long a ceremony's challenge stays valid:
// the 300 s the specification recommends as the default timeout (§5.4, §13.4.3
// "Cryptographic Challenges"). It is sent to the browser as the timeout too.
const WebAuthnCeremonyTimeout = 5 * time.Minute

// WebAuthnMaxLabel is the longest label, in characters (Warehouse's limit).
const WebAuthnMaxLabel = 64

// webAuthnMaxCredentialID is the longest credential ID WebAuthn allows
// (§4 Terminology, "Credential ID": at most 1023 bytes).
const webAuthnMaxCredentialID = 1023

// webAuthnFailureReason is the login-failure reason Warehouse records for a
// bad assertion (spec §2.1).
const webAuthnFailureReason = "invalid_webauthn"

// The messages people see. One message covers every bad assertion: telling
// an attacker which check failed helps only them.
const (
	webAuthnMsgInvalid = "Invalid security key response. Try again."
	webAuthnMsgExpired = "The security key request expired. Try again."
	// The same words as the authenticator-app pages use.
	webAuthnMsgNeedVerified = "Verify your email to modify two factor authentication"
	webAuthnMsgNeedRecovery = "You must generate and safely store recovery codes before enabling two factor authentication on your account."
	webAuthnMsgLastFactor   = "You cannot remove your last second factor. Add another one first."
	webAuthnMsgCloned       = "This security key reported a signature counter lower than before, which can mean it was cloned. " +
		"The login was refused; use another factor and consider removing this key."
)

// SecondFactorLimiter is the 2FA rate limit shared by every second factor
// ("2fa.user" and "2fa.ip", spec §1.6). CheckLimit runs before any check and
// returns an error (a derrors.RateLimited one) when the user or the address
// is over a limit; RecordFailure counts one failed attempt and audits it.
type SecondFactorLimiter interface {
	CheckLimit(ctx context.Context, userID int64, ip string) error
	RecordFailure(ctx context.Context, userID int64, c account.Client, reason string) error
}

// WebAuthnOptions configures a WebAuthn. DB, RPID, RPOrigins and Limiter are
// required.
type WebAuthnOptions struct {
	DB *db.DB
	// RPID is the relying party id: the host of the site's base URL, without
	// scheme or port (§5.1.2 "RP ID"). Credentials are scoped to it for good,
	// so changing the site's host orphans every registered key.
	RPID string
	// RPOrigins are the exact origins the browser may report, e.g.
	// "https://index.example" or "http://localhost:8080" (§13.4.9
	// "Validating the origin of a credential").
	RPOrigins []string
	SiteName  string           // shown by the browser's prompt; "" means "Gatehouse"
	Notifier  account.Notifier // nil: emails are dropped
	Limiter   SecondFactorLimiter
	Now       func() time.Time
	// Rand makes user handles. Challenges never come from it: go-webauthn
	// draws them from crypto/rand, so a predictable test reader cannot weaken
	// them.
	Rand io.Reader
	Log  *slog.Logger
}

// WebAuthn runs registration and login ceremonies and manages the stored
// credentials. It is safe for concurrent use.
type WebAuthn struct {
	db       *db.DB
	rp       *webauthn.WebAuthn
	rpID     string
	origins  []string
	notifier account.Notifier
	limiter  SecondFactorLimiter
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
}

// NewWebAuthn returns a WebAuthn relying party.
func NewWebAuthn(o WebAuthnOptions) (*WebAuthn, error) {
	if o.DB == nil {
		return nil, errors.New("webauthn: no database")
	}
	if o.Limiter == nil {
		return nil, errors.New("webauthn: no second-factor limiter")
	}
	if o.RPID == "" || strings.ContainsAny(o.RPID, ":/") {
		return nil, fmt.Errorf("webauthn: RP ID %q must be a bare host name", o.RPID)
	}
	if len(o.RPOrigins) == 0 {
		return nil, errors.New("webauthn: no origins")
	}
	for _, origin := range o.RPOrigins {
		if err := webAuthnCheckOrigin(origin, o.RPID); err != nil {
			return nil, err
		}
	}
	if o.SiteName == "" {
		o.SiteName = "Gatehouse"
	}
	timeouts := webauthn.TimeoutConfig{Enforce: true, Timeout: WebAuthnCeremonyTimeout, TimeoutUVD: WebAuthnCeremonyTimeout}
	rp, err := webauthn.New(&webauthn.Config{
		RPID:          o.RPID,
		RPDisplayName: o.SiteName,
		RPOrigins:     slices.Clone(o.RPOrigins),
		// Attestation "none": we do not restrict makers of authenticators,
		// so attestation statements would only be personal data (§5.4.7).
		AttestationPreference: protocol.PreferNoAttestation,
		// No cross-origin iframes: the site never embeds its login (§5.8.1
		// crossOrigin), so RPAllowCrossOrigin stays false and RPTopOrigins
		// empty.
		Timeouts: webauthn.TimeoutsConfig{Login: timeouts, Registration: timeouts},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	w := &WebAuthn{
		db: o.DB, rp: rp, rpID: o.RPID, origins: slices.Clone(o.RPOrigins), notifier: o.Notifier,
		limiter: o.Limiter, now: o.Now, rand: o.Rand, log: o.Log,
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.rand == nil {
		w.rand = rand.Reader
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

// webAuthnCheckOrigin accepts only a serialized origin (scheme://host[:port],
// nothing else) whose host is the RP ID or inside it (§5.1.2: the RP ID must
// be a registrable suffix of the origin's effective domain).
func webAuthnCheckOrigin(origin, rpID string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.Scheme+"://"+u.Host != origin {
		return fmt.Errorf("webauthn: origin %q must be scheme://host[:port] with nothing after it", origin)
	}
	host := strings.ToLower(u.Hostname())
	if host != strings.ToLower(rpID) && !strings.HasSuffix(host, "."+strings.ToLower(rpID)) {
		return fmt.Errorf("webauthn: origin %q is not within RP ID %q", origin, rpID)
	}
	return nil
}

// Credential is a registered security key or passkey as the account pages
// show it. The public key stays in the store.
type Credential struct {
	ID         int64
	UserID     int64
	Label      string
	Passkey    bool // registered as a discoverable, user-verifying credential
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used to sign in
	SignCount  uint32
}

// method describes the credential for emails: security key “label” or
// passkey “label”.
func (c *Credential) method() string {
	if c.Passkey {
		return "passkey “" + c.Label + "”"
	}
	return "security key “" + c.Label + "”"
}

// kind is the credential's kind for the audit trail.
func (c *Credential) kind() string {
	if c.Passkey {
		return "passkey"
	}
	return "security-key"
}

// The kinds of ceremony a state belongs to, so a registration challenge
// cannot finish a login or a 2FA challenge a passkey sign-in.
const (
	webAuthnCeremonyRegister = "register"
	webAuthnCeremonyLogin    = "login"
	webAuthnCeremonyPasskey  = "passkey"
)

// webAuthnState is what the caller keeps in its server-side session between
// Begin and Finish. It must never travel through the browser: it holds the
// expected challenge (§13.4.3), and whoever could edit it could choose it.
type webAuthnState struct {
	Ceremony string               `json:"ceremony"`
	UserID   int64                `json:"user_id,omitempty"`
	Passkey  bool                 `json:"passkey,omitempty"`
	Issued   time.Time            `json:"issued"`
	Session  webauthn.SessionData `json:"session"`
}

func (w *WebAuthn) encodeState(ceremony string, userID int64, passkey bool, s *webauthn.SessionData) ([]byte, error) {
	return json.Marshal(webAuthnState{Ceremony: ceremony, UserID: userID, Passkey: passkey, Issued: w.clock(), Session: *s})
}

// decodeState checks that a state belongs to this ceremony and user and is
// younger than WebAuthnCeremonyTimeout on the injected clock. go-webauthn
// enforces the same timeout on the wall clock as a second line.
func (w *WebAuthn) decodeState(raw []byte, ceremony string, userID int64) (*webAuthnState, error) {
	var st webAuthnState
	if err := json.Unmarshal(raw, &st); err != nil || st.Ceremony != ceremony || st.UserID != userID ||
		len(st.Session.Challenge) == 0 {
		return nil, derrors.New(derrors.Invalid, webAuthnMsgInvalid)
	}
	age := w.clock().Sub(st.Issued)
	if age > WebAuthnCeremonyTimeout || age < -time.Minute {
		return nil, derrors.New(derrors.Invalid, webAuthnMsgExpired)
	}
	return &st, nil
}

// clock is the current time as stored: UTC at microsecond precision, which
// both databases keep exactly.
func (w *WebAuthn) clock() time.Time { return w.now().UTC().Truncate(time.Microsecond) }

// webAuthnUser adapts an account to go-webauthn's User.
type webAuthnUser struct {
	handle      []byte // the raw user handle (§5.4.3 user.id)
	name        string
	displayName string
	creds       []webauthn.Credential
}

func (u *webAuthnUser) WebAuthnID() []byte                         { return u.handle }
func (u *webAuthnUser) WebAuthnName() string                       { return u.name }
func (u *webAuthnUser) WebAuthnDisplayName() string                { return u.displayName }
func (u *webAuthnUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// webAuthnInvalid is the error for a response that failed verification. The
// cause is logged at debug level only: it is attacker-controlled input.
func (w *WebAuthn) webAuthnInvalid(ctx context.Context, what string, err error) error {
	w.log.DebugContext(ctx, "webauthn response refused", "step", what, "err", err)
	return derrors.New(derrors.Invalid, webAuthnMsgInvalid)
}

// checkOriginExactly is §13.4.9's exact-match allow-list. go-webauthn
// compares only scheme and host, ignoring a path, userinfo or a default
// port, so a client data origin of "https://index.example/x" would pass
// it; browsers never send such a value, so anything but one of the
// configured strings is refused.
func (w *WebAuthn) checkOriginExactly(origin string) bool {
	return slices.Contains(w.origins, origin)
}
