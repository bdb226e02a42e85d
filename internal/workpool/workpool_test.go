package workpool

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
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

// timer is an injected wait: the test sees when Do starts waiting and
// decides when the wait runs out.
type timer struct {
	waiting chan time.Duration
	fire    chan time.Time
}

func newTimer() *timer {
	return &timer{waiting: make(chan time.Duration, 10), fire: make(chan time.Time)}
}

func (tm *timer) after(d time.Duration) <-chan time.Time {
	tm.waiting <- d
	return tm.fire
}

func TestBusyAfterTheWait(t *testing.T) {
	tm := newTimer()
	p := New(Options{Workers: 2, Wait: 2 * time.Second, After: tm.after})
	a, b := hold(t, p), hold(t, p)
	ran := false
	errc := make(chan error, 1)
	go func() { errc <- p.Do(context.Background(), func() { ran = true }) }()
	if d := <-tm.waiting; d != 2*time.Second {
		t.Errorf("waited %v, want the configured 2s", d)
	}
	tm.fire <- time.Time{}
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
	// Both free again: no wait at all.
	if err := p.Do(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("after the workers came free: err %v, ran %v", err, ran)
	}
	if len(tm.waiting) != 0 {
		t.Error("a job with a free worker started the wait's timer")
	}
}

// TestWaiterGetsFreedWorker: a caller waiting inside the bound gets the
// worker that frees up, and its timer never matters.
func TestWaiterGetsFreedWorker(t *testing.T) {
	tm := newTimer()
	p := New(Options{Workers: 1, Wait: time.Second, After: tm.after})
	h := hold(t, p)
	errc := make(chan error, 1)
	ran := make(chan struct{})
	go func() { errc <- p.Do(context.Background(), func() { close(ran) }) }()
	<-tm.waiting
	h.free(t)
	if err := <-errc; err != nil {
		t.Fatalf("waiting job: %v", err)
	}
	<-ran
}

func TestContextEndsTheWait(t *testing.T) {
	p := New(Options{Workers: 1}) // no bound: only the context ends the wait
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

func TestPanicReachesCaller(t *testing.T) {
	p := New(Options{Workers: 1})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a job's panic did not reach Do's caller")
			}
		}()
		p.Do(context.Background(), func() { panic("boom") })
	}()
	// The slot was given back.
	if err := p.Do(context.Background(), func() {}); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfter(t *testing.T) {
	for wait, want := range map[time.Duration]time.Duration{
		0: time.Second, 250 * time.Millisecond: time.Second, time.Second: time.Second,
		1500 * time.Millisecond: 2 * time.Second, 2 * time.Second: 2 * time.Second,
	} {
		if got := New(Options{Wait: wait}).RetryAfter(); got != want {
			t.Errorf("wait %v: RetryAfter %v, want %v", wait, got, want)
		}
	}
	if w := New(Options{Workers: 0}).Workers(); w != 1 {
		t.Errorf("Workers 0 gives %d workers, want 1", w)
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
