// Package mail is Gatehouse's transactional email: verification links,
// password resets and security notifications (spec §2.2).
//
// # The outbox
//
// An email is never sent from a request. The code that makes a change (adds
// an address, resets a password, deletes an account) renders the email with a
// Renderer and writes it with Enqueue into the outbox table, inside the same
// transaction as the change. So an email exists exactly when its change
// commits: a rolled-back change sends nothing, and a committed one cannot
// lose its notification because the SMTP server was down or the process
// died a moment later. The request stays fast and never waits on SMTP.
//
// A Worker, running in every instance, delivers the outbox through a Sender
// (SMTP in production, .eml files for development), retrying with backoff. To
// share the work between instances, a worker claims one row at a time with a
// conditional UPDATE (a lease in outbox.claimed_until); only the worker whose
// UPDATE changed the row sends it, so two instances never send one email
// concurrently. When the send succeeds, the row is marked sent and the event
// account:email:sent is recorded in one transaction.
//
// Delivery is at least once, not exactly once: if the process dies after the
// SMTP server accepted a message but before sent_at committed, the claim
// expires and the message is sent again. Each outbox row keeps one
// Message-ID across retries, so a receiving system can spot the duplicate.
//
// Once sent, a row's bodies are blanked: they hold live one-time links, and a
// database dump must not hand them out. The row itself (recipient, subject,
// template, times) stays as the record of what was sent.
package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one email.
type Message struct {
	UserID   int64  // recipient account (0 if none)
	Template string // e.g. "verify-email"
	To       string // address
	Subject  string // already prefixed with "[<site name>] "
	Text     string
	HTML     string

	// MessageID is the Message-ID header, without angle brackets. The
	// Worker sets it from the outbox row so every retry of one email
	// carries the same id; when empty, a sender makes a random one.
	MessageID string
}

func (m Message) validate() error {
	switch {
	case m.Template == "":
		return errors.New("mail: message has no template name")
	case m.To == "":
		return errors.New("mail: message has no recipient")
	case strings.ContainsAny(m.To, "\r\n") || strings.ContainsAny(m.Subject, "\r\n"):
		return errors.New("mail: line break in recipient or subject")
	case m.Subject == "":
		return errors.New("mail: message has no subject")
	case m.Text == "":
		return errors.New("mail: message has no text body")
	}
	return nil
}

// Enqueue writes m to the outbox inside tx, the transaction of the change
// that causes it, so an email exists exactly when its change commits. The
// message is due at once; call Worker.Kick after the commit to send it
// without waiting for the next poll.
func Enqueue(ctx context.Context, tx *sql.Tx, now time.Time, m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (user_id, template, to_addr, subject, text_body, html_body, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		sql.NullInt64{Int64: m.UserID, Valid: m.UserID != 0}, m.Template, m.To, m.Subject, m.Text, m.HTML,
		now.UTC(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("enqueue %s email: %w", m.Template, err)
	}
	return nil
}

// Sender delivers one message. Send must not log the body or its links:
// they hold one-time secrets (the development FileSender is the documented
// exception). A Sender should give up when ctx ends.
type Sender interface {
	Send(ctx context.Context, from string, m Message) error
}

// build turns m into a MIME message: multipart/alternative with the text
// part first and the HTML part (when there is one) preferred.
func build(from string, m Message, now time.Time) (*gomail.Msg, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: From address %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: To address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(now)
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	// RFC 3834: an automatic message; auto-responders should not answer.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
