package mfa

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
	"github.com/gatehouse-index/gatehouse/internal/throttle"
)

// Identifiers in this file start with "wa" so they cannot collide with the
// rest of the package's tests.

const (
	waRPID   = "index.example"
	waOrigin = "https://index.example"
)

var waRP = virtualwebauthn.RelyingParty{ID: waRPID, Name: "Gatehouse", Origin: waOrigin}

// waNotifier renders each email with the real templates (which refuse a
// missing field) and writes it into the outbox through the caller's
// transaction (template, recipient, data as JSON), so a rolled-back change
// leaves no email, as in production.
type waNotifier struct{ r *mail.Renderer }

func (n waNotifier) Notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error {
	if _, err := n.r.Render(template, userID, to, data); err != nil {
		return err
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (user_id, template, to_addr, subject, text_body, created_at, next_attempt_at)
		VALUES ($1, $2, $3, '', $4, $5, 0)`, userID, template, to, string(b), time.Now().UTC())
	return err
}

// waLimiter is the 2FA limiter with Warehouse's limits, as the package's
// Service implements it: counts in throttle_hits, failures audited.
type waLimiter struct {
	user, ip *throttle.Limiter
	d        *db.DB
	now      func() time.Time
}

func waNewLimiter(d *db.DB, now func() time.Time) *waLimiter {
	return &waLimiter{
		user: throttle.New(d, "2fa.user", now, throttle.Limit{N: 5, Per: 5 * time.Minute},
			throttle.Limit{N: 20, Per: time.Hour}, throttle.Limit{N: 50, Per: 24 * time.Hour}),
		ip: throttle.New(d, "2fa.ip", now, throttle.Limit{N: 10, Per: 5 * time.Minute}, throttle.Limit{N: 50, Per: time.Hour}),
		d:  d, now: now,
	}
}

func (l *waLimiter) CheckLimit(ctx context.Context, userID int64, ip string) error {
	const msg = "There have been too many unsuccessful login attempts. Try again later."
	if err := l.user.Enforce(ctx, strconv.FormatInt(userID, 10), msg, nil); err != nil {
		return err
	}
	return l.ip.Enforce(ctx, ip, msg, nil)
}

func (l *waLimiter) RecordFailure(ctx context.Context, userID int64, c account.Client, reason string) error {
	return l.d.InTx(ctx, func(tx *sql.Tx) error {
		if err := l.user.Hit(ctx, tx, strconv.FormatInt(userID, 10)); err != nil {
			return err
		}
		if err := l.ip.Hit(ctx, tx, c.IP); err != nil {
			return err
		}
		return audit.Record(ctx, tx, l.now(), audit.Event{UserID: userID, Tag: audit.LoginFailure, IP: c.IP,
			Additional: map[string]any{"reason": reason}})
	})
}

// waNoLimit never limits (the fuzz target would otherwise trip it at once).
type waNoLimit struct{}

func (waNoLimit) CheckLimit(context.Context, int64, string) error { return nil }
func (waNoLimit) RecordFailure(context.Context, int64, account.Client, string) error {
	return nil
}

type waFixture struct {
	t     testing.TB
	ctx   context.Context
	d     *db.DB
	clock *testclock.Clock
	w     *WebAuthn
}

func waNewFixture(t testing.TB, d *db.DB, lim SecondFactorLimiter) *waFixture {
	t.Helper()
	f := &waFixture{t: t, ctx: context.Background(), d: d, clock: testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	if lim == nil {
		lim = waNewLimiter(d, f.clock.Now)
	}
	r, err := mail.NewRenderer("Gatehouse", waOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWebAuthn(WebAuthnOptions{DB: d, RPID: waRPID, RPOrigins: []string{waOrigin}, SiteName: "Gatehouse",
		Notifier: waNotifier{r}, Limiter: lim, Now: f.clock.Now, Rand: &waSeqReader{}})
	if err != nil {
		t.Fatal(err)
	}
	f.w = w
	return f
}

// waSeqReader is a deterministic Rand: distinct, predictable bytes.
type waSeqReader struct {
	mu sync.Mutex
	n  byte
}

func (r *waSeqReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

// waZeroReader is the weakest possible Rand: it must not weaken challenges.
type waZeroReader struct{}

func (waZeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// waClient is a browser at one address.
func waClient(ip string) account.Client { return account.Client{IP: ip, UserAgent: "test-agent/1.0"} }

// user creates an account with a verified primary address whose recovery
// codes were confirmed, so it may add second factors.
func (f *waFixture) user(name string) *account.User {
	f.t.Helper()
	return f.userWith(name, true, true)
}

func (f *waFixture) userWith(name string, verified, recovery bool) *account.User {
	f.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var id int64
	var confirmed sql.NullTime
	if recovery {
		confirmed = sql.NullTime{Time: now, Valid: true}
	}
	err := f.d.QueryRowContext(f.ctx, `INSERT INTO users (username, username_key, full_name, created_at, recovery_confirmed_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, name, strings.ToLower(name), "Test "+name, now, confirmed).Scan(&id)
	if err != nil {
		f.t.Fatal(err)
	}
	email := name + "@example.com"
	if _, err := f.d.ExecContext(f.ctx, `INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at)
		VALUES ($1, $2, $2, TRUE, $3, $4)`, id, email, verified, now); err != nil {
		f.t.Fatal(err)
	}
	return &account.User{ID: id, Username: name, FullName: "Test " + name, PrimaryEmail: email, PrimaryVerified: verified, CreatedAt: now}
}

// waKey is a virtual authenticator holding one credential.
type waKey struct {
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
	// zero: the authenticator keeps its signature counter at 0, as many
	// passkey providers do; otherwise every assertion increments it.
	zero bool
}

// waNewKey returns a key with an EC2 credential. go-webauthn insists on
// 32-byte coordinates, which a random P-256 point lacks once in 128 tries,
// so such keys are drawn again.
func waNewKey(opts virtualwebauthn.AuthenticatorOptions) *waKey {
	for {
		cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
		k, err := x509.ParsePKCS8PrivateKey(cred.Key.Data)
		if err != nil {
			panic(err)
		}
		pub := k.(*ecdsa.PrivateKey).PublicKey
		pt, err := pub.Bytes()
		if err != nil {
			panic(err)
		}
		x, y := pt[1:33], pt[33:]
		if x[0] != 0 && y[0] != 0 {
			return &waKey{auth: virtualwebauthn.NewAuthenticatorWithOptions(opts), cred: cred}
		}
	}
}

// attest answers registration options as a browser would.
func (k *waKey) attest(t testing.TB, optionsJSON []byte) []byte {
	t.Helper()
	o, err := virtualwebauthn.ParseAttestationOptions(string(optionsJSON))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(virtualwebauthn.CreateAttestationResponse(waRP, k.auth, k.cred, *o))
}

// assert answers login options as a browser would.
func (k *waKey) assert(t testing.TB, optionsJSON []byte) []byte {
	t.Helper()
	o, err := virtualwebauthn.ParseAssertionOptions(string(optionsJSON))
	if err != nil {
		t.Fatal(err)
	}
	if !k.zero {
		k.cred.Counter++
	}
	return []byte(virtualwebauthn.CreateAssertionResponse(waRP, k.auth, k.cred, *o))
}

// register adds k to u as a security key or passkey labelled label.
func (f *waFixture) register(u *account.User, k *waKey, passkey bool, label string) *Credential {
	f.t.Helper()
	opts, state, err := f.w.BeginRegistration(f.ctx, u, passkey)
	if err != nil {
		f.t.Fatal(err)
	}
	cred, err := f.w.FinishRegistration(f.ctx, u, label, state, k.attest(f.t, opts), waClient("192.0.2.1"))
	if err != nil {
		f.t.Fatalf("register %q: %v", label, err)
	}
	if passkey {
		// A discoverable credential returns the user handle it was made for.
		o, _ := virtualwebauthn.ParseAttestationOptions(string(opts))
		k.auth.Options.UserHandle = []byte(o.UserID)
	}
	k.auth.AddCredential(k.cred)
	return cred
}

// login runs a 2FA login with k.
func (f *waFixture) login(userID int64, k *waKey) (*Credential, error) {
	f.t.Helper()
	opts, state, err := f.w.BeginLogin(f.ctx, userID)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.w.FinishLogin(f.ctx, userID, state, k.assert(f.t, opts), waClient("192.0.2.1"))
}

// passkeyLogin runs a discoverable login with k.
func (f *waFixture) passkeyLogin(k *waKey) (int64, *Credential, error) {
	f.t.Helper()
	opts, state, err := f.w.BeginPasskeyLogin(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.w.FinishPasskeyLogin(f.ctx, state, k.assert(f.t, opts), waClient("192.0.2.1"))
}

// waSpec describes a hand-made assertion, for the attacks the virtual
// authenticator will not produce.
type waSpec struct {
	Type        string
	Challenge   string // base64url; "" takes the options' challenge
	Origin      string
	CrossOrigin bool
	TopOrigin   string
	RPID        string
	Flags       byte // 0x01 UP, 0x04 UV, 0x08 BE, 0x10 BS
	Counter     uint32
	UserHandle  []byte
}

// waGoodSpec is what an honest browser sends for this options' ceremony.
func (k *waKey) goodSpec() waSpec {
	k.cred.Counter++
	return waSpec{Type: "webauthn.get", Origin: waOrigin, RPID: waRPID, Flags: 0x01 | 0x04, Counter: k.cred.Counter,
		UserHandle: k.auth.Options.UserHandle}
}

// sign builds and signs an assertion for options as spec says.
func (k *waKey) sign(t testing.TB, optionsJSON []byte, s waSpec) []byte {
	t.Helper()
	if s.Challenge == "" {
		o, err := virtualwebauthn.ParseAssertionOptions(string(optionsJSON))
		if err != nil {
			t.Fatal(err)
		}
		s.Challenge = base64.RawURLEncoding.EncodeToString(o.Challenge)
	}
	cd := map[string]any{"type": s.Type, "challenge": s.Challenge, "origin": s.Origin}
	if s.CrossOrigin {
		cd["crossOrigin"] = true
	}
	if s.TopOrigin != "" {
		cd["topOrigin"] = s.TopOrigin
	}
	cdJSON, err := json.Marshal(cd)
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(s.RPID))
	authData := append(rpHash[:], s.Flags)
	authData = binary.BigEndian.AppendUint32(authData, s.Counter)
	cdHash := sha256.Sum256(cdJSON)
	digest := sha256.Sum256(append(append([]byte{}, authData...), cdHash[:]...))
	sig, err := k.cred.Key.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return waAssertionJSON(k.cred.ID, cdJSON, authData, sig, s.UserHandle)
}

func waAssertionJSON(credID, clientData, authData, sig, userHandle []byte) []byte {
	b64 := base64.RawURLEncoding.EncodeToString
	resp := map[string]any{"clientDataJSON": b64(clientData), "authenticatorData": b64(authData), "signature": b64(sig)}
	if len(userHandle) > 0 {
		resp["userHandle"] = b64(userHandle)
	}
	out, err := json.Marshal(map[string]any{"id": b64(credID), "rawId": b64(credID), "type": "public-key", "response": resp})
	if err != nil {
		panic(err)
	}
	return out
}

// waEditResponse decodes one base64url field of response JSON's "response"
// object, lets edit change it and re-encodes it.
func waEditResponse(t testing.TB, responseJSON []byte, field string, edit func([]byte) []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(responseJSON, &m); err != nil {
		t.Fatal(err)
	}
	r := m["response"].(map[string]any)
	raw, err := base64.RawURLEncoding.DecodeString(r[field].(string))
	if err != nil {
		t.Fatal(err)
	}
	r[field] = base64.RawURLEncoding.EncodeToString(edit(raw))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waIs fails unless err has kind.
func waIs(t testing.TB, err, kind error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %v, want kind %v", what, err, kind)
	}
	if _, ok := derrors.Message(err); !ok {
		t.Fatalf("%s: error %v has no user-facing message", what, err)
	}
}

// waMsg fails unless err's user-facing message is want.
func waMsg(t testing.TB, err error, want string) {
	t.Helper()
	got, _ := derrors.Message(err)
	if got != want {
		t.Fatalf("message %q, want %q (err %v)", got, want, err)
	}
}

type waMail struct {
	Template, To string
	Data         map[string]any
}

func (f *waFixture) mails(userID int64) []waMail {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, `SELECT template, to_addr, text_body FROM outbox WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []waMail
	for rows.Next() {
		var m waMail
		var body string
		if err := rows.Scan(&m.Template, &m.To, &body); err != nil {
			f.t.Fatal(err)
		}
		json.Unmarshal([]byte(body), &m.Data)
		out = append(out, m)
	}
	return out
}

type waEvent struct {
	Tag string
	Add map[string]any
}

func (f *waFixture) events(userID int64, tag string) []waEvent {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, `SELECT tag, additional FROM events WHERE user_id = $1 AND tag = $2 ORDER BY id`, userID, tag)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []waEvent
	for rows.Next() {
		var e waEvent
		var add string
		if err := rows.Scan(&e.Tag, &add); err != nil {
			f.t.Fatal(err)
		}
		json.Unmarshal([]byte(add), &e.Add)
		out = append(out, e)
	}
	return out
}

// storedCount is the sign_count column of a credential.
func (f *waFixture) storedCount(credID int64) int64 {
	f.t.Helper()
	var n int64
	if err := f.d.QueryRowContext(f.ctx, `SELECT sign_count FROM webauthn_credentials WHERE id = $1`, credID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}
