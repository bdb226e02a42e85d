package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite"
)

const dbCase = "database faults"

func runDBFaults(ctx context.Context, h *harness) error {
	if err := h.sqliteLock(ctx); err != nil {
		h.rep.fail(dbCase, "sqlite", err)
	}
	if h.pg == nil {
		h.rep.skip(dbCase, "postgres", "no PostgreSQL binaries")
		return nil
	}
	if err := h.pgRestart(ctx); err != nil {
		h.rep.fail(dbCase, "postgres", err)
	}
	return nil
}

// event is one request of the load, stamped with when it started.
type event struct {
	kind   string // "page", "file", "upload"
	at     time.Time
	took   time.Duration
	code   int
	status string
	text   string // start of the body: the message of an error
}

// load is a steady mix of cached Simple pages, file downloads (a database
// lookup each) and uploads, recorded request by request, plus the server's
// goroutines sampled over time.
type load struct {
	mu         sync.Mutex
	events     []event
	goroutines []struct {
		at time.Time
		n  int
	}
	stop chan struct{}
	wg   sync.WaitGroup
}

func (h *harness) startLoad(ctx context.Context, s *server, tok string, files []string) *load {
	l := &load{stop: make(chan struct{})}
	c := newClient(16)
	record := func(kind string, at time.Time, r reply, body []byte) {
		text := r.body
		if body != nil {
			text = string(body[:min(len(body), 300)])
		}
		l.mu.Lock()
		l.events = append(l.events, event{kind: kind, at: at, took: r.took, code: r.code, status: r.status, text: text})
		l.mu.Unlock()
	}
	loop := func(fn func()) {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				fn()
			}
		})
	}
	for range 3 {
		loop(func() {
			at := time.Now()
			r, _, _ := get(ctx, c, s.base+"/simple/steady/")
			record("page", at, r, nil)
			time.Sleep(5 * time.Millisecond)
		})
	}
	for w := range 2 {
		loop(func() {
			at := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			r, _, b := get(rctx, c, files[(int(at.UnixNano())+w)%len(files)])
			cancel()
			if r.code == 200 {
				b = nil
			}
			record("file", at, r, b)
			time.Sleep(20 * time.Millisecond)
		})
	}
	var mu sync.Mutex
	k := 0
	loop(func() {
		mu.Lock()
		k++
		v := k
		mu.Unlock()
		at := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		// Uploads go to another project, so that the page the readers
		// read stays cached (an upload drops its project's page).
		r := uploadWheel(rctx, c, s.base, tok, buildWheel("churn", fmt.Sprintf("2.0.%d", v), 8<<10, randFor(v)))
		cancel()
		record("upload", at, r, nil)
		time.Sleep(100 * time.Millisecond)
	})
	l.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				if n, err := s.goroutines(); err == nil {
					l.mu.Lock()
					l.goroutines = append(l.goroutines, struct {
						at time.Time
						n  int
					}{time.Now(), n})
					l.mu.Unlock()
				}
			}
		}
	})
	return l
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// window selects the events that started in [from, to) of a kind.
func (l *load) window(kind string, from, to time.Time) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event
	for _, e := range l.events {
		if e.kind == kind && !e.at.Before(from) && e.at.Before(to) {
			out = append(out, e)
		}
	}
	return out
}

// firstOK is when the first request of kind that started at or after from
// succeeded.
func (l *load) firstOK(kind string, from time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.kind == kind && !e.at.Before(from) && e.code == http.StatusOK {
			return e.at.Add(e.took), true
		}
	}
	return time.Time{}, false
}

func (l *load) maxGoroutines(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, g := range l.goroutines {
		if !g.at.Before(from) && g.at.Before(to) {
			n = max(n, g.n)
		}
	}
	return n
}

// waitOK waits until a request of kind that started at or after from has
// succeeded, up to limit.
func (l *load) waitOK(ctx context.Context, kind string, from time.Time, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, ok := l.firstOK(kind, from); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// summary counts answers: "200 ×12, 503 ×3".
func summary(evs []event) string {
	counts := map[string]int{}
	for _, e := range evs {
		k := fmt.Sprint(e.code)
		if e.code == 0 {
			k = "no answer"
		}
		counts[k]++
	}
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func maxTook(evs []event) time.Duration {
	var m time.Duration
	for _, e := range evs {
		m = max(m, e.took)
	}
	return m
}

func countWhere(evs []event, f func(event) bool) int {
	n := 0
	for _, e := range evs {
		if f(e) {
			n++
		}
	}
	return n
}

// seedSteady uploads a few files of the project "steady" and returns their
// URLs, warming the Simple page.
func seedSteady(ctx context.Context, h *harness, s *server, tok string) ([]string, error) {
	c := newClient(2)
	for i := range 4 {
		if r := uploadWheel(ctx, c, s.base, tok, buildWheel("steady", fmt.Sprintf("1.%d", i), 32<<10, h.rng)); r.code != http.StatusOK {
			return nil, fmt.Errorf("seeding steady: %s", r)
		}
	}
	page, err := simplePage(ctx, c, s.base, "steady")
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, f := range page {
		urls = append(urls, strings.SplitN(f.URL, "#", 2)[0])
	}
	slices.Sort(urls)
	return urls, nil
}

// checkOutage reports what the load saw from down to up (the fault) and
// how quickly it recovered after up.
func (h *harness) checkOutage(ctx context.Context, s *server, l *load, dialect, fault string, writeLimit time.Duration, before, down, up time.Time) error {
	rep := h.rep
	l.waitOK(ctx, "upload", up, 30*time.Second)
	l.waitOK(ctx, "file", up, 30*time.Second)
	time.Sleep(time.Second)
	l.end()

	pages := l.window("page", down, up)
	rep.count(dbCase, dialect, fault+": cached /simple/ pages not 200", countWhere(pages, func(e event) bool { return e.code != 200 }), 0, summary(pages))
	for _, kind := range []string{"upload", "file"} {
		evs := l.window(kind, down, up.Add(-100*time.Millisecond))
		failed := countWhere(evs, func(e event) bool { return e.code != 200 })
		unclear := countWhere(evs, func(e event) bool {
			return e.code != 200 && (e.code != http.StatusServiceUnavailable || !strings.Contains(strings.ToLower(e.status+e.text), "database"))
		})
		rep.count(dbCase, dialect, fault+": "+kind+"s failing other than 503 'database …'", unclear, 0, fmt.Sprintf("%d failed: %s", failed, summary(evs)))
	}
	// Reads answer at once, from the database or with the 503; a write may
	// wait for the database up to writeLimit.
	uploads := l.window("upload", down, up.Add(-100*time.Millisecond))
	rep.atMost(dbCase, dialect, fault+": slowest upload answer", maxTook(uploads).Seconds(), writeLimit.Seconds(), " s", "")
	files := l.window("file", down, up.Add(-100*time.Millisecond))
	rep.atMost(dbCase, dialect, fault+": slowest file download answer", maxTook(files).Seconds(), 1, " s",
		fmt.Sprintf("%d downloads during the fault", len(files)))
	base := l.maxGoroutines(before.Add(-5*time.Second), down)
	rep.atMost(dbCase, dialect, fault+": goroutines, most during the fault", float64(l.maxGoroutines(down, up)), float64(base+50), "",
		fmt.Sprintf("%d under the same load before", base))
	for _, kind := range []string{"upload", "file"} {
		at, ok := l.firstOK(kind, up)
		rec := 60.0
		if ok {
			rec = at.Sub(up).Seconds()
		}
		rep.atMost(dbCase, dialect, fault+": recovery, first "+kind+" 200 after the database is back", rec, 5, " s", "")
	}
	st, err := s.inspect(ctx, nil)
	if err != nil {
		return err
	}
	rep.count(dbCase, dialect, fault+": rows without their blob", len(st.missing), 0, firstOf(st.missing))
	rep.count(dbCase, dialect, fault+": blobs without their row", len(st.orphans), 0, firstOf(st.orphans))
	return nil
}

func (h *harness) pgRestart(ctx context.Context) error {
	s, tokens, err := h.startServer(ctx, "pgrestart", "postgres")
	if err != nil {
		return err
	}
	defer s.stop()
	files, err := seedSteady(ctx, h, s, tokens["alice"])
	if err != nil {
		return err
	}
	before := time.Now()
	l := h.startLoad(ctx, s, tokens["alice"], files)
	time.Sleep(2 * time.Second)
	down := time.Now()
	if err := h.pg.stop(ctx, "fast"); err != nil {
		l.end()
		return err
	}
	time.Sleep(h.cfg.pgDown)
	if err := h.pg.start(ctx); err != nil {
		l.end()
		return err
	}
	up := time.Now()
	h.rep.info(dbCase, "postgres", "PostgreSQL stopped (-m fast) under load for", h.cfg.pgDown.String(), "")
	return h.checkOutage(ctx, s, l, "postgres", "PostgreSQL down", time.Second, before, down, up)
}

// sqliteLock holds SQLite's write lock from another connection (another
// process would do the same) for longer than busy_timeout.
func (h *harness) sqliteLock(ctx context.Context) error {
	s, tokens, err := h.startServer(ctx, "sqlitelock", "sqlite")
	if err != nil {
		return err
	}
	defer s.stop()
	files, err := seedSteady(ctx, h, s, tokens["alice"])
	if err != nil {
		return err
	}
	locker, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(s.dbURL, "sqlite:")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer locker.Close()
	conn, err := locker.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	before := time.Now()
	l := h.startLoad(ctx, s, tokens["alice"], files)
	time.Sleep(2 * time.Second)
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		l.end()
		return fmt.Errorf("take the write lock: %w", err)
	}
	down := time.Now()
	time.Sleep(h.cfg.lockHold)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		l.end()
		return err
	}
	up := time.Now()
	h.rep.info(dbCase, "sqlite", "write lock held by another connection for", h.cfg.lockHold.String(), "busy_timeout is 10s")
	// A write waits busy_timeout (10 s) for the lock, then fails.
	return h.checkOutage(ctx, s, l, "sqlite", "write lock held", 11*time.Second, before, down, up)
}
