// Package upstream is the pull-through cache of other package indexes
// (--upstream, e.g. https://pypi.org/simple/): a name no local project has
// is looked up upstream, its page kept with its ETag and revalidated after
// --upstream-ttl (and served, marked stale, while every upstream is down),
// and its files fetched on first download, checked against the sha256 the
// page gave and kept in the blob store.
//
// Confusion is ruled out by construction: a name that exists locally (a
// project, a name an administrator reserved, a pending trusted publisher)
// is never looked up upstream, so no upstream version of an internal name
// is ever served (IsLocal).
package upstream

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"golang.org/x/sync/singleflight"
)

// Page is an upstream project page in Gatehouse's form.
type Page struct {
	Name     string   `json:"name"`
	Status   string   `json:"status,omitempty"` // PEP 792 project status; "" is active
	Versions []string `json:"versions,omitempty"`
	Files    []File   `json:"files"`
	Serial   int64    `json:"serial,omitempty"`

	// Upstream is the index it came from; Stale is set when it could not
	// be revalidated and is served as last seen.
	Upstream string    `json:"-"`
	Stale    bool      `json:"-"`
	Fetched  time.Time `json:"-"`
}

// File is one file of an upstream page.
type File struct {
	Filename       string `json:"filename"`
	URL            string `json:"url"` // absolute, at the upstream
	SHA256         string `json:"sha256"`
	Size           int64  `json:"size,omitempty"`
	UploadTime     string `json:"upload-time,omitempty"`
	RequiresPython string `json:"requires-python,omitempty"`
	// Yanked is false, true, or the reason (PEP 592).
	Yanked         any    `json:"yanked,omitempty"`
	MetadataSHA256 string `json:"metadata-sha256,omitempty"` // PEP 658/714

	// ServeURL, when set, is where this index serves the file (a local
	// file on a merged page); otherwise its /upstream/ address.
	ServeURL string `json:"-"`
}

// Options are a Service's settings and dependencies.
type Options struct {
	DB    *db.DB
	Blobs blob.Store
	// Upstreams are the index base URLs, in priority order, e.g.
	// https://pypi.org/simple/.
	Upstreams []string
	TTL       time.Duration // revalidate a page after this long (default 10m)
	MinAge    time.Duration // hide files younger than this by upload-time (0: none)
	Client    *http.Client  // default: a client with a 30s timeout
	Now       func() time.Time
	Log       *slog.Logger
}

// Service is the pull-through cache. Create it with New.
type Service struct {
	db        *db.DB
	blobs     blob.Store
	upstreams []string
	ttl       time.Duration
	minAge    time.Duration
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger

	pages   singleflight.Group // one fetch per name at a time
	fetches singleflight.Group // one fetch per file at a time
	stats   Stats
}

// Stats are the cache's counters since this instance started, for the
// admin page and /metrics.
type Stats struct {
	PageHits        atomic.Int64 // pages answered from the cache without asking upstream
	PageRevalidated atomic.Int64 // pages upstream confirmed unchanged (304) after the TTL
	PageMisses      atomic.Int64 // pages fetched from upstream (new, or changed)
	PageStale       atomic.Int64 // pages served stale: no upstream answered
	FileHits        atomic.Int64 // files served from the store
	FileFetches     atomic.Int64 // files (and metadata) fetched from upstream
	FileBytes       atomic.Int64 // bytes of those fetches read from upstream
	FileRefused     atomic.Int64 // fetched files whose digest did not match their page
	Errors          atomic.Int64 // upstream requests that failed or answered an error
}

// StatsSnapshot is Stats read at one moment.
type StatsSnapshot struct {
	PageHits, PageRevalidated, PageMisses, PageStale int64
	FileHits, FileFetches, FileBytes, FileRefused    int64
	Errors                                           int64
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{PageHits: s.PageHits.Load(), PageRevalidated: s.PageRevalidated.Load(), PageMisses: s.PageMisses.Load(),
		PageStale: s.PageStale.Load(), FileHits: s.FileHits.Load(), FileFetches: s.FileFetches.Load(), FileBytes: s.FileBytes.Load(),
		FileRefused: s.FileRefused.Load(), Errors: s.Errors.Load()}
}

// New returns a Service.
func New(o Options) *Service {
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ups := make([]string, len(o.Upstreams))
	for i, u := range o.Upstreams {
		ups[i] = strings.TrimRight(u, "/") + "/"
	}
	return &Service{db: o.DB, blobs: o.Blobs, upstreams: ups, ttl: o.TTL, minAge: o.MinAge, client: o.Client, now: o.Now, log: o.Log}
}

// Stats returns the counters.
func (s *Service) Stats() *Stats { return &s.stats }

// TTL is how long a page is served before it is revalidated.
func (s *Service) TTL() time.Duration { return s.ttl }

// Upstreams returns the configured upstreams in order.
func (s *Service) Upstreams() []string { return s.upstreams }

// IsLocal reports whether the name belongs to this index: a project, a
// name an administrator reserved, or a pending trusted publisher's. Such a
// name is never looked up upstream.
func (s *Service) IsLocal(ctx context.Context, normalizedName string) (bool, error) {
	var local bool
	err := s.db.QueryRowContext(ctx, `SELECT `+localName+``, normalizedName).Scan(&local)
	return local, err
}

// localName is the SQL test, on the normalized name $1, of a name that is
// local: a project (but one whose owners chose an upstream origin,
// origin.go, the one local name that may be looked up), a name an
// administrator reserved, or a pending trusted publisher. IsLocal and
// Lookup both use it, so the rule lives in one place.
const localName = `(EXISTS (SELECT 1 FROM projects p WHERE p.normalized_name = $1
			AND NOT EXISTS (SELECT 1 FROM project_origins o WHERE o.project_id = p.id))
		OR EXISTS (SELECT 1 FROM prohibited_project_names WHERE normalized_name = $1)
		OR EXISTS (SELECT 1 FROM pending_publishers WHERE normalized_name = $1))`

// errNotUpstream is the 404 of a name no upstream has.
func errNotUpstream(name string) error {
	return derrors.New(derrors.NotFound, "No project named %q.", name)
}

// Page returns the upstream page of a name that is not local: from the
// cache while it is fresh, revalidated or fetched otherwise. A name no
// upstream has is derrors.NotFound; a quarantined upstream project too.
func (s *Service) Page(ctx context.Context, name string) (*Page, error) {
	if local, err := s.IsLocal(ctx, name); err != nil || local {
		if err != nil {
			return nil, err
		}
		return nil, errNotUpstream(name)
	}
	cached, etag, err := s.cachedPage(ctx, name)
	if err != nil {
		return nil, err
	}
	if cached != nil && s.now().Sub(cached.Fetched) < s.ttl {
		s.stats.PageHits.Add(1)
		return s.visible(ctx, cached, name)
	}
	v, err, _ := s.pages.Do(name, func() (any, error) { return s.refresh(context.WithoutCancel(ctx), name, cached, etag) })
	if err != nil {
		return nil, err
	}
	return s.visible(ctx, v.(*Page), name)
}

// visible applies what a page may show here: a quarantined project shows
// nothing, and under --upstream-min-age files younger than that are left
// out, but for the versions an administrator allowed early (early.go).
func (s *Service) visible(ctx context.Context, p *Page, name string) (*Page, error) {
	if p.Status == "quarantined" {
		return nil, errNotUpstream(name)
	}
	if s.minAge <= 0 {
		return p, nil
	}
	early, err := s.earlySet(ctx, name)
	if err != nil {
		return nil, err
	}
	cut := s.now().Add(-s.minAge)
	out := *p
	out.Files = nil
	for _, f := range p.Files {
		t, err := time.Parse(time.RFC3339Nano, f.UploadTime)
		if (err != nil || t.After(cut)) && (len(early) == 0 || !early[fileVersion(f.Filename)]) {
			continue // no upload-time, or too young, and not allowed early
		}
		out.Files = append(out.Files, f)
	}
	return &out, nil
}

func (s *Service) cachedPage(ctx context.Context, name string) (*Page, string, error) {
	var (
		p              Page
		body, etag, up string
		serial         int64
		fetched        time.Time
	)
	err := s.db.QueryRowContext(ctx, `SELECT upstream, etag, serial, page_json, fetched_at FROM upstream_pages WHERE normalized_name = $1`, name).
		Scan(&up, &etag, &serial, &body, &fetched)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return nil, "", fmt.Errorf("upstream page %s in the cache: %w", name, err)
	}
	p.Upstream, p.Fetched, p.Serial = up, fetched.UTC(), serial
	return &p, etag, nil
}

// refresh fetches the page from the upstreams in order (revalidating the
// cached one with its ETag at the upstream it came from), stores it and its
// files, or falls back to the cached page, marked stale, when none answers.
func (s *Service) refresh(ctx context.Context, name string, cached *Page, etag string) (*Page, error) {
	var lastErr error
	for _, up := range s.upstreams {
		tag := ""
		if cached != nil && cached.Upstream == up {
			tag = etag
		}
		res, err := s.fetchPage(ctx, up, name, tag)
		switch {
		case err != nil:
			s.stats.Errors.Add(1)
			s.log.Warn("upstream page fetch failed", "upstream", up, "project", name, "err", err)
			lastErr = err
			continue
		case res.notFound:
			continue
		case res.notModified:
			s.stats.PageRevalidated.Add(1)
			now := s.now().UTC()
			if _, err := s.db.ExecContext(ctx, `UPDATE upstream_pages SET fetched_at = $2 WHERE normalized_name = $1`, name, now); err != nil {
				return nil, err
			}
			cached.Fetched = now
			return cached, nil
		}
		s.stats.PageMisses.Add(1)
		res.page.Upstream, res.page.Fetched = up, s.now().UTC()
		if err := s.store(ctx, name, res.page, res.etag); err != nil {
			return nil, err
		}
		return res.page, nil
	}
	if cached != nil && lastErr != nil {
		s.stats.PageStale.Add(1)
		stale := *cached
		stale.Stale = true
		return &stale, nil
	}
	if lastErr != nil {
		return nil, derrors.New(derrors.Unavailable, "The upstream index could not be reached, and this project is not in the cache yet. Try again later.")
	}
	return nil, errNotUpstream(name)
}

// store keeps the page and its files' addresses, in one transaction.
func (s *Service) store(ctx context.Context, name string, p *Page, etag string) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO upstream_pages (normalized_name, upstream, etag, serial, page_json, fetched_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (normalized_name) DO UPDATE SET upstream = excluded.upstream,
			etag = excluded.etag, serial = excluded.serial, page_json = excluded.page_json, fetched_at = excluded.fetched_at`,
			name, p.Upstream, etag, p.Serial, string(body), p.Fetched); err != nil {
			return err
		}
		for _, f := range p.Files {
			// A digest names the same bytes wherever they come from; the
			// newest page's address wins.
			if _, err := tx.ExecContext(ctx, `INSERT INTO upstream_files (sha256, normalized_name, filename, url, size, metadata_sha256)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO UPDATE SET url = excluded.url, metadata_sha256 = excluded.metadata_sha256`,
				f.SHA256, name, f.Filename, f.URL, f.Size, f.MetadataSHA256); err != nil {
				return err
			}
		}
		return nil
	})
}

// Summary is what the cache holds, for the administrators' page.
type Summary struct {
	Projects    int   // pages cached
	Files       int   // files known from those pages
	StoredFiles int   // of which stored
	StoredBytes int64 // their sizes, as the pages gave them
	Refused     int   // files refused for a digest mismatch, now
}

// Summarize counts what the cache holds.
func (s *Service) Summarize(ctx context.Context) (Summary, error) {
	var sum Summary
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM upstream_pages`).Scan(&sum.Projects); err != nil {
		return sum, err
	}
	err := s.db.QueryRowContext(ctx, `SELECT count(*), count(stored_at), COALESCE(sum(CASE WHEN stored_at IS NOT NULL THEN size ELSE 0 END), 0),
		count(mismatch_at) FROM upstream_files`).Scan(&sum.Files, &sum.StoredFiles, &sum.StoredBytes, &sum.Refused)
	return sum, err
}
