package throttle

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

// TestSweepForgetsOnlyWhatNoLimitCounts: a key hit once is swept after
// MaxWindow, and a key within a day-long window keeps counting.
func TestSweepForgetsOnlyWhatNoLimitCounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := testclock.New(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
		day := New(d, "user.login", clock.Now, Limit{2, 24 * time.Hour})
		day.Hit(ctx, nil, "made-up-name") // hit once, never again
		clock.Advance(MaxWindow - time.Hour)
		day.Hit(ctx, nil, "alice")
		day.Hit(ctx, nil, "alice")
		clock.Advance(2 * time.Hour)
		n, err := Sweep(ctx, d, clock.Now())
		if err != nil || n != 1 {
			t.Fatalf("Sweep: removed %d, %v; want the one row older than MaxWindow", n, err)
		}
		if ok, _, _ := day.Check(ctx, "alice"); ok {
			t.Error("the sweep forgot hits that still count: alice is under her daily limit again")
		}
	})
}

func TestLimitLongerThanMaxWindowIsRefused(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted a limit longer than MaxWindow")
		}
	}()
	New(nil, "too.long", nil, Limit{1, MaxWindow + time.Hour})
}
