package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-index/gatehouse/internal/project"
)

// rendered is one Simple API response body in both formats, with ETags.
// Pages are rendered once per change and then served from these bytes: a
// warm request, or a 304 revalidation, costs no database query and no
// template work.
//
// The header values a response carries are made here too, once per page,
// so that serving it formats and allocates nothing (serveRendered).
type rendered struct {
	found     bool // false is a 404: the name is not a project
	serial    int64
	html      []byte
	json      []byte
	htmlETag  string
	jsonETag  string
	serialHdr []string // X-PyPI-Last-Serial
	htmlHdr   renderedForm
	jsonHdr   renderedForm
	// origin is set on a local project whose owners let its name come
	// from upstream too ("both") or instead ("upstream"): it is served by
	// serveOriginPage and never cached here (the upstream half ages).
	origin string
}

// renderedForm is one format of a page as serveRendered sends it.
type renderedForm struct {
	body   []byte
	etag   []string // ETag
	length []string // Content-Length
}

func newRendered(serial int64, html, json []byte) *rendered {
	p := &rendered{found: true, serial: serial, html: html, json: json, htmlETag: etagOf(html), jsonETag: etagOf(json),
		serialHdr: headerValue(strconv.FormatInt(serial, 10))}
	p.htmlHdr = renderedForm{body: html, etag: headerValue(p.htmlETag), length: headerValue(strconv.Itoa(len(html)))}
	p.jsonHdr = renderedForm{body: json, etag: headerValue(p.jsonETag), length: headerValue(strconv.Itoa(len(json)))}
	return p
}

// size is what the page cache charges for a page.
func (r *rendered) size() int64 {
	return int64(len(r.html) + len(r.json) + 2*(len(r.htmlETag)+len(r.jsonETag)) + 160)
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// DefaultPageCacheSize is the page cache's byte budget when none is set:
// enough for thousands of project pages on a small machine.
const DefaultPageCacheSize = 64 << 20

// missingShare is the part of the budget kept for names that are not
// projects; a flood of made-up names evicts only its own kind.
const missingShare = 16

// simpleCache holds rendered Simple API pages: project pages by normalized
// name in a byte-bounded cache, the names known not to be projects in a
// separate, smaller one, and the root index (rootIndex), which is kept
// whole and compressed, outside the budget.
//
// Invalidation: a change made by this instance drops the project's entry
// right after its transaction commits, and tells the root index. Changes
// made by other instances on the same database are found by polling the
// journal (watch): every entry newer than the last one seen does the same.
// With several instances, a page is therefore at most one poll interval
// stale.
type simpleCache struct {
	pages   *clockCache[*rendered]
	missing *clockCache[struct{}]
	root    *rootIndex

	// mu orders invalidations with stores: gen counts invalidations, and a
	// render that started before one must not be stored after it.
	mu  sync.Mutex
	gen atomic.Uint64

	// renders of one page at one generation share a single flight.
	flights singleflight.Group

	hits, misses, renders atomic.Uint64

	// onMiss, when set (by tests), is called by a request that missed,
	// before it renders or joins a render.
	onMiss func()

	// journal position, for watch.
	jmu        sync.Mutex
	lastSerial int64
	seen       map[int64]bool // serials seen in the trailing window
}

func newSimpleCache(src rootSource, budget int64, log *slog.Logger) *simpleCache {
	if budget <= 0 {
		budget = DefaultPageCacheSize
	}
	missing := budget / missingShare
	pages := newClockCache[*rendered](budget - missing)
	return &simpleCache{
		pages:   pages,
		missing: newClockCache[struct{}](missing),
		root:    newRootIndex(src, pages, log),
		seen:    map[int64]bool{},
	}
}

// cached returns a project's page, or notAProject, if either is in memory.
func (c *simpleCache) cached(name string) (*rendered, bool) {
	if p, ok := c.pages.get(name); ok {
		c.hits.Add(1)
		return p, true
	}
	if _, ok := c.missing.get(name); ok {
		c.hits.Add(1)
		return notAProject, true
	}
	return nil, false
}

// page returns a project's page, or notAProject for a name that is not a
// project, calling render on a miss. Concurrent misses for the same page at
// the same generation wait for one render.
func (c *simpleCache) page(ctx context.Context, name string, render func(context.Context) (*rendered, error)) (*rendered, error) {
	gen := c.gen.Load() // before the lookup: a render must not outlive an invalidation it did not see
	if p, ok := c.cached(name); ok {
		return p, nil
	}
	c.misses.Add(1)
	if c.onMiss != nil {
		c.onMiss()
	}
	v, err, _ := c.flights.Do(name+"\x00"+strconv.FormatUint(gen, 10), func() (any, error) {
		c.renders.Add(1)
		p, err := render(context.WithoutCancel(ctx)) // shared: one caller leaving must not fail the rest
		if err != nil {
			return nil, err
		}
		c.put(name, gen, p)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*rendered), nil
}

var notAProject = &rendered{}

// put stores a page unless something was invalidated since gen was read, in
// which case the render may already be stale and is simply not kept.
func (c *simpleCache) put(name string, gen uint64, p *rendered) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || p.origin != "" {
		return
	}
	if p.found {
		c.pages.put(name, p, p.size())
	} else {
		c.missing.put(name, struct{}{}, 0)
	}
}

// invalidate drops the projects' pages and tells the root index.
func (c *simpleCache) invalidate(names ...string) {
	c.mu.Lock()
	c.gen.Add(1)
	c.pages.remove(names...)
	c.missing.remove(names...)
	c.mu.Unlock()
	c.root.invalidate(names...)
}

// PageCacheStats counts the Simple API cache's work, for monitoring.
type PageCacheStats struct {
	Hits      uint64 // project pages and 404s served from memory
	Misses    uint64 // requests that had to render (or wait for a render)
	Renders   uint64 // project pages rendered from the database
	Evictions uint64 // entries dropped to stay within the budget
	Bytes     int64  // bytes held by project pages (and uncompressed root chunks)
	Entries   int
	// Names known not to be projects, in their own share of the budget.
	MissingBytes     int64
	MissingEntries   int
	MissingEvictions uint64
	// The root index: full renders, passes applying changes, chunks and
	// entries rendered by either, and what it holds (compressed).
	RootBuilds, RootUpdates, RootChunkRenders, RootEntriesRendered uint64
	RootChunks                                                     int
	RootBytes                                                      int64
}

func (c *simpleCache) stats() PageCacheStats {
	s := PageCacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Renders: c.renders.Load(),
		Evictions: c.pages.evictions.Load(), MissingEvictions: c.missing.evictions.Load(),
		RootBuilds: c.root.builds.Load(), RootUpdates: c.root.updates.Load(),
		RootChunkRenders: c.root.chunkRenders.Load(), RootEntriesRendered: c.root.entriesRendered.Load(),
	}
	s.Bytes, s.Entries = c.pages.usage()
	s.MissingBytes, s.MissingEntries = c.missing.usage()
	if v := c.root.cur.Load(); v != nil {
		s.RootChunks = len(v.chunks)
		for _, ch := range v.chunks {
			s.RootBytes += int64(len(ch.html.z) + len(ch.json.z))
		}
	}
	return s
}

// window is how far behind the newest serial watch looks again. On
// PostgreSQL serials are handed out at insert but become visible at commit,
// so a transaction can commit serial 9 after another committed 10; looking
// back over a window catches such stragglers.
const window = 512

// watch polls the journal until ctx ends.
func (c *simpleCache) watch(ctx context.Context, p *project.Service, interval time.Duration, log *slog.Logger) {
	if last, err := p.LastSerial(ctx); err == nil {
		c.jmu.Lock()
		c.lastSerial = last
		c.jmu.Unlock()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.sync(ctx, p); err != nil && ctx.Err() == nil {
				log.Warn("simple cache: reading the journal failed; will retry", "err", err)
			}
		}
	}
}

// sync reads journal entries not seen yet and invalidates their projects,
// then brings the root index up to date if it has been built, so that
// requests seldom find changes left to apply.
func (c *simpleCache) sync(ctx context.Context, p *project.Service) error {
	c.jmu.Lock()
	from := c.lastSerial - window
	c.jmu.Unlock()
	if from < 0 {
		from = 0
	}
	for {
		changes, err := p.ChangesSince(ctx, from, 1000)
		if err != nil {
			return err
		}
		var names []string
		c.jmu.Lock()
		for _, ch := range changes {
			if !c.seen[ch.Serial] {
				c.seen[ch.Serial] = true
				names = append(names, ch.Name)
			}
			if ch.Serial > c.lastSerial {
				c.lastSerial = ch.Serial
			}
			from = ch.Serial
		}
		for s := range c.seen {
			if s < c.lastSerial-window {
				delete(c.seen, s)
			}
		}
		c.jmu.Unlock()
		if len(names) > 0 {
			c.invalidate(names...)
		}
		if len(changes) < 1000 {
			return c.root.refresh(ctx)
		}
	}
}
