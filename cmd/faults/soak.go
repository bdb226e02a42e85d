package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const soakCase = "soak"

// soakSample is one interval of the soak: the load's answers and the
// server's resources at its end.
type soakSample struct {
	at       time.Duration // since the start of the load
	requests int
	errors   int
	p50, p99 time.Duration
	sample
}

func runSoak(ctx context.Context, h *harness) error {
	if err := h.soak(ctx); err != nil {
		h.rep.fail(soakCase, "sqlite", err)
	}
	return nil
}

func (h *harness) soak(ctx context.Context) error {
	// The mix signs in several times a second from one address, on a
	// machine the load itself keeps busy: with the default hash budget (a
	// quarter of the CPUs, logins waiting at most 1 s) those logins queue
	// into 429s, which then count against the per-IP limit. A site that
	// expects this many sign-ins gives hashing more CPU and a longer wait.
	s, tokens, err := h.startServer(ctx, "soak", "sqlite", "--hash-cpus", "2", "--hash-wait", "5s")
	if err != nil {
		return err
	}
	defer s.stop()
	c := newClient(16)
	const projects = 20
	for p := range projects {
		for v := range 5 {
			w := buildWheel(fmt.Sprintf("soak-%02d", p), fmt.Sprintf("1.%d", v), 20<<10+h.rng.IntN(40<<10), h.rng)
			if r := uploadWheel(ctx, c, s.base, tokens["alice"], w); r.code != http.StatusOK {
				return fmt.Errorf("seeding: %s", r)
			}
		}
	}
	var filesMu sync.Mutex
	var files []string
	for p := range projects {
		page, err := simplePage(ctx, c, s.base, fmt.Sprintf("soak-%02d", p))
		if err != nil {
			return err
		}
		for _, f := range page {
			u := f.URL
			if i := strings.IndexByte(u, '#'); i >= 0 {
				u = u[:i] // the digest fragment
			}
			files = append(files, u)
		}
	}
	slices.Sort(files)

	dur := h.cfg.soak
	interval := min(max(dur/40, 2*time.Second), 30*time.Second) // 40 samples or so
	const workers = 8
	type result struct {
		took time.Duration
		bad  string // "" when the answer was what it should be
	}
	var mu sync.Mutex
	var window []result
	var badSeen []string
	counts := map[string]int{}
	var uploads int
	var uploadsMu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for wid := range workers {
		rng := rand.New(rand.NewPCG(h.cfg.seed, uint64(wid)))
		etags := map[string]string{}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				var kind string
				var r reply
				var hdr http.Header
				ok := func(codes ...int) string {
					if r.err != nil {
						return r.err.Error()
					}
					if slices.Contains(codes, r.code) {
						return ""
					}
					return r.status
				}
				bad := ""
				switch x := rng.IntN(1000); {
				case x < 600:
					p := fmt.Sprintf("soak-%02d", rng.IntN(projects))
					accept := "Accept: application/vnd.pypi.simple.v1+json"
					if x%2 == 1 {
						accept = "Accept: text/html"
					}
					key := p + accept
					if e := etags[key]; e != "" && rng.IntN(2) == 0 {
						kind = "page 304"
						r, hdr, _ = get(ctx, c, s.base+"/simple/"+p+"/", accept, "If-None-Match: "+e)
						bad = ok(http.StatusNotModified, http.StatusOK)
					} else {
						kind = "page"
						r, hdr, _ = get(ctx, c, s.base+"/simple/"+p+"/", accept)
						bad = ok(http.StatusOK)
					}
					if hdr != nil && hdr.Get("ETag") != "" {
						etags[key] = hdr.Get("ETag")
					}
				case x < 800:
					kind = "metadata"
					filesMu.Lock()
					f := files[rng.IntN(len(files))]
					filesMu.Unlock()
					r, _, _ = get(ctx, c, f+".metadata")
					bad = ok(http.StatusOK)
				case x < 990:
					kind = "file"
					filesMu.Lock()
					f := files[rng.IntN(len(files))]
					filesMu.Unlock()
					r, _, _ = get(ctx, c, f)
					bad = ok(http.StatusOK)
				case x < 995:
					kind = "upload"
					uploadsMu.Lock()
					uploads++
					n := uploads
					uploadsMu.Unlock()
					w := buildWheel(fmt.Sprintf("soak-%02d", rng.IntN(projects)), fmt.Sprintf("9.%d", n), 16<<10, rng)
					r = uploadWheel(ctx, c, s.base, tokens["alice"], w)
					bad = ok(http.StatusOK)
				default:
					kind = "login"
					r = login(ctx, c, s.base, "carol", carolPassword)
					bad = ok(http.StatusSeeOther)
				}
				mu.Lock()
				counts[kind]++
				window = append(window, result{took: r.took, bad: bad})
				if bad != "" && len(badSeen) < 5 {
					badSeen = append(badSeen, kind+": "+bad)
				}
				mu.Unlock()
			}
		})
	}

	var samples []soakSample
	start := time.Now()
	tick := time.NewTicker(interval)
	for time.Since(start) < dur && ctx.Err() == nil {
		<-tick.C
		mu.Lock()
		w := window
		window = nil
		mu.Unlock()
		sm := soakSample{at: time.Since(start), requests: len(w)}
		var lat []time.Duration
		for _, r := range w {
			lat = append(lat, r.took)
			if r.bad != "" {
				sm.errors++
			}
		}
		slices.Sort(lat)
		sm.p50, sm.p99 = quantile(lat, 0.5), quantile(lat, 0.99)
		sm.sample, _ = s.measure()
		samples = append(samples, sm)
		if h.cfg.long {
			fmt.Printf("faults: soak %s: %d requests, %d errors, p99 %.1f ms, RSS %.1f MiB, %d goroutines, %d fds\n",
				sm.at.Round(time.Second), sm.requests, sm.errors, ms(sm.p99), sm.rssMiB, sm.goroutines, sm.fds)
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	if len(samples) < 4 {
		return fmt.Errorf("the soak took only %d samples; give it longer with -soak", len(samples))
	}

	if err := writeSoakCSV(filepath.Join(h.out, "soak.csv"), samples); err != nil {
		return err
	}
	if err := writeSoakSVG(filepath.Join(h.out, "soak.svg"), samples, dur); err != nil {
		return err
	}
	h.reportSoak(samples, counts, badSeen, dur)
	return nil
}

// login signs in through the login form, as a browser would (without the
// browser's cross-origin headers, which a form post from the same site
// would carry and a tool does not): a 303 to the account page.
func login(ctx context.Context, c *http.Client, base, user, password string) reply {
	start := time.Now()
	form := url.Values{"username": {user}, "password": {password}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/account/login/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err, took: time.Since(start)}
	}
	resp.Body.Close()
	return reply{code: resp.StatusCode, status: resp.Status, took: time.Since(start)}
}

func (h *harness) reportSoak(samples []soakSample, counts map[string]int, bad []string, dur time.Duration) {
	rep := h.rep
	total, errs := 0, 0
	for _, sm := range samples {
		total += sm.requests
		errs += sm.errors
	}
	var mix []string
	for _, k := range []string{"page", "page 304", "metadata", "file", "upload", "login"} {
		mix = append(mix, fmt.Sprintf("%s %d", k, counts[k]))
	}
	rep.info(soakCase, "sqlite", "duration, requests", fmt.Sprintf("%s, %d", dur, total), strings.Join(mix, ", "))
	rep.count(soakCase, "sqlite", "errors", errs, 0, fmt.Sprintf("error rate %.4f%%; %s", 100*float64(errs)/float64(max(total, 1)), firstOf(bad)))

	// The first fifth is warm-up (caches filling, the runtime growing its
	// heap); the comparison is between the second fifth and the last.
	n := len(samples)
	head := samples[n/5 : max(2*n/5, n/5+1)]
	tail := samples[n-max(n/5, 1):]
	med := func(ss []soakSample, f func(soakSample) float64) float64 {
		var v []float64
		for _, s := range ss {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rss := func(s soakSample) float64 { return s.rssMiB }
	gor := func(s soakSample) float64 { return float64(s.goroutines) }
	fds := func(s soakSample) float64 { return float64(s.fds) }
	p99 := func(s soakSample) float64 { return ms(s.p99) }
	rssMax := 0.0
	for _, s := range samples {
		rssMax = max(rssMax, s.rssMiB)
	}
	rh, rt := med(head, rss), med(tail, rss)
	rep.atMost(soakCase, "sqlite", "RSS at the end (median of the last fifth)", rt, rh*1.5+32, " MiB",
		fmt.Sprintf("%.1f MiB after warm-up, %.1f MiB at most; limit 1.5× + 32 MiB", rh, rssMax))
	rep.info(soakCase, "sqlite", "RSS trend after warm-up", fmt.Sprintf("%+.2f MiB/min", slope(samples[n/5:], rss)), "least-squares slope")
	gh, gt := med(head, gor), med(tail, gor)
	rep.atMost(soakCase, "sqlite", "goroutines at the end", gt, gh+20, "", fmt.Sprintf("%.0f after warm-up", gh))
	fh, ft := med(head, fds), med(tail, fds)
	rep.atMost(soakCase, "sqlite", "open fds at the end", ft, fh+20, "", fmt.Sprintf("%.0f after warm-up", fh))
	ph, pt := med(head, p99), med(tail, p99)
	rep.atMost(soakCase, "sqlite", "p99 at the end", pt, 3*ph+20, " ms", fmt.Sprintf("%.1f ms after warm-up (p99 drift %+.1f ms); limit 3× + 20 ms", ph, pt-ph))
	rep.info(soakCase, "sqlite", "plot", "soak.svg", "RSS and p99 over time; numbers in soak.csv")
}

// slope is the least-squares slope of f over time, per minute.
func slope(ss []soakSample, f func(soakSample) float64) float64 {
	if len(ss) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range ss {
		x := s.at.Minutes()
		y := f(s)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	k := float64(len(ss))
	d := k*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (k*sxy - sx*sy) / d
}

func writeSoakCSV(path string, samples []soakSample) error {
	var b strings.Builder
	b.WriteString("seconds,requests,errors,p50_ms,p99_ms,rss_mib,goroutines,fds,threads\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.0f,%d,%d,%.2f,%.2f,%.1f,%d,%d,%d\n", s.at.Seconds(), s.requests, s.errors, ms(s.p50), ms(s.p99), s.rssMiB, s.goroutines, s.fds, s.threads)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
