package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one JSON line of the output (spec Part 4.1 rule 5).
type result struct {
	Bench     string   `json:"bench"`
	Variant   string   `json:"variant"`
	Server    string   `json:"server"` // gatehouse, nginx or dd
	N         int      `json:"n"`      // files per project (P1, P3); uploads per round (P6)
	Conc      int      `json:"conc"`
	RPS       float64  `json:"rps"`
	P50       float64  `json:"p50_ms"`
	P99       float64  `json:"p99_ms"`
	BytesPerS float64  `json:"bytes_per_s"`
	RSSMiB    float64  `json:"rss_mib"`
	CPUms     float64  `json:"cpu_ms_per_1k"`  // server CPU (user+sys) per 1,000 requests
	OtherCPU0 float64  `json:"other_cpu0_pct"` // CPU0 used by unrelated processes (max over rounds; -1 unknown)
	OtherCPU1 float64  `json:"other_cpu1_pct"` // CPU1 likewise
	Ratio     *float64 `json:"ratio"`          // ours/reference; null on reference lines
	Errors    int64    `json:"errors"`
	Round     int      `json:"round,omitempty"` // only in the per-round file
	Goal      string   `json:"goal,omitempty"`
	Met       *bool    `json:"met,omitempty"`
}

// goal is a pass mark from the spec: a minimum ratio or a maximum RSS.
type goal struct {
	minRatio float64 // when > 0
	maxMiB   float64 // when > 0
	what     string
}

func ratioGoal(v float64, what string) goal { return goal{minRatio: v, what: what} }
func maxMiBGoal(v float64) goal             { return goal{maxMiB: v} }

func (g goal) String() string {
	if g.minRatio > 0 {
		return fmt.Sprintf("≥ %.1f× %s", g.minRatio, g.what)
	}
	return fmt.Sprintf("≤ %.0f MiB", g.maxMiB)
}

// line is one row of the report: our summary beside the reference's.
type line struct {
	ours    result
	ref     result
	refName string  // "" for memory lines
	ratio   float64 // median of the rounds' ratios
	lo, hi  float64 // smallest and largest round ratio: how noisy it was
	goal    goal
	note    string
}

func (l line) met() bool {
	if l.ours.Errors > 0 { // a fast error is no success
		return false
	}
	if l.goal.minRatio > 0 {
		return l.ratio >= l.goal.minRatio
	}
	return l.ours.RSSMiB <= l.goal.maxMiB
}

func (h *harness) add(l line) { h.lines = append(h.lines, l) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile is the nearest-rank percentile of a small sample.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// medianResult summarises rounds field by field (each field's own median).
func medianResult(rs []result) result {
	out := rs[0]
	out.Round = 0
	pick := func(f func(r result) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	out.RPS = pick(func(r result) float64 { return r.RPS })
	out.P50 = pick(func(r result) float64 { return r.P50 })
	out.P99 = pick(func(r result) float64 { return r.P99 })
	out.BytesPerS = pick(func(r result) float64 { return r.BytesPerS })
	out.RSSMiB = pick(func(r result) float64 { return r.RSSMiB })
	out.CPUms = pick(func(r result) float64 { return r.CPUms })
	out.OtherCPU0, out.OtherCPU1 = -1, -1
	for _, r := range rs { // the worst round tells whether to trust the line
		out.OtherCPU0, out.OtherCPU1 = max(out.OtherCPU0, r.OtherCPU0), max(out.OtherCPU1, r.OtherCPU1)
	}
	out.Errors = 0
	for _, r := range rs {
		out.Errors += r.Errors
	}
	return out
}

// machineInfo describes where the numbers come from.
type machineInfo struct {
	cpus                            int
	cpuModel, kernel, fsType        string
	nginx, wrk, dd, goVersion, date string
	loadStart                       string  // load average when the run began
	busyStart                       float64 // % CPU busy in the second before the run
}

func probeMachine(ctx context.Context, pinned bool) machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), goVersion: runtime.Version(), date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.kernel = strings.TrimSpace(string(b))
	first := func(name string, args ...string) string {
		out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput() // wrk -v exits 1
		l, _, _ := strings.Cut(string(out), "\n")
		return strings.TrimSpace(l)
	}
	m.nginx = strings.TrimPrefix(first("nginx", "-v"), "nginx version: ")
	if v := first("dpkg-query", "-W", "-f", "${Version}", "nginx"); v != "" && !strings.Contains(v, "no packages") {
		m.nginx += " (Debian " + v + ")"
	}
	m.wrk, _, _ = strings.Cut(first("wrk", "-v"), " [")
	m.dd = first("dd", "--version")
	// findmnt names ext4 as such; stat -f says "ext2/ext3" for it.
	if m.fsType = first("findmnt", "-n", "-o", "FSTYPE", "-T", os.TempDir()); m.fsType == "" {
		m.fsType = first("stat", "-f", "-c", "%T", os.TempDir())
	}
	m.loadStart = loadAvg()
	m.busyStart = cpuBusy(time.Second)
	return m
}

// loadAvg is the 1-, 5- and 15-minute load average. The suite shares the
// machine with whatever else runs; the report says how busy it was.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuBusy samples /proc/stat over d and returns the share of all CPUs that
// was busy (not idle or iowait), in percent, or -1.
func cpuBusy(d time.Duration) float64 {
	read := func() (busy, total float64, ok bool) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, false
		}
		l, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(l)
		if len(f) < 6 || f[0] != "cpu" {
			return 0, 0, false
		}
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			total += x
			if i != 3 && i != 4 { // idle, iowait
				busy += x
			}
		}
		return busy, total, true
	}
	b0, t0, ok0 := read()
	time.Sleep(d)
	b1, t1, ok1 := read()
	if !ok0 || !ok1 || t1 == t0 {
		return -1
	}
	return 100 * (b1 - b0) / (t1 - t0)
}

// report writes the JSON lines and the markdown to -out and prints the
// markdown.
func (h *harness) report() error {
	if err := os.MkdirAll(h.cfg.outDir, 0o755); err != nil {
		return err
	}
	stamp := h.start.UTC().Format("20060102-150405")
	base := filepath.Join(h.cfg.outDir, "bench-"+stamp)

	var sum bytes.Buffer
	enc := json.NewEncoder(&sum)
	for _, l := range h.lines {
		o := l.ours
		if l.refName != "" {
			r := l.ratio
			o.Ratio = &r
		}
		met := l.met()
		o.Goal, o.Met = l.goal.String(), &met
		enc.Encode(o)
		if l.refName != "" {
			ref := l.ref
			ref.Ratio = nil
			enc.Encode(ref)
		}
	}
	var raw bytes.Buffer
	enc = json.NewEncoder(&raw)
	for _, r := range h.raw {
		enc.Encode(r)
	}
	md := h.markdown()
	for _, f := range []struct {
		path string
		data []byte
	}{{base + ".jsonl", sum.Bytes()}, {base + "-rounds.jsonl", raw.Bytes()}, {base + ".md", []byte(md)}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprint(h.stdout, md)
	h.logf("wrote %s.jsonl, %s-rounds.jsonl and %s.md", base, base, base)
	return nil
}

func (h *harness) markdown() string {
	var b strings.Builder
	m, c := h.machine, h.cfg
	fmt.Fprintf(&b, "## Gatehouse benchmark, %s\n\n", m.date)
	if c.bin != "" {
		fmt.Fprintf(&b, "- Server under test: prebuilt binary `%s` (-bin)\n", c.bin)
	} else {
		b.WriteString("- Server under test: `go build ./cmd/gatehouse` of the working tree when the run began\n")
	}
	fmt.Fprintf(&b, "- Machine: %d CPUs (%s), Linux %s, temp dir on %s\n", m.cpus, m.cpuModel, m.kernel, m.fsType)
	fmt.Fprintf(&b, "- Tools: nginx %s, %s, %s, Go %s\n", m.nginx, m.wrk, m.dd, m.goVersion)
	if h.pin {
		fmt.Fprintf(&b, "- Pinning: servers and dd on CPU%d (`taskset -c %d`, Gatehouse with GOMAXPROCS=%d); wrk and this harness on CPU%d\n",
			cpuServer, cpuServer, c.gomaxprocs, cpuLoad)
	} else {
		fmt.Fprintf(&b, "- Pinning: none (taskset missing or -pin=false); Gatehouse with GOMAXPROCS=%d\n", c.gomaxprocs)
	}
	fmt.Fprintf(&b, "- Load: `%s` (keep-alive) per run, %s warm-up per server, %d round(s) interleaved Gatehouse/reference; ratio = median of per-round ratios, other columns medians\n",
		wrkCommand(c.conns, c.duration), c.warmup, c.rounds)
	fmt.Fprintf(&b, "- Seed: %d uploads through POST /legacy/ in %s\n", h.seeded.uploads, h.seeded.took.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "- Other load on the machine: %.0f%% CPU busy in the second before the run; load average %s at start, %s at end\n",
		m.busyStart, m.loadStart, loadAvg())
	fmt.Fprintf(&b, "- Run time: %s\n\n", time.Since(h.start).Round(time.Second))

	b.WriteString("| ID | Variant | Gatehouse | Reference | Ratio (rounds' range) | p50 ms G / R | p99 ms G / R | CPU ms per 1k req G / R | Other load % CPU0 / CPU1 | RSS MiB | Goal | Met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var notes []string
	for _, l := range h.lines {
		o, r := l.ours, l.ref
		met := "met"
		if !l.met() {
			met = "**not met**"
		}
		if o.Errors+r.Errors > 0 {
			met += fmt.Sprintf(" (%d errors: G %d, R %d)", o.Errors+r.Errors, o.Errors, r.Errors)
		}
		switch {
		case l.refName == "":
			fmt.Fprintf(&b, "| %s | %s | %.1f MiB | — | — | — | — | — | — | %.1f | %s | %s |\n", o.Bench, o.Variant, o.RSSMiB, o.RSSMiB, l.goal, met)
			if l.note != "" {
				notes = append(notes, fmt.Sprintf("MEM %s: %s.", o.Variant, l.note))
			}
		case o.Bench == "P5" || o.Bench == "P6":
			fmt.Fprintf(&b, "| %s | %s | %.0f MB/s | %s %.0f MB/s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s |\n",
				o.Bench, o.Variant, o.BytesPerS/1e6, l.refName, r.BytesPerS/1e6, l.ratioCell(),
				ms(o.P50), ms(r.P50), ms(o.P99), ms(r.P99), cpu(o.CPUms, r.CPUms), l.otherCell(), rss(o.RSSMiB), l.goal, met)
		default:
			fmt.Fprintf(&b, "| %s | %s | %s req/s | %s %s req/s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s |\n",
				o.Bench, o.Variant, thousands(o.RPS), l.refName, thousands(r.RPS), l.ratioCell(),
				ms(o.P50), ms(r.P50), ms(o.P99), ms(r.P99), cpu(o.CPUms, r.CPUms), l.otherCell(), rss(o.RSSMiB), l.goal, met)
		}
	}
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
	return b.String()
}

func (l line) ratioCell() string {
	if l.lo == l.hi {
		return fmt.Sprintf("%.2f", l.ratio)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", l.ratio, l.lo, l.hi)
}

// otherCell is the worst round's load from unrelated processes on each
// CPU, over both servers' runs: above ~10 % the line is suspect.
func (l line) otherCell() string {
	c0, c1 := max(l.ours.OtherCPU0, l.ref.OtherCPU0), max(l.ours.OtherCPU1, l.ref.OtherCPU1)
	if c0 < 0 || c1 < 0 {
		return "—" // not measured (no pinning)
	}
	return fmt.Sprintf("%.0f / %.0f", c0, c1)
}

func cpu(g, r float64) string {
	if g == 0 && r == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f / %.0f", g, r)
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
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
