package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
	"github.com/gatehouse-index/gatehouse/internal/web"
)

// watch registers the series read at scrape time: the Simple page cache,
// the outbox, the database pool and, with --upstream, the pull-through
// cache.
func watch(m *metrics.Metrics, a *app, srv *web.Server, worker *mail.Worker, up *upstream.Service) error {
	var upErr error
	if up != nil {
		upErr = m.WatchUpstream(func() metrics.UpstreamStats { return metrics.UpstreamStats(up.Stats().Snapshot()) })
	}
	return errors.Join(upErr,
		m.WatchPageCache(func() metrics.CacheStats {
			st := srv.PageCacheStats()
			return metrics.CacheStats{Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions + st.MissingEvictions,
				Bytes: st.Bytes + st.MissingBytes, Entries: st.Entries + st.MissingEntries}
		}),
		m.WatchOutbox(func(ctx context.Context) (metrics.OutboxStats, error) {
			var st metrics.OutboxStats
			st.Sent, st.Failures = worker.Counts()
			var err error
			st.Pending, st.GivenUp, err = worker.Depth(ctx)
			return st, err
		}),
		m.WatchDB(a.db.DB),
	)
}

// metricsServer serves /metrics, and nothing else, on --metrics-listen.
func metricsServer(m *metrics.Metrics, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// readyProbe is the key /readyz asks the file store about. No blob has it
// (blob keys are digests), so "not found" is the healthy answer: the store
// was reached.
const readyProbe = "gatehouse-readiness-probe"

// ready is /readyz's check: the database answers and has every migration
// this binary knows, and the file store answers. The reasons are for the
// operator reading the 503 (and the log); they never carry the database
// URL, which may hold a password.
func (a *app) ready(ctx context.Context) error {
	if err := a.db.PingContext(ctx); err != nil {
		a.log.Warn("not ready: the database does not answer", "err", err)
		return errors.New("the database does not answer")
	}
	pending, err := a.db.Pending(ctx)
	if err != nil {
		a.log.Warn("not ready: the database's migrations could not be read", "err", err)
		return errors.New("the database's migrations could not be read")
	}
	if pending {
		return errors.New("the database lacks migrations this version needs; run 'gatehouse migrate'")
	}
	if p, ok := a.blobs.(blob.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			a.log.Warn("not ready: the file store cannot be used", "err", err)
			// The details (a path, a bucket) are for the log: /readyz
			// answers anyone.
			return errors.New("the file store cannot be used; the server log says why")
		}
		return nil
	}
	if _, err := a.blobs.Stat(ctx, readyProbe); err != nil && !errors.Is(err, blob.ErrNotFound) {
		a.log.Warn("not ready: the file store does not answer", "err", err)
		return errors.New("the file store does not answer")
	}
	return nil
}
