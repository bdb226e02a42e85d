package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

// The benchdebug listener of a Gatehouse built with -tags benchdebug
// (cmd/gatehouse/benchdebug.go): pprof, the heap allocation count and the
// page cache's counters. Without it (a -bin built without the tag) these
// are simply missing from the report.

// memStats reads a {"name": count} document.
func (h *harness) memStats(ctx context.Context, url string) (map[string]uint64, error) {
	var m map[string]uint64
	return m, h.getJSON(ctx, url, &m)
}

func (h *harness) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// oursAllocs is Gatehouse's heap allocation count (runtime.MemStats.Mallocs).
func (h *harness) oursAllocs(ctx context.Context) (uint64, bool) {
	if h.debugAddr == "" {
		return 0, false
	}
	m, err := h.memStats(ctx, h.debugAddr+"/debug/memstats")
	return m["mallocs"], err == nil
}

// cacheStats are web.PageCacheStats as the debug listener reports them, by
// field name (RootBuilds, RootUpdates, RootEntriesRendered, MissingBytes …).
type cacheStats map[string]float64

func (h *harness) pageCacheStats(ctx context.Context) (cacheStats, bool) {
	if h.debugAddr == "" {
		return nil, false
	}
	var s cacheStats
	if err := h.getJSON(ctx, h.debugAddr+"/debug/pagecache", &s); err != nil {
		h.logf("page cache stats: %v", err)
		return nil, false
	}
	return s, true
}

// sub is b − a for every counter.
func (b cacheStats) sub(a cacheStats) cacheStats {
	d := cacheStats{}
	for k, v := range b {
		d[k] = v - a[k]
	}
	return d
}

// saveURL writes what url answers to path.
func (h *harness) saveURL(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
