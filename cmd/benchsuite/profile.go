package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// profileInfo is one profile of the small-page path taken under load.
type profileInfo struct {
	name          string
	cpuFile       string
	allocFile     string
	requests      int64
	rps           float64
	allocsPerReq  float64
	byPackage     []pkgShare // flat CPU by where the code lives
	handlerCum    float64    // % of CPU samples under web.(*Server).ServeHTTP
	cpuTop        []string   // go tool pprof -top, the heaviest entries
	allocTop      []string
	pprofFailures string
}

type pkgShare struct {
	pkg string
	pct float64
}

// profileSmallPages profiles /simple/<small>/ (JSON) and its 304 at the
// configured connections (issue 15, item 5): a CPU profile and an
// allocation profile of the same window, fetched from the benchdebug
// listener while wrk runs, saved in -out, and summarised for the report.
func (h *harness) profileSmallPages(ctx context.Context, ts []*target) error {
	if h.debugAddr == "" {
		h.logf("  skipped: this gatehouse binary has no benchdebug listener")
		return nil
	}
	for _, t := range ts {
		if t.n != h.cfg.smallFiles || (t.bench != "P1" && t.bench != "P3") || !strings.HasPrefix(t.variant, "json") && !t.conditional {
			continue
		}
		name := strings.ToLower(t.bench) + "-" + strings.ReplaceAll(t.variant, " ", "-")
		p, err := h.profileOne(ctx, t, name)
		if err != nil {
			return err
		}
		h.profiles = append(h.profiles, p)
		h.logf("  %s: %.0f req/s while profiled, %.1f allocations per request, handler chain %.0f%% of CPU samples",
			name, p.rps, p.allocsPerReq, p.handlerCum)
	}
	return nil
}

func (h *harness) profileOne(ctx context.Context, t *target, name string) (profileInfo, error) {
	secs := max(1, int(h.cfg.duration/time.Second))
	p := profileInfo{name: name,
		cpuFile:   filepath.Join(h.cfg.outDir, fmt.Sprintf("bench-%s-profile-%s.cpu.pb.gz", h.stamp, name)),
		allocFile: filepath.Join(h.cfg.outDir, fmt.Sprintf("bench-%s-profile-%s.allocs.pb.gz", h.stamp, name)),
	}
	a0, _ := h.oursAllocs(ctx)
	var wg sync.WaitGroup
	var cpuErr, allocErr error
	wg.Go(func() {
		cpuErr = h.saveURL(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", h.debugAddr, secs), p.cpuFile)
	})
	wg.Go(func() {
		allocErr = h.saveURL(ctx, fmt.Sprintf("%s/debug/pprof/allocs?seconds=%d", h.debugAddr, secs), p.allocFile)
	})
	// wrk outlasts the profiles by a second, so they see only load.
	w, err := h.runWrk(ctx, t.ours.url, t.ours.headers, time.Duration(secs+1)*time.Second)
	wg.Wait()
	if err != nil {
		return p, err
	}
	a1, _ := h.oursAllocs(ctx)
	p.requests, p.rps = w.Requests, w.RPS
	if w.Requests > 0 && a1 > a0 {
		p.allocsPerReq = float64(a1-a0) / float64(w.Requests)
	}
	if cpuErr != nil || allocErr != nil {
		return p, fmt.Errorf("profiles: %v, %v", cpuErr, allocErr)
	}
	top, err := h.pprofTop(ctx, p.cpuFile, nil)
	if err != nil {
		p.pprofFailures = err.Error()
		return p, nil
	}
	p.byPackage, p.handlerCum = sharesByPackage(top)
	p.cpuTop = headLines(top, 14)
	if at, err := h.pprofTop(ctx, p.allocFile, []string{"-sample_index=alloc_objects"}); err == nil {
		p.allocTop = headLines(at, 12)
	}
	return p, nil
}

// pprofTop is `go tool pprof -top` of a profile, every node.
func (h *harness) pprofTop(ctx context.Context, file string, extra []string) ([]string, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=100000"}, extra...)
	args = append(args, h.bin, file)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %v", err)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), nil
}

// headLines keeps the header and the first n entries of pprof -top.
func headLines(top []string, n int) []string {
	for i, l := range top {
		if strings.Contains(l, "flat%") {
			return top[i:min(len(top), i+1+n)]
		}
	}
	return top[:min(len(top), n)]
}

// sharesByPackage sums pprof -top's flat% by where each function lives,
// and finds the cumulative share of Gatehouse's handler chain.
func sharesByPackage(top []string) ([]pkgShare, float64) {
	sums := map[string]float64{}
	var handler float64
	started := false
	for _, l := range top {
		if strings.Contains(l, "flat%") {
			started = true
			continue
		}
		f := strings.Fields(l)
		if !started || len(f) < 6 {
			continue
		}
		flat, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		fn := strings.Join(f[5:], " ")
		sums[pkgGroup(fn)] += flat
		if strings.HasSuffix(fn, "internal/web.(*Server).ServeHTTP") {
			handler = cum
		}
	}
	var out []pkgShare
	for k, v := range sums {
		out = append(out, pkgShare{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pct > out[j].pct })
	return out, handler
}

func pkgGroup(fn string) string {
	switch {
	case strings.HasPrefix(fn, "github.com/gatehouse-index/gatehouse/"):
		return "gatehouse"
	case strings.HasPrefix(fn, "net/http"), strings.HasPrefix(fn, "net/textproto"), strings.HasPrefix(fn, "bufio"):
		return "net/http"
	case strings.HasPrefix(fn, "syscall."), strings.HasPrefix(fn, "internal/poll"), strings.HasPrefix(fn, "internal/runtime/syscall"), strings.HasPrefix(fn, "net."):
		return "syscalls (net, poll)"
	case strings.HasPrefix(fn, "runtime."), strings.HasPrefix(fn, "internal/runtime"):
		return "Go runtime (GC, scheduler, maps)"
	}
	return "other (strings, strconv, sync, …)"
}
