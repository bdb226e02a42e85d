package metrics

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// CacheStats is what the Simple API page cache counts (web.PageCacheStats,
// as the caller adapts it).
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Bytes                   int64
	Entries                 int
}

// WatchPageCache exports the Simple page cache, read at every scrape.
func (m *Metrics) WatchPageCache(stats func() CacheStats) error {
	return m.Register(&funcCollector{
		descs: []*prometheus.Desc{
			desc("simple_cache_hits_total", "Simple API project pages (and known 404s) served from memory."),
			desc("simple_cache_misses_total", "Simple API requests that had to render a page, or wait for one being rendered."),
			desc("simple_cache_evictions_total", "Simple API pages dropped to stay within --page-cache-size."),
			desc("simple_cache_bytes", "Bytes held by cached Simple API pages."),
			desc("simple_cache_entries", "Simple API pages held."),
		},
		collect: func(ch chan<- prometheus.Metric, d []*prometheus.Desc) {
			s := stats()
			ch <- prometheus.MustNewConstMetric(d[0], prometheus.CounterValue, float64(s.Hits))
			ch <- prometheus.MustNewConstMetric(d[1], prometheus.CounterValue, float64(s.Misses))
			ch <- prometheus.MustNewConstMetric(d[2], prometheus.CounterValue, float64(s.Evictions))
			ch <- prometheus.MustNewConstMetric(d[3], prometheus.GaugeValue, float64(s.Bytes))
			ch <- prometheus.MustNewConstMetric(d[4], prometheus.GaugeValue, float64(s.Entries))
		},
	})
}

// OutboxStats is the email outbox as one instance sees it.
type OutboxStats struct {
	Pending  int64  // not sent yet and still to be tried (the outbox depth)
	GivenUp  int64  // not sent, and no attempts left
	Sent     uint64 // sent by this instance since it started
	Failures uint64 // failed send attempts by this instance since it started
}

// WatchOutbox exports the outbox. depth queries the database, so it gets a
// short deadline: a slow database shows as gatehouse_outbox_up 0, not as a
// hanging scrape.
func (m *Metrics) WatchOutbox(depth func(ctx context.Context) (OutboxStats, error)) error {
	return m.Register(&funcCollector{
		descs: []*prometheus.Desc{
			desc("outbox_pending", "Emails in the outbox not sent yet, still to be tried (all instances)."),
			desc("outbox_given_up", "Emails in the outbox that ran out of attempts (all instances); see the server log for why."),
			desc("outbox_sent_total", "Emails this instance sent."),
			desc("outbox_send_failures_total", "Send attempts of this instance that failed (each is retried later)."),
			desc("outbox_up", "1 when the outbox could be read at this scrape."),
		},
		collect: func(ch chan<- prometheus.Metric, d []*prometheus.Desc) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s, err := depth(ctx)
			up := 1.0
			if err != nil {
				up = 0
			} else {
				ch <- prometheus.MustNewConstMetric(d[0], prometheus.GaugeValue, float64(s.Pending))
				ch <- prometheus.MustNewConstMetric(d[1], prometheus.GaugeValue, float64(s.GivenUp))
			}
			ch <- prometheus.MustNewConstMetric(d[2], prometheus.CounterValue, float64(s.Sent))
			ch <- prometheus.MustNewConstMetric(d[3], prometheus.CounterValue, float64(s.Failures))
			ch <- prometheus.MustNewConstMetric(d[4], prometheus.GaugeValue, up)
		},
	})
}

// WatchDB exports the database pool's statistics (open, in use, idle,
// waits) as go_sql_* series labelled db_name="gatehouse".
func (m *Metrics) WatchDB(d *sql.DB) error {
	return m.Register(collectors.NewDBStatsCollector(d, namespace))
}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, nil, nil)
}

// funcCollector is a fixed set of series computed at scrape time.
type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric, d []*prometheus.Desc)
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch, c.descs) }

// UpstreamStats is what the pull-through cache counts: the fields of
// upstream.StatsSnapshot, which converts to it.
type UpstreamStats struct {
	PageHits, PageRevalidated, PageMisses, PageStale int64
	FileHits, FileFetches, FileBytes, FileRefused    int64
	Errors                                           int64
}

// WatchUpstream exports the pull-through cache (--upstream), read at every
// scrape. The counters are this instance's since it started.
func (m *Metrics) WatchUpstream(stats func() UpstreamStats) error {
	return m.Register(&funcCollector{
		descs: []*prometheus.Desc{
			desc("upstream_page_hits_total", "Upstream project pages answered from the cache without asking upstream."),
			desc("upstream_page_revalidations_total", "Upstream project pages upstream confirmed unchanged (304) after --upstream-ttl."),
			desc("upstream_page_misses_total", "Upstream project pages fetched from upstream: first asked for, or changed there."),
			desc("upstream_page_stale_total", "Upstream project pages served stale, marked so, because no upstream answered."),
			desc("upstream_file_hits_total", "Upstream files (and PEP 658 metadata) served from the file store."),
			desc("upstream_file_fetches_total", "Upstream files (and PEP 658 metadata) fetched from upstream on a first download."),
			desc("upstream_fetched_bytes_total", "Bytes of upstream files read from upstream."),
			desc("upstream_digest_mismatches_total", "Upstream files whose bytes did not match the sha256 of their page: never served whole, never stored."),
			desc("upstream_errors_total", "Requests to upstream that failed: unreachable, an error status, an unreadable page, a broken transfer."),
		},
		collect: func(ch chan<- prometheus.Metric, d []*prometheus.Desc) {
			s := stats()
			for i, v := range []int64{s.PageHits, s.PageRevalidated, s.PageMisses, s.PageStale, s.FileHits, s.FileFetches, s.FileBytes, s.FileRefused, s.Errors} {
				ch <- prometheus.MustNewConstMetric(d[i], prometheus.CounterValue, float64(v))
			}
		},
	})
}
