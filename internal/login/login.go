// Package login is the sign-in flow and the password's lifecycle: password
// → second factor → held for email confirmation → confirmed, passwordless
// sign-in with a passkey, the rule that decides whether a session is still
// good, and password change and reset.
//
// It sits between the web layer and the account, mfa and session packages,
// so that one user action is one transaction: finishing a login rotates the
// session, records the login, marks the browser known and remembers it
// together, and a password change forgets remembered browsers and ends the
// other sessions in the transaction that sets the password. Web handlers
// parse the form, call one method here, and act on the Result.
//
// Checking a factor (a TOTP code, a recovery code, a security key) commits
// on its own, before the step that uses it: a failed attempt must count
// against the rate limit even though the action fails, and a code that was
// accepted stays spent even if what follows fails, which is the safe
// direction.
package login

import (
	"context"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// Method is how a login's second step was done. Its value is what the
// account:login:success event records (Warehouse's two_factor_method).
type Method string

// The login methods.
const (
	MethodNone         Method = "none"              // password only: no second factor is set up
	MethodTOTP         Method = "totp"              // an authentication app's code
	MethodRecoveryCode Method = "recovery-code"     // a recovery code, burned
	MethodSecurityKey  Method = "webauthn"          // a security key (or passkey) as the second factor
	MethodPasskey      Method = "passkey"           // passwordless: a passkey alone
	MethodRemembered   Method = "remembered-device" // a browser remembered for 30 days
	MethodEmail        Method = "email-confirmation"
	MethodRegistration Method = "registration" // signed in by creating the account
)

// Phishable reports whether the method can be relayed by a phishing site in
// real time: such logins from a browser the account does not know are held
// until the emailed link is opened in that same browser.
func (m Method) Phishable() bool { return m == MethodTOTP || m == MethodRecoveryCode }

// HandoffTTL is how long the second step may take after the password.
const HandoffTTL = 5 * time.Minute

// Service runs the sign-in flow.
type Service struct {
	db       *db.DB
	accounts *account.Service
	mfa      *mfa.Service
	webauthn *mfa.WebAuthn
	sessions *session.Manager
	now      func() time.Time
	// confirmAll says whether a user's every login from an unknown device
	// waits for the emailed confirmation, not only phishable ones.
	confirmAll func(ctx context.Context, userID int64) (bool, error)
}

// Options are a Service's dependencies.
type Options struct {
	DB       *db.DB
	Accounts *account.Service
	MFA      *mfa.Service
	WebAuthn *mfa.WebAuthn
	Sessions *session.Manager
	Now      func() time.Time // default time.Now
	// ConfirmEveryLogin, if set, reports whether a policy (an
	// organization's or the site's, internal/org) holds every login of the
	// user from a device their account does not know for the emailed
	// confirmation, security keys and passkeys included.
	ConfirmEveryLogin func(ctx context.Context, userID int64) (bool, error)
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{db: o.DB, accounts: o.Accounts, mfa: o.MFA, webauthn: o.WebAuthn, sessions: o.Sessions, now: o.Now,
		confirmAll: o.ConfirmEveryLogin}
}

// Browser is what the flow knows of the browser making a request.
type Browser struct {
	Session *session.Session // its session; nil when it has none
	Device  string           // the device cookie's token, "" when none
	Client  account.Client   // IP and user agent
}

// Outcome is where a sign-in step left the browser.
type Outcome int

// The outcomes.
const (
	SignedIn     Outcome = iota + 1 // done: the browser is signed in
	SecondFactor                    // the password was right; a second factor is needed
	Held                            // held until the emailed link is opened in this browser
)

// Result is what a step did, for the web layer to carry out.
type Result struct {
	Outcome Outcome
	// Cookie is the new raw session id to set, "" when the session id did
	// not change.
	Cookie string
	// Session is the browser's session after the step.
	Session *session.Session
	// Device is the device token to set as a cookie, "" to leave it.
	Device string
	User   *account.User // who signed in (SignedIn only)
	Method Method        // how (SignedIn only)
	Next   string        // where to go once signed in
}
