package mail

import (
	"context"
	"database/sql"
	"time"
)

// Notifier renders a template and queues the message in the caller's
// transaction in one step, so a rolled-back change sends no email. account
// and mfa take it as an account.Notifier (cmd/gatehouse wires this one in),
// so they do not depend on rendering.
type Notifier struct {
	r   *Renderer
	now func() time.Time
}

// NewNotifier returns a Notifier; now may be nil (time.Now).
func NewNotifier(r *Renderer, now func() time.Time) *Notifier {
	if now == nil {
		now = time.Now
	}
	return &Notifier{r: r, now: now}
}

// Notify renders template for to with data and enqueues it in tx.
func (n *Notifier) Notify(ctx context.Context, tx *sql.Tx, template string, userID int64, to string, data map[string]any) error {
	m, err := n.r.Render(template, userID, to, data)
	if err != nil {
		return err
	}
	return Enqueue(ctx, tx, n.now(), m)
}
