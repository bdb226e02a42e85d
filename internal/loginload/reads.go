package loginload

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// ReadStats is what the page readers saw.
type ReadStats struct {
	Requests int64         // answered 200
	Errors   int64         // anything else, or no answer
	RPS      float64       // Requests per second of the run
	P50, P99 time.Duration // latency of the 200s
}

// Reads reads url over conns keep-alive connections, each one request
// after another, for d, and returns what they saw.
func Reads(ctx context.Context, url string, conns int, d time.Duration) ReadStats {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var bad int64
			for ctx.Err() == nil {
				t := time.Now()
				ok := get(ctx, client, url)
				if ctx.Err() != nil {
					break // cut off by the end of the run: not an answer
				}
				if ok {
					mine = append(mine, time.Since(t))
				} else {
					bad++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	return ReadStats{Requests: int64(len(lat)), Errors: errs, RPS: float64(len(lat)) / took.Seconds(),
		P50: percentile(lat, 0.50), P99: percentile(lat, 0.99)}
}

func get(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
