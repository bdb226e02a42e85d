package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// issueRows are the rows of issue 15's table (and items 6 and 7), which the
// summary at the top of the report answers one by one.
var issueRows = []struct {
	n          int
	what, goal string
}{
	{1, "Root `/simple/` after one upload, at 10⁵ and 10⁶ projects", "no O(N) work per upload; at most one render in flight; RSS ≤ idle + 64 MiB at 10⁶"},
	{2, "Page cache under a flood of unknown names", "bounded by bytes; unknown names cannot grow memory"},
	{3, "`/simple/<p>/` while clients log in (real argon2)", "throughput ≥ 0.7× idle, p99 ≤ 2× idle; logins past capacity get a fast 429"},
	{4, "Uploads, curl and twine, 10 and 100 MiB, and several at once", "≥ 0.5× `dd conv=fsync` with curl at 100 MiB; twine measured and recorded"},
	{5, "Warm `/simple/<p>/`, small project, 32 connections", "≥ 0.6× nginx and ≥ 0.9× bare `net/http`"},
	{6, "304 revalidation", "≥ 0.7× nginx and ≥ 0.9× bare `net/http`"},
	{7, "Downloads", "≥ 0.95× nginx"},
	{8, "P12: pip installs a 50-package graph (PEP 658; and with backtracking)", "≤ 1.1× nginx's wall time, the same request count"},
	{9, "P11: growth curve against the first scale", "P1/P2 latency and upload p50 flat within ±20 %"},
}

// report writes the results to -out (JSON lines, per-round JSON lines,
// CSV, markdown, growth JSON, charts) and prints the markdown.
func (h *harness) report() error {
	base := filepath.Join(h.cfg.outDir, "bench-"+h.stamp)

	var sum bytes.Buffer
	enc := json.NewEncoder(&sum)
	for _, l := range h.lines {
		o := l.ours
		v := l.value
		o.Key, o.Value, o.Goal = l.key, &v, l.goal.String()
		if l.unit == "×" {
			o.Ratio = &v
		}
		if l.goal.judged() {
			met := l.met()
			o.Met = &met
		}
		enc.Encode(o)
		if l.ref != nil {
			ref := *l.ref
			ref.Key, ref.Ratio = l.key, nil
			enc.Encode(ref)
		}
	}
	var raw bytes.Buffer
	enc = json.NewEncoder(&raw)
	for _, r := range h.raw {
		enc.Encode(r)
	}
	growth, err := json.MarshalIndent(h.growthJSON(), "", "  ")
	if err != nil {
		return err
	}
	md := h.markdown()
	files := []struct {
		path string
		data []byte
	}{
		{base + ".jsonl", sum.Bytes()}, {base + "-rounds.jsonl", raw.Bytes()}, {base + ".csv", h.csv()},
		{base + "-growth.json", growth}, {base + ".md", []byte(md)},
	}
	sub := fmt.Sprintf("make bench, %s, %d CPUs (%s), %s runs × %d rounds; bench-%s", h.machine.date, h.machine.cpus, h.machine.cpuModel,
		h.cfg.duration, h.cfg.rounds, h.stamp)
	if h.cfg.quick {
		sub += "; QUICK SMOKE RUN: 1 s runs, numbers not comparable"
	}
	charts := map[string][]byte{"benchmarks-ratios.svg": ratiosSVG(h.lines, sub), "benchmarks-growth.svg": growthSVG(h.growth, h.cfg, sub)}
	for name, svg := range charts {
		files = append(files, struct {
			path string
			data []byte
		}{base + "-" + strings.TrimPrefix(name, "benchmarks-"), svg})
		if h.cfg.docsDir != "" {
			files = append(files, struct {
				path string
				data []byte
			}{filepath.Join(h.cfg.docsDir, name), svg})
		}
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprint(h.stdout, md)
	h.logf("wrote %s.{jsonl,csv,md}, -rounds.jsonl, -growth.json, -ratios.svg, -growth.svg", base)
	if h.cfg.docsDir != "" {
		h.logf("wrote the charts to %s/benchmarks-ratios.svg and benchmarks-growth.svg", h.cfg.docsDir)
	}
	return nil
}

func (h *harness) csv() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"key", "bench", "variant", "server", "reference", "value", "unit", "lo", "hi", "goal", "met",
		"rps", "p50_ms", "p99_ms", "bytes_per_s", "cpu_ms_per_1k", "allocs_per_req", "rss_mib", "wall_s", "requests",
		"ref_rps", "ref_p50_ms", "ref_p99_ms", "ref_bytes_per_s", "ref_cpu_ms_per_1k", "ref_allocs_per_req", "ref_wall_s", "ref_requests",
		"other_cpu0_pct", "other_cpu1_pct", "errors", "note"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, l := range h.lines {
		o := l.ours
		met := ""
		if l.goal.judged() {
			met = strconv.FormatBool(l.met())
		}
		ref := result{}
		if l.ref != nil {
			ref = *l.ref
		}
		w.Write([]string{l.key, o.Bench, o.Variant, o.Server, l.refName, f(l.value), l.unit, f(l.lo), f(l.hi), l.goal.String(), met,
			f(o.RPS), f(o.P50), f(o.P99), f(o.BytesPerS), f(o.CPUms), f(o.AllocsPerReq), f(o.RSSMiB), f(o.WallS), strconv.Itoa(o.Requests),
			f(ref.RPS), f(ref.P50), f(ref.P99), f(ref.BytesPerS), f(ref.CPUms), f(ref.AllocsPerReq), f(ref.WallS), strconv.Itoa(ref.Requests),
			f(max(o.OtherCPU0, ref.OtherCPU0)), f(max(o.OtherCPU1, ref.OtherCPU1)), strconv.FormatInt(o.Errors+ref.Errors, 10), l.note})
	}
	w.Flush()
	return b.Bytes()
}

func (h *harness) growthJSON() []map[string]any {
	var out []map[string]any
	for _, p := range h.growth {
		var bursts []map[string]any
		for _, b := range p.bursts {
			bursts = append(bursts, map[string]any{"kind": b.kind, "upload_ms": b.uploadMs, "p50_ms": b.p50, "max_ms": b.maxMs,
				"builds": b.builds, "passes": b.passes, "entries_rendered": b.entries, "chunks_rendered": b.chunks, "peak_rss_mib": b.peakMiB})
		}
		out = append(out, map[string]any{"projects": p.projects, "seed_s": p.seedSecs, "boot_ms": p.bootMs, "p9_cold_start_ms": p.p9Ms, "idle_rss_mib": p.idleMiB,
			"root_cold_ms": p.rootColdMs, "root_gzip_bytes": p.rootGzBytes, "root_bytes": p.rootBytes, "root_identity_ms": p.rootIdMs,
			"p1_p50_ms": p.p1.P50, "p1_p99_ms": p.p1.P99, "p1_rps": p.p1.RPS, "p2_p50_ms": percentile(p.p2, 50), "p2_p99_ms": percentile(p.p2, 99),
			"upload_p50_ms": percentile(p.uploads, 50), "root_after_upload": bursts})
	}
	return out
}

func (h *harness) markdown() string {
	var b strings.Builder
	m, c := h.machine, h.cfg
	fmt.Fprintf(&b, "## Gatehouse benchmark, %s\n\n", m.date)
	if c.bin != "" {
		fmt.Fprintf(&b, "- Server under test: prebuilt binary `%s` (-bin)\n", c.bin)
	} else {
		b.WriteString("- Server under test: `go build -tags benchdebug ./cmd/gatehouse` of the working tree when the run began\n")
	}
	if c.quick {
		b.WriteString("- **Quick smoke run (-quick)**: 1 s runs, one round; the numbers only show that every benchmark runs\n")
	}
	fmt.Fprintf(&b, "- Machine: %d CPUs (%s), Linux %s, temp dir on %s\n", m.cpus, m.cpuModel, m.kernel, m.fsType)
	fmt.Fprintf(&b, "- Tools: nginx %s, %s, %s, %s, twine %s, %s (Debian's, `/usr/bin/python3 -m pip`), Go %s\n", m.nginx, m.wrk, m.dd, m.curl, m.twine, m.pip, m.goVersion)
	if h.pin {
		fmt.Fprintf(&b, "- Pinning: servers (Gatehouse, nginx, bare Go) and dd on CPU%d (`taskset -c %d`, Go servers with GOMAXPROCS=%d); wrk, curl, twine, pip and this harness on CPU%d\n",
			cpuServer, cpuServer, c.gomaxprocs, cpuLoad)
	} else {
		fmt.Fprintf(&b, "- Pinning: none (taskset missing or -pin=false); Gatehouse with GOMAXPROCS=%d\n", c.gomaxprocs)
	}
	warm := "no warm-up"
	if c.warmup > 0 {
		warm = c.warmup.String() + " warm-up per server"
	}
	fmt.Fprintf(&b, "- Load: `%s` (keep-alive) per run, %s, %d round(s) interleaved Gatehouse/references; ratio = median of per-round ratios, other columns medians\n",
		wrkCommand(c.conns, c.duration), warm, c.rounds)
	fmt.Fprintf(&b, "- Seed: %d uploads through POST /legacy/ in %s; filler projects inserted directly (scales %s, %d file(s) each)\n",
		h.seeded.uploads, h.seeded.took.Round(100*time.Millisecond), joinInts(c.scales), c.seedFiles)
	fmt.Fprintf(&b, "- Other load on the machine: %.0f%% CPU busy in the second before the run; load average %s at start, %s at end\n",
		m.busyStart, m.loadStart, loadAvg())
	var steps []string
	for _, s := range h.stepTime {
		steps = append(steps, fmt.Sprintf("%s %s", s.name, s.took.Round(time.Second)))
	}
	fmt.Fprintf(&b, "- Run time: %s (%s)\n\n", time.Since(h.start).Round(time.Second), strings.Join(steps, "; "))

	b.WriteString("### Issue 15's table\n\n| What | Measured | Goal | Met |\n|---|---|---|---|\n")
	for _, row := range issueRows {
		var parts []string
		judged, met := 0, 0
		for _, l := range h.lines {
			if l.issue != row.n {
				continue
			}
			mark := ""
			if l.goal.judged() {
				judged++
				if l.met() {
					met++
				} else {
					mark = " ✗"
				}
			}
			parts = append(parts, fmt.Sprintf("%s: %s%s", shortVariant(l), l.valueText(), mark))
		}
		verdict := "—"
		switch {
		case len(parts) == 0:
			verdict, parts = "not measured", []string{"—"}
		case judged == 0:
			verdict = "recorded"
		case met == judged:
			verdict = "met"
		default:
			verdict = fmt.Sprintf("**not met** (%d of %d)", judged-met, judged)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.what, strings.Join(parts, "; "), row.goal, verdict)
	}
	b.WriteString("\n✗ marks the measurements that miss their goal.\n\n")

	b.WriteString("### Every row\n\n")
	b.WriteString("| ID | Variant | Gatehouse | Reference | Value (rounds' range) | p50 ms G / R | p99 ms G / R | CPU ms per 1k req G / R | allocs/req G / R | Other load % CPU0 / CPU1 | RSS MiB | Goal | Met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var notes []string
	seenNote := map[string]bool{}
	for _, l := range h.lines {
		o := l.ours
		met := "—"
		if l.goal.judged() {
			met = "met"
			if !l.met() {
				met = "**not met**"
			}
		}
		ref := result{OtherCPU0: -1, OtherCPU1: -1}
		if l.ref != nil {
			ref = *l.ref
		}
		if o.Errors+ref.Errors > 0 {
			met += fmt.Sprintf(" (%d errors: G %d, R %d)", o.Errors+ref.Errors, o.Errors, ref.Errors)
		}
		dash := func(s string) string {
			if s == "" {
				return "—"
			}
			return s
		}
		pair := func(a, b float64, f func(float64) string) string {
			if a == 0 && b == 0 {
				return "—"
			}
			fb := "—"
			if b != 0 {
				fb = f(b)
			}
			fa := "—"
			if a != 0 {
				fa = f(a)
			}
			return fa + " / " + fb
		}
		allocs := func(v float64) string { return fmt.Sprintf("%.1f", v) }
		cpuf := func(v float64) string { return fmt.Sprintf("%.0f", v) }
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			o.Bench, o.Variant, dash(l.oursCell), dash(l.refCell), l.valueCell(),
			pair(o.P50, ref.P50, ms), pair(o.P99, ref.P99, ms), pair(o.CPUms, ref.CPUms, cpuf), pair(o.AllocsPerReq, ref.AllocsPerReq, allocs),
			otherCell(o, ref), rss(o.RSSMiB), l.goal, met)
		if l.note != "" && !seenNote[l.note] {
			seenNote[l.note] = true // P12's explanation, say, once for all its rows
			notes = append(notes, fmt.Sprintf("%s %s: %s.", o.Bench, o.Variant, l.note))
		}
	}
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("\n")
	h.growthTable(&b)
	h.profileSection(&b)
	fmt.Fprintf(&b, "Charts: `bench-%s-ratios.svg`, `bench-%s-growth.svg`.\n", h.stamp, h.stamp)
	return b.String()
}

func (h *harness) growthTable(b *strings.Builder) {
	if len(h.growth) == 0 {
		return
	}
	b.WriteString("### Growth curve (P4, P9, P11)\n\n")
	b.WriteString("| Projects | inserted in s | boot ms (to /healthz) | P9: exec → first 200 on /simple/, ms | idle RSS MiB | root cold build ms | root gzip / identity MB | P1 p50 ms (warm, 32 conns) | other load % during P1 | P2 p50 ms (cold page) | upload p50 ms | root after upload to a new project: p50 / max ms, entries rendered, peak RSS | to an existing one |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	burst := func(bs []rootBurst, i int) string {
		if i >= len(bs) {
			return "—"
		}
		x := bs[i]
		ent := "—"
		if x.haveCounters {
			ent = fmt.Sprintf("%.0f entries (%.0f builds, %.0f passes)", x.entries, x.builds, x.passes)
		}
		return fmt.Sprintf("%s / %s ms, %s, %.1f MiB", ms(x.p50), ms(x.maxMs), ent, x.peakMiB)
	}
	for _, p := range h.growth {
		fmt.Fprintf(b, "| %s | %.1f | %.0f | %.0f | %.1f | %s | %.2f / %.1f | %s | %s | %s | %s | %s | %s |\n",
			thousands(float64(p.projects)), p.seedSecs, p.bootMs, p.p9Ms, p.idleMiB, ms(p.rootColdMs),
			float64(p.rootGzBytes)/1e6, float64(p.rootBytes)/1e6, ms(p.p1.P50), otherCell(result{OtherCPU0: p.other0, OtherCPU1: p.other1}, result{OtherCPU0: -1, OtherCPU1: -1}),
			ms(percentile(p.p2, 50)), ms(percentile(p.uploads, 50)),
			burst(p.bursts, 0), burst(p.bursts, 1))
	}
	b.WriteString("\n")
}

func (h *harness) profileSection(b *strings.Builder) {
	if len(h.profiles) == 0 {
		return
	}
	b.WriteString("### Profiles of the small-page path\n\n")
	for _, p := range h.profiles {
		fmt.Fprintf(b, "**%s** (`%s`, `%s`): %s req/s while profiled, %.1f heap allocations per request; the handler chain (`web.(*Server).ServeHTTP`, cumulative) is %.0f%% of CPU samples. Flat CPU by where the code lives: ",
			p.name, filepath.Base(p.cpuFile), filepath.Base(p.allocFile), thousands(p.rps), p.allocsPerReq, p.handlerCum)
		var parts []string
		for _, s := range p.byPackage {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", s.pkg, s.pct))
		}
		b.WriteString(strings.Join(parts, ", ") + ". (Kernel time inside system calls is charged to the calls.)\n\n")
		if p.pprofFailures != "" {
			fmt.Fprintf(b, "pprof failed: %s\n\n", p.pprofFailures)
			continue
		}
		b.WriteString("```\n" + strings.Join(p.cpuTop, "\n") + "\n```\n\n")
		if len(p.allocTop) > 0 {
			b.WriteString("Allocations (objects):\n\n```\n" + strings.Join(p.allocTop, "\n") + "\n```\n\n")
		}
	}
}

// shortVariant names a line in the issue summary.
func shortVariant(l line) string {
	switch {
	case l.label != "":
		return l.label
	case l.refName != "":
		return l.ours.Variant + " vs " + l.refName
	}
	return l.ours.Variant
}

func (l line) valueText() string {
	switch l.unit {
	case "×":
		return fmt.Sprintf("%.2f×", l.value)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", l.value)
	case "ms":
		return ms(l.value) + " ms"
	}
	return fmt.Sprintf("%s %s", thousands(l.value), l.unit)
}

func (l line) valueCell() string {
	if l.unit == "×" && l.lo != l.hi {
		return fmt.Sprintf("%.2f× (%.2f–%.2f)", l.value, l.lo, l.hi)
	}
	return l.valueText()
}

// otherCell is the worst round's load from unrelated processes on each
// CPU, over both servers' runs: above ~10 % the line is suspect.
func otherCell(o, r result) string {
	c0, c1 := max(o.OtherCPU0, r.OtherCPU0), max(o.OtherCPU1, r.OtherCPU1)
	if c0 < 0 || c1 < 0 {
		return "—" // not measured (no pinning, or not a wrk line)
	}
	return fmt.Sprintf("%.0f / %.0f", c0, c1)
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func rss(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", v)
}

// thousands formats 12345.6 as "12,346".
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, thousands(float64(x)))
	}
	return strings.Join(s, ", ")
}
