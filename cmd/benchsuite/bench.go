package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// target is one benchmark: the same response fetched from both servers.
type target struct {
	bench, variant string
	n              int // files in the project (0 when not a project page)
	goal           goal
	ours, nginx    endpoint
	path           string // where the body lives in the nginx docroot
	body           []byte // exactly what our server sent
	conditional    bool   // send If-None-Match with each server's own ETag
	oursETag       string
}

// targets fetches every benchmarked URL once from our server; the bodies
// become the nginx docroot, so both servers send the same bytes.
func (h *harness) targets(ctx context.Context) ([]*target, error) {
	var ts []*target
	pages := map[string]*target{}
	for _, p := range []struct {
		name string
		n    int
	}{{smallProject, h.cfg.smallFiles}, {bigProject, h.cfg.bigFiles}} {
		for _, f := range []struct{ ext, accept string }{{"json", acceptJSON}, {"html", acceptHTML}} {
			url := h.ours.base + "/simple/" + p.name + "/"
			status, body, hdr, err := h.fetch(ctx, http.MethodGet, url, f.accept)
			if err != nil {
				return nil, err
			}
			if status != http.StatusOK || hdr.Get("ETag") == "" {
				return nil, fmt.Errorf("GET %s: status %d, ETag %q", url, status, hdr.Get("ETag"))
			}
			if f.ext == "json" {
				if got, err := countFiles(body); err != nil || got != p.n {
					return nil, fmt.Errorf("GET %s: want %d files, got %d (%v)", url, p.n, got, err)
				}
			}
			t := &target{
				bench: "P1", variant: fmt.Sprintf("%s n=%d", f.ext, p.n), n: p.n, goal: ratioGoal(0.6, "nginx req/s"),
				ours: endpoint{url, []string{f.accept}},
				path: "/simple/" + p.name + "/index." + f.ext,
				body: body, oursETag: hdr.Get("ETag"),
			}
			t.nginx = endpoint{url: t.path, headers: []string{f.accept}} // made absolute once nginx runs
			ts = append(ts, t)
			pages[p.name+f.ext] = t
		}
	}
	// P3: pip revalidates every project page it has cached (Cache-Control:
	// max-age=0), so the 304 path is the one most requests take.
	for _, p := range []string{smallProject, bigProject} {
		src := pages[p+"json"]
		t := *src
		t.bench, t.variant, t.goal, t.conditional = "P3", "304 json n="+fmt.Sprint(src.n), ratioGoal(0.7, "nginx req/s"), true
		t.ours.headers = slices.Clone(src.ours.headers)
		t.nginx.headers = slices.Clone(src.nginx.headers)
		ts = append(ts, &t)
	}

	// P5: the 1 MiB wheel, at the URL the Simple API advertises for it.
	status, body, _, err := h.fetch(ctx, http.MethodGet, h.ours.base+"/simple/"+dlProject+"/", acceptJSON)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET /simple/%s/: status %d, %v", dlProject, status, err)
	}
	var page struct {
		Files []struct {
			URL string `json:"url"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Files) != 1 {
		return nil, fmt.Errorf("/simple/%s/: want one file (%v)", dlProject, err)
	}
	// Links use the base URL (http://localhost:<port>); wrk is pointed at
	// 127.0.0.1, where the server listens, so only the path is kept.
	u, err := neturl.Parse(page.Files[0].URL)
	if err != nil {
		return nil, err
	}
	path := u.Path
	url := h.ours.base + path
	status, body, _, err = h.fetch(ctx, http.MethodGet, url)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d, %v", url, status, err)
	}
	ts = append(ts, &target{
		bench: "P5", variant: fmt.Sprintf("download %.1f MiB", float64(len(body))/(1<<20)), goal: ratioGoal(0.9, "nginx throughput"),
		ours: endpoint{url: url}, nginx: endpoint{url: path}, path: path, body: body,
	})
	return ts, nil
}

func countFiles(page []byte) (int, error) {
	var p struct {
		Files []json.RawMessage `json:"files"`
	}
	err := json.Unmarshal(page, &p)
	return len(p.Files), err
}

// measure runs one target: a warm-up on each server, then rounds of
// ours-then-nginx, so slow drifts of a noisy VM hit both alike. It returns
// our peak RSS during the measured runs.
func (h *harness) measure(ctx context.Context, t *target) (float64, error) {
	h.logf("%s %s", t.bench, t.variant)
	if _, err := h.runWrk(ctx, t.ours.url, t.ours.headers, h.cfg.warmup); err != nil {
		return 0, err
	}
	if _, err := h.runWrk(ctx, t.nginx.url, t.nginx.headers, h.cfg.warmup); err != nil {
		return 0, err
	}
	var ours, refs []result
	var ratios []float64
	var peak float64
	for round := 1; round <= h.cfg.rounds; round++ {
		poll := pollRSS(h.ours.cmd.Process.Pid)
		mo, err := h.runWrkCPU(ctx, h.ours, t.ours)
		rss := poll.Stop()
		if err != nil {
			return 0, err
		}
		mn, err := h.runWrkCPU(ctx, h.nginx, t.nginx)
		if err != nil {
			return 0, err
		}
		o, n := mo.w, mn.w
		peak = max(peak, rss)
		ro, rn := t.result("gatehouse", mo, h.cfg.conns), t.result("nginx", mn, h.cfg.conns)
		ro.RSSMiB, ro.Round, rn.Round = rss, round, round
		// Same bodies on both sides, so the req/s ratio is also the ratio
		// of payload throughput (P5); wrk's Transfer/sec also counts
		// headers, and ours are longer (CORS, cache headers).
		r := o.RPS / n.RPS
		ro.Ratio = &r
		ours, refs, ratios = append(ours, ro), append(refs, rn), append(ratios, r)
		h.raw = append(h.raw, ro, rn)
		h.logf("  round %d: gatehouse %.0f req/s, nginx %.0f req/s, ratio %.2f; other load CPU0 %.0f%%/%.0f%%, CPU1 %.0f%%/%.0f%%",
			round, o.RPS, n.RPS, r, mo.otherCPU0, mn.otherCPU0, mo.otherCPU1, mn.otherCPU1)
	}
	h.add(line{ours: medianResult(ours), ref: medianResult(refs), refName: "nginx", ratio: median(ratios),
		lo: slices.Min(ratios), hi: slices.Max(ratios), goal: t.goal})
	return peak, nil
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
	pid, self := s.cmd.Process.Pid, os.Getpid()
	t0, c0, me0 := readCPUs(), cpuSeconds(pid), procCPU(self)
	w, err := h.runWrk(ctx, e.url, e.headers, h.cfg.duration)
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

// memoryHWM records VmHWM, the peak RSS over the server's whole life.
func (h *harness) memoryHWM() {
	if v, err := procStatus(h.ours.cmd.Process.Pid, "VmHWM"); err == nil {
		h.memoryValue("peak (VmHWM)", "highest RSS over the whole run", v)
	}
}

func (h *harness) memoryValue(variant, note string, mib float64) {
	limit := 200.0 // spec P10: under load ≤ 200 MiB
	if strings.HasPrefix(variant, "idle") {
		limit = 50 // spec P10: idle ≤ 50 MiB
	}
	h.logf("memory %s: %.1f MiB", variant, mib)
	h.add(line{ours: result{Bench: "MEM", Variant: variant, Server: "gatehouse", RSSMiB: mib, OtherCPU0: -1, OtherCPU1: -1},
		goal: maxMiBGoal(limit), note: note})
}
