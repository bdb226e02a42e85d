package throttle

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

func TestMovingWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := testclock.New(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
		l := New(d, "ip.login", clock.Now, Limit{3, 5 * time.Minute}, Limit{5, time.Hour})
		other := New(d, "user.login", clock.Now, Limit{1, time.Minute})

		for i := 0; i < 3; i++ {
			if err := l.Enforce(ctx, "1.2.3.4", "too many", nil); err != nil {
				t.Fatalf("attempt %d: got %v, want allowed", i+1, err)
			}
			l.Hit(ctx, nil, "1.2.3.4")
			clock.Advance(time.Minute)
		}
		err := l.Enforce(ctx, "1.2.3.4", "too many", nil)
		if !errors.Is(err, derrors.RateLimited) {
			t.Fatalf("4th attempt: got %v, want an error of kind RateLimited", err)
		}
		// Hits at 12:00, 12:01, 12:02; now 12:03. The oldest leaves the
		// 5-minute window at 12:05: two minutes from now.
		if wait, ok := derrors.RetryAfter(err); !ok || wait != 2*time.Minute {
			t.Errorf("RetryAfter: got %v, %v, want 2m", wait, ok)
		}
		if msg, ok := derrors.Message(err); !ok || msg != "too many" {
			t.Errorf("Message: got %q, %v", msg, ok)
		}
		// Other keys and other limiters are independent.
		if err := l.Enforce(ctx, "5.6.7.8", "x", nil); err != nil {
			t.Errorf("another key: %v", err)
		}
		if err := other.Enforce(ctx, "1.2.3.4", "x", nil); err != nil {
			t.Errorf("another limiter: %v", err)
		}
		// The window moves: at 12:05 one more attempt is allowed.
		clock.Advance(2 * time.Minute)
		if err := l.Enforce(ctx, "1.2.3.4", "x", nil); err != nil {
			t.Errorf("after the window moved: %v", err)
		}
		l.Hit(ctx, nil, "1.2.3.4")
		l.Hit(ctx, nil, "1.2.3.4")
		// Five hits in the hour now trip the hourly limit even though the
		// 5-minute one has room later.
		clock.Advance(10 * time.Minute)
		if err := l.Enforce(ctx, "1.2.3.4", "x", nil); err == nil {
			t.Error("hourly limit did not trip after 5 hits")
		}
		if err := l.Clear(ctx, nil, "1.2.3.4"); err != nil {
			t.Fatal(err)
		}
		if err := l.Enforce(ctx, "1.2.3.4", "x", nil); err != nil {
			t.Errorf("after Clear: %v", err)
		}
	})
}

// TestSharedAcrossConnections shows the count lives in the database: two
// limiters on two connections (two instances) see each other's hits.
func TestSharedAcrossConnections(t *testing.T) {
	url := dbtest.PostgresURL(t)
	ctx := context.Background()
	a, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	la := New(a, "global.login", nil, Limit{2, time.Minute})
	lb := New(b, "global.login", nil, Limit{2, time.Minute})
	la.Hit(ctx, nil, "all")
	lb.Hit(ctx, nil, "all")
	if err := la.Enforce(ctx, "all", "x", nil); err == nil {
		t.Error("instance A did not see instance B's hit")
	}
}
