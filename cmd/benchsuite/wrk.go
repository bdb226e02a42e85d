package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests     int64   // total completed requests
	RPS          float64 // Requests/sec
	P50, P99     float64 // latency percentiles, milliseconds (--latency)
	BytesPerSec  float64 // Transfer/sec: everything read, headers included
	Non2xx3xx    int64   // responses that were not 2xx or 3xx
	SocketErrors int64   // connect + read + write + timeout
	CPUSeconds   float64 // wrk's own user+system time
}

// runWrk runs wrk against url with keep-alive connections (wrk's only mode)
// and one thread, pinned to the load-generator CPU when pinning is on, so
// the server under test keeps its own CPU to itself.
func (h *harness) runWrk(ctx context.Context, url string, headers []string, d time.Duration) (wrkResult, error) {
	return h.runWrkScript(ctx, url, headers, d, "")
}

// runWrkScript is runWrk with a Lua script (wrk -s), or none for "".
func (h *harness) runWrkScript(ctx context.Context, url string, headers []string, d time.Duration, script string) (wrkResult, error) {
	// --timeout: wrk counts answers slower than 2 s (its default) as
	// errors, and 32 concurrent 50 MiB downloads take longer than that.
	args := []string{"-t1", fmt.Sprintf("-c%d", h.cfg.conns), fmt.Sprintf("-d%ds", max(1, int(d.Round(time.Second)/time.Second))), "--latency", "--timeout", "30s"}
	for _, hd := range headers {
		args = append(args, "-H", hd)
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	args = append(args, url)
	cmd := h.pinned(ctx, cpuLoad, "wrk", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v\n%s", url, err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return res, fmt.Errorf("wrk %s: %v\n%s", url, err, out)
	}
	// taskset execs wrk, so this is wrk's own usage.
	res.CPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return res, nil
}

// parseWrk reads wrk 4.x's text report. wrk has no machine-readable output
// without a Lua script, and the text format has been stable for years.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveP50, haveP99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "Requests/sec:" && len(f) == 2:
			r.RPS, err = strconv.ParseFloat(f[1], 64)
			haveRPS = err == nil
		case f[0] == "Transfer/sec:" && len(f) == 2:
			r.BytesPerSec, err = parseBytes(f[1])
		case f[0] == "50%" && len(f) == 2:
			r.P50, err = parseDuration(f[1])
			haveP50 = err == nil
		case f[0] == "99%" && len(f) == 2:
			r.P99, err = parseDuration(f[1])
			haveP99 = err == nil
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.Requests, err = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(sc.Text(), "  Non-2xx or 3xx responses:"):
			r.Non2xx3xx, err = strconv.ParseInt(f[len(f)-1], 10, 64)
		case f[0] == "Socket" && len(f) > 2 && f[1] == "errors:":
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for i := 2; i+1 < len(f); i += 2 {
				n, perr := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if perr != nil {
					err = perr
					break
				}
				r.SocketErrors += n
			}
		}
		if err != nil {
			return r, fmt.Errorf("parse wrk line %q: %v", sc.Text(), err)
		}
	}
	if !haveRPS || !haveP50 || !haveP99 {
		return r, fmt.Errorf("wrk output lacks Requests/sec or the latency distribution (was --latency given?)")
	}
	return r, nil
}

// parseDuration turns wrk's "812.00us", "1.23ms", "2.00s", "1.50m" into
// milliseconds.
func parseDuration(s string) (float64, error) {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				continue // "ms" also ends in "s"; try the next unit
			}
			return v * u.ms, nil
		}
	}
	return 0, fmt.Errorf("not a wrk duration: %q", s)
}

// parseBytes turns wrk's binary-prefixed sizes ("839.00B", "156.16KB",
// "1.21GB") into bytes. wrk scales by 1024.
func parseBytes(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "B")
	if !ok {
		return 0, fmt.Errorf("not a wrk size: %q", s)
	}
	scale := 1.0
	if n := len(num); n > 0 {
		if i := strings.IndexByte("KMGTP", num[n-1]); i >= 0 {
			num = num[:n-1]
			for range i + 1 {
				scale *= 1024
			}
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("not a wrk size: %q", s)
	}
	return v * scale, nil
}

// wrkCommand is the command line as it would be typed, for the report.
func wrkCommand(conns int, d time.Duration) string {
	return fmt.Sprintf("wrk -t1 -c%d -d%s --latency --timeout 30s", conns, d)
}
