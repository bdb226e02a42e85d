package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/project"
)

// rendered is one Simple API response body in both formats, with ETags.
// Pages are rendered once per change and then served from these bytes: a
// warm request, or a 304 revalidation, costs no database query and no
// template work.
type rendered struct {
	found    bool // false caches a 404, so unknown names do not hit the database either
	serial   int64
	html     []byte
	json     []byte
	htmlETag string
	jsonETag string
}

func newRendered(serial int64, html, json []byte) *rendered {
	return &rendered{found: true, serial: serial, html: html, json: json, htmlETag: etagOf(html), jsonETag: etagOf(json)}
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// simpleCache holds rendered Simple API pages keyed by normalized project
// name ("" is the root index).
//
// Invalidation: a change made by this instance drops the project's entry
// (and the root's) right after its transaction commits. Changes made by other
// instances on the same database are found by polling the journal (watch):
// every entry newer than the last one seen drops its project. With several
// instances, a page is therefore at most one poll interval stale.
type simpleCache struct {
	mu      sync.RWMutex
	entries map[string]*rendered
	// gen counts invalidations; a render that started before an
	// invalidation must not be stored after it.
	gen uint64

	// journal position, for watch.
	lastSerial int64
	seen       map[int64]bool // serials seen in the trailing window
}

func newSimpleCache() *simpleCache {
	return &simpleCache{entries: map[string]*rendered{}, seen: map[int64]bool{}}
}

func (c *simpleCache) get(name string) (*rendered, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[name], c.gen
}

// put stores an entry unless something was invalidated since gen was read,
// in which case the render may already be stale and is simply not kept.
func (c *simpleCache) put(name string, gen uint64, r *rendered) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.entries[name] = r
	}
}

// invalidate drops a project's page and the root index.
func (c *simpleCache) invalidate(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, "")
	for _, n := range names {
		delete(c.entries, n)
	}
}

// window is how far behind the newest serial watch looks again. On
// PostgreSQL serials are handed out at insert but become visible at commit,
// so a transaction can commit serial 9 after another committed 10; looking
// back over a window catches such stragglers.
const window = 512

// watch polls the journal until ctx ends.
func (c *simpleCache) watch(ctx context.Context, p *project.Service, interval time.Duration, log *slog.Logger) {
	if last, err := p.LastSerial(ctx); err == nil {
		c.mu.Lock()
		c.lastSerial = last
		c.mu.Unlock()
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

// sync reads journal entries not seen yet and invalidates their projects.
func (c *simpleCache) sync(ctx context.Context, p *project.Service) error {
	c.mu.RLock()
	from := c.lastSerial - window
	c.mu.RUnlock()
	if from < 0 {
		from = 0
	}
	for {
		changes, err := p.ChangesSince(ctx, from, 1000)
		if err != nil {
			return err
		}
		var names []string
		c.mu.Lock()
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
		c.mu.Unlock()
		if len(names) > 0 {
			c.invalidate(names...)
		}
		if len(changes) < 1000 {
			return nil
		}
	}
}
