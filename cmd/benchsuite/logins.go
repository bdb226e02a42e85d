package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// loginLoad is a closed loop of concurrent real logins: each worker posts
// the login form with the right password, as a browser would, waits for
// the answer and posts again. Every login is one argon2id hash on the
// server and, when it succeeds, a new session.
type loginLoad struct {
	mu        sync.Mutex
	byStatus  map[int]int
	latencies []float64 // ms
	lat429    []float64 // ms, of the 429 answers alone
	retry     int       // 429 answers with Retry-After
	errs      int
	first     chan struct{} // closed when the first answer arrived
	once      sync.Once
}

func (h *harness) startLogins(ctx context.Context, workers int) (*loginLoad, func()) {
	l := &loginLoad{byStatus: map[int]int{}, first: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	form := url.Values{"username": {loginUser}, "password": {loginPassword}, "next": {"/manage/account/"}}.Encode()
	// One connection per worker, no cookies: every login starts afresh.
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	client := &http.Client{Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.ours.base+"/account/login/", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						l.mu.Lock()
						l.errs++
						l.mu.Unlock()
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ms := float64(time.Since(t0).Microseconds()) / 1000
				l.mu.Lock()
				l.byStatus[resp.StatusCode]++
				l.latencies = append(l.latencies, ms)
				if resp.StatusCode == http.StatusTooManyRequests {
					l.lat429 = append(l.lat429, ms)
					if resp.Header.Get("Retry-After") != "" {
						l.retry++
					}
				}
				l.mu.Unlock()
				l.once.Do(func() { close(l.first) })
			}
		})
	}
	return l, func() {
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
	}
}

// loginBench is P7 and issue 15's login row: /simple/<small>/ throughput and
// p99 with 0, 8, 16 and 32 concurrent logins running, each level against
// the idle run of the same round.
func (h *harness) loginBench(ctx context.Context) error {
	var small endpoint
	small.url, small.headers = h.ours.base+"/simple/"+smallProject+"/", []string{acceptJSON}
	// One login first: it checks the user can sign in at all (a 303 to
	// the account page), and warms the hasher's memory.
	l, stop := h.startLogins(ctx, 1)
	select {
	case <-l.first:
	case <-ctx.Done():
	case <-time.After(time.Minute):
	}
	stop()
	if l.byStatus[http.StatusSeeOther] == 0 {
		return fmt.Errorf("a login with %s's password did not succeed (answers by status: %v, %d errors)", loginUser, l.byStatus, l.errs)
	}

	levels := append([]int{0}, h.cfg.logins...)
	type sample struct {
		w      wrkResult
		logins *loginLoad
		cpu    measuredRun
	}
	runs := make([][]sample, len(levels))
	pid := h.ours.cmd.Process.Pid
	var peak float64
	for round := 1; round <= h.cfg.rounds; round++ {
		for i, n := range levels {
			var load *loginLoad
			stop := func() {}
			if n > 0 {
				load, stop = h.startLogins(ctx, n)
				// The measurement starts once logins are being answered.
				select {
				case <-load.first:
				case <-ctx.Done():
					stop()
					return ctx.Err()
				case <-time.After(time.Minute):
					stop()
					return fmt.Errorf("%d concurrent logins: no answer within a minute", n)
				}
			}
			poll := pollRSS(pid)
			m, err := h.runWrkCPU(ctx, h.ours, small)
			stop()
			peak = max(peak, poll.Stop())
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], sample{w: m.w, logins: load, cpu: m})
			msg := fmt.Sprintf("  round %d, %2d logins: /simple/ %.0f req/s, p99 %.1f ms", round, n, m.w.RPS, m.w.P99)
			if load != nil {
				msg += fmt.Sprintf("; logins answered %v (status: count), %d errors, p50 %.0f ms", load.byStatus, load.errs, percentile(load.latencies, 50))
			}
			h.logf("%s", msg)
		}
	}
	idle := make([]result, 0, h.cfg.rounds)
	for _, s := range runs[0] {
		idle = append(idle, result{Bench: "P7", Variant: "idle", Server: "gatehouse", Conc: h.cfg.conns, RPS: s.w.RPS, P50: s.w.P50, P99: s.w.P99,
			CPUms: s.cpu.cpuPer1k, OtherCPU0: s.cpu.otherCPU0, OtherCPU1: s.cpu.otherCPU1, Errors: s.w.Non2xx3xx + s.w.SocketErrors})
	}
	idleMed := medianResult(idle)
	idleMed.Server = "no logins"
	for i := 1; i < len(levels); i++ {
		n := levels[i]
		var rs []result
		var tput, p99 []float64
		status := map[int]int{}
		var lat, lat429 []float64
		retry := 0
		secs := 0.0
		for round, s := range runs[i] {
			r := result{Bench: "P7", Variant: fmt.Sprintf("%d logins", n), Server: "gatehouse", Conc: h.cfg.conns, RPS: s.w.RPS, P50: s.w.P50, P99: s.w.P99,
				CPUms: s.cpu.cpuPer1k, OtherCPU0: s.cpu.otherCPU0, OtherCPU1: s.cpu.otherCPU1, Errors: s.w.Non2xx3xx + s.w.SocketErrors, Round: round + 1}
			rs = append(rs, r)
			h.raw = append(h.raw, r)
			tput = append(tput, ratio(s.w.RPS, runs[0][round].w.RPS))
			p99 = append(p99, ratio(s.w.P99, runs[0][round].w.P99))
			for k, v := range s.logins.byStatus {
				status[k] += v
			}
			lat = append(lat, s.logins.latencies...)
			lat429 = append(lat429, s.logins.lat429...)
			retry += s.logins.retry
			secs += h.cfg.duration.Seconds()
		}
		ours := medianResult(rs)
		ours.Extra = map[string]float64{"logins_ok": float64(status[http.StatusSeeOther]), "logins_429": float64(status[http.StatusTooManyRequests]),
			"logins_per_s": ratio(float64(status[http.StatusSeeOther]), secs), "login_p50_ms": percentile(lat, 50), "login_p99_ms": percentile(lat, 99)}
		other := 0
		for k, v := range status {
			if k != http.StatusSeeOther && k != http.StatusTooManyRequests {
				other += v
			}
		}
		note := fmt.Sprintf("%d logins: %d signed in (%.1f/s, p50 %.0f ms, p99 %.0f ms), %d answered 429, %d other",
			n, status[http.StatusSeeOther], float64(status[http.StatusSeeOther])/secs, percentile(lat, 50), percentile(lat, 99),
			status[http.StatusTooManyRequests], other)
		variant := fmt.Sprintf("%d logins", n)
		ref := idleMed
		h.add(line{issue: 3, ours: ours, ref: &ref, refName: "no logins", value: median(tput), lo: slices.Min(tput), hi: slices.Max(tput), unit: "×",
			key: "P7/" + variant + "/throughput", label: variant + ", throughput vs idle", oursCell: thousands(ours.RPS) + " req/s", refCell: thousands(ref.RPS) + " req/s",
			goal: ratioGoal(0.7, "idle req/s"), note: note, chart: true})
		h.add(line{issue: 3, ours: ours, ref: &ref, refName: "no logins", value: median(p99), lo: slices.Min(p99), hi: slices.Max(p99), unit: "×",
			key: "P7/" + variant + "/p99", label: variant + ", p99 vs idle", chart: true, oursCell: fmt.Sprintf("p99 %s ms", ms(ours.P99)), refCell: fmt.Sprintf("p99 %s ms", ms(ref.P99)),
			goal: atMost(2, "p99 ≤ 2× idle"), note: "login answers by status are in the throughput row's note"})
		shed := result{Bench: "P7", Variant: variant, Server: "gatehouse", Conc: n, P50: percentile(lat429, 50), P99: percentile(lat429, 99),
			Requests: status[http.StatusTooManyRequests], OtherCPU0: -1, OtherCPU1: -1,
			Extra: map[string]float64{"with_retry_after": float64(retry), "logins_ok": float64(status[http.StatusSeeOther])}}
		cell := fmt.Sprintf("%d of %d answers 429", status[http.StatusTooManyRequests], len(lat))
		if len(lat429) > 0 {
			cell += fmt.Sprintf(" (p50 %s ms, p99 %s ms; %d with Retry-After)", ms(percentile(lat429, 50)), ms(percentile(lat429, 99)), retry)
		}
		h.add(line{issue: 3, ours: shed, value: float64(status[http.StatusTooManyRequests]), unit: "answers 429",
			key: "P7/" + variant + "/429", label: variant + ", logins shed with 429", oursCell: cell,
			goal: record("past capacity: a fast 429 with Retry-After")})
	}
	h.memoryValue("during-logins", fmt.Sprintf("peak VmRSS during P7 (up to %d concurrent logins)", slices.Max(levels)), peak)
	return nil
}
