package main

import (
	"math"
	"testing"
)

// A real wrk 4.1 report (Debian), with the optional error lines added.
const wrkSample = `Running 10s test @ http://127.0.0.1:18999/simple/bench-big/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.41ms   21.10ms 108.51ms   85.83%
    Req/Sec     0.86k   688.42     2.30k    77.78%
  Latency Distribution
     50%  812.00us
     75%   15.13ms
     90%   45.48ms
     99%    1.02s
  8431 requests in 10.00s, 1.53GB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:    839.69
Transfer/sec:    156.16KB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 8431, RPS: 839.69, P50: 0.812, P99: 1020, BytesPerSec: 156.16 * 1024, Non2xx3xx: 5, SocketErrors: 7}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
	if r.Requests != want.Requests || !near(r.RPS, want.RPS) || !near(r.P50, want.P50) || !near(r.P99, want.P99) ||
		!near(r.BytesPerSec, want.BytesPerSec) || r.Non2xx3xx != want.Non2xx3xx || r.SocketErrors != want.SocketErrors {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
}

func TestParseWrkNeedsLatency(t *testing.T) {
	if _, err := parseWrk("Requests/sec: 10.0\nTransfer/sec: 1.00MB\n"); err == nil {
		t.Error("parseWrk accepted output without --latency percentiles")
	}
}

func TestParseUnits(t *testing.T) {
	for in, want := range map[string]float64{"839.00B": 839, "2.00MB": 2 << 20, "1.50GB": 1.5 * (1 << 30)} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]float64{"500.00us": 0.5, "1.25ms": 1.25, "2.00s": 2000, "1.50m": 90000} {
		if got, err := parseDuration(in); err != nil || !(math.Abs(got-want) < 1e-9) {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestParseDD(t *testing.T) {
	out := "10+0 records in\n10+0 records out\n10485760 bytes (10 MB, 10 MiB) copied, 0.0236 s, 444 MB/s\n"
	if got, err := parseDD(out); err != nil || got != 0.0236 {
		t.Errorf("parseDD = %v, %v; want 0.0236", got, err)
	}
}
