package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// floodScript has wrk ask for a new made-up project name on every request,
// as a scanner or a typo-squatting probe would.
const floodScript = `local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/simple/no-such-project-" .. n .. "/")
end
`

// floodBench is issue 15's page-cache row: a flood of unknown names must
// not grow memory. wrk asks for distinct made-up names for one run; the
// line is the RSS growth, with the 404 cache's own size and evictions
// beside it (benchdebug builds).
func (h *harness) floodBench(ctx context.Context) error {
	script := filepath.Join(h.tmp, "flood.lua")
	if err := os.WriteFile(script, []byte(floodScript), 0o644); err != nil {
		return err
	}
	pid := h.ours.cmd.Process.Pid
	before, err := procStatus(pid, "VmRSS")
	if err != nil {
		return err
	}
	s0, haveStats := h.pageCacheStats(ctx)
	poll := pollRSS(pid)
	m, err := h.runWrkCPUScript(ctx, h.ours, endpoint{url: h.ours.base + "/"}, script)
	peak := poll.Stop()
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	after, err := procStatus(pid, "VmRSS")
	if err != nil {
		return err
	}
	r := result{Bench: "CACHE", Variant: "flood of unknown names", Server: "gatehouse", Conc: h.cfg.conns, RPS: m.w.RPS,
		P50: m.w.P50, P99: m.w.P99, CPUms: m.cpuPer1k, RSSMiB: after, OtherCPU0: m.otherCPU0, OtherCPU1: m.otherCPU1,
		Requests: int(m.w.Requests), Errors: m.w.SocketErrors, // every answer is a 404, as it should be
		Extra: map[string]float64{"rss_before_mib": before, "rss_peak_mib": peak}}
	note := fmt.Sprintf("%d requests for distinct made-up names; RSS %.1f → %.1f MiB (peak %.1f)", m.w.Requests, before, after, peak)
	if haveStats {
		s1, _ := h.pageCacheStats(ctx)
		r.Extra["missing_entries"], r.Extra["missing_bytes"], r.Extra["missing_evictions"] = s1["MissingEntries"], s1["MissingBytes"], s1["MissingEvictions"]-s0["MissingEvictions"]
		note += fmt.Sprintf("; the 404 cache holds %.0f names in %.1f MiB after %.0f evictions", s1["MissingEntries"], s1["MissingBytes"]/(1<<20), s1["MissingEvictions"]-s0["MissingEvictions"])
	}
	growth := max(0, peak-before)
	h.logf("  %s", note)
	h.raw = append(h.raw, r)
	// The 404 share is a sixteenth of --page-cache-size (4 MiB of the
	// default 64): growth beyond it plus the GC's slack would be the leak.
	h.add(line{issue: 2, ours: r, value: growth, unit: "MiB", oursCell: fmt.Sprintf("+%.1f MiB peak RSS over %s requests", growth, thousands(float64(m.w.Requests))),
		goal: atMost(8, "RSS growth ≤ 8 MiB (bounded)"), note: note})
	return nil
}
