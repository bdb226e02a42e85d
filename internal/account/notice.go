package account

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// Notice is a security notice: the event for the audit trail and, when
// Template is set, the email that tells the owner.
type Notice struct {
	Event    audit.Event // Event.UserID is whose account it concerns
	Template string      // "" for an event without an email
	Data     map[string]any
}

// SendNotice records a security event and emails its notice in tx. It is
// the one path every package takes for "record the event, tell the owner",
// with one rule for who is told: every verified address of the account, as
// PyPI does, so the owner hears of it wherever they read their mail. An
// unverified address may belong to whoever typed it at registration, so it
// is told nothing, except for the templates mail.AllowsUnverified lists
// (the new-browser link, without which the owner could not log in, and an
// administrator's recovery notice), which also go to an unverified primary.
// With a nil Notifier only the event is recorded.
func SendNotice(ctx context.Context, tx *sql.Tx, n Notifier, now time.Time, c Client, nt Notice) error {
	if nt.Event.Tag != "" {
		nt.Event.IP, nt.Event.UserAgent = c.IP, c.UserAgent
		if err := audit.Record(ctx, tx, now, nt.Event); err != nil {
			return err
		}
	}
	if nt.Template == "" || n == nil {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT email, verified, is_primary FROM user_emails WHERE user_id = $1 ORDER BY is_primary DESC, id`, nt.Event.UserID)
	if err != nil {
		return err
	}
	type recipient struct {
		addr              string
		verified, primary bool
	}
	var to []recipient
	for rows.Next() {
		var r recipient
		if err := rows.Scan(&r.addr, &r.verified, &r.primary); err != nil {
			rows.Close()
			return err
		}
		to = append(to, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range to {
		if !r.verified && !(r.primary && mail.AllowsUnverified(nt.Template)) {
			continue
		}
		if err := n.Notify(ctx, tx, nt.Template, nt.Event.UserID, r.addr, nt.Data); err != nil {
			return fmt.Errorf("queue %s email: %w", nt.Template, err)
		}
	}
	return nil
}
