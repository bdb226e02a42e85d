package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// uploadBench is P6: sequential uploads of distinct wheels through POST
// /legacy/ against dd writing the same bytes, with fsync, to the
// filesystem of the data dir. An upload is timed end to end as the client
// sees it (send, spool and hash, inspect, store with fsync, commit, answer);
// dd is timed by its own report, so it is not charged for process start.
func (h *harness) uploadBench(ctx context.Context) error {
	size := h.cfg.uploadMiB << 20
	srcDir := filepath.Join(h.tmp, "p6-src")
	ddDir := filepath.Join(h.dataDir, "dd-bench") // same filesystem as the blobs
	for _, d := range []string{srcDir, ddDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	defer os.RemoveAll(ddDir)
	rng := rand.New(rand.NewPCG(3, 4))
	// payload leaves room for the zip's own few hundred bytes, so the wheel
	// is just under the nominal size.
	mk := func(version string) (*wheel, error) {
		return buildWheel(uploadProject, version, "py3-none-any", size-4096, rng)
	}

	// An untimed first upload creates the project (extra rows, journal
	// entries) and warms the path.
	w, err := mk("0.0")
	if err != nil {
		return err
	}
	if err := h.uploadWheel(ctx, w); err != nil {
		return err
	}

	poll := pollRSS(h.ours.cmd.Process.Pid)
	var ours, refs []result
	var ratios []float64
	for round := 1; round <= h.cfg.rounds; round++ {
		var upTimes, ddTimes []float64 // seconds
		var total int64
		for i := range h.cfg.uploads {
			w, err := mk(fmt.Sprintf("%d.%d", round, i))
			if err != nil {
				poll.Stop()
				return err
			}
			body, ct, err := uploadBody(w)
			if err != nil {
				poll.Stop()
				return err
			}
			src := filepath.Join(srcDir, w.filename)
			if err := os.WriteFile(src, w.data, 0o644); err != nil {
				poll.Stop()
				return err
			}
			start := time.Now()
			if err := h.upload(ctx, body, ct); err != nil {
				poll.Stop()
				return fmt.Errorf("%s: %w", w.filename, err)
			}
			upTimes = append(upTimes, time.Since(start).Seconds())
			dst := filepath.Join(ddDir, w.filename)
			secs, err := h.dd(ctx, src, dst)
			if err != nil {
				poll.Stop()
				return err
			}
			ddTimes = append(ddTimes, secs)
			os.Remove(dst)
			os.Remove(src)
			total += int64(len(w.data))
		}
		summarize := func(srv string, times []float64) result {
			sum := 0.0
			for _, t := range times {
				sum += t
			}
			return result{Bench: "P6", Variant: fmt.Sprintf("upload %d MiB ×%d", h.cfg.uploadMiB, len(times)), Server: srv,
				N: len(times), Conc: 1, Round: round, RPS: float64(len(times)) / sum,
				P50: percentile(times, 50) * 1000, P99: percentile(times, 99) * 1000, BytesPerS: float64(total) / sum,
				OtherCPU0: -1, OtherCPU1: -1}
		}
		ro, rd := summarize("gatehouse", upTimes), summarize("dd", ddTimes)
		r := ro.BytesPerS / rd.BytesPerS
		ro.Ratio = &r
		ours, refs, ratios = append(ours, ro), append(refs, rd), append(ratios, r)
		h.raw = append(h.raw, ro, rd)
		h.logf("  round %d: upload %.0f MB/s, dd %.0f MB/s, ratio %.2f", round, ro.BytesPerS/1e6, rd.BytesPerS/1e6, r)
	}
	peak := poll.Stop()
	h.add(line{ours: medianResult(ours), ref: medianResult(refs), refName: "dd", ratio: median(ratios),
		lo: slices.Min(ratios), hi: slices.Max(ratios), goal: ratioGoal(0.5, "dd conv=fsync MB/s")})
	h.memoryValue("during-uploads", "peak VmRSS during P6", peak)
	return nil
}

// dd copies src to dst as the reference writer, on the server's CPU, and
// returns the seconds dd itself reports.
func (h *harness) dd(ctx context.Context, src, dst string) (float64, error) {
	cmd := h.pinned(ctx, cpuServer, "dd", "if="+src, "of="+dst, "bs=1M", "conv=fsync")
	cmd.Env = append(os.Environ(), "LC_ALL=C") // a decimal point, English words
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dd: %v\n%s", err, out)
	}
	return parseDD(string(out))
}

// parseDD reads the seconds from GNU dd's last line:
// "10485760 bytes (10 MB, 10 MiB) copied, 0.0236 s, 444 MB/s".
func parseDD(out string) (float64, error) {
	for line := range strings.Lines(out) {
		_, rest, ok := strings.Cut(line, " copied, ")
		if !ok {
			continue
		}
		secs, _, _ := strings.Cut(rest, " s,")
		v, err := strconv.ParseFloat(strings.TrimSpace(secs), 64)
		if err == nil && v > 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("cannot read dd's time from %q", out)
}
