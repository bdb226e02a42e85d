package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The pull-through cache rows (issue 13, part 5): a second Gatehouse, on a
// database and files directory of its own, is started with the first one
// as its --upstream. Once it has cached a project, its page and its files
// should serve as fast as the first instance serves its own local ones;
// nginx, serving the local bytes, is in the same rounds as the reference.
// Each round starts the cache empty, so the first request of each page and
// file is a miss, which is timed too: the cost of a name's first request,
// to be paid once per TTL (pages) or once ever (files).
//
// Both instances run on the server CPU, so a miss pays for the upstream's
// own work too, but no network: over the internet add PyPI's round trips.

// missPages is how many distinct filler projects' pages each round asks
// for cold (when the index has filler projects).
const missPages = 20

// upstreamItem is one thing measured from the cache beside its local twin.
type upstreamItem struct {
	variant string
	t       *target  // the local page or file (its nginx endpoint is the reference)
	pull    endpoint // the same from the cache
	file    bool
}

// upstreamBench runs the upstream step.
func (h *harness) upstreamBench(ctx context.Context, targets []*target) error {
	var small *target
	var files []*target
	for _, t := range targets {
		switch {
		case t.bench == "P1" && t.variant == fmt.Sprintf("json n=%d", h.cfg.smallFiles):
			small = t
		case t.bench == "P5":
			files = append(files, t)
		}
	}
	if small == nil {
		return fmt.Errorf("no small JSON page among the targets")
	}
	type miss struct{ pageMS, localMS []float64 }
	var pageMiss miss
	fileMiss := map[string][]float64{} // variant → first-download MB/s per round
	fileLocal := map[string][]float64{}
	var items []*upstreamItem
	runs := map[string][][3]result{} // variant → per round: cache, local, nginx
	for round := 1; round <= h.cfg.rounds; round++ {
		pull, err := h.startPull(ctx, round)
		if err != nil {
			return err
		}
		// Misses: pages first (a filler name each, never asked for before
		// on either side, so the upstream renders it cold too), then the
		// pages and files measured below.
		for k := range missPages {
			if h.filler == 0 {
				break
			}
			name := fillerName((round-1)*missPages + k)
			if (round-1)*missPages+k >= h.filler {
				break
			}
			ms, _, err := h.timedGet(ctx, pull.base+"/simple/"+name+"/", acceptJSON)
			if err != nil {
				h.procs.stop(pull)
				return err
			}
			lms, _, err := h.timedGet(ctx, h.ours.base+"/simple/"+name+"/", acceptJSON)
			if err != nil {
				h.procs.stop(pull)
				return err
			}
			pageMiss.pageMS, pageMiss.localMS = append(pageMiss.pageMS, ms), append(pageMiss.localMS, lms)
		}
		ms, body, err := h.timedGet(ctx, pull.base+"/simple/"+smallProject+"/", acceptJSON)
		if err != nil {
			h.procs.stop(pull)
			return err
		}
		if got, err := countFiles(body); err != nil || got != h.cfg.smallFiles {
			h.procs.stop(pull)
			return fmt.Errorf("the cache's /simple/%s/: %d files, want %d (%v)", smallProject, got, h.cfg.smallFiles, err)
		}
		if h.filler == 0 {
			lms, _, err := h.timedGet(ctx, small.ours.url, acceptJSON)
			if err != nil {
				h.procs.stop(pull)
				return err
			}
			pageMiss.pageMS, pageMiss.localMS = append(pageMiss.pageMS, ms), append(pageMiss.localMS, lms)
		}
		items = items[:0]
		items = append(items, &upstreamItem{variant: fmt.Sprintf("page json n=%d", h.cfg.smallFiles), t: small,
			pull: endpoint{url: pull.base + "/simple/" + smallProject + "/", headers: small.ours.headers}})
		for _, t := range files {
			var mib int
			if _, err := fmt.Sscanf(t.variant, "download %d MiB", &mib); err != nil {
				h.procs.stop(pull)
				return fmt.Errorf("P5 variant %q: %v", t.variant, err)
			}
			proj := dlProjectName(mib)
			path, err := h.pullFileURL(ctx, pull, t, proj)
			if err != nil {
				h.procs.stop(pull)
				return err
			}
			mbps, err := h.timedDownload(ctx, pull.base+path, len(t.body))
			if err != nil {
				h.procs.stop(pull)
				return fmt.Errorf("first download through the cache: %w", err)
			}
			lmbps, err := h.timedDownload(ctx, t.ours.url, len(t.body))
			if err != nil {
				h.procs.stop(pull)
				return err
			}
			fileMiss[t.variant] = append(fileMiss[t.variant], mbps)
			fileLocal[t.variant] = append(fileLocal[t.variant], lmbps)
			items = append(items, &upstreamItem{variant: "file " + strings.TrimPrefix(t.variant, "download "), t: t,
				pull: endpoint{url: pull.base + path}, file: true})
		}
		// Hits: the cache, the local instance and nginx, in turn.
		for _, it := range items {
			cs := []struct {
				s *server
				e endpoint
			}{{pull, it.pull}, {h.ours, it.t.ours}, {h.nginx, it.t.nginx}}
			if h.cfg.warmup > 0 && round == 1 {
				for _, c := range cs {
					if _, err := h.runWrk(ctx, c.e.url, c.e.headers, h.cfg.warmup); err != nil {
						h.procs.stop(pull)
						return err
					}
				}
			}
			var row [3]result
			msg := fmt.Sprintf("  round %d %s:", round, it.variant)
			for i, c := range cs {
				m, err := h.runWrkCPU(ctx, c.s, c.e)
				if err != nil {
					h.procs.stop(pull)
					return err
				}
				row[i] = it.t.result([]string{"gatehouse-cache", "gatehouse-local", "nginx"}[i], m, h.cfg.conns)
				row[i].Bench, row[i].Variant, row[i].Round = "UP", "cached "+it.variant, round
				h.raw = append(h.raw, row[i])
				msg += fmt.Sprintf(" %s %s", row[i].Server, it.t.cell(row[i]))
			}
			runs[it.variant] = append(runs[it.variant], row)
			h.logf("%s", msg)
		}
		h.procs.stop(pull)
	}

	for _, it := range items {
		rs := runs[it.variant]
		for ref := 1; ref <= 2; ref++ {
			var ratios []float64
			var ours, other []result
			for _, row := range rs {
				a, b := row[0].RPS, row[ref].RPS
				if it.file {
					a, b = row[0].BytesPerS, row[ref].BytesPerS
				}
				ratios = append(ratios, ratio(a, b))
				ours, other = append(ours, row[0]), append(other, row[ref])
			}
			o, r := medianResult(ours), medianResult(other)
			refName := []string{"", "local", "nginx"}[ref]
			g := record("recorded")
			if ref == 1 {
				g = ratioGoal(0.9, "the same from local")
			}
			h.add(line{ours: o, ref: &r, refName: refName, value: median(ratios), lo: slices.Min(ratios), hi: slices.Max(ratios), unit: "×",
				oursCell: it.t.cell(o), refCell: refName + " " + it.t.cell(r), goal: g,
				note: "a second Gatehouse with the first as --upstream, its cache filled by the round's first requests; local is the first instance serving its own"})
		}
	}
	if len(pageMiss.pageMS) > 0 {
		m, l := median(pageMiss.pageMS), median(pageMiss.localMS)
		o := result{Bench: "UP", Variant: "page miss", Server: "gatehouse-cache", P50: m, P99: percentile(pageMiss.pageMS, 99), OtherCPU0: -1, OtherCPU1: -1}
		r := result{Bench: "UP", Variant: "page miss", Server: "gatehouse-local", P50: l, P99: percentile(pageMiss.localMS, 99), OtherCPU0: -1, OtherCPU1: -1}
		h.raw = append(h.raw, o, r)
		h.add(line{ours: o, ref: &r, refName: "local", value: m, unit: "ms", oursCell: fmt.Sprintf("%s ms", ms(m)), refCell: fmt.Sprintf("local %s ms", ms(l)),
			goal: record("recorded"), note: fmt.Sprintf("one request of a page never asked for before (%d of them, one at a time): the cache asks the upstream (PEP 691 JSON), stores and rewrites it; local is the same page from the upstream itself, asked right after", len(pageMiss.pageMS))})
		h.logf("page miss: median %s ms through the cache, %s ms from local (%d pages)", ms(m), ms(l), len(pageMiss.pageMS))
	}
	for _, t := range files {
		mv, lv := fileMiss[t.variant], fileLocal[t.variant]
		if len(mv) == 0 {
			continue
		}
		variant := "file miss " + strings.TrimPrefix(t.variant, "download ")
		o := result{Bench: "UP", Variant: variant, Server: "gatehouse-cache", BytesPerS: median(mv) * 1e6, OtherCPU0: -1, OtherCPU1: -1}
		r := result{Bench: "UP", Variant: variant, Server: "gatehouse-local", BytesPerS: median(lv) * 1e6, OtherCPU0: -1, OtherCPU1: -1}
		h.raw = append(h.raw, o, r)
		h.add(line{ours: o, ref: &r, refName: "local", value: median(mv) / median(lv), lo: slices.Min(mv) / median(lv), hi: slices.Max(mv) / median(lv), unit: "×",
			oursCell: fmt.Sprintf("%.0f MB/s", median(mv)), refCell: fmt.Sprintf("local %.0f MB/s", median(lv)), goal: record("recorded"),
			note: "the first download of a file, one client: fetched from the upstream, streamed to the client while it is written to the store and hashed, published when its sha256 matches the page; local is one download of the same file from the upstream"})
		h.logf("%s: %.0f MB/s through the cache, %.0f MB/s from local", variant, median(mv), median(lv))
	}
	return nil
}

// startPull starts an empty caching Gatehouse with ours as its upstream.
func (h *harness) startPull(ctx context.Context, round int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.tmp, fmt.Sprintf("pull-%d", round))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := &server{name: "gatehouse-cache", base: base,
		cmd: h.pinned(context.Background(), cpuServer, h.bin, "serve", "--data-dir", dir, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--base-url", fmt.Sprintf("http://localhost:%d", port), "--upstream", h.ours.base+"/simple/", "--upstream-ttl", "1h"),
		log: filepath.Join(h.tmp, fmt.Sprintf("gatehouse-cache-%d.log", round))}
	s.cmd.Env = childEnv(fmt.Sprintf("GOMAXPROCS=%d", h.cfg.gomaxprocs))
	if err := h.procs.start(s); err != nil {
		return nil, err
	}
	if err := h.waitHTTP(ctx, s, base+"/healthz"); err != nil {
		h.procs.stop(s)
		return nil, err
	}
	return s, nil
}

// pullFileURL reads the cache's page of proj and returns the path of its
// one file there.
func (h *harness) pullFileURL(ctx context.Context, pull *server, t *target, proj string) (string, error) {
	status, body, _, err := h.fetch(ctx, http.MethodGet, pull.base+"/simple/"+proj+"/", acceptJSON)
	if err != nil || status != http.StatusOK {
		return "", fmt.Errorf("the cache's /simple/%s/: status %d, %v", proj, status, err)
	}
	var page struct {
		Files []struct {
			URL string `json:"url"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Files) != 1 {
		return "", fmt.Errorf("the cache's /simple/%s/: want one file (%v)", proj, err)
	}
	u, err := neturl.Parse(page.Files[0].URL)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(u.Path, "/upstream/") {
		return "", fmt.Errorf("the cache links %s, not one of its /upstream/ files", u)
	}
	return u.Path, nil
}

// timedGet is one GET that must answer 200, and how long it took in ms.
func (h *harness) timedGet(ctx context.Context, url string, headers ...string) (float64, []byte, error) {
	t0 := time.Now()
	status, body, _, err := h.fetch(ctx, http.MethodGet, url, headers...)
	took := msSince(t0)
	if err != nil || status != http.StatusOK {
		return 0, nil, fmt.Errorf("GET %s: status %d, %v", url, status, err)
	}
	return took, body, nil
}

// timedDownload is one GET of a file of size bytes, in MB/s.
func (h *harness) timedDownload(ctx context.Context, url string, size int) (float64, error) {
	t0 := time.Now()
	status, body, _, err := h.fetch(ctx, http.MethodGet, url)
	took := time.Since(t0)
	if err != nil || status != http.StatusOK || len(body) != size {
		return 0, fmt.Errorf("GET %s: status %d, %d bytes (want %d), %v", url, status, len(body), size, err)
	}
	return float64(size) / took.Seconds() / 1e6, nil
}
