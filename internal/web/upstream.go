package web

// The pull-through cache's side of the Simple API (internal/upstream): a
// name with no local project is served from the upstream page, with every
// file URL rewritten to /upstream/<aa>/<sha256>/<filename> here, and those
// files are fetched on first download, streamed while they are stored.

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
)

// upstreamFileURL is where this index serves an upstream file.
func (s *Server) upstreamFileURL(f *upstream.File) string {
	return s.baseURL + "/upstream/" + f.SHA256[:2] + "/" + f.SHA256 + "/" + f.Filename
}

// upstreamPages keeps rendered upstream pages in memory for the TTL, so a
// cached upstream page costs what a local one does: no query, no render.
// A name that becomes a local project never reaches it (the Simple page
// cache finds the project first); a name reserved meanwhile is served from
// here for at most the TTL. Bounded by count: when full, it is emptied.
type upstreamPages struct {
	mu sync.Mutex
	m  map[string]upstreamEntry
}

type upstreamEntry struct {
	page     *rendered
	upstream string
	until    time.Time
}

const maxUpstreamPages = 4096

func (c *upstreamPages) get(name string, now time.Time) (upstreamEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || !now.Before(e.until) {
		return upstreamEntry{}, false
	}
	return e, true
}

// forget drops the rendered page of name.
func (c *upstreamPages) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

func (c *upstreamPages) put(name string, e upstreamEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxUpstreamPages {
		c.m = map[string]upstreamEntry{}
	}
	c.m[name] = e
}

// serveUpstreamPage answers /simple/<name>/ for a name that is not local.
func (s *Server) serveUpstreamPage(w http.ResponseWriter, r *http.Request, norm string) error {
	if e, ok := s.upPages.get(norm, s.now()); ok {
		s.upstream.Stats().PageHits.Add(1)
		w.Header().Set("X-Gatehouse-Upstream", e.upstream)
		serveRendered(w, r, e.page)
		return nil
	}
	p, err := s.upstream.Page(r.Context(), norm)
	if err != nil {
		return err
	}
	page, err := s.renderUpstream(p, nil, nil)
	if err != nil {
		return err
	}
	if !p.Stale {
		s.upPages.put(norm, upstreamEntry{page: page, upstream: p.Upstream, until: p.Fetched.Add(s.upstream.TTL())})
	}
	h := w.Header()
	h.Set("X-Gatehouse-Upstream", p.Upstream)
	if p.Stale {
		// Every upstream is down: the last page seen, said so.
		h.Set("X-Gatehouse-Upstream-Stale", p.Fetched.UTC().Format("2006-01-02T15:04:05Z"))
		h.Set("Warning", `110 - "Response is Stale"`)
	}
	serveRendered(w, r, page)
	return nil
}

// renderUpstream renders an upstream page in both forms, as renderDetail
// renders a local one, with the PEP 708 tracks and alternate locations of
// a local project whose origin is not local only.
func (s *Server) renderUpstream(p *upstream.Page, tracks, alts []string) (*rendered, error) {
	status := p.Status
	if status == "" {
		status = "active"
	}
	var hb bytes.Buffer
	fmt.Fprintf(&hb, "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"%s\">\n", apiVersion)
	if status != "active" {
		fmt.Fprintf(&hb, "    <meta name=\"pypi:project-status\" content=\"%s\">\n", html.EscapeString(status))
	}
	// PEP 708: this page merges the project tracked there.
	writePEP708(&hb, tracks, alts)
	fmt.Fprintf(&hb, "    <title>Links for %s</title>\n  </head>\n  <body>\n    <h1>Links for %s</h1>\n", html.EscapeString(p.Name), html.EscapeString(p.Name))
	if p.Stale {
		fmt.Fprintf(&hb, "    <!-- upstream unreachable: this page is as last seen at %s -->\n", p.Fetched.UTC().Format("2006-01-02T15:04:05Z"))
	}
	files := make([]map[string]any, 0, len(p.Files))
	for i := range p.Files {
		f := &p.Files[i]
		u := f.ServeURL
		if u == "" {
			u = s.upstreamFileURL(f)
		}
		hb.WriteString(`    <a href="` + html.EscapeString(u) + `#sha256=` + f.SHA256 + `"`)
		if f.RequiresPython != "" {
			hb.WriteString(` data-requires-python="` + html.EscapeString(f.RequiresPython) + `"`)
		}
		var yanked any = false
		switch y := f.Yanked.(type) {
		case bool:
			if y {
				yanked = true
				hb.WriteString(` data-yanked=""`)
			}
		case string:
			yanked = y
			hb.WriteString(` data-yanked="` + html.EscapeString(y) + `"`)
		}
		var meta any = false
		if f.MetadataSHA256 != "" {
			meta = map[string]string{"sha256": f.MetadataSHA256}
			hb.WriteString(` data-dist-info-metadata="sha256=` + f.MetadataSHA256 + `" data-core-metadata="sha256=` + f.MetadataSHA256 + `"`)
		}
		hb.WriteString(">" + html.EscapeString(f.Filename) + "</a><br />\n")
		file := map[string]any{
			"filename": f.Filename, "url": u, "hashes": map[string]string{"sha256": f.SHA256},
			"requires-python": nilIfEmpty(f.RequiresPython), "yanked": yanked,
			"data-dist-info-metadata": meta, "core-metadata": meta,
		}
		if f.Size > 0 {
			file["size"] = f.Size
		}
		if f.UploadTime != "" {
			file["upload-time"] = f.UploadTime
		}
		files = append(files, file)
	}
	fmt.Fprintf(&hb, "  </body>\n</html>\n<!--SERIAL %d-->\n", p.Serial)
	versions := p.Versions
	if versions == nil {
		versions = []string{}
	}
	if alts == nil {
		alts = []string{}
	}
	page := map[string]any{
		"meta":                map[string]any{"api-version": apiVersion, "_last-serial": p.Serial},
		"name":                p.Name,
		"project-status":      map[string]string{"status": status},
		"versions":            versions,
		"files":               files,
		"alternate-locations": alts,
	}
	if len(tracks) > 0 {
		// PEP 708 puts it beside "alternate-locations", not in "meta".
		page["tracks"] = tracks
	}
	jb, err := marshalSimple(page)
	if err != nil {
		return nil, err
	}
	return newRendered(p.Serial, hb.Bytes(), jb), nil
}

// serveOriginPage answers /simple/<name>/ for a local project whose owners
// chose an upstream origin: the upstream's page instead, or both merged
// (local files first; an upstream file named as a local one is left out),
// with PEP 708 "tracks" naming the upstream project and the owners'
// alternate locations. (An upstream-only page is the upstream's, as it is
// for a name that is not local: no local file, no alternate locations.)
func (s *Server) serveOriginPage(w http.ResponseWriter, r *http.Request, norm, origin string) error {
	if origin == upstream.OriginUpstream {
		return s.serveUpstreamPage(w, r, norm)
	}
	d, err := s.projects.Detail(r.Context(), norm)
	if err != nil {
		return err
	}
	merged := &upstream.Page{Name: d.Project.NormalizedName, Serial: d.Project.LastSerial}
	if d.Project.Status != project.StatusActive && d.Project.Status != "" {
		merged.Status = d.Project.Status
	}
	local := map[string]bool{}
	if d.Project.Status != project.StatusQuarantined {
		for i := range d.Files {
			f := &d.Files[i]
			local[f.Filename] = true
			uf := upstream.File{Filename: f.Filename, ServeURL: s.fileURL(f), SHA256: f.SHA256, Size: f.Size,
				UploadTime: f.UploadedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), RequiresPython: f.RequiresPython, MetadataSHA256: f.MetadataSHA256}
			if f.Yanked {
				uf.Yanked = true
				if f.YankedReason != "" {
					uf.Yanked = f.YankedReason
				}
			}
			merged.Files = append(merged.Files, uf)
		}
		for i := len(d.Releases) - 1; i >= 0; i-- {
			merged.Versions = append(merged.Versions, d.Releases[i].Version)
		}
	}
	var tracks []string
	up, err := s.upstream.Page(r.Context(), norm)
	switch {
	case errors.Is(err, derrors.NotFound):
	case err != nil:
		return err
	default:
		tracks = []string{up.Upstream + norm + "/"}
		seen := map[string]bool{}
		for _, v := range merged.Versions {
			seen[v] = true
		}
		for _, f := range up.Files {
			if !local[f.Filename] {
				merged.Files = append(merged.Files, f)
			}
		}
		for _, v := range up.Versions {
			if !seen[v] {
				merged.Versions = append(merged.Versions, v)
			}
		}
		merged.Stale, merged.Fetched = up.Stale, up.Fetched
	}
	alts, err := s.projects.AlternateLocations(r.Context(), d.Project.ID)
	if err != nil {
		return err
	}
	page, err := s.renderUpstream(merged, tracks, alts)
	if err != nil {
		return err
	}
	serveRendered(w, r, page)
	return nil
}

// setProjectOrigin is the origin form of a project's settings page.
func (s *Server) setProjectOrigin(w http.ResponseWriter, r *http.Request) error {
	if s.upstream == nil {
		return derrors.New(derrors.NotFound, "This index has no upstream (--upstream), so a project's origin is always this index.")
	}
	p := stateOf(r).membership.Project
	origin := r.PostFormValue("origin")
	err := s.upstream.SetOrigin(r.Context(), actor(r), p, origin)
	if err == nil {
		s.simple.invalidate(p.NormalizedName)
	}
	return s.settingsResult(w, r, err, "Installers now find "+p.Name+" "+originWords[origin]+".")
}

// originWords say what each origin means, for the forms' messages.
var originWords = map[string]string{upstream.OriginLocal: "from this index only", upstream.OriginBoth: "from this index and upstream",
	upstream.OriginUpstream: "from upstream only"}

// setAlternateLocations is the PEP 708 alternate-locations form of a
// project's settings page.
func (s *Server) setAlternateLocations(w http.ResponseWriter, r *http.Request) error {
	p := stateOf(r).membership.Project
	err := s.projects.SetAlternateLocations(r.Context(), actor(r), p.NormalizedName, r.PostFormValue("alternate_locations"))
	msg := "Saved the alternate locations of " + p.Name + "."
	if strings.TrimSpace(r.PostFormValue("alternate_locations")) == "" {
		msg = p.Name + " lists no alternate locations."
	}
	return s.settingsResult(w, r, err, msg)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// serveUpstreamFile is GET /upstream/<aa>/<sha256>/<filename>: from the
// store, or fetched now and streamed while it is stored.
func (s *Server) serveUpstreamFile(w http.ResponseWriter, r *http.Request) error {
	if s.upstream == nil {
		return derrors.New(derrors.NotFound, "No such file.")
	}
	sha, name := r.PathValue("sha256"), r.PathValue("filename")
	if len(sha) != 64 || r.PathValue("a") != sha[:2] {
		return derrors.New(derrors.NotFound, "No such file.")
	}
	e, err := s.upstream.Lookup(r.Context(), sha)
	if err != nil {
		return err
	}
	metadata := false
	switch name {
	case e.Filename:
	case e.Filename + ".metadata":
		metadata = true
	default:
		return derrors.New(derrors.NotFound, "No such file.")
	}
	// A name that has become local is never served from upstream any more.
	if e.Local {
		return derrors.New(derrors.NotFound, "No such file.")
	}
	ctype, etag := contentTypeOf(e.Filename), `"`+sha+`"`
	if metadata {
		ctype, etag = "text/plain; charset=utf-8", `"`+e.MetadataSHA256+`"`
	}
	stored := e.Stored
	if metadata {
		stored = e.MetadataStored
	}
	serve := func() error {
		b, err := s.upstream.Open(r.Context(), e, metadata)
		if err != nil {
			return err
		}
		defer b.Close()
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("ETag", etag)
		h.Set("Cache-Control", "max-age=31536000, public, immutable")
		h.Set("Access-Control-Allow-Origin", "*") // as local files (files.go)
		h.Set("X-Content-Type-Options", "nosniff")
		if !metadata {
			h.Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(e.Filename, `"`, "")+`"`)
		}
		http.ServeContent(w, r, "", time.Time{}, b)
		return nil
	}
	if stored {
		err := serve()
		if !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		// Pruned ('gatehouse upstream prune') between the lookup and the
		// open, or removed by hand: fetched again, as on a first download.
		if err := s.upstream.Unstore(r.Context(), e, metadata); err != nil {
			return err
		}
	}
	started := false
	served, err := s.upstream.Fetch(r.Context(), e, metadata, w, func(size int64) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-store") // the first copy: checked only at its end
		if size >= 0 {
			h.Set("Content-Length", fmt.Sprint(size))
		}
		w.WriteHeader(http.StatusOK)
		started = true
	})
	switch {
	case err != nil && started:
		// Bytes went out that turned out not to be the file: cut the
		// connection so the client never takes a complete response.
		panic(http.ErrAbortHandler)
	case err != nil:
		return err
	case !served:
		// Another request fetched it meanwhile: serve the stored copy.
		if err := serve(); errors.Is(err, blob.ErrNotFound) {
			// Its row is being unmarked by a prune right now.
			return derrors.New(derrors.Unavailable, "%s is being removed from the cache just now. Try again in a moment.", e.Filename)
		} else {
			return err
		}
	}
	return nil
}
