package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one server's summary in one benchmark (spec Part 4.1 rule 5).
type result struct {
	Bench        string             `json:"bench"`
	Variant      string             `json:"variant"`
	Server       string             `json:"server"` // gatehouse, nginx, bare-go, dd, idle …
	N            int                `json:"n"`      // files per project (P1, P3); uploads per round (P6); projects (P4, P11)
	Conc         int                `json:"conc"`
	RPS          float64            `json:"rps"`
	P50          float64            `json:"p50_ms"`
	P99          float64            `json:"p99_ms"`
	BytesPerS    float64            `json:"bytes_per_s"`
	RSSMiB       float64            `json:"rss_mib"`
	CPUms        float64            `json:"cpu_ms_per_1k"`            // server CPU (user+sys) per 1,000 requests
	AllocsPerReq float64            `json:"allocs_per_req,omitempty"` // heap allocations per request (benchdebug builds, bare Go)
	OtherCPU0    float64            `json:"other_cpu0_pct"`           // CPU0 used by unrelated processes (max over rounds; -1 unknown)
	OtherCPU1    float64            `json:"other_cpu1_pct"`           // CPU1 likewise
	Ratio        *float64           `json:"ratio"`                    // ours/reference; null on reference lines
	Errors       int64              `json:"errors"`
	Round        int                `json:"round,omitempty"` // only in the per-round file
	WallS        float64            `json:"wall_s,omitempty"`
	Requests     int                `json:"requests,omitempty"`
	Extra        map[string]float64 `json:"extra,omitempty"`
	Goal         string             `json:"goal,omitempty"`
	Met          *bool              `json:"met,omitempty"`
	Key          string             `json:"key,omitempty"`
	Value        *float64           `json:"value,omitempty"` // what the goal judges
}

// goal is a pass mark from the issue or the spec: bounds on a line's value.
// A goal with neither bound only records.
type goal struct {
	text     string
	min, max float64
	hasMin   bool
	hasMax   bool
}

func atLeast(v float64, text string) goal { return goal{text: text, min: v, hasMin: true} }
func atMost(v float64, text string) goal  { return goal{text: text, max: v, hasMax: true} }
func within(lo, hi float64, text string) goal {
	return goal{text: text, min: lo, max: hi, hasMin: true, hasMax: true}
}
func record(text string) goal { return goal{text: text} }

// ratioGoal is the usual "≥ v× reference" mark.
func ratioGoal(v float64, what string) goal { return atLeast(v, fmt.Sprintf("≥ %.2g× %s", v, what)) }
func maxMiBGoal(v float64) goal             { return atMost(v, fmt.Sprintf("≤ %.0f MiB", v)) }

func (g goal) String() string {
	if g.text == "" {
		return "—"
	}
	return g.text
}

func (g goal) judged() bool { return g.hasMin || g.hasMax }

func (g goal) ok(v float64) bool {
	return (!g.hasMin || v >= g.min) && (!g.hasMax || v <= g.max)
}

// line is one row of the report: our summary beside a reference's, or a
// value of ours on its own (memory, render counts).
type line struct {
	key      string // bench, variant and reference: unique in a run
	label    string // its name in the issue summary; "" is variant vs reference
	issue    int    // the row of issue 15's table it answers (issueRows), 0 for none
	ours     result
	ref      *result
	refName  string
	value    float64 // what the goal judges: a ratio, MiB, a count
	lo, hi   float64 // smallest and largest per-round value: how noisy it was
	unit     string  // "×" for ratios, else a unit for the value column
	oursCell string
	refCell  string
	goal     goal
	note     string
	chart    bool // drawn in the ratios chart
}

func (l line) met() bool {
	if l.ours.Errors > 0 || (l.ref != nil && l.ref.Errors > 0) { // a fast error is no success
		return false
	}
	return l.goal.ok(l.value)
}

func (h *harness) add(l line) {
	if l.key == "" {
		l.key = l.ours.Bench + "/" + l.ours.Variant
		if l.refName != "" {
			l.key += "/" + l.refName
		}
	}
	if l.lo == 0 && l.hi == 0 {
		l.lo, l.hi = l.value, l.value
	}
	h.lines = append(h.lines, l)
}

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
	out.AllocsPerReq = pick(func(r result) float64 { return r.AllocsPerReq })
	out.WallS = pick(func(r result) float64 { return r.WallS })
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
	pip, twine, curl                string
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
	m.curl, _, _ = strings.Cut(first("curl", "--version"), " (")
	m.twine, _, _ = strings.Cut(first("twine", "--version"), " (")
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
