package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strings"
)

// Simple API media types as pip and uv ask for them.
const (
	acceptJSON = "Accept: application/vnd.pypi.simple.v1+json"
	acceptHTML = "Accept: text/html"
)

// endpoint is one URL as wrk requests it from one server.
type endpoint struct {
	url     string
	headers []string
}

// target is one benchmark: the same response fetched from every server.
type target struct {
	bench, variant string
	n              int // files in the project (0 when not a project page)
	goal           goal
	bareGoal       goal // zero: no bare Go comparison
	issue          int  // row of issue 15's table
	ours, nginx    endpoint
	bare           endpoint
	rawEP          endpoint // the raw Go server, for the small pages (withRaw)
	raw            bool
	path           string // where the body lives in the nginx docroot (and the bare server's table)
	body           []byte // exactly what our server sent
	conditional    bool   // send If-None-Match with each server's own ETag
	oursETag       string
	hdr200, hdr304 http.Header // what our server sent, replayed by the bare server
	file           bool        // a download: the bare server sends it from a file, as nginx does
}

func (t *target) withBare() bool { return t.bareGoal.judged() }

// withRaw: the small page and its 304, the requests issue 15 asks about,
// are also measured against the raw Go server.
func (t *target) withRaw() bool { return t.raw }

// targets fetches every benchmarked URL once from our server; the bodies
// become the nginx docroot and the bare server's table, so every server
// sends the same bytes.
func (h *harness) targets(ctx context.Context) ([]*target, error) {
	var ts []*target
	pages := map[string]*target{}
	for _, p := range []struct {
		name string
		n    int
		fmts []string
	}{{smallProject, h.cfg.smallFiles, []string{"json", "html"}}, {bigProject, h.cfg.bigFiles, []string{"json"}}} {
		for _, ext := range p.fmts {
			accept := acceptJSON
			if ext == "html" {
				accept = acceptHTML
			}
			url := h.ours.base + "/simple/" + p.name + "/"
			status, body, hdr, err := h.fetch(ctx, http.MethodGet, url, accept)
			if err != nil {
				return nil, err
			}
			if status != http.StatusOK || hdr.Get("ETag") == "" {
				return nil, fmt.Errorf("GET %s: status %d, ETag %q", url, status, hdr.Get("ETag"))
			}
			if ext == "json" {
				if got, err := countFiles(body); err != nil || got != p.n {
					return nil, fmt.Errorf("GET %s: want %d files, got %d (%v)", url, p.n, got, err)
				}
			}
			t := &target{
				bench: "P1", variant: fmt.Sprintf("%s n=%d", ext, p.n), n: p.n,
				goal: ratioGoal(0.6, "nginx req/s"), bareGoal: ratioGoal(0.9, "bare Go req/s"),
				ours: endpoint{url, []string{accept}},
				path: "/simple/" + p.name + "/index." + ext,
				body: body, oursETag: hdr.Get("ETag"), hdr200: hdr,
			}
			if p.name == smallProject {
				t.issue, t.raw = 5, true
			}
			// Made absolute once nginx and the bare server run.
			t.nginx = endpoint{url: t.path, headers: []string{accept}}
			t.bare = endpoint{url: t.path, headers: []string{accept}}
			status, _, hdr304, err := h.fetch(ctx, http.MethodGet, url, accept, "If-None-Match: "+t.oursETag)
			if err != nil || status != http.StatusNotModified {
				return nil, fmt.Errorf("GET %s with its ETag: status %d, want 304 (%v)", url, status, err)
			}
			t.hdr304 = hdr304
			ts = append(ts, t)
			pages[p.name+ext] = t
		}
	}
	// P3: pip revalidates every project page it has cached (Cache-Control:
	// max-age=0), so the 304 path is the one most requests take.
	for _, p := range []string{smallProject, bigProject} {
		src := pages[p+"json"]
		t := *src
		t.bench, t.variant, t.conditional = "P3", "304 json n="+fmt.Sprint(src.n), true
		t.goal, t.bareGoal, t.issue = ratioGoal(0.7, "nginx req/s"), ratioGoal(0.9, "bare Go req/s"), 6
		t.ours.headers = slices.Clone(src.ours.headers)
		t.nginx.headers = slices.Clone(src.nginx.headers)
		t.bare.headers = slices.Clone(src.bare.headers)
		ts = append(ts, &t)
	}

	// P5: the wheels, at the URL the Simple API advertises for them.
	for _, mib := range h.cfg.dlMiB {
		proj := dlProjectName(mib)
		status, body, _, err := h.fetch(ctx, http.MethodGet, h.ours.base+"/simple/"+proj+"/", acceptJSON)
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("GET /simple/%s/: status %d, %v", proj, status, err)
		}
		var page struct {
			Files []struct {
				URL string `json:"url"`
			} `json:"files"`
		}
		if err := json.Unmarshal(body, &page); err != nil || len(page.Files) != 1 {
			return nil, fmt.Errorf("/simple/%s/: want one file (%v)", proj, err)
		}
		// Links use the base URL (http://localhost:<port>); wrk is pointed at
		// 127.0.0.1, where the server listens, so only the path is kept.
		u, err := neturl.Parse(page.Files[0].URL)
		if err != nil {
			return nil, err
		}
		path := u.Path
		url := h.ours.base + path
		status, body, hdr, err := h.fetch(ctx, http.MethodGet, url)
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d, %v", url, status, err)
		}
		ts = append(ts, &target{
			bench: "P5", variant: fmt.Sprintf("download %d MiB", mib), goal: ratioGoal(0.95, "nginx throughput"), issue: 7,
			ours: endpoint{url: url}, nginx: endpoint{url: path}, bare: endpoint{url: path}, path: path, body: body,
			hdr200: hdr, file: true,
		})
	}
	return ts, nil
}

func countFiles(page []byte) (int, error) {
	var p struct {
		Files []json.RawMessage `json:"files"`
	}
	err := json.Unmarshal(page, &p)
	return len(p.Files), err
}

// contender is one server in a target's rounds.
type contender struct {
	name string
	s    *server
	e    endpoint
	// allocs returns the server's heap allocation count so far, or false.
	allocs func(context.Context) (uint64, bool)
}

// measure runs one target: a warm-up on each server, then rounds of
// Gatehouse, nginx and (for pages) the bare Go server, so slow drifts of a
// noisy VM hit all alike. It returns our peak RSS during the measured runs.
func (h *harness) measure(ctx context.Context, t *target) (float64, error) {
	h.logf("%s %s", t.bench, t.variant)
	cs := []contender{
		{"gatehouse", h.ours, t.ours, h.oursAllocs},
		{"nginx", h.nginx, t.nginx, nil},
	}
	if t.withBare() {
		cs = append(cs, contender{"bare-go", h.bare, t.bare, h.bareAllocs})
	}
	if t.withRaw() {
		cs = append(cs, contender{"raw-go", h.rawSrv, t.rawEP, nil})
	}
	if h.cfg.warmup > 0 {
		for _, c := range cs {
			if _, err := h.runWrk(ctx, c.e.url, c.e.headers, h.cfg.warmup); err != nil {
				return 0, err
			}
		}
	}
	runs := make([][]result, len(cs))
	ratios := make([][]float64, len(cs)) // ours / cs[i], for i > 0
	var peak float64
	for round := 1; round <= h.cfg.rounds; round++ {
		msg := fmt.Sprintf("  round %d:", round)
		for i, c := range cs {
			var poll *rssPoller
			if i == 0 {
				poll = pollRSS(c.s.cmd.Process.Pid)
			}
			var a0 uint64
			var haveAllocs bool
			if c.allocs != nil {
				a0, haveAllocs = c.allocs(ctx)
			}
			m, err := h.runWrkCPU(ctx, c.s, c.e)
			var rss float64
			if poll != nil {
				rss = poll.Stop()
			}
			if err != nil {
				return 0, err
			}
			r := t.result(c.name, m, h.cfg.conns)
			r.Round, r.RSSMiB = round, rss
			if haveAllocs && m.w.Requests > 0 {
				if a1, ok := c.allocs(ctx); ok {
					r.AllocsPerReq = float64(a1-a0) / float64(m.w.Requests)
				}
			}
			peak = max(peak, rss)
			runs[i] = append(runs[i], r)
			msg += fmt.Sprintf(" %s %.0f req/s (CPU0 other %.0f%%)", c.name, m.w.RPS, m.otherCPU0)
		}
		o := runs[0][round-1]
		for i := 1; i < len(cs); i++ {
			// Same bodies on every side, so for pages the req/s ratio is
			// the ratio of payload throughput; wrk's Transfer/sec also
			// counts headers, and ours are longer (CORS, cache headers).
			// Downloads compare bytes/s, which counts what was read of
			// answers still in flight when the run ended: at 50 MiB a
			// short run completes few.
			r := ratio(o.RPS, runs[i][round-1].RPS)
			if t.file {
				r = ratio(o.BytesPerS, runs[i][round-1].BytesPerS)
			}
			ratios[i] = append(ratios[i], r)
			msg += fmt.Sprintf(", ×%s %.2f", cs[i].name, r)
		}
		for i := range cs {
			h.raw = append(h.raw, runs[i][round-1])
		}
		h.logf("%s", msg)
	}
	ours := medianResult(runs[0])
	for i := 1; i < len(cs); i++ {
		g := t.goal
		switch cs[i].name {
		case "bare-go":
			g = t.bareGoal
		case "raw-go":
			g = record("recorded: what one write per response would give")
		}
		ref := medianResult(runs[i])
		rt := median(ratios[i])
		h.add(line{issue: t.issue, ours: ours, ref: &ref, refName: cs[i].name, value: rt, unit: "×",
			lo: slices.Min(ratios[i]), hi: slices.Max(ratios[i]), goal: g, chart: true,
			oursCell: t.cell(ours), refCell: cs[i].name + " " + t.cell(ref)})
	}
	return peak, nil
}

// ratio is a/b, or 0 when b is 0 (nothing measured), so that a run that
// measured nothing shows as a missed goal instead of NaN.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

// cell shows a run's throughput as the table does.
func (t *target) cell(r result) string {
	if t.bench == "P5" {
		return fmt.Sprintf("%.0f MB/s", r.BytesPerS/1e6)
	}
	return thousands(r.RPS) + " req/s"
}

// measuredRun is one wrk run with what the CPUs did meanwhile.
type measuredRun struct {
	w                    wrkResult
	cpuPer1k             float64 // server CPU ms per 1,000 requests
	otherCPU0, otherCPU1 float64 // % of each CPU used by other processes
}

// runWrkCPU is one measured run against s, with the server's CPU time per
// 1,000 requests and an estimate of how much other processes disturbed it.
func (h *harness) runWrkCPU(ctx context.Context, s *server, e endpoint) (measuredRun, error) {
	return h.runWrkCPUScript(ctx, s, e, "")
}

func (h *harness) runWrkCPUScript(ctx context.Context, s *server, e endpoint, script string) (measuredRun, error) {
	pid, self := s.cmd.Process.Pid, os.Getpid()
	t0, c0, me0 := readCPUs(), cpuSeconds(pid), procCPU(self)
	w, err := h.runWrkScript(ctx, e.url, e.headers, h.cfg.duration, script)
	t1, c1, me1 := readCPUs(), cpuSeconds(pid), procCPU(self)
	m := measuredRun{w: w}
	if w.Requests > 0 {
		m.cpuPer1k = (c1 - c0) * 1e6 / float64(w.Requests)
	}
	m.otherCPU0, m.otherCPU1 = -1, -1 // unknown: without pinning nothing is attributable
	if h.pin {
		m.otherCPU0, m.otherCPU1 = otherLoad(t0, t1, c1-c0, w.CPUSeconds+me1-me0)
	}
	return m, err
}

func (t *target) result(srv string, m measuredRun, conns int) result {
	w := m.w
	return result{Bench: t.bench, Variant: t.variant, Server: srv, N: t.n, Conc: conns,
		RPS: w.RPS, P50: w.P50, P99: w.P99, BytesPerS: w.BytesPerSec, Errors: w.Non2xx3xx + w.SocketErrors,
		CPUms: m.cpuPer1k, OtherCPU0: m.otherCPU0, OtherCPU1: m.otherCPU1}
}

// memory records our server's current RSS as a memory line.
func (h *harness) memory(variant, note string) {
	v, err := procStatus(h.ours.cmd.Process.Pid, "VmRSS")
	if err != nil {
		h.logf("memory %s: %v", variant, err)
		return
	}
	h.memoryValue(variant, note, v)
}

// memoryHWM records VmHWM, the peak RSS over the server's whole life (since
// its last restart, in the growth phase).
func (h *harness) memoryHWM() {
	if v, err := procStatus(h.ours.cmd.Process.Pid, "VmHWM"); err == nil {
		h.memoryValue("peak (VmHWM)", "highest RSS since the last start (the largest scale)", v)
	}
}

func (h *harness) memoryValue(variant, note string, mib float64) {
	limit := 200.0 // spec P10: under load ≤ 200 MiB
	if strings.HasPrefix(variant, "idle") {
		limit = 50 // spec P10: idle ≤ 50 MiB
	}
	h.logf("memory %s: %.1f MiB", variant, mib)
	h.add(line{ours: result{Bench: "MEM", Variant: variant, Server: "gatehouse", RSSMiB: mib, OtherCPU0: -1, OtherCPU1: -1},
		value: mib, unit: "MiB", oursCell: fmt.Sprintf("%.1f MiB", mib), goal: maxMiBGoal(limit), note: note})
}
