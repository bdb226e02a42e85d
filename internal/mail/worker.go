package mail

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	netmail "net/mail"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
)

const (
	// claimLease is how long a claimed row belongs to its worker. A send is
	// cut off at half of it (SMTPSender also stops itself after a minute),
	// so a live worker always finishes, and records, before its lease
	// ends. Instances' clocks must agree to well within this (NTP).
	claimLease = 2 * time.Minute
	// batchSize is how many due rows one RunOnce looks at.
	batchSize = 20
	// never is next_attempt_at of a message that is not retried any more.
	never = math.MaxInt64
	// maxErrorLen bounds last_error.
	maxErrorLen = 1000
)

// WorkerOptions configures a Worker. Only From is required.
type WorkerOptions struct {
	From        string                          // From: of every email, e.g. "Gatehouse <noreply@example.org>"
	Interval    time.Duration                   // how often to poll the outbox (default 2s)
	MaxAttempts int                             // attempts before giving up on a message (default 10)
	Now         func() time.Time                // the clock (default time.Now)
	Log         *slog.Logger                    // default: discard
	Backoff     func(attempt int) time.Duration // wait after the attempt-th failure (default DefaultBackoff)
}

// DefaultBackoff waits 30s after the first failure, doubling each time up
// to an hour: with the default 10 attempts a message is retried for about
// three hours before the worker gives up.
func DefaultBackoff(attempt int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Worker delivers the outbox with retries. Several instances may run
// workers against one database: each row is claimed by one worker at a
// time, so no message is sent twice concurrently (see the package comment
// for the one at-least-once window).
type Worker struct {
	db      *db.DB
	sender  Sender
	o       WorkerOptions
	domain  string // for Message-IDs, from From
	fromErr error
	kick    chan struct{}

	// What this worker did since it started, for the metrics.
	sent, failed atomic.Uint64
}

// NewWorker returns a worker that sends d's outbox through s. A From that
// does not parse is reported by every RunOnce (and by Run in the log),
// without touching the outbox.
func NewWorker(d *db.DB, s Sender, o WorkerOptions) *Worker {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	w := &Worker{db: d, sender: s, o: o, kick: make(chan struct{}, 1)}
	a, err := netmail.ParseAddress(o.From)
	if err != nil {
		w.fromErr = fmt.Errorf("mail: From address %q: %w", o.From, err)
	} else {
		w.domain = a.Address[strings.LastIndexByte(a.Address, '@')+1:]
	}
	return w
}

// Kick wakes the loop now. Call it after committing a transaction that
// enqueued mail, so the email leaves without waiting for the next poll.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers the outbox until ctx is done: every Interval, at once when
// kicked, and straight again while full batches keep coming.
func (w *Worker) Run(ctx context.Context) {
	if w.fromErr != nil {
		w.o.Log.Error("mail worker: no email will be sent", "err", w.fromErr)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.kick:
		}
		_, more, err := w.runOnce(ctx)
		if err != nil && ctx.Err() == nil && w.fromErr == nil {
			w.o.Log.Warn("mail worker: outbox", "err", err)
		}
		wait := w.o.Interval
		if more && err == nil {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// RunOnce claims the messages that are due (up to 20), sends them and
// records the outcome. sent counts the messages delivered; a failed send
// is not an error (it is recorded on its row and retried later), err
// reports a database problem or a bad From.
func (w *Worker) RunOnce(ctx context.Context) (sent int, err error) {
	sent, _, err = w.runOnce(ctx)
	return sent, err
}

// runOnce also reports whether the batch was full, so more may be due.
func (w *Worker) runOnce(ctx context.Context) (sent int, more bool, err error) {
	if w.fromErr != nil {
		return 0, false, w.fromErr
	}
	now := w.o.Now().UnixMilli()
	rows, err := w.db.QueryContext(ctx, `SELECT id FROM outbox
		WHERE sent_at IS NULL AND next_attempt_at <= $1 AND claimed_until < $1 AND attempts < $2
		ORDER BY id LIMIT $3`, now, w.o.MaxAttempts, batchSize)
	if err != nil {
		return 0, false, fmt.Errorf("list due emails: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, false, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return sent, false, err
		}
		ok, err := w.deliver(ctx, id)
		if err != nil {
			return sent, false, err
		}
		if ok {
			sent++
		}
	}
	return sent, len(ids) == batchSize, nil
}

// deliver claims row id and, if the claim is ours, sends it and records the
// result. It reports whether the message was sent.
func (w *Worker) deliver(ctx context.Context, id int64) (bool, error) {
	now := w.o.Now()
	claim := rand.Text()
	res, err := w.db.ExecContext(ctx, `UPDATE outbox SET claim_id = $1, claimed_until = $2
		WHERE id = $3 AND sent_at IS NULL AND claimed_until < $4 AND next_attempt_at <= $4`,
		claim, now.Add(claimLease).UnixMilli(), id, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claim email %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, err // another worker has it, or it was sent meanwhile
	}

	var (
		m        Message
		userID   sql.NullInt64
		created  time.Time
		attempts int
	)
	err = w.db.QueryRowContext(ctx, `SELECT user_id, template, to_addr, subject, text_body, html_body, created_at, attempts
		FROM outbox WHERE id = $1 AND claim_id = $2`, id, claim).
		Scan(&userID, &m.Template, &m.To, &m.Subject, &m.Text, &m.HTML, &created, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load email %d: %w", id, err)
	}
	m.UserID = userID.Int64
	// One Message-ID per row, the same on every retry.
	m.MessageID = fmt.Sprintf("gatehouse.%d.%d@%s", id, created.UnixMicro(), w.domain)

	sendCtx, cancel := context.WithTimeout(ctx, claimLease/2)
	sendErr := w.sender.Send(sendCtx, w.o.From, m)
	cancel()
	if sendErr == nil {
		w.sent.Add(1)
	} else if ctx.Err() == nil {
		w.failed.Add(1)
	}

	// The outcome is recorded even when ctx has just ended (shutdown).
	rec, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelRec()
	switch {
	case sendErr == nil:
		// At-least-once window: the server has the message, but until the
		// transaction below commits the row still looks unsent. If the
		// process dies (or the database is unreachable) here, the claim
		// expires and another attempt sends the message again, with the
		// same Message-ID. No scheme short of the server taking part in
		// our transaction can close this gap.
		return true, w.markSent(rec, id, claim, m)
	case ctx.Err() != nil:
		// Shutting down: the attempt was cut short by us, not failed by
		// the server. Release the claim without counting it.
		_, err := w.db.ExecContext(rec, `UPDATE outbox SET claimed_until = 0 WHERE id = $1 AND claim_id = $2`, id, claim)
		return false, err
	default:
		return false, w.recordFailure(rec, id, claim, attempts+1, m, sendErr)
	}
}

var errLostClaim = errors.New("claim lost")

func (w *Worker) markSent(ctx context.Context, id int64, claim string, m Message) error {
	var err error
	for try := 0; try < 3; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		now := w.o.Now()
		err = w.db.InTx(ctx, func(tx *sql.Tx) error {
			// The bodies go: they hold live one-time links.
			res, err := tx.ExecContext(ctx, `UPDATE outbox SET sent_at = $1, claimed_until = 0, last_error = '', text_body = '', html_body = ''
				WHERE id = $2 AND claim_id = $3 AND sent_at IS NULL`, now.UTC(), id, claim)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errLostClaim
			}
			// Never the body: it holds the links.
			return audit.Record(ctx, tx, now, audit.Event{
				UserID: m.UserID,
				Tag:    audit.EmailSent,
				Additional: map[string]any{
					"from":     w.o.From,
					"to":       m.To,
					"subject":  m.Subject,
					"template": m.Template,
				},
			})
		})
		if err == nil {
			w.o.Log.Info("email sent", "outbox_id", id, "template", m.Template, "user_id", m.UserID)
			return nil
		}
		if errors.Is(err, errLostClaim) {
			// Only if this send outlived its lease (or clocks disagree):
			// another worker took the row and may send it too.
			w.o.Log.Warn("email sent, but its claim had expired; it may be sent twice",
				"outbox_id", id, "template", m.Template)
			return nil
		}
	}
	w.o.Log.Error("email sent, but recording it failed; it will be sent again when its claim expires",
		"outbox_id", id, "template", m.Template, "err", err)
	return fmt.Errorf("record email %d as sent: %w", id, err)
}

func (w *Worker) recordFailure(ctx context.Context, id int64, claim string, attempt int, m Message, sendErr error) error {
	now := w.o.Now()
	msg := truncate(sendErr.Error(), maxErrorLen)
	giveUp := attempt >= w.o.MaxAttempts
	var err error
	if giveUp {
		// Not retried any more; the bodies go, as for a sent message.
		_, err = w.db.ExecContext(ctx, `UPDATE outbox SET attempts = $1, last_error = $2, next_attempt_at = $3,
			claimed_until = 0, text_body = '', html_body = '' WHERE id = $4 AND claim_id = $5`,
			attempt, msg, int64(never), id, claim)
		w.o.Log.Error("email delivery failed for good; giving up", "outbox_id", id, "template", m.Template,
			"user_id", m.UserID, "attempts", attempt, "err", msg)
	} else {
		wait := w.o.Backoff(attempt)
		_, err = w.db.ExecContext(ctx, `UPDATE outbox SET attempts = $1, last_error = $2, next_attempt_at = $3,
			claimed_until = 0 WHERE id = $4 AND claim_id = $5`,
			attempt, msg, now.Add(wait).UnixMilli(), id, claim)
		w.o.Log.Warn("email delivery failed; will retry", "outbox_id", id, "template", m.Template,
			"attempt", attempt, "retry_in", wait, "err", msg)
	}
	if err != nil {
		return fmt.Errorf("record failed email %d: %w", id, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
