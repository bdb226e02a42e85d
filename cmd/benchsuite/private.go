package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The private-index rows (issue 13, part 1): a second Gatehouse on the same
// database and files, with --read-access authenticated, serves the small
// page and the 1 MiB file to a read token (HTTP Basic, __token__), beside
// the public instance serving the same without credentials, interleaved.
// The difference is what verifying the token on every request costs: the
// macaroon's signature and caveats, and the token's row (revoked tokens
// are refused at once, on every instance, so nothing is kept in memory).

// privateBench runs the private step.
func (h *harness) privateBench(ctx context.Context, targets []*target) error {
	cmd := exec.CommandContext(ctx, h.bin, append([]string{"token", "create", "--user", benchUser, "--read", "--description", "benchsuite read"}, h.commonFlags()...)...)
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("gatehouse token create --read: %w", err)
	}
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("__token__:"+strings.TrimSpace(string(out))))

	port, err := freePort()
	if err != nil {
		return err
	}
	args := append([]string{"serve"}, h.commonFlags()...)
	args = append(args, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--base-url", fmt.Sprintf("http://localhost:%d", h.port), "--read-access", "authenticated")
	priv := &server{name: "gatehouse-private", base: fmt.Sprintf("http://127.0.0.1:%d", port),
		cmd: h.pinned(context.Background(), cpuServer, h.bin, args...), log: filepath.Join(h.tmp, "gatehouse-private.log")}
	priv.cmd.Env = childEnv(fmt.Sprintf("GOMAXPROCS=%d", h.cfg.gomaxprocs))
	if err := h.procs.start(priv); err != nil {
		return err
	}
	defer h.procs.stop(priv)
	if err := h.waitHTTP(ctx, priv, priv.base+"/healthz"); err != nil {
		return err
	}

	for _, t := range targets {
		small := t.bench == "P1" && t.variant == fmt.Sprintf("json n=%d", h.cfg.smallFiles)
		if !small && (t.bench != "P5" || t.variant != "download 1 MiB") {
			continue
		}
		pe := endpoint{url: priv.base + strings.TrimPrefix(t.ours.url, h.ours.base), headers: append(slices.Clone(t.ours.headers), auth)}
		// Without the token: the 401 pip answers with a prompt.
		if status, _, hdr, err := h.fetch(ctx, "GET", pe.url, t.ours.headers...); err != nil || status != 401 || hdr.Get("WWW-Authenticate") == "" {
			return fmt.Errorf("GET %s without a token: status %d, %v; want 401 with WWW-Authenticate", pe.url, status, err)
		}
		status, body, _, err := h.fetch(ctx, "GET", pe.url, pe.headers...)
		if err != nil || status != 200 || len(body) != len(t.body) {
			return fmt.Errorf("GET %s with a read token: status %d, %d bytes (want %d), %v", pe.url, status, len(body), len(t.body), err)
		}
		h.logf("private %s", t.variant)
		if h.cfg.warmup > 0 {
			for _, e := range []endpoint{pe, t.ours} {
				if _, err := h.runWrk(ctx, e.url, e.headers, h.cfg.warmup); err != nil {
					return err
				}
			}
		}
		var runs [2][]result
		var ratios []float64
		for round := 1; round <= h.cfg.rounds; round++ {
			for i, c := range []struct {
				s *server
				e endpoint
			}{{priv, pe}, {h.ours, t.ours}} {
				m, err := h.runWrkCPU(ctx, c.s, c.e)
				if err != nil {
					return err
				}
				r := t.result([]string{"gatehouse-private", "gatehouse-public"}[i], m, h.cfg.conns)
				r.Bench, r.Variant, r.Round = "PRIV", "read token, "+strings.TrimPrefix(t.variant, "download "), round
				runs[i] = append(runs[i], r)
				h.raw = append(h.raw, r)
			}
			a, b := runs[0][round-1].RPS, runs[1][round-1].RPS
			if t.file {
				a, b = runs[0][round-1].BytesPerS, runs[1][round-1].BytesPerS
			}
			ratios = append(ratios, ratio(a, b))
			h.logf("  round %d: private %s, public %s, ratio %.2f", round, t.cell(runs[0][round-1]), t.cell(runs[1][round-1]), ratios[round-1])
		}
		o, r := medianResult(runs[0]), medianResult(runs[1])
		h.add(line{ours: o, ref: &r, refName: "public", value: median(ratios), lo: slices.Min(ratios), hi: slices.Max(ratios), unit: "×",
			oursCell: t.cell(o), refCell: "public " + t.cell(r), goal: record("recorded"),
			note: "--read-access authenticated, every request with a read token (HTTP Basic __token__), verified in full each time; public is the same instance's data without credentials"})
	}
	return nil
}
