// Package workpool runs CPU-heavy work (password hashing) on a small,
// bounded number of workers, so that however many requests want it at once,
// at most Workers cores are spent on it and the rest of the server (the
// Simple API, file downloads) keeps its CPU.
//
// A caller waits at most Options.Wait for a free worker; past it, Do
// returns ErrBusy at once instead of queueing without end, so a burst of
// logins is answered quickly ("try again in a few seconds") rather than
// piling up requests, memory and latency.
//
// On Linux each job also runs on an OS thread of its own at a lowered
// scheduling priority (nice 10), which the kernel gives up to the server's
// other threads whenever they are runnable. The runtime only hands that
// thread a processor (a P) if one is free, so the server raises GOMAXPROCS
// by Workers (see ReserveProcs): the hashing threads then have processors
// of their own and never hold back the ones the rest of the server runs on.
package workpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is returned by Do when every worker stayed busy for the whole wait.
var ErrBusy = errors.New("every worker stayed busy for the whole wait")

// Options configures a Pool.
type Options struct {
	// Workers is how many jobs run at once; below 1 means 1.
	Workers int
	// Wait is the longest Do waits for a free worker before ErrBusy. Zero
	// or less waits as long as the caller's context allows.
	Wait time.Duration
	// After starts the wait's timer; nil is time.After. Tests pass a
	// channel they fire themselves.
	After func(time.Duration) <-chan time.Time
}

// Pool bounds how many jobs run at once.
type Pool struct {
	slots chan struct{}
	wait  time.Duration
	after func(time.Duration) <-chan time.Time
	ran   atomic.Uint64
	busy  atomic.Uint64
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
	p := &Pool{slots: make(chan struct{}, max(1, o.Workers)), wait: o.Wait, after: o.After}
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

// Do runs f on a worker and returns when it is done. It returns ErrBusy
// when no worker came free within the wait, and ctx's error when ctx ended
// first; f has not run then. Once f has started, Do waits for it whatever
// ctx does: the work is under way, and its slot is only free once it ends.
// A panic in f is raised again in Do's caller.
func (p *Pool) Do(ctx context.Context, f func()) error {
	if err := p.acquire(ctx); err != nil {
		if errors.Is(err, ErrBusy) {
			p.busy.Add(1)
		}
		return err
	}
	p.ran.Add(1)
	done := make(chan any, 1)
	go func() {
		// The thread is given a lower priority that cannot be raised back
		// without privileges, so it must never run anything else: a
		// goroutine that exits while locked takes its thread with it.
		runtime.LockOSThread()
		lowerPriority()
		defer func() {
			v := recover()
			// Free the slot before Do returns, so that whoever Do's caller
			// lets in next finds it free.
			<-p.slots
			done <- v
		}()
		f()
	}()
	if v := <-done; v != nil {
		panic(fmt.Sprintf("workpool: job panicked: %v", v))
	}
	return nil
}

func (p *Pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
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

// ReserveProcs raises GOMAXPROCS by workers, so that the threads running a
// pool's jobs find processors of their own instead of taking them from the
// goroutines serving requests (see the package comment). The server calls
// it once at start for its pool; release takes the processors back (the
// end-to-end tests run several servers in one process, one after another
// and at once, and subtracting undoes exactly what was added).
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
