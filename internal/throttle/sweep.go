package throttle

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

// MaxWindow is the longest window a limit may have. Rows older than it can
// count against no limit, so Sweep may delete them.
const MaxWindow = 7 * 24 * time.Hour

// Sweep deletes hits older than MaxWindow. A key hit again prunes its own
// old rows, but a key hit once (a made-up username, a passing IP address)
// is never hit again: without a sweep those rows would pile up forever.
func Sweep(ctx context.Context, d *db.DB, now time.Time) (int64, error) {
	r, err := d.ExecContext(ctx, `DELETE FROM throttle_hits WHERE at < $1`, now.Add(-MaxWindow).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sweep throttle hits: %w", err)
	}
	return r.RowsAffected()
}
