package mail

import (
	"context"
	"fmt"
)

// Depth is the outbox as the metrics show it: the emails every instance
// still has to send, and those that ran out of attempts. This worker's
// own sends and failed attempts since it started come from Counts.
func (w *Worker) Depth(ctx context.Context) (pending, givenUp int64, err error) {
	err = w.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN attempts < $1 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN attempts >= $1 THEN 1 ELSE 0 END), 0)
		FROM outbox WHERE sent_at IS NULL`, w.o.MaxAttempts).Scan(&pending, &givenUp)
	if err != nil {
		return 0, 0, fmt.Errorf("count the outbox: %w", err)
	}
	return pending, givenUp, nil
}

// Counts reports how many emails this worker sent, and how many send
// attempts failed (each is retried until MaxAttempts), since it started.
func (w *Worker) Counts() (sent, failed uint64) { return w.sent.Load(), w.failed.Load() }
