package mfa

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

// The shared test fixture of the TOTP, recovery-code, device, pending-login
// and admin-recovery tests. Names carry an mfa prefix so they cannot clash
// with the WebAuthn tests' helpers in the same package.

const mfaTestBaseURL = "https://index.example"

var mfaTestSecret = []byte("0123456789abcdef0123456789abcdef")

// mfaRand is a deterministic, concurrency-safe randomness source.
type mfaRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (m *mfaRand) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.r.Read(p)
}

// mfaNotifier writes each email into the outbox through the caller's
// transaction (template, recipient, data as JSON), so a rolled-back change
// leaves no email, as in production.
type mfaNotifier struct{}

func (mfaNotifier) Notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (user_id, template, to_addr, subject, text_body, created_at, next_attempt_at)
		VALUES ($1, $2, $3, '', $4, $5, 0)`, userID, template, to, string(b), time.Now().UTC())
	return err
}

type mfaFixture struct {
	t     *testing.T
	ctx   context.Context
	d     *db.DB
	s     *Service
	clock *testclock.Clock
	logs  *bytes.Buffer
}

// newMFAFixture returns a service on d with a fake clock (on a step
// boundary plus 10 s), deterministic randomness, the outbox notifier and
// logs captured for the secret scan.
func newMFAFixture(t *testing.T, d *db.DB) *mfaFixture {
	t.Helper()
	f := &mfaFixture{t: t, ctx: context.Background(), d: d,
		clock: testclock.New(time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)), logs: &bytes.Buffer{}}
	f.s = f.service()
	return f
}

// service makes a new Service on the fixture's database, as a restarted
// instance would.
func (f *mfaFixture) service() *Service {
	f.t.Helper()
	s, err := NewService(Options{
		DB: f.d, Secret: mfaTestSecret, SiteName: "Gatehouse", Links: account.Links{ConfirmLogin: mfaTestBaseURL + "/account/confirm-login/"},
		Notifier: mfaNotifier{}, Now: f.clock.Now, Rand: &mfaRand{r: rand.NewChaCha8([32]byte{1, 2, 3})},
		Log: slog.New(slog.NewTextHandler(&mfaLockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

type mfaLockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *mfaLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func mfaClient(ip string) account.Client { return account.Client{IP: ip, UserAgent: "test-agent/1.0"} }

// user creates an account with a primary address (verified or not) and a
// password, straight in the database.
func (f *mfaFixture) user(name string, verified bool) int64 {
	f.t.Helper()
	now := f.clock.Now().UTC()
	var id int64
	err := f.d.QueryRowContext(f.ctx, `INSERT INTO users (username, username_key, password_hash, password_date, created_at)
		VALUES ($1, $2, 'argon2id-hash', $3, $3) RETURNING id`, name, strings.ToLower(name), now).Scan(&id)
	mfaMust(f.t, err)
	_, err = f.d.ExecContext(f.ctx, `INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at)
		VALUES ($1, $2, $2, TRUE, $3, $4)`, id, name+"@example.com", verified, now)
	mfaMust(f.t, err)
	return id
}

// admin creates an administrator.
func (f *mfaFixture) admin(name string) int64 {
	f.t.Helper()
	id := f.user(name, true)
	_, err := f.d.ExecContext(f.ctx, `UPDATE users SET is_admin = TRUE WHERE id = $1`, id)
	mfaMust(f.t, err)
	return id
}

// readyForTOTP generates recovery codes and confirms one, as the setup
// page requires; it returns the 7 codes left.
func (f *mfaFixture) readyForTOTP(uid int64) []string {
	f.t.Helper()
	codes, err := f.s.GenerateRecoveryCodes(f.ctx, uid, mfaClient("10.9.9.9"))
	mfaMust(f.t, err)
	mfaMust(f.t, f.s.ConfirmRecoveryCodes(f.ctx, uid, codes[0], mfaClient("10.9.9.9")))
	return codes[1:]
}

// enableTOTP turns on an authenticator app for a fresh verified user and
// returns its raw secret. The clock moves one step on, so the enrolment
// code's step is in the past.
func (f *mfaFixture) enableTOTP(uid int64) []byte {
	f.t.Helper()
	f.readyForTOTP(uid)
	setup, err := f.s.NewTOTP("user")
	mfaMust(f.t, err)
	raw, err := decodeSecret(setup.Secret)
	mfaMust(f.t, err)
	mfaMust(f.t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, 0), mfaClient("10.9.9.9")))
	f.clock.Advance(totpPeriod * time.Second)
	return raw
}

// code is the 6-digit code of raw at now+offset.
func (f *mfaFixture) code(raw []byte, offset time.Duration) string {
	return totpCode(raw, totpStep(f.clock.Now().Add(offset)), totpDigits)
}

// mfaMail is one queued email.
type mfaMail struct {
	Template string
	To       string
	UserID   int64
	Data     map[string]string
}

func (f *mfaFixture) mails(template string) []mfaMail {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, `SELECT template, to_addr, user_id, text_body FROM outbox ORDER BY id`)
	mfaMust(f.t, err)
	defer rows.Close()
	var out []mfaMail
	for rows.Next() {
		var m mfaMail
		var uid sql.NullInt64
		var body string
		mfaMust(f.t, rows.Scan(&m.Template, &m.To, &uid, &body))
		if template != "" && m.Template != template {
			continue
		}
		m.UserID = uid.Int64
		var data map[string]any
		mfaMust(f.t, json.Unmarshal([]byte(body), &data))
		m.Data = map[string]string{}
		for k, v := range data {
			m.Data[k] = fmt.Sprint(v)
		}
		out = append(out, m)
	}
	mfaMust(f.t, rows.Err())
	return out
}

// lastMail returns the newest email of a template, failing if none.
func (f *mfaFixture) lastMail(template string) mfaMail {
	f.t.Helper()
	ms := f.mails(template)
	if len(ms) == 0 {
		f.t.Fatalf("no %s email", template)
	}
	return ms[len(ms)-1]
}

// linkToken returns the token of an emailed confirm-login link.
func linkToken(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" || !strings.HasPrefix(link, mfaTestBaseURL+"/account/confirm-login/?token=") {
		t.Fatalf("bad link %q", link)
	}
	return u.Query().Get("token")
}

type mfaEvent struct {
	Tag, Actor, IP string
	UserID         int64
	ActorID        int64
	Additional     map[string]any
}

// events returns a user's events with a tag ("" for all), oldest first.
func (f *mfaFixture) events(uid int64, tag string) []mfaEvent {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, `SELECT tag, user_id, actor_id, actor, ip, additional FROM events WHERE user_id = $1 ORDER BY id`, uid)
	mfaMust(f.t, err)
	defer rows.Close()
	var out []mfaEvent
	for rows.Next() {
		var e mfaEvent
		var u, a sql.NullInt64
		var add string
		mfaMust(f.t, rows.Scan(&e.Tag, &u, &a, &e.Actor, &e.IP, &add))
		if tag != "" && e.Tag != tag {
			continue
		}
		e.UserID, e.ActorID = u.Int64, a.Int64
		mfaMust(f.t, json.Unmarshal([]byte(add), &e.Additional))
		out = append(out, e)
	}
	mfaMust(f.t, rows.Err())
	return out
}

// failureReasons lists the reasons of a user's account:login:failure events.
func (f *mfaFixture) failureReasons(uid int64) []string {
	f.t.Helper()
	var out []string
	for _, e := range f.events(uid, "account:login:failure") {
		out = append(out, fmt.Sprint(e.Additional["reason"]))
	}
	return out
}

func (f *mfaFixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	mfaMust(f.t, f.d.QueryRowContext(f.ctx, query, args...).Scan(&n))
	return n
}

// addSecurityKey stores a stand-in WebAuthn credential row, as the
// WebAuthn code would.
func (f *mfaFixture) addSecurityKey(uid int64, label string) {
	f.t.Helper()
	_, err := f.d.ExecContext(f.ctx, `INSERT INTO webauthn_credentials (user_id, label, label_key, credential_id, credential_json, created_at)
		VALUES ($1, $2, $3, $4, '{}', $5)`, uid, label, strings.ToLower(label), fmt.Sprintf("cred-%d-%s", uid, label), f.clock.Now().UTC())
	mfaMust(f.t, err)
}

// wantErr checks an error's kind and that its user-facing message contains want.
func wantErr(t *testing.T, err error, kind error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %v: kind is not %v", err, kind)
	}
	msg, ok := derrors.Message(err)
	if !ok {
		t.Fatalf("error %v carries no user message, want %q", err, want)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("message %q, want it to contain %q", msg, want)
	}
}

// wantLimited checks that err is a rate-limit refusal with msg and returns
// its Retry-After.
func wantLimited(t *testing.T, err error, want string) time.Duration {
	t.Helper()
	if !errors.Is(err, derrors.RateLimited) {
		t.Fatalf("got %v, want a rate-limit error %q", err, want)
	}
	if msg, _ := derrors.Message(err); !strings.Contains(msg, want) {
		t.Errorf("limit message %q, want %q", msg, want)
	}
	wait, ok := derrors.RetryAfter(err)
	if !ok {
		t.Errorf("RetryAfter = %v, want > 0", wait)
	}
	return wait
}

func mfaMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewServiceNeedsDBAndSecret(t *testing.T) {
	if _, err := NewService(Options{Secret: mfaTestSecret}); err == nil {
		t.Error("NewService without a database succeeded")
	}
	d := &db.DB{}
	if _, err := NewService(Options{DB: d, Secret: []byte("short")}); err == nil {
		t.Error("NewService with a 5-byte secret succeeded")
	}
}
