package web

import (
	"sync"
	"sync/atomic"
)

// clockCache is a map bounded by bytes, evicting with CLOCK (second chance).
//
// CLOCK rather than LRU because a hit must stay cheap on the hottest path:
// it takes a read lock and sets a flag, where LRU would take the write lock
// to move the entry to the front of a list. When the cache is over budget, a
// hand sweeps the entries: a flagged one loses its flag and is passed over,
// an unflagged one (not read since the hand last passed) is evicted.
//
// Sizes are what the caller says an entry costs (its bytes plus an estimate
// of the bookkeeping), so the budget bounds memory, not the entry count.
type clockCache[V any] struct {
	mu     sync.RWMutex
	budget int64
	bytes  int64
	m      map[string]*clockEntry[V]
	ring   []*clockEntry[V] // entries in no particular order; the hand walks it
	hand   int

	evictions atomic.Uint64
}

type clockEntry[V any] struct {
	key  string
	val  V // never changed once stored: a new value is a new entry
	size int64
	ref  atomic.Bool // read since the hand last passed
	slot int         // index in ring
}

// entryOverhead estimates what an entry costs besides its key and value:
// the map slot, the entry struct and its ring slot.
const entryOverhead = 128

func newClockCache[V any](budget int64) *clockCache[V] {
	return &clockCache[V]{budget: budget, m: map[string]*clockEntry[V]{}}
}

func (c *clockCache[V]) get(key string) (V, bool) {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil {
		var zero V
		return zero, false
	}
	if !e.ref.Load() { // a plain load first: no cache-line write on every hit
		e.ref.Store(true)
	}
	return e.val, true
}

// put stores val under key at the given size (entryOverhead and the key are
// added), replacing what was there, and evicts until the cache is within
// its budget. A value larger than the whole budget is not stored.
func (c *clockCache[V]) put(key string, val V, size int64) {
	size += entryOverhead + int64(len(key))
	if size > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.removeLocked(old)
	}
	// A new entry starts flagged, so that it survives the hand's next pass
	// and is served at least once more before it can go.
	e := &clockEntry[V]{key: key, val: val, size: size, slot: len(c.ring)}
	e.ref.Store(true)
	c.m[key] = e
	c.ring = append(c.ring, e)
	c.bytes += size
	for c.bytes > c.budget {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		v := c.ring[c.hand]
		if v.ref.Load() {
			v.ref.Store(false)
			c.hand++
			continue
		}
		c.removeLocked(v) // the last entry moves into this slot; the hand stays
		c.evictions.Add(1)
	}
}

// remove drops the given keys (invalidation, not eviction).
func (c *clockCache[V]) remove(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e := c.m[k]; e != nil {
			c.removeLocked(e)
		}
	}
}

func (c *clockCache[V]) removeLocked(e *clockEntry[V]) {
	last := c.ring[len(c.ring)-1]
	c.ring[e.slot] = last
	last.slot = e.slot
	c.ring[len(c.ring)-1] = nil
	c.ring = c.ring[:len(c.ring)-1]
	delete(c.m, e.key)
	c.bytes -= e.size
}

// usage returns the bytes and entries held.
func (c *clockCache[V]) usage() (bytes int64, entries int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes, len(c.m)
}
