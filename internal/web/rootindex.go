package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// rootIndex is /simple/, the list of every project, kept so that a change
// costs work in proportion to what changed rather than to the number of
// projects (about 50 MB of HTML at a million).
//
// The projects, in byte order of normalized name, are cut into chunks of
// about chunkTarget entries. Each chunk is rendered once, in both formats,
// and kept only compressed (see deflated): a new project re-renders the one
// chunk it falls into; an upload to an existing project changes only its
// "_last-serial" in one JSON chunk. A page is the chunks in order between a
// small head and tail, joined at write time, gzip as it is and identity
// inflated chunk by chunk.
//
// Where the chunks are cut depends only on the names (a project starts a
// chunk when its name hashes to a boundary), not on the order projects
// arrived, so instances sharing a database produce the same bytes and the
// same ETags, and a chunk's entries never need to be kept apart from it:
// they are read back from its JSON when it changes.
//
// Changes are recorded by name (invalidate) and applied in one pass by
// whoever next needs the page, under a lock: whatever the number of
// concurrent requests, one pass runs at a time, and a request waits for at
// most the pass that covers the changes made before it arrived.
type rootIndex struct {
	src   rootSource
	log   *slog.Logger
	pages *clockCache[*rendered] // holds uncompressed chunks when a form is small enough

	cur  atomic.Pointer[rootVersion]
	lock chan struct{} // held by the one goroutine building or updating

	mu      sync.Mutex          // guards what follows, and orders it with gen
	dirty   map[string]struct{} // changed since cur was built
	rebuild bool                // too many changes: rebuild from scratch
	active  bool                // a version exists or is being built; until then nothing is recorded
	gen     atomic.Uint64       // counts recorded changes; a version covers those up to its gen

	nextID atomic.Uint64

	// onWait, when set (by tests), is called by a request that found the
	// page out of date, before it waits for the lock.
	onWait func()

	builds, updates, chunkRenders, entriesRendered atomic.Uint64
}

// rootSource is what the root index reads; *project.Service.
type rootSource interface {
	LastSerial(ctx context.Context) (int64, error)
	EachIndexEntry(ctx context.Context, fn func(project.IndexEntry) error) error
	IndexEntry(ctx context.Context, normalizedName string) (*project.IndexEntry, error)
}

const (
	// chunkTarget is the expected number of projects per chunk: a change
	// re-renders about this many entries (some 30 kB of HTML).
	chunkTarget = 512
	// maxDirty bounds the changes remembered between two passes; past it
	// the next pass rebuilds everything, which then costs no more than
	// applying them one by one.
	maxDirty = 4096
)

func newRootIndex(src rootSource, pages *clockCache[*rendered], log *slog.Logger) *rootIndex {
	return &rootIndex{src: src, pages: pages, log: log, lock: make(chan struct{}, 1)}
}

// rootVersion is one complete root page, immutable once published.
type rootVersion struct {
	gen        uint64 // covers every change recorded up to here
	serial     int64
	chunks     []*rootChunk
	html, json rootForm
}

// rootChunk is a run of consecutive projects, rendered and compressed.
type rootChunk struct {
	id         uint64 // unique per render: names its uncompressed copies in the page cache
	lo         string // normalized name of its first project
	n          int
	html, json deflated
}

// rootForm is what serving one format needs beyond the chunks.
type rootForm struct {
	headRaw, tailRaw []byte
	head, tail       deflated
	sep              *deflated // between chunks (JSON's comma), or nil
	sepRaw           []byte
	size, gzSize     int64 // identity and gzip body lengths
	trailer          []byte
	etag, gzETag     string
}

type rootEntry struct {
	name, norm string
	serial     int64
}

// current returns the page with every change recorded before the call.
func (r *rootIndex) current(ctx context.Context) (*rootVersion, error) {
	want := r.gen.Load()
	if v := r.cur.Load(); v != nil && v.gen >= want {
		return v, nil
	}
	if r.onWait != nil {
		r.onWait()
	}
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.lock }()
	if v := r.cur.Load(); v != nil && v.gen >= want {
		return v, nil // another request's pass covered it while we waited
	}
	// The pass serves everyone waiting; one client going away must not
	// fail it for the others.
	v, err := r.update(context.WithoutCancel(ctx))
	if err != nil {
		if old := r.cur.Load(); old != nil {
			r.log.Warn("simple index: applying changes failed; serving the previous index", "err", err)
			return old, nil
		}
		return nil, err
	}
	return v, nil
}

// refresh applies recorded changes if a page exists, so that requests
// rarely find work to do. The journal watcher calls it after each poll.
func (r *rootIndex) refresh(ctx context.Context) error {
	if v := r.cur.Load(); v == nil || v.gen >= r.gen.Load() {
		return nil
	}
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.lock }()
	if v := r.cur.Load(); v.gen >= r.gen.Load() {
		return nil
	}
	_, err := r.update(ctx)
	return err
}

// invalidate records that these projects changed.
func (r *rootIndex) invalidate(names ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.active {
		return // the first build will read everything anyway
	}
	if !r.rebuild {
		if r.dirty == nil {
			r.dirty = map[string]struct{}{}
		}
		for _, n := range names {
			r.dirty[n] = struct{}{}
		}
		if len(r.dirty) > maxDirty {
			r.rebuild, r.dirty = true, nil
		}
	}
	r.gen.Add(1)
}

// update runs one pass; the caller holds r.lock.
func (r *rootIndex) update(ctx context.Context) (*rootVersion, error) {
	r.mu.Lock()
	gen := r.gen.Load()
	names := r.dirty
	r.dirty = nil
	old := r.cur.Load()
	rebuild := r.rebuild || old == nil
	r.rebuild = false
	r.active = true
	r.mu.Unlock()

	var (
		v       *rootVersion
		dropped []*rootChunk
		err     error
	)
	if rebuild {
		v, err = r.build(ctx, gen)
		if old != nil {
			dropped = old.chunks
		}
	} else {
		v, dropped, err = r.apply(ctx, old, names, gen)
	}
	if err != nil {
		// Put the work back for the next pass.
		r.mu.Lock()
		if rebuild {
			r.rebuild = old != nil
		} else if !r.rebuild {
			if r.dirty == nil {
				r.dirty = map[string]struct{}{}
			}
			for n := range names {
				r.dirty[n] = struct{}{}
			}
		}
		r.mu.Unlock()
		return nil, err
	}
	r.cur.Store(v)
	for _, c := range dropped {
		r.pages.remove(c.cacheKey(false), c.cacheKey(true))
	}
	return v, nil
}

// build renders every project: the first request, or after too many
// changes at once.
func (r *rootIndex) build(ctx context.Context, gen uint64) (*rootVersion, error) {
	r.builds.Add(1)
	// The serial is read first, so the page is never older than it says.
	serial, err := r.src.LastSerial(ctx)
	if err != nil {
		return nil, err
	}
	var chunks []*rootChunk
	var pending []rootEntry
	err = r.src.EachIndexEntry(ctx, func(e project.IndexEntry) error {
		if len(pending) > 0 && isBoundary(e.NormalizedName) {
			chunks = append(chunks, r.renderChunk(pending))
			pending = pending[:0]
		}
		pending = append(pending, rootEntry{e.Name, e.NormalizedName, e.LastSerial})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(pending) > 0 {
		chunks = append(chunks, r.renderChunk(pending))
	}
	return newRootVersion(gen, serial, chunks), nil
}

// apply re-renders the chunks the named projects fall into, reading each
// project's current row: it may be new, changed or gone.
func (r *rootIndex) apply(ctx context.Context, old *rootVersion, dirty map[string]struct{}, gen uint64) (*rootVersion, []*rootChunk, error) {
	r.updates.Add(1)
	serial, err := r.src.LastSerial(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(dirty))
	for n := range dirty {
		names = append(names, n)
	}
	sort.Strings(names)
	changes := make([]rootChange, 0, len(names))
	for _, n := range names {
		p, err := r.src.IndexEntry(ctx, n)
		switch {
		case errors.Is(err, derrors.NotFound):
			changes = append(changes, rootChange{norm: n})
		case err != nil:
			return nil, nil, err
		default:
			changes = append(changes, rootChange{norm: n, entry: &rootEntry{p.Name, p.NormalizedName, p.LastSerial}})
		}
	}

	chunks := slices.Clone(old.chunks)
	var dropped []*rootChunk
	for i := 0; i < len(changes); {
		idx := findChunk(chunks, changes[i].norm)
		j := i + 1
		if idx+1 < len(chunks) {
			for j < len(changes) && changes[j].norm < chunks[idx+1].lo {
				j++
			}
		} else {
			j = len(changes)
		}
		var es []rootEntry
		end := idx
		if idx < len(chunks) {
			if es, err = decodeChunk(chunks[idx]); err != nil {
				return nil, nil, err
			}
			end = idx + 1
		}
		changed := false
		for _, ch := range changes[i:j] {
			var c bool
			es, c = ch.applyTo(es)
			changed = changed || c
		}
		i = j
		if !changed {
			continue // e.g. the same change seen twice: from this instance and from the journal
		}
		start := idx
		if idx > 0 && len(es) > 0 && !isBoundary(es[0].norm) {
			// The chunk's first project is gone and the rest now
			// continue the chunk before it.
			prev, err := decodeChunk(chunks[idx-1])
			if err != nil {
				return nil, nil, err
			}
			es, start = append(prev, es...), idx-1
		}
		dropped = append(dropped, chunks[start:end]...)
		chunks = slices.Replace(chunks, start, end, r.split(es)...)
	}
	return newRootVersion(gen, serial, chunks), dropped, nil
}

// rootChange is a project's current entry, or nil when it no longer exists.
type rootChange struct {
	norm  string
	entry *rootEntry
}

// applyTo puts the change into sorted entries and says whether they changed.
func (ch rootChange) applyTo(es []rootEntry) ([]rootEntry, bool) {
	i, found := slices.BinarySearchFunc(es, ch.norm, func(e rootEntry, n string) int {
		switch {
		case e.norm < n:
			return -1
		case e.norm > n:
			return 1
		}
		return 0
	})
	switch {
	case found && ch.entry == nil:
		return slices.Delete(es, i, i+1), true
	case found && es[i] == *ch.entry:
		return es, false
	case found:
		es[i] = *ch.entry
		return es, true
	case ch.entry != nil:
		return slices.Insert(es, i, *ch.entry), true
	}
	return es, false
}

// findChunk is the index of the chunk name falls into: the last one whose
// first project is not after it (the first chunk for names before them all).
func findChunk(chunks []*rootChunk, name string) int {
	i := sort.Search(len(chunks), func(i int) bool { return chunks[i].lo > name }) - 1
	return max(i, 0)
}

// split renders sorted entries as chunks cut at boundary names.
func (r *rootIndex) split(es []rootEntry) []*rootChunk {
	var out []*rootChunk
	start := 0
	for k := 1; k < len(es); k++ {
		if isBoundary(es[k].norm) {
			out = append(out, r.renderChunk(es[start:k]))
			start = k
		}
	}
	if len(es) > 0 {
		out = append(out, r.renderChunk(es[start:]))
	}
	return out
}

// isBoundary says whether a project starts a chunk: one name in
// chunkTarget, chosen by hash (FNV-1a, then a 64-bit finalizer so that the
// low bits depend on every byte of names that differ only at the end).
func isBoundary(norm string) bool {
	h := uint64(14695981039346656037)
	for i := 0; i < len(norm); i++ {
		h ^= uint64(norm[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h%chunkTarget == 0
}

func (r *rootIndex) renderChunk(es []rootEntry) *rootChunk {
	hb := make([]byte, 0, len(es)*64)
	jb := make([]byte, 0, len(es)*48)
	for i, e := range es {
		hb = append(hb, `    <a href="/simple/`...)
		hb = append(hb, e.norm...)
		hb = append(hb, `/">`...)
		hb = append(hb, html.EscapeString(e.name)...)
		hb = append(hb, "</a>\n"...)
		if i > 0 {
			jb = append(jb, ',')
		}
		jb = append(jb, `{"name":`...)
		jb = appendJSONString(jb, e.name)
		jb = append(jb, `,"_last-serial":`...)
		jb = strconv.AppendInt(jb, e.serial, 10)
		jb = append(jb, '}')
	}
	r.chunkRenders.Add(1)
	r.entriesRendered.Add(uint64(len(es)))
	return &rootChunk{id: r.nextID.Add(1), lo: es[0].norm, n: len(es), html: deflatePiece(hb), json: deflatePiece(jb)}
}

// decodeChunk reads a chunk's entries back from its JSON, which holds each
// project's display name and serial; the normalized name follows from the
// display name, as it did when the project was created.
func decodeChunk(c *rootChunk) ([]rootEntry, error) {
	b := make([]byte, 1, c.json.size+2)
	b[0] = '['
	b, err := inflatePiece(b, &c.json)
	if err != nil {
		return nil, fmt.Errorf("simple index: reading back a chunk: %w", err)
	}
	b = append(b, ']')
	var list []struct {
		Name   string `json:"name"`
		Serial int64  `json:"_last-serial"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("simple index: reading back a chunk: %w", err)
	}
	es := make([]rootEntry, len(list))
	for i, p := range list {
		es[i] = rootEntry{p.Name, pep.NormalizeName(p.Name), p.Serial}
	}
	return es, nil
}

// appendJSONString appends s as a JSON string, as marshalSimple would write
// it (no HTML escaping). Project names are plain ASCII; anything else goes
// through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, _ := marshalSimple(s)
			return append(b, q[:len(q)-1]...) // without the newline
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

const rootHTMLHead = "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"" + apiVersion + "\">\n    <title>Simple index</title>\n  </head>\n  <body>\n"

var rootJSONSep = deflatePiece([]byte(","))

func newRootVersion(gen uint64, serial int64, chunks []*rootChunk) *rootVersion {
	v := &rootVersion{gen: gen, serial: serial, chunks: chunks}
	v.html = newRootForm("html", []byte(rootHTMLHead), fmt.Appendf(nil, "  </body>\n</html>\n<!--SERIAL %d-->\n", serial), nil, nil,
		chunks, func(c *rootChunk) *deflated { return &c.html })
	v.json = newRootForm("json", fmt.Appendf(nil, `{"meta":{"_last-serial":%d,"api-version":"%s"},"projects":[`, serial, apiVersion), []byte("]}\n"),
		&rootJSONSep, []byte(","), chunks, func(c *rootChunk) *deflated { return &c.json })
	return v
}

// newRootForm works out the lengths, the gzip trailer and the ETags of one
// format. It costs a few operations per chunk, nothing per project. The
// ETag hashes the chunks' digests rather than their bytes; chunking is
// deterministic, so it still names the content.
func newRootForm(kind string, head, tail []byte, sep *deflated, sepRaw []byte, chunks []*rootChunk, pick func(*rootChunk) *deflated) rootForm {
	f := rootForm{headRaw: head, tailRaw: tail, head: deflatePiece(head), tail: deflatePiece(tail), sep: sep, sepRaw: sepRaw}
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write(head)
	crc, size, gz := f.head.crc, f.head.size, int64(len(gzipHeader)+len(f.head.z))
	add := func(d *deflated) {
		crc = crcCombine(crc, d.crc, d.shift)
		size += d.size
		gz += int64(len(d.z))
	}
	for i, c := range chunks {
		if i > 0 && sep != nil {
			add(sep)
		}
		d := pick(c)
		add(d)
		h.Write(d.sum[:])
	}
	add(&f.tail)
	h.Write(tail)
	f.size, f.gzSize = size, gz+int64(len(finalBlock))+8
	f.trailer = gzipTrailer(crc, size)
	sum := hex.EncodeToString(h.Sum(nil)[:16])
	f.etag, f.gzETag = `"`+sum+`"`, `"`+sum+`-gzip"`
	return f
}

func (c *rootChunk) cacheKey(json bool) string {
	k := "\x00root " + strconv.FormatUint(c.id, 10) // no project name starts with a NUL
	if json {
		return k + " json"
	}
	return k + " html"
}

func (c *rootChunk) form(json bool) *deflated {
	if json {
		return &c.json
	}
	return &c.html
}
