// Package workpool runs CPU-heavy work (password hashing) within a CPU
// budget, so that however many requests want it at once, the rest of the
// server (the Simple API, file downloads) keeps its CPU.
//
// The budget is a number of CPUs, which may be a fraction: 2 is two jobs
// at once, 0.25 is one job at a time that then rests three times as long
// as it ran, so that on average it takes a quarter of one CPU. The rest is
// measured on the wall clock, which is at least the CPU time the job took,
// so the budget holds even when the machine is busy (and hashing slows
// down further then, which is the point). A worker rests only when
// someone is waiting for it as its job ends: the budget binds a crowd,
// and a lone caller (one person signing in, however often) is never kept
// waiting by it.
//
// A caller waits at most Options.Wait for a free worker; past it, Do
// returns ErrBusy at once instead of queueing without end, so a burst of
// logins is answered quickly ("try again in a few seconds") rather than
// piling up requests, memory and latency.
//
// The budget bounds how many jobs run; where they run is the Go
// scheduler's business, and with GOMAXPROCS=1 it gives them the only
// processor almost whole (golang.org/x/crypto/argon2 runs each segment of
// a hash in a new goroutine, which the scheduler runs next, ahead of the
// requests waiting). ReserveProcs gives the jobs processors of their own,
// so the operating system shares the CPU between them and the requests.
package workpool

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is returned by Do when every worker stayed busy for the whole wait.
var ErrBusy = errors.New("every worker stayed busy for the whole wait")

// MinCPUs is the smallest budget: a worker rests at most nine times as
// long as it worked.
const MinCPUs = 0.1

// Options configures a Pool.
type Options struct {
	// CPUs is the budget: ceil(CPUs) jobs run at once, each worker busy at
	// most CPUs/ceil(CPUs) of the time. Below MinCPUs means MinCPUs; 0
	// means 1.
	CPUs float64
	// Wait is the longest Do waits for a free worker before ErrBusy. Zero
	// or less waits as long as the caller's context allows.
	Wait time.Duration
	// Now and After are the clock (to time a job) and the timers (the wait,
	// a worker's rest); nil are time.Now and time.After. Tests pass their
	// own, and fire the timers themselves.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Pool runs jobs within its budget.
type Pool struct {
	slots chan struct{}
	duty  float64 // share of the time each worker may be busy, in (0, 1]
	wait  time.Duration
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	ran   atomic.Uint64
	busy  atomic.Uint64
	queue atomic.Int64 // callers waiting for a worker
}

// Stats counts what a pool did since it was made.
type Stats struct {
	Ran  uint64 // jobs started
	Busy uint64 // calls refused with ErrBusy
}

// Stats returns the pool's counts.
func (p *Pool) Stats() Stats { return Stats{Ran: p.ran.Load(), Busy: p.busy.Load()} }

// New returns a pool.
func New(o Options) *Pool {
	cpus := o.CPUs
	switch {
	case cpus == 0:
		cpus = 1
	case cpus < MinCPUs:
		cpus = MinCPUs
	}
	workers := math.Ceil(cpus)
	p := &Pool{slots: make(chan struct{}, int(workers)), duty: cpus / workers, wait: o.Wait, now: o.Now, after: o.After}
	if p.now == nil {
		p.now = time.Now
	}
	if p.after == nil {
		p.after = time.After
	}
	return p
}

// Workers is how many jobs may run at once.
func (p *Pool) Workers() int { return cap(p.slots) }

// RetryAfter is when a caller turned away with ErrBusy should try again:
// the wait rounded up to whole seconds (Retry-After counts seconds), at
// least one. It is a constant, not an estimate from the queue, so that the
// answer says nothing about who else is being served.
func (p *Pool) RetryAfter() time.Duration {
	return max(time.Second, (p.wait + time.Second - 1).Truncate(time.Second))
}

// Do runs f on a worker, in the calling goroutine, and returns when it is
// done. It returns ErrBusy when no worker came free within the wait, and
// ctx's error when ctx ended first; f has not run then. A worker whose
// budget is below one CPU rests after f when others are waiting, and takes
// no job meanwhile; Do's caller does not wait for that.
func (p *Pool) Do(ctx context.Context, f func()) error {
	if err := p.acquire(ctx); err != nil {
		if errors.Is(err, ErrBusy) {
			p.busy.Add(1)
		}
		return err
	}
	p.ran.Add(1)
	defer p.release(p.now())
	f()
	return nil
}

func (p *Pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	p.queue.Add(1)
	defer p.queue.Add(-1)
	var expired <-chan time.Time
	if p.wait > 0 {
		expired = p.after(p.wait)
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-expired:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release frees the slot of a job that started at start: at once, or, when
// others are waiting for it, once the worker has rested long enough to
// keep to its share of the time.
func (p *Pool) release(start time.Time) {
	rest := time.Duration(float64(p.now().Sub(start)) * (1/p.duty - 1))
	if rest <= 0 || p.queue.Load() == 0 {
		<-p.slots
		return
	}
	go func() {
		<-p.after(rest)
		<-p.slots
	}()
}

// ReserveProcs raises GOMAXPROCS by workers, so that a pool's jobs find
// processors of their own instead of taking the ones serving requests (see
// the package comment). The server calls it once at start for its pool;
// release takes the processors back (the end-to-end tests run several
// servers in one process, one after another and at once, and subtracting
// undoes exactly what was added).
func ReserveProcs(workers int) (release func()) {
	add := func(n int) {
		procsMu.Lock()
		defer procsMu.Unlock()
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)+n))
	}
	workers = max(0, workers)
	add(workers)
	return func() { add(-workers) }
}

// procsMu makes ReserveProcs's read-modify-write of GOMAXPROCS atomic.
var procsMu sync.Mutex
