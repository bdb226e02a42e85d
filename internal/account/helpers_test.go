package account

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

const (
	testBaseURL  = "https://index.example"
	goodPassword = "violet-harbour-lantern-42"
)

// outboxNotifier is the recording Notifier: it writes each email into the
// outbox table through the caller's transaction (template, recipient, data
// as JSON), so a rolled-back change leaves no email, as in production.
type outboxNotifier struct {
	fail error // when set, Notify fails with it
}

func (n *outboxNotifier) Notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error {
	if n.fail != nil {
		return n.fail
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (user_id, template, to_addr, subject, text_body, created_at, next_attempt_at)
		VALUES ($1, $2, $3, '', $4, $5, 0)`, userID, template, to, string(b), time.Now().UTC())
	return err
}

// sentMail is one queued email.
type sentMail struct {
	Template string
	To       string
	UserID   int64
	Data     map[string]string
}

type fixture struct {
	t      *testing.T
	ctx    context.Context
	d      *db.DB
	s      *Service
	clock  *testclock.Clock
	notify *outboxNotifier
	logs   *bytes.Buffer
}

// newFixture returns a service on d with registration open, a fake clock,
// the outbox notifier and logs captured for the secret scan.
func newFixture(t *testing.T, d *db.DB, opt ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)),
		notify: &outboxNotifier{}, logs: &bytes.Buffer{}}
	o := Options{
		DB: d, Hasher: NewHasher(workpool.New(workpool.Options{CPUs: 4})), Notifier: f.notify, Links: Links{VerifyEmail: testBaseURL + "/account/verify-email/", ResetPassword: testBaseURL + "/account/reset-password/", ConfirmLogin: testBaseURL + "/account/confirm-login/"}, Now: f.clock.Now,
		Log: slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})), DefaultRegistrationOpen: true,
	}
	for _, fn := range opt {
		fn(&o)
	}
	f.s = NewService(o)
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// client returns a distinct client per IP suffix.
func client(ip string) Client { return Client{IP: ip, UserAgent: "test-agent/1.0"} }

// register creates a user from its own IP (so per-IP limits do not
// interfere) and returns it.
func (f *fixture) register(username string) *User {
	f.t.Helper()
	u, err := f.s.Register(f.ctx, Registration{Username: username, FullName: "Test " + username, Email: username + "@example.com",
		Password: goodPassword, Confirm: goodPassword}, client("10.0.0."+username))
	if err != nil {
		f.t.Fatalf("register %s: %v", username, err)
	}
	return u
}

// registerVerified registers a user and follows their verification link.
func (f *fixture) registerVerified(username string) *User {
	f.t.Helper()
	u := f.register(username)
	if _, err := f.s.VerifyEmail(f.ctx, u.ID, f.token(u.PrimaryEmail, "verify-email"), client("10.0.0."+username)); err != nil {
		f.t.Fatalf("verify %s: %v", username, err)
	}
	u, err := f.s.ByID(f.ctx, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) mails() []sentMail {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, `SELECT template, to_addr, user_id, text_body FROM outbox ORDER BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []sentMail
	for rows.Next() {
		var m sentMail
		var uid sql.NullInt64
		var body string
		if err := rows.Scan(&m.Template, &m.To, &uid, &body); err != nil {
			f.t.Fatal(err)
		}
		m.UserID = uid.Int64
		var data map[string]any
		if err := json.Unmarshal([]byte(body), &data); err != nil {
			f.t.Fatal(err)
		}
		m.Data = map[string]string{}
		for k, v := range data {
			m.Data[k] = fmt.Sprint(v)
		}
		out = append(out, m)
	}
	return out
}

// mailsTo returns the emails of one template (all if "") sent to addr (all if "").
func (f *fixture) mailsTo(addr, template string) []sentMail {
	f.t.Helper()
	var out []sentMail
	for _, m := range f.mails() {
		if (addr == "" || m.To == addr) && (template == "" || m.Template == template) {
			out = append(out, m)
		}
	}
	return out
}

// lastMail returns the newest email of a template to addr, failing if none.
func (f *fixture) lastMail(addr, template string) sentMail {
	f.t.Helper()
	ms := f.mailsTo(addr, template)
	if len(ms) == 0 {
		f.t.Fatalf("no %s email to %s; outbox: %+v", template, addr, f.mails())
	}
	return ms[len(ms)-1]
}

// token follows the link of the newest email of a template to addr and
// returns the raw token it carries.
func (f *fixture) token(addr, template string) string {
	f.t.Helper()
	return tokenOf(f.t, f.lastMail(addr, template).Data["Link"])
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("bad link %q", link)
	}
	return u.Query().Get("token")
}

// tags returns the event tags of a user, oldest first.
func (f *fixture) tags(userID int64) []string {
	f.t.Helper()
	rows, err := f.d.QueryContext(f.ctx, `SELECT tag FROM events WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var tag string
		rows.Scan(&tag)
		out = append(out, tag)
	}
	return out
}

type storedEvent struct {
	Tag, Actor, IP, UserAgent string
	UserID, ActorID           int64
	Additional                map[string]any
}

// lastEvent returns the newest event with a tag.
func (f *fixture) lastEvent(tag string) storedEvent {
	f.t.Helper()
	var e storedEvent
	var uid, aid sql.NullInt64
	var add string
	err := f.d.QueryRowContext(f.ctx, `SELECT tag, user_id, actor_id, actor, ip, user_agent, additional FROM events WHERE tag = $1 ORDER BY id DESC LIMIT 1`, tag).
		Scan(&e.Tag, &uid, &aid, &e.Actor, &e.IP, &e.UserAgent, &add)
	if err != nil {
		f.t.Fatalf("no %s event: %v", tag, err)
	}
	e.UserID, e.ActorID = uid.Int64, aid.Int64
	json.Unmarshal([]byte(add), &e.Additional)
	return e
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.d.QueryRowContext(f.ctx, query, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
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

// wantLimited checks that err is a rate-limit refusal with msg.
func wantLimited(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, derrors.RateLimited) {
		t.Fatalf("got %v, want a rate-limit error %q", err, want)
	}
	if msg, _ := derrors.Message(err); !strings.Contains(msg, want) {
		t.Errorf("limit message %q, want %q", msg, want)
	}
	if wait, ok := derrors.RetryAfter(err); !ok {
		t.Errorf("RetryAfter = %v, want > 0", wait)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
