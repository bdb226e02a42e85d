package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const slowCase = "slow clients, shutdown"

func runSlow(ctx context.Context, h *harness) error {
	if err := h.slowClients(ctx); err != nil {
		h.rep.fail(slowCase, "sqlite", err)
	}
	if err := h.shutdownInFlight(ctx); err != nil {
		h.rep.fail(slowCase, "sqlite", err)
	}
	return nil
}

// latencies fetches url n times, one after another, and returns the
// latencies (sorted) and how many requests failed.
func latencies(ctx context.Context, c *http.Client, url string, n int) ([]time.Duration, int) {
	var out []time.Duration
	failed := 0
	for range n {
		r, _, _ := get(ctx, c, url)
		if r.code != http.StatusOK {
			failed++
			continue
		}
		out = append(out, r.took)
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(out)
	return out, failed
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// slowClients opens 500 connections that send their headers a byte a
// second and starts uploads that trickle at 1 KB/s, and measures /simple/
// for everyone else meanwhile.
func (h *harness) slowClients(ctx context.Context) error {
	headerTimeout, window := 10*time.Second, time.Minute // the defaults
	var extra []string
	if !h.cfg.long {
		headerTimeout, window = 5*time.Second, 5*time.Second
		extra = []string{"--read-timeout", "5s", "--upload-rate-window", "5s"}
	}
	s, tokens, err := h.startServer(ctx, "slow", "sqlite", extra...)
	if err != nil {
		return err
	}
	defer s.stop()
	c := newClient(4)
	if r := uploadWheel(ctx, c, s.base, tokens["alice"], buildWheel("fast", "1.0", 16<<10, h.rng)); r.code != http.StatusOK {
		return fmt.Errorf("seed: %s", r)
	}
	page := s.base + "/simple/fast/"
	baseline, _ := latencies(ctx, c, page, 300)
	g0, _ := s.goroutines()

	// 500 connections sending a header line a byte a second.
	const slowConns = 500
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	var mu sync.Mutex
	closedAt := []time.Duration{}
	opened := 0
	start := time.Now()
	var wg sync.WaitGroup
	for range slowConns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		opened++
		wg.Go(func() {
			defer conn.Close()
			fmt.Fprintf(conn, "GET /simple/ HTTP/1.1\r\nHost: localhost\r\n")
			b := []byte("X-Slow: trickle\r\n")
			for i := 0; ; i++ {
				conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if _, err := conn.Write(b[i%len(b) : i%len(b)+1]); err != nil {
					break
				}
				// A closed connection shows on read before a write fails.
				conn.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					break
				}
				if time.Since(start) > headerTimeout+20*time.Second {
					return // never closed: counted as such
				}
			}
			mu.Lock()
			closedAt = append(closedAt, time.Since(start))
			mu.Unlock()
		})
	}
	// Uploads trickling at 1 KB/s.
	const tricklers = 5
	trickled := make([]reply, tricklers)
	var twg sync.WaitGroup
	for i := range tricklers {
		w := buildWheel("fast", fmt.Sprintf("2.%d", i), 200<<10, randFor(i))
		body, ct := w.form()
		twg.Go(func() {
			trickled[i] = upload(ctx, newClient(1), s.base, tokens["alice"], &pacedBody{r: bytes.NewReader(body), rate: 1024}, int64(len(body)), ct)
		})
	}
	time.Sleep(500 * time.Millisecond)
	during, failed := latencies(ctx, c, page, 300)
	gMax, _ := s.goroutines()
	wg.Wait()
	twg.Wait()
	time.Sleep(500 * time.Millisecond)
	gAfter, _ := s.goroutines()

	rep := h.rep
	p99b, p99d := quantile(baseline, 0.99), quantile(during, 0.99)
	limit := max(3*ms(p99b)+10, 100)
	rep.info(slowCase, "sqlite", "/simple/ p50 / p99 before", fmt.Sprintf("%.1f / %.1f ms", ms(quantile(baseline, 0.5)), ms(p99b)), "300 requests")
	rep.atMost(slowCase, "sqlite", fmt.Sprintf("/simple/ p99 with %d slow-header connections and %d 1 KB/s uploads", opened, tricklers), ms(p99d), limit, " ms",
		fmt.Sprintf("p50 %.1f ms; limit max(3×p99 before + 10 ms, 100 ms)", ms(quantile(during, 0.5))))
	rep.count(slowCase, "sqlite", "/simple/ requests failing meanwhile", failed, 0, "")
	slices.Sort(closedAt)
	cut := 0
	for _, d := range closedAt {
		if d <= headerTimeout+3*time.Second {
			cut++
		}
	}
	rep.count(slowCase, "sqlite", fmt.Sprintf("slow-header connections closed by the server within the header timeout (%s) + 3 s", headerTimeout), cut, opened,
		fmt.Sprintf("%d of %d opened", opened, slowConns))
	tooSlow := 0
	var other []string
	for _, r := range trickled {
		if r.code == http.StatusRequestTimeout && strings.Contains(r.status, "Upload too slow") {
			tooSlow++
		} else {
			other = append(other, r.String())
		}
	}
	rep.count(slowCase, "sqlite", fmt.Sprintf("1 KB/s uploads cut off with 408 'Upload too slow' (rate window %s)", window), tooSlow, tricklers, firstOf(other))
	rep.atMost(slowCase, "sqlite", "goroutines once the slow clients are gone", float64(gAfter), float64(g0+10), "",
		fmt.Sprintf("%d before, %d during", g0, gMax))
	st, err := s.inspect(ctx, nil)
	if err != nil {
		return err
	}
	rep.count(slowCase, "sqlite", "files or temp files left by the cut-off uploads", len(st.orphans)+len(st.temps)+len(st.rows)-1, 0, "")
	return nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// shutdownInFlight sends SIGTERM while uploads are arriving: those that
// can finish within --shutdown-grace do; the others are answered 503.
func (h *harness) shutdownInFlight(ctx context.Context) error {
	grace := pick(h.cfg.long, 5*time.Second, 2*time.Second)
	s, tokens, err := h.startServer(ctx, "sigterm", "sqlite", "--shutdown-grace", grace.String())
	if err != nil {
		return err
	}
	defer s.kill()
	type flight struct {
		w    *wheel
		fast bool
		r    reply
	}
	var flights []*flight
	for i := range 6 {
		fast := i%2 == 0
		size := 2 << 20 // at 100 KiB/s: 20 s, far past the grace
		if fast {
			size = 256 << 10 // at 512 KiB/s: half a second
		}
		flights = append(flights, &flight{w: buildWheel("sigterm", fmt.Sprintf("1.%d", i), size, randFor(100+i)), fast: fast})
	}
	started := make(chan struct{}, len(flights))
	var wg sync.WaitGroup
	for _, f := range flights {
		rate := int64(100 << 10)
		if f.fast {
			rate = 512 << 10
		}
		body, ct := f.w.form()
		wg.Go(func() {
			pb := &pacedBody{r: bytes.NewReader(body), rate: rate}
			started <- struct{}{}
			f.r = upload(ctx, newClient(1), s.base, tokens["alice"], pb, int64(len(body)), ct)
		})
	}
	for range flights {
		<-started
	}
	time.Sleep(200 * time.Millisecond) // all bodies are arriving
	term := time.Now()
	syscall.Kill(s.pid(), syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	_, dialErr := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
	exited := s.exited(grace + 10*time.Second)
	took := time.Since(term)
	wg.Wait()

	rep := h.rep
	fastOK, slowRefused := 0, 0
	var odd []string
	for _, f := range flights {
		switch {
		case f.fast && f.r.code == http.StatusOK:
			fastOK++
		case !f.fast && f.r.code == http.StatusServiceUnavailable && strings.Contains(f.r.status, "shutting down"):
			slowRefused++
		default:
			odd = append(odd, fmt.Sprintf("fast=%v: %s", f.fast, f.r))
		}
	}
	rep.count(slowCase, "sqlite", fmt.Sprintf("SIGTERM: uploads able to finish within --shutdown-grace %s that got 200", grace), fastOK, 3, firstOf(odd))
	rep.count(slowCase, "sqlite", "SIGTERM: uploads still arriving at the end of the grace answered 503 'shutting down'", slowRefused, 3, firstOf(odd))
	rep.count(slowCase, "sqlite", "SIGTERM: new connections accepted after SIGTERM", boolInt(dialErr == nil), 0, "")
	rep.atMost(slowCase, "sqlite", "SIGTERM: exit after the signal", took.Seconds(), (grace + 4*time.Second).Seconds(), " s",
		fmt.Sprintf("grace %s + at most 3 s to answer the refused uploads; exited: %v", grace, exited))
	if !exited {
		s.kill()
	}
	s.cmd = nil
	if err := s.start(ctx); err != nil {
		return err
	}
	c := newClient(2)
	v, err := fetchView(ctx, c, s.base, []string{"sigterm"})
	if err != nil {
		return err
	}
	wrong := []string{}
	for _, f := range flights {
		vis, why := visibilityOf(ctx, c, s.base, v, f.w)
		if (f.r.code == http.StatusOK && vis != complete) || (f.r.code != http.StatusOK && vis != absent) {
			wrong = append(wrong, fmt.Sprintf("%s answered %q is %s %s", f.w.filename, f.r.status, vis, why))
		}
	}
	rep.count(slowCase, "sqlite", "SIGTERM: after restart, uploads not exactly as answered (200 complete, others absent)", len(wrong), 0, firstOf(wrong))
	st, err := s.inspect(ctx, nil)
	if err != nil {
		return err
	}
	rep.count(slowCase, "sqlite", "SIGTERM: orphan blobs and temp files", len(st.orphans)+len(st.temps), 0, "")
	s.stop()
	return nil
}
