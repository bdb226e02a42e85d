package workpool

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

// holder keeps one worker busy until released: the job signals when it has
// started and ends when release is closed.
type holder struct {
	started, release chan struct{}
	done             chan error
}

func hold(t *testing.T, p *Pool) *holder {
	t.Helper()
	h := &holder{started: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		h.done <- p.Do(context.Background(), func() {
			close(h.started)
			<-h.release
		})
	}()
	<-h.started
	return h
}

// free ends the held job and waits for its Do to return.
func (h *holder) free(t *testing.T) {
	t.Helper()
	close(h.release)
	if err := <-h.done; err != nil {
		t.Fatalf("held job: %v", err)
	}
}

// timers are the injected timers: the test sees each one started, with
// its duration, and fires it itself.
type timers struct{ started chan timer }

type timer struct {
	d    time.Duration
	fire chan time.Time
}

func newTimers() *timers { return &timers{started: make(chan timer, 10)} }

func (ts *timers) after(d time.Duration) <-chan time.Time {
	tm := timer{d: d, fire: make(chan time.Time, 1)}
	ts.started <- tm
	return tm.fire
}

func TestBusyAfterTheWait(t *testing.T) {
	ts := newTimers()
	p := New(Options{CPUs: 2, Wait: 2 * time.Second, After: ts.after})
	a, b := hold(t, p), hold(t, p)
	ran := false
	errc := make(chan error, 1)
	go func() { errc <- p.Do(context.Background(), func() { ran = true }) }()
	wait := <-ts.started
	if wait.d != 2*time.Second {
		t.Errorf("waited %v, want the configured 2s", wait.d)
	}
	wait.fire <- time.Time{}
	if err := <-errc; !errors.Is(err, ErrBusy) {
		t.Fatalf("with both workers held past the wait: got %v, want ErrBusy", err)
	}
	if ran {
		t.Error("the refused job ran")
	}
	if st := p.Stats(); st != (Stats{Ran: 2, Busy: 1}) {
		t.Errorf("Stats %+v, want the 2 held jobs run and 1 refused", st)
	}
	a.free(t)
	b.free(t)
	// Both free again (whole CPUs: no rest): no wait at all.
	if err := p.Do(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("after the workers came free: err %v, ran %v", err, ran)
	}
	if len(ts.started) != 0 {
		t.Error("a job with a free worker, or a worker with a whole CPU, started a timer")
	}
}

// TestWaiterGetsFreedWorker: a caller waiting inside the bound gets the
// worker that frees up, and its timer never matters.
func TestWaiterGetsFreedWorker(t *testing.T) {
	ts := newTimers()
	p := New(Options{CPUs: 1, Wait: time.Second, After: ts.after})
	h := hold(t, p)
	errc := make(chan error, 1)
	ran := make(chan struct{})
	go func() { errc <- p.Do(context.Background(), func() { close(ran) }) }()
	<-ts.started
	h.free(t)
	if err := <-errc; err != nil {
		t.Fatalf("waiting job: %v", err)
	}
	<-ran
}

// TestFractionRests: with a quarter of a CPU and a caller waiting, the one
// worker rests three times as long as its job took before it takes the
// next; Do's caller does not wait for the rest.
func TestFractionRests(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newTimers()
	p := New(Options{CPUs: 0.25, Wait: time.Second, Now: clock.Now, After: ts.after})
	if p.Workers() != 1 {
		t.Fatalf("%d workers for a quarter CPU, want 1", p.Workers())
	}
	h := hold(t, p)
	second := make(chan error, 1)
	go func() { second <- p.Do(context.Background(), func() {}) }()
	if wait := <-ts.started; wait.d != time.Second {
		t.Fatalf("the second job's wait is %v, want 1s", wait.d)
	}
	clock.Advance(100 * time.Millisecond) // the held job took 100ms
	h.free(t)                             // and its Do returned: no waiting for the rest
	rest := <-ts.started
	if rest.d != 300*time.Millisecond {
		t.Errorf("rest %v after a 100ms job, want 300ms", rest.d)
	}
	select {
	case err := <-second:
		t.Fatalf("the waiting job got the worker before its rest ended (%v)", err)
	default:
	}
	rest.fire <- time.Time{}
	if err := <-second; err != nil {
		t.Fatalf("after the rest: %v", err)
	}
}

// TestLoneCallerNeverRests: with nobody waiting, a job's end frees the
// worker at once, whatever the budget: one person signing in again and
// again is not slowed by it.
func TestLoneCallerNeverRests(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newTimers()
	p := New(Options{CPUs: 0.25, Wait: time.Second, Now: clock.Now, After: ts.after})
	for range 3 {
		if err := p.Do(context.Background(), func() { clock.Advance(100 * time.Millisecond) }); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ts.started); n != 0 {
		t.Errorf("%d timers started for a lone caller, want none", n)
	}
}

func TestContextEndsTheWait(t *testing.T) {
	p := New(Options{CPUs: 1}) // no bound: only the context ends the wait
	h := hold(t, p)
	defer h.free(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Do(ctx, func() { t.Error("a job ran after its context ended") }) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestPanicFreesTheWorker(t *testing.T) {
	p := New(Options{CPUs: 1})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a job's panic did not reach Do's caller")
			}
		}()
		p.Do(context.Background(), func() { panic("boom") })
	}()
	if err := p.Do(context.Background(), func() {}); err != nil {
		t.Fatal(err)
	}
}

func TestBudget(t *testing.T) {
	for wait, want := range map[time.Duration]time.Duration{
		0: time.Second, 250 * time.Millisecond: time.Second, time.Second: time.Second,
		1500 * time.Millisecond: 2 * time.Second, 2 * time.Second: 2 * time.Second,
	} {
		if got := New(Options{Wait: wait}).RetryAfter(); got != want {
			t.Errorf("wait %v: RetryAfter %v, want %v", wait, got, want)
		}
	}
	for cpus, want := range map[float64]int{0: 1, 0.01: 1, 0.5: 1, 1: 1, 1.5: 2, 4: 4} {
		if got := New(Options{CPUs: cpus}).Workers(); got != want {
			t.Errorf("CPUs %v gives %d workers, want %d", cpus, got, want)
		}
	}
}

func TestReserveProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	release := ReserveProcs(3)
	if got := runtime.GOMAXPROCS(0); got != before+3 {
		t.Errorf("GOMAXPROCS %d after reserving 3, want %d", got, before+3)
	}
	release()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after release, want %d back", got, before)
	}
}
