package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// growthPoint is everything measured at one number of projects.
type growthPoint struct {
	projects    int
	seedSecs    float64 // inserting the filler projects that reached this scale
	bootMs      float64 // exec → first 200 on /healthz
	p9Ms        float64 // exec → first 200 on /simple/ (P9), a restart of its own
	idleMiB     float64 // RSS after start, before the root index is built
	rootColdMs  float64 // first GET /simple/ (gzip): the full build
	rootGzBytes int64
	rootBytes   int64     // identity
	rootIdMs    float64   // one identity GET (inflated chunk by chunk)
	p1          wrkResult // the run with the median p50
	other0      float64   // worst other load on CPU0 / CPU1 during P1, %
	other1      float64
	p2          []float64 // ms, cold project pages
	uploads     []float64 // ms, small uploads to an existing project
	bursts      []rootBurst
}

// rootBurst is issue 15's first row: one upload, then conc concurrent GET
// /simple/ (gzip, as pip asks), with the root index's counters before and
// after.
type rootBurst struct {
	kind         string // "a new project" or "an existing project"
	uploadMs     float64
	p50, maxMs   float64
	builds       float64 // full renders of every project
	passes       float64 // incremental passes
	entries      float64 // project entries rendered
	chunks       float64
	peakMiB      float64
	haveCounters bool
}

// growthBench is P11's growth curve and P4's root index after one upload,
// at each -scales project count: the first where everything else ran, then
// after stopping the server, inserting filler projects directly and
// starting it again.
func (h *harness) growthBench(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(5, 6))
	var seedSecs float64
	for i, scale := range h.cfg.scales {
		// Every point starts from a fresh server: the same state after
		// boot at each scale, whatever ran before.
		h.stopGatehouse()
		if i > 0 {
			h.logf("  inserting projects up to %d", scale)
			add := scale - h.projects
			n, took, err := bulkSeed(ctx, h.dataDir, h.filler, h.filler+max(0, add), h.cfg.seedFiles)
			if err != nil {
				return err
			}
			h.filler += n
			h.projects += n
			seedSecs = took.Seconds()
			h.logf("  inserted %d projects in %s (%.0f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
		}
		if err := h.startGatehouse(ctx); err != nil {
			return err
		}
		h.logf("  at %d projects", h.projects)
		p, err := h.growthPoint(ctx, rng, i)
		if err != nil {
			return err
		}
		p.seedSecs = seedSecs
		// P9: a restart of its own, timed to the first 200 on /simple/,
		// so that P4's cold root above was not already built by it.
		h.stopGatehouse()
		if err := h.launchGatehouse(ctx, "/simple/"); err != nil {
			return err
		}
		p.p9Ms = float64(h.ours.boot.Microseconds()) / 1000
		h.logf("    P9: exec to the first 200 on /simple/ %.0f ms", p.p9Ms)
		h.growth = append(h.growth, p)
	}
	h.growthLines()
	return nil
}

func (h *harness) growthPoint(ctx context.Context, rng *rand.Rand, idx int) (growthPoint, error) {
	p := growthPoint{projects: h.projects, bootMs: float64(h.ours.boot.Microseconds()) / 1000, other0: -1, other1: -1}
	pid := h.ours.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond) // let start-up garbage settle before the idle reading
	p.idleMiB, _ = procStatus(pid, "VmRSS")

	// P4: the first root request builds it from every project.
	t0 := time.Now()
	status, gz, err := h.rootGET(ctx, true)
	if err != nil || status != http.StatusOK {
		return p, fmt.Errorf("GET /simple/ (gzip): %d, %v", status, err)
	}
	p.rootColdMs, p.rootGzBytes = msSince(t0), gz
	t0 = time.Now()
	status, id, err := h.rootGET(ctx, false)
	if err != nil || status != http.StatusOK {
		return p, fmt.Errorf("GET /simple/: %d, %v", status, err)
	}
	p.rootIdMs, p.rootBytes = msSince(t0), id

	// P2: cold project pages at a fixed size, the filler projects' (one
	// release, -seed-files files), read once each after the restart.
	samples := 50
	if h.cfg.quick {
		samples = 20
	}
	for range samples {
		name := fillerName(rng.IntN(h.filler))
		t0 := time.Now()
		status, _, _, err := h.fetch(ctx, http.MethodGet, h.ours.base+"/simple/"+name+"/", acceptJSON)
		if err != nil || status != http.StatusOK {
			return p, fmt.Errorf("GET /simple/%s/: %d, %v", name, status, err)
		}
		p.p2 = append(p.p2, msSince(t0))
	}

	// Upload p50: small wheels to an existing project, one after another.
	nUp := 10
	if h.cfg.quick {
		nUp = 3
	}
	for k := range nUp {
		w, err := buildWheel(growProject, fmt.Sprintf("2.%d.%d", idx, k), "py3-none-any", 16<<10, rng)
		if err != nil {
			return p, err
		}
		t0 := time.Now()
		if err := h.uploadWheel(ctx, w); err != nil {
			return p, err
		}
		p.uploads = append(p.uploads, msSince(t0))
	}

	// P1 at fixed N: the small project's warm page, the median of -rounds
	// runs (a point cannot be interleaved with the other scales).
	var p1s []wrkResult
	for range h.cfg.rounds {
		m, err := h.runWrkCPU(ctx, h.ours, endpoint{url: h.ours.base + "/simple/" + smallProject + "/", headers: []string{acceptJSON}})
		if err != nil {
			return p, err
		}
		p1s = append(p1s, m.w)
		p.other0, p.other1 = max(p.other0, m.otherCPU0), max(p.other1, m.otherCPU1)
	}
	slices.SortFunc(p1s, func(a, b wrkResult) int { return cmp.Compare(a.P50, b.P50) })
	p.p1 = p1s[len(p1s)/2]

	// The root after one upload: to a new project (one entry inserted)
	// and to an existing one (its serial changes).
	for _, kind := range []string{"a new project", "an existing project"} {
		project, version := fmt.Sprintf("bench-new-%d", idx), "1.0"
		if kind == "an existing project" {
			project, version = growProject, fmt.Sprintf("3.%d", idx)
		}
		b, err := h.rootAfterUpload(ctx, kind, project, version, rng)
		if err != nil {
			return p, err
		}
		if kind == "a new project" {
			h.projects++
		}
		p.bursts = append(p.bursts, b)
		h.logf("    root after an upload to %s: %d concurrent GETs p50 %.0f ms, max %.0f ms; %.0f full builds, %.0f passes, %.0f entries rendered; peak RSS %.1f MiB (idle %.1f)",
			kind, h.cfg.conns, b.p50, b.maxMs, b.builds, b.passes, b.entries, b.peakMiB, p.idleMiB)
	}
	h.logf("    boot %.0f ms, idle %.1f MiB, root cold %.0f ms (%.1f MB gzip, %.1f MB identity in %.0f ms), P2 p50 %.2f ms, upload p50 %.1f ms, P1 p50 %.2f ms",
		p.bootMs, p.idleMiB, p.rootColdMs, float64(p.rootGzBytes)/1e6, float64(p.rootBytes)/1e6, p.rootIdMs,
		percentile(p.p2, 50), percentile(p.uploads, 50), p.p1.P50)
	return p, nil
}

// rootAfterUpload makes the root index warm, uploads one small wheel, then
// sends -conns concurrent GET /simple/ with gzip and times each.
func (h *harness) rootAfterUpload(ctx context.Context, kind, project, version string, rng *rand.Rand) (rootBurst, error) {
	b := rootBurst{kind: kind}
	if status, _, err := h.rootGET(ctx, true); err != nil || status != http.StatusOK {
		return b, fmt.Errorf("GET /simple/: %d, %v", status, err)
	}
	s0, ok := h.pageCacheStats(ctx)
	w, err := buildWheel(project, version, "py3-none-any", 4<<10, rng)
	if err != nil {
		return b, err
	}
	poll := pollRSS(h.ours.cmd.Process.Pid)
	t0 := time.Now()
	if err := h.uploadWheel(ctx, w); err != nil {
		poll.Stop()
		return b, err
	}
	b.uploadMs = msSince(t0)
	lat := make([]float64, h.cfg.conns)
	errs := make([]error, h.cfg.conns)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range h.cfg.conns {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			status, _, err := h.rootGET(ctx, true)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			lat[i], errs[i] = msSince(t0), err
		})
	}
	close(start)
	wg.Wait()
	b.peakMiB = poll.Stop()
	for _, err := range errs {
		if err != nil {
			return b, fmt.Errorf("GET /simple/ after an upload: %w", err)
		}
	}
	b.p50, b.maxMs = percentile(lat, 50), slices.Max(lat)
	if ok {
		if s1, ok := h.pageCacheStats(ctx); ok {
			d := s1.sub(s0)
			b.builds, b.passes, b.entries, b.chunks, b.haveCounters = d["RootBuilds"], d["RootUpdates"], d["RootEntriesRendered"], d["RootChunkRenders"], true
		}
	}
	return b, nil
}

// rootGET reads /simple/ whole, as pip does (gzip), or without encoding,
// and returns the status and the bytes received.
func (h *harness) rootGET(ctx context.Context, gzip bool) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.ours.base+"/simple/", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.1, text/html;q=0.01")
	// Set explicitly, so Go's transport does not inflate the body for us:
	// the bytes counted are the bytes sent.
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	} else {
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, n, err
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// growthLines adds the report's rows: the root after one upload at every
// scale of 10⁵ and more (issue 15's first row), and P11's curve at each
// scale against the first.
func (h *harness) growthLines() {
	if len(h.growth) == 0 {
		return
	}
	base := h.growth[0]
	for _, p := range h.growth {
		scale := fmt.Sprintf("%s projects", thousands(float64(p.projects)))
		// Issue 15's first row is about 10⁵ and 10⁶ projects; a quick run
		// answers it with its largest scale.
		issue := 0
		if p.projects >= 100000 || p.projects == h.growth[len(h.growth)-1].projects {
			issue = 1
		}
		for _, b := range p.bursts {
			r := result{Bench: "P4", Variant: fmt.Sprintf("root after an upload to %s, %s", b.kind, scale), Server: "gatehouse", N: p.projects,
				Conc: h.cfg.conns, P50: b.p50, P99: b.maxMs, RSSMiB: b.peakMiB, OtherCPU0: -1, OtherCPU1: -1,
				Extra: map[string]float64{"builds": b.builds, "passes": b.passes, "entries_rendered": b.entries, "chunks_rendered": b.chunks,
					"upload_ms": b.uploadMs, "idle_mib": p.idleMiB}}
			cell := fmt.Sprintf("%d GETs: p50 %s ms, max %s ms", h.cfg.conns, ms(b.p50), ms(b.maxMs))
			if !b.haveCounters {
				h.add(line{issue: issue, ours: r, value: b.maxMs, unit: "ms", oursCell: cell, goal: record("render counts need a benchdebug build")})
			} else {
				// No O(N) work: no full build, and at most a few chunks
				// (chunkTarget = 512 entries each) rendered for one change.
				note := fmt.Sprintf("%.0f full builds, %.0f passes, %.0f chunks", b.builds, b.passes, b.chunks)
				value := b.entries
				if b.builds > 0 {
					value = float64(p.projects) * b.builds // a rebuild is N entries however they are counted
				}
				h.add(line{issue: issue, ours: r, value: value, unit: "entries", key: "P4/" + b.kind + "/" + scale + "/entries",
					label:    fmt.Sprintf("%s, %s: max of %d GETs %s ms, rendered", scale, b.kind, h.cfg.conns, ms(b.maxMs)),
					oursCell: cell, refCell: fmt.Sprintf("of %s projects", thousands(float64(p.projects))),
					goal: atMost(2048, "no O(N) work: ≤ 2,048 entries rendered, no full build"), note: note})
			}
			growth := b.peakMiB - p.idleMiB
			h.add(line{issue: issue, ours: r, value: growth, unit: "MiB", key: "P4/" + b.kind + "/" + scale + "/rss",
				label:    fmt.Sprintf("%s, %s: RSS over idle", scale, b.kind),
				oursCell: fmt.Sprintf("peak %.1f MiB", b.peakMiB), refCell: fmt.Sprintf("idle %.1f MiB", p.idleMiB),
				goal: atMost(64, "RSS ≤ idle + 64 MiB")})
		}
		info := result{Bench: "P4", Variant: "root index, " + scale, Server: "gatehouse", N: p.projects, OtherCPU0: -1, OtherCPU1: -1,
			P50: p.rootColdMs, RSSMiB: p.idleMiB,
			Extra: map[string]float64{"root_cold_ms": p.rootColdMs, "root_gzip_bytes": float64(p.rootGzBytes), "root_bytes": float64(p.rootBytes),
				"root_identity_ms": p.rootIdMs, "boot_ms": p.bootMs, "seed_s": p.seedSecs}}
		h.add(line{ours: info, value: p.rootColdMs, unit: "ms", oursCell: fmt.Sprintf("first GET builds it in %s ms", ms(p.rootColdMs)),
			refCell: fmt.Sprintf("%.1f MB gzip / %.1f MB", float64(p.rootGzBytes)/1e6, float64(p.rootBytes)/1e6),
			goal:    record("linear in projects"), note: fmt.Sprintf("boot to the first 200 on /healthz %.0f ms; identity GET %s ms", p.bootMs, ms(p.rootIdMs))})
	}
	// P9: cold start to the first 200 on /simple/ at each scale.
	for _, p := range h.growth {
		r := result{Bench: "P9", Variant: fmt.Sprintf("cold start, %s projects, SQLite", thousands(float64(p.projects))), Server: "gatehouse",
			N: p.projects, P50: p.p9Ms, OtherCPU0: -1, OtherCPU1: -1, Extra: map[string]float64{"boot_healthz_ms": p.bootMs, "root_cold_ms": p.rootColdMs}}
		h.add(line{ours: r, value: p.p9Ms, unit: "ms", key: fmt.Sprintf("P9/%d", p.projects),
			label:    fmt.Sprintf("P9 cold start at %s projects", thousands(float64(p.projects))),
			oursCell: fmt.Sprintf("exec → first 200 on /simple/ %s ms", ms(p.p9Ms)), refCell: fmt.Sprintf("to /healthz %s ms", ms(p.bootMs)),
			goal: atMost(1000, "≤ 1 s; no work at boot that grows with the index")})
	}
	// P11: the same three measures at each scale against the first.
	metrics := []struct {
		name string
		v    func(growthPoint) float64
	}{
		{fmt.Sprintf("P1 p50, n=%d warm", h.cfg.smallFiles), func(p growthPoint) float64 { return p.p1.P50 }},
		{fmt.Sprintf("P2 p50, n=%d cold", h.cfg.seedFiles), func(p growthPoint) float64 { return percentile(p.p2, 50) }},
		{"upload p50, 16 KiB wheel", func(p growthPoint) float64 { return percentile(p.uploads, 50) }},
	}
	for _, p := range h.growth[1:] {
		for _, m := range metrics {
			v, b := m.v(p), m.v(base)
			r := result{Bench: "P11", Variant: fmt.Sprintf("%s at %s projects", m.name, thousands(float64(p.projects))), Server: "gatehouse",
				N: p.projects, P50: v, OtherCPU0: p.other0, OtherCPU1: p.other1}
			ref := result{Bench: "P11", Variant: r.Variant, Server: fmt.Sprintf("%s projects", thousands(float64(base.projects))), N: base.projects, P50: b,
				OtherCPU0: base.other0, OtherCPU1: base.other1}
			h.add(line{issue: 9, ours: r, ref: &ref, refName: ref.Server, value: ratio(v, b), unit: "×", label: r.Variant,
				oursCell: ms(v) + " ms", refCell: ms(b) + " ms", goal: within(0.8, 1.2, "flat within ±20 %"), chart: true})
		}
	}
}
