package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

const testFrom = "Gatehouse <noreply@pypi.example.org>"

type outboxRow struct {
	ID           int64
	UserID       sql.NullInt64
	Template     string
	To           string
	Subject      string
	Text, HTML   string
	Attempts     int
	Next         int64
	ClaimedUntil int64
	SentAt       sql.NullTime
	LastError    string
}

func outbox(t *testing.T, d *db.DB) []outboxRow {
	t.Helper()
	rows, err := d.Query(`SELECT id, user_id, template, to_addr, subject, text_body, html_body, attempts, next_attempt_at,
		claimed_until, sent_at, last_error FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.UserID, &r.Template, &r.To, &r.Subject, &r.Text, &r.HTML, &r.Attempts, &r.Next,
			&r.ClaimedUntil, &r.SentAt, &r.LastError); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func enqueue(t *testing.T, d *db.DB, now time.Time, m Message) {
	t.Helper()
	if err := d.InTx(context.Background(), func(tx *sql.Tx) error { return Enqueue(context.Background(), tx, now, m) }); err != nil {
		t.Fatal(err)
	}
}

func verifyMessage(t *testing.T, userID int64, to string) Message {
	t.Helper()
	m, err := newTestRenderer(t).Render(TemplateVerifyEmail, userID, to, samples[TemplateVerifyEmail].data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEnqueueIsTransactional(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Now()
		m := verifyMessage(t, 42, "alice@example.org")
		boom := errors.New("the change failed")
		err := d.InTx(ctx, func(tx *sql.Tx) error {
			if err := Enqueue(ctx, tx, now, m); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if rows := outbox(t, d); len(rows) != 0 {
			t.Fatalf("rolled back, but the outbox has %d rows", len(rows))
		}

		enqueue(t, d, now, m)
		rows := outbox(t, d)
		if len(rows) != 1 {
			t.Fatalf("committed, outbox has %d rows", len(rows))
		}
		r := rows[0]
		if r.UserID.Int64 != 42 || r.Template != TemplateVerifyEmail || r.To != m.To || r.Subject != m.Subject ||
			r.Text != m.Text || r.HTML != m.HTML || r.Attempts != 0 || r.Next != now.UnixMilli() || r.SentAt.Valid {
			t.Errorf("row %+v", r)
		}

		// No account: user_id is NULL.
		m.UserID = 0
		enqueue(t, d, now, m)
		if rows := outbox(t, d); rows[1].UserID.Valid {
			t.Errorf("user_id %v, want NULL", rows[1].UserID)
		}

		for _, bad := range []Message{
			{Template: "x", To: "", Subject: "s", Text: "t"},
			{Template: "x", To: "a@example.org", Subject: "s\r\nBcc: evil@example.org", Text: "t"},
			{Template: "x", To: "a@example.org\nBcc: evil@example.org", Subject: "s", Text: "t"},
			{Template: "", To: "a@example.org", Subject: "s", Text: "t"},
			{Template: "x", To: "a@example.org", Subject: "s", Text: ""},
		} {
			err := d.InTx(ctx, func(tx *sql.Tx) error { return Enqueue(ctx, tx, now, bad) })
			if err == nil {
				t.Errorf("Enqueue accepted %+v", bad)
			}
		}
	})
}

func TestWorkerSendsOverSMTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		srv := startSMTP(t, serverOptions{User: "mailer", Pass: "s3cret pass"})
		sender, err := NewSMTPSender("smtp+insecure://mailer:s3cret%20pass@127.0.0.1:" + srv.Port())
		if err != nil {
			t.Fatal(err)
		}
		clk := newClock()
		w := NewWorker(d, sender, WorkerOptions{From: testFrom, Now: clk.Now})
		m := verifyMessage(t, 42, "alice@example.org")
		enqueue(t, d, clk.Now(), m)

		sent, err := w.RunOnce(ctx)
		if err != nil || sent != 1 {
			t.Fatalf("RunOnce = %d, %v", sent, err)
		}
		got := srv.next(t)
		if got.User != "mailer" {
			t.Errorf("authenticated as %q", got.User)
		}
		if got.From != "noreply@pypi.example.org" || len(got.To) != 1 || got.To[0] != "alice@example.org" {
			t.Errorf("envelope from %q to %q", got.From, got.To)
		}
		p := parseEmail(t, got.Data)
		if p.Type != "multipart/alternative" {
			t.Errorf("Content-Type %s", p.Type)
		}
		if p.Subject != "[Gatehouse] Email verification" {
			t.Errorf("Subject %q", p.Subject)
		}
		if from := p.Header.Get("From"); !strings.Contains(from, "Gatehouse") || !strings.Contains(from, "<noreply@pypi.example.org>") {
			t.Errorf("From %q", from)
		}
		if to := p.Header.Get("To"); !strings.Contains(to, "alice@example.org") {
			t.Errorf("To %q", to)
		}
		if id := p.Header.Get("Message-Id"); !strings.HasPrefix(id, "<gatehouse.") || !strings.HasSuffix(id, "@pypi.example.org>") {
			t.Errorf("Message-ID %q", id)
		}
		if p.Header.Get("Auto-Submitted") != "auto-generated" || p.Header.Get("Date") == "" {
			t.Errorf("headers %v", p.Header)
		}
		if !strings.Contains(p.Text, testLink) || !strings.Contains(p.HTML, `href="`+testLink+`"`) {
			t.Errorf("parts lack the link:\ntext: %s\nhtml: %s", p.Text, p.HTML)
		}

		rows := outbox(t, d)
		if len(rows) != 1 {
			t.Fatal(rows)
		}
		r := rows[0]
		if !r.SentAt.Valid || !r.SentAt.Time.Equal(clk.Now()) || r.Attempts != 0 || r.ClaimedUntil != 0 || r.LastError != "" {
			t.Errorf("row after sending %+v", r)
		}
		if r.Text != "" || r.HTML != "" {
			t.Errorf("sent row keeps its bodies (live links): %q %q", r.Text, r.HTML)
		}
		if r.To != "alice@example.org" || r.Subject != m.Subject {
			t.Errorf("sent row lost its record: %+v", r)
		}

		events, err := audit.NewService(d, nil).ForUser(ctx, 42, time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].Tag != audit.EmailSent {
			t.Fatalf("events %+v", events)
		}
		add := events[0].Additional
		if add["to"] != "alice@example.org" || add["subject"] != m.Subject || add["template"] != TemplateVerifyEmail || add["from"] != testFrom {
			t.Errorf("event additional %v", add)
		}
		if s := fmt.Sprint(add); strings.Contains(s, "tok_Secret123") || strings.Contains(s, "Someone, probably you") {
			t.Errorf("event holds the body: %v", add)
		}

		// Nothing is sent twice.
		if sent, err := w.RunOnce(ctx); err != nil || sent != 0 {
			t.Fatalf("second RunOnce = %d, %v", sent, err)
		}
		srv.none(t)
	})
}

func TestWorkerRetriesUntilServerIsUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		addr := freeAddr(t) // nothing listens here yet
		sender, err := NewSMTPSender("smtp+insecure://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		clk := newClock()
		w := NewWorker(d, sender, WorkerOptions{From: testFrom, Now: clk.Now})
		enqueue(t, d, clk.Now(), verifyMessage(t, 42, "alice@example.org"))

		sent, err := w.RunOnce(ctx)
		if err != nil || sent != 0 {
			t.Fatalf("RunOnce with the server down = %d, %v", sent, err)
		}
		r := outbox(t, d)[0]
		if r.SentAt.Valid || r.Attempts != 1 || r.ClaimedUntil != 0 || r.LastError == "" ||
			r.Next != clk.Now().Add(30*time.Second).UnixMilli() || r.Text == "" {
			t.Fatalf("row after a failure %+v", r)
		}
		if strings.Contains(r.LastError, "tok_Secret123") {
			t.Errorf("last_error holds the body: %s", r.LastError)
		}

		// Not due yet: not tried again.
		clk.Advance(29 * time.Second)
		if sent, err := w.RunOnce(ctx); err != nil || sent != 0 {
			t.Fatalf("RunOnce before the retry time = %d, %v", sent, err)
		}
		if r := outbox(t, d)[0]; r.Attempts != 1 {
			t.Fatalf("retried early: %+v", r)
		}

		srv := startSMTP(t, serverOptions{Addr: addr})
		clk.Advance(2 * time.Second)
		if sent, err := w.RunOnce(ctx); err != nil || sent != 1 {
			t.Fatalf("RunOnce with the server up = %d, %v", sent, err)
		}
		p := parseEmail(t, srv.next(t).Data)
		if p.Subject != "[Gatehouse] Email verification" {
			t.Errorf("Subject %q", p.Subject)
		}
		if r := outbox(t, d)[0]; !r.SentAt.Valid || r.Attempts != 1 || r.LastError != "" {
			t.Errorf("row after the retry %+v", r)
		}
		clk.Advance(time.Hour)
		if sent, _ := w.RunOnce(ctx); sent != 0 {
			t.Error("sent again")
		}
		srv.none(t)
	})
}

func TestWorkerGivesUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		sender, err := NewSMTPSender("smtp+insecure://" + freeAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		clk := newClock()
		w := NewWorker(d, sender, WorkerOptions{From: testFrom, Now: clk.Now, MaxAttempts: 3,
			Backoff: func(int) time.Duration { return time.Minute }})
		enqueue(t, d, clk.Now(), verifyMessage(t, 42, "alice@example.org"))
		for i := 1; i <= 5; i++ {
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Advance(2 * time.Minute)
		}
		r := outbox(t, d)[0]
		if r.Attempts != 3 || r.SentAt.Valid || r.LastError == "" || r.Next != never || r.Text != "" || r.HTML != "" {
			t.Errorf("row after giving up %+v", r)
		}
	})
}

func TestWorkerBadFrom(t *testing.T) {
	d := dbtest.NewSQLite(t)
	w := NewWorker(d, nil, WorkerOptions{From: "not an address"})
	enqueue(t, d, time.Now(), verifyMessage(t, 1, "a@example.org"))
	if _, err := w.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce with a bad From succeeded")
	}
	if r := outbox(t, d)[0]; r.Attempts != 0 || r.ClaimedUntil != 0 {
		t.Errorf("a bad From touched the outbox: %+v", r)
	}
}

// Two workers (two instances) delivering one outbox send every message
// exactly once. On PostgreSQL each worker has its own connection pool to
// the database, as two instances would.
func TestTwoWorkersSendEachMessageOnce(t *testing.T) {
	run := func(t *testing.T, d1, d2 *db.DB) {
		srv := startSMTP(t, serverOptions{})
		sender, err := NewSMTPSender("smtp+insecure://" + srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		const n = 50
		now := time.Now()
		for i := range n {
			m := verifyMessage(t, int64(i+1), fmt.Sprintf("user%d@example.org", i))
			m.Subject = fmt.Sprintf("[Gatehouse] message %d", i)
			enqueue(t, d1, now, m)
		}
		workers := []*Worker{
			NewWorker(d1, sender, WorkerOptions{From: testFrom}),
			NewWorker(d2, sender, WorkerOptions{From: testFrom}),
		}
		var total atomic.Int64
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range 4 { // two goroutines per worker, for more contention
			w := workers[i%2]
			wg.Go(func() {
				for total.Load() < n && ctx.Err() == nil {
					sent, err := w.RunOnce(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					total.Add(int64(sent))
				}
			})
		}
		wg.Wait()
		if total.Load() != n {
			t.Fatalf("workers report %d sent, want %d", total.Load(), n)
		}
		seen := map[string]int{}
		for range n {
			seen[parseEmail(t, srv.next(t).Data).Subject]++
		}
		srv.none(t)
		for i := range n {
			if c := seen[fmt.Sprintf("[Gatehouse] message %d", i)]; c != 1 {
				t.Errorf("message %d received %d times", i, c)
			}
		}
		for _, r := range outbox(t, d1) {
			if !r.SentAt.Valid || r.Attempts != 0 {
				t.Errorf("row %+v", r)
			}
		}
		var events int
		if err := d1.QueryRow(`SELECT count(*) FROM events WHERE tag = $1`, audit.EmailSent).Scan(&events); err != nil || events != n {
			t.Errorf("%d events (%v), want %d", events, err, n)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		d := dbtest.NewSQLite(t) // SQLite: one instance per file; the workers share it
		run(t, d, d)
	})
	t.Run("postgres", func(t *testing.T) {
		url := dbtest.PostgresURL(t)
		open := func() *db.DB {
			d, err := db.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		}
		d1, d2 := open(), open()
		if _, err := d1.Migrate(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		run(t, d1, d2)
	})
}

// Run delivers at once when kicked, and stops with its context.
func TestWorkerRunAndKick(t *testing.T) {
	d := dbtest.NewSQLite(t)
	srv := startSMTP(t, serverOptions{})
	sender, err := NewSMTPSender("smtp+insecure://" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// Run's first round starts at once. It reads the clock once, to pick
	// the due messages; the message is queued just after that instant, so
	// the first round cannot send it, and with an hour between polls only
	// the kick can.
	clk := newClock()
	firstRound := make(chan struct{})
	var once sync.Once
	now := func() time.Time {
		n := clk.Now()
		once.Do(func() { close(firstRound) })
		return n
	}
	w := NewWorker(d, sender, WorkerOptions{From: testFrom, Interval: time.Hour, Now: now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	select {
	case <-firstRound:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start a round")
	}

	clk.Advance(time.Millisecond) // the outbox keeps milliseconds
	enqueue(t, d, clk.Now(), verifyMessage(t, 1, "a@example.org"))
	w.Kick()
	srv.next(t)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// A message whose send is cut short by shutdown is released, not counted
// as a failed attempt.
func TestWorkerShutdownReleasesClaim(t *testing.T) {
	d := dbtest.NewSQLite(t)
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	s := senderFunc(func(sctx context.Context, from string, m Message) error {
		cancel()
		<-sctx.Done()
		return sctx.Err()
	})
	w := NewWorker(d, s, WorkerOptions{From: testFrom, Now: clk.Now})
	enqueue(t, d, clk.Now(), verifyMessage(t, 1, "a@example.org"))
	if _, err := w.RunOnce(ctx); !errors.Is(err, context.Canceled) && err != nil {
		t.Fatal(err)
	}
	r := outbox(t, d)[0]
	if r.Attempts != 0 || r.ClaimedUntil != 0 || r.SentAt.Valid {
		t.Errorf("row after shutdown %+v", r)
	}
}

type senderFunc func(ctx context.Context, from string, m Message) error

func (f senderFunc) Send(ctx context.Context, from string, m Message) error { return f(ctx, from, m) }
