package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
)

// Simple Repository API media types (PEP 691).
const (
	mediaJSON       = "application/vnd.pypi.simple.v1+json"
	mediaHTMLv1     = "application/vnd.pypi.simple.v1+html"
	mediaHTMLLegacy = "text/html"
	apiVersion      = "1.4"
)

// negotiate picks the Simple API format from Accept (PEP 691): the
// acceptable type with the highest quality, ties going to JSON, then v1 HTML,
// then text/html. If nothing matches, HTML is served rather than a 406, as
// PyPI does, because old clients send odd Accept headers.
//
// It runs on every Simple API request, so it walks the header in place
// (strings.Cut) rather than splitting it into slices.
func negotiate(accept string) string {
	if accept == "" {
		return mediaHTMLLegacy
	}
	best, bestQ, bestRank := mediaHTMLLegacy, -1.0, 0
	consider := func(c string, q float64) {
		if q > bestQ || (q == bestQ && mediaRank(c) > bestRank) {
			best, bestQ, bestRank = c, q, mediaRank(c)
		}
	}
	for rest, more := accept, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		mt, params, hasParams := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for hasParams {
			var p string
			p, params, hasParams = strings.Cut(params, ";")
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q <= 0 {
			continue
		}
		switch mt {
		case mediaJSON, mediaHTMLv1, mediaHTMLLegacy:
			consider(mt, q)
		case "*/*":
			consider(mediaJSON, q)
			consider(mediaHTMLLegacy, q)
		case "application/*":
			consider(mediaJSON, q)
		case "text/*":
			consider(mediaHTMLLegacy, q)
		}
	}
	// "*/*" alone (curl, browsers) should get HTML, the historical default.
	if strings.TrimSpace(accept) == "*/*" {
		return mediaHTMLLegacy
	}
	return best
}

// mediaRank breaks quality ties: JSON, then v1 HTML, then text/html.
func mediaRank(mt string) int {
	switch mt {
	case mediaJSON:
		return 3
	case mediaHTMLv1:
		return 2
	}
	return 1
}

// Header values shared by every Simple API answer. They are assigned
// straight into the header map (keys already canonical), which skips the
// canonicalisation and allocation of Header.Set on the hottest path.
// net/http only reads them, and each has capacity 1, so a later Header.Add
// appends to a copy and never writes into the shared array.
var (
	hdrVary        = []string{"Accept"}
	hdrCache       = []string{"max-age=600, public"}
	hdrCORSOrigin  = []string{"*"}
	hdrCORSMethods = []string{"GET"}
	hdrCORSHeaders = []string{"Content-Type, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since"}
	hdrCORSMaxAge  = []string{"86400"}
	hdrCORSExpose  = []string{"X-PyPI-Last-Serial"}
	hdrTypeJSON    = []string{mediaJSON}
	hdrTypeHTMLv1  = []string{mediaHTMLv1 + "; charset=utf-8"}
	hdrTypeHTML    = []string{mediaHTMLLegacy + "; charset=utf-8"}
)

// simpleHeaders sets the headers every Simple API answer carries; serial is
// the X-PyPI-Last-Serial value, made once per page (headerValue).
func simpleHeaders(w http.ResponseWriter, serial []string) {
	h := w.Header()
	h["Vary"] = hdrVary
	h["X-Pypi-Last-Serial"] = serial
	h["Cache-Control"] = hdrCache
	h["Access-Control-Allow-Origin"] = hdrCORSOrigin
	h["Access-Control-Allow-Methods"] = hdrCORSMethods
	h["Access-Control-Allow-Headers"] = hdrCORSHeaders
	h["Access-Control-Max-Age"] = hdrCORSMaxAge
	h["Access-Control-Expose-Headers"] = hdrCORSExpose
}

// headerValue is a header value to assign into a header map as it is.
func headerValue(v string) []string { return []string{v} }

// serveRendered writes a cached page in the negotiated format, or 304 when
// the client's ETag matches. Every header value comes from the page, made
// when it was rendered, so a warm request allocates nothing here.
func serveRendered(w http.ResponseWriter, r *http.Request, p *rendered) {
	mt := negotiate(r.Header.Get("Accept"))
	f, ctype := &p.htmlHdr, hdrTypeHTML
	switch mt {
	case mediaJSON:
		f, ctype = &p.jsonHdr, hdrTypeJSON
	case mediaHTMLv1:
		ctype = hdrTypeHTMLv1
	}
	simpleHeaders(w, p.serialHdr)
	h := w.Header()
	h["Etag"] = f.etag
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, f.etag[0]) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = ctype
	h["Content-Length"] = f.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(f.body)
	}
}

func etagMatches(header, etag string) bool {
	for rest, more := header, true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ",")
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// simpleIndex serves /simple/, the list of all projects (see rootIndex).
func (s *Server) simpleIndex(w http.ResponseWriter, r *http.Request) error {
	if err := s.mayReadAll(r, errNoPage); err != nil {
		return err
	}
	v, err := s.simple.root.current(r.Context())
	if err != nil {
		return err
	}
	s.serveRoot(w, r, v)
	return nil
}

var (
	hdrVaryRoot = []string{"Accept, Accept-Encoding"}
	hdrGzip     = []string{"gzip"}
)

// serveRoot writes the root index in the negotiated format, gzip-compressed
// when the client accepts it (pip does), or 304 when the client's ETag
// matches. Each encoding has its own ETag, as RFC 9110 requires of strong
// validators.
func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request, v *rootVersion) {
	mt := negotiate(r.Header.Get("Accept"))
	f, isJSON := &v.html, mt == mediaJSON
	if isJSON {
		f = &v.json
	}
	gz := acceptsGzip(strings.Join(r.Header.Values("Accept-Encoding"), ","))
	etag := f.etag
	if gz {
		etag = f.gzETag
	}
	simpleHeaders(w, headerValue(strconv.FormatInt(v.serial, 10)))
	h := w.Header()
	h["Vary"] = hdrVaryRoot
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if isJSON {
		h.Set("Content-Type", mt)
	} else {
		h.Set("Content-Type", mt+"; charset=utf-8")
	}
	size := f.size
	if gz {
		h["Content-Encoding"] = hdrGzip
		size = f.gzSize
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	var err error
	if gz {
		err = writeRootGzip(w, v, f, isJSON)
	} else {
		err = s.writeRootIdentity(w, v, f, isJSON)
	}
	if err != nil {
		// The status is sent; a short body against Content-Length tells
		// the client the page is incomplete.
		s.log.Warn("simple index: writing the page failed", "err", err)
	}
}

func writeRootGzip(w io.Writer, v *rootVersion, f *rootForm, isJSON bool) error {
	parts := [][]byte{gzipHeader, f.head.z}
	for _, b := range parts {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	for i, c := range v.chunks {
		if i > 0 && f.sep != nil {
			if _, err := w.Write(f.sep.z); err != nil {
				return err
			}
		}
		if _, err := w.Write(c.form(isJSON).z); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{f.tail.z, finalBlock, f.trailer} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeRootIdentity writes the page uncompressed. Chunks are kept only
// compressed; their uncompressed bytes go into the page cache when the whole
// format fits in a quarter of it, else they are inflated for each request,
// so that a large index read without gzip cannot flush every project page.
func (s *Server) writeRootIdentity(w io.Writer, v *rootVersion, f *rootForm, isJSON bool) error {
	pages := s.simple.pages
	keep := f.size <= pages.budget/4
	if _, err := w.Write(f.headRaw); err != nil {
		return err
	}
	var buf []byte
	for i, c := range v.chunks {
		if i > 0 && f.sep != nil {
			if _, err := w.Write(f.sepRaw); err != nil {
				return err
			}
		}
		var b []byte
		if keep {
			if p, ok := pages.get(c.cacheKey(isJSON)); ok {
				b = p.html
			}
		}
		if b == nil {
			var err error
			if buf, err = inflatePiece(buf[:0], c.form(isJSON)); err != nil {
				return err
			}
			b = buf
			if keep {
				b = bytes.Clone(buf)
				pages.put(c.cacheKey(isJSON), &rendered{found: true, html: b}, int64(len(b))) // a chunk's bytes, in html whatever the format
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err := w.Write(f.tailRaw)
	return err
}

// errNoProject is the 404 of a Simple page with no project; a project a
// read token may not see gets it too.
func errNoProject(norm string) error {
	return derrors.New(derrors.NotFound, "No project named %q.", norm)
}

// errNoPage is the 404 of the root index for a token limited to projects.
var errNoPage = derrors.New(derrors.NotFound, "There is no page at this address.")

// simpleRedirect sends /simple/<name> (no slash) to the canonical URL.
func (s *Server) simpleRedirect(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	http.Redirect(w, r, "/simple/"+pep.NormalizeName(r.PathValue("project"))+"/", http.StatusMovedPermanently)
	return nil
}

// simpleDetail serves /simple/<project>/ (PEP 503 HTML or PEP 691 JSON).
func (s *Server) simpleDetail(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("project")
	norm := pep.NormalizeName(name)
	if name != norm {
		return s.simpleRedirect(w, r)
	}
	// Before the cache: a token limited to other projects gets the answer
	// of a project that does not exist.
	if ok, err := s.mayRead(r, norm, 0); err != nil {
		return err
	} else if !ok {
		return errNoProject(norm)
	}
	page, ok := s.simple.cached(norm) // the warm path, without building the closure below
	if !ok {
		var err error
		page, err = s.simple.page(r.Context(), norm, func(ctx context.Context) (*rendered, error) {
			d, err := s.projects.Detail(ctx, norm)
			switch {
			case errors.Is(err, derrors.NotFound):
				return notAProject, nil
			case err != nil:
				return nil, err
			}
			if s.upstream != nil {
				if o, err := s.upstream.Origin(ctx, d.Project.ID); err != nil {
					return nil, err
				} else if o != upstream.OriginLocal {
					return &rendered{found: true, origin: o}, nil
				}
			}
			alts, err := s.projects.AlternateLocations(ctx, d.Project.ID)
			if err != nil {
				return nil, err
			}
			return s.renderDetail(d, alts)
		})
		if err != nil {
			return err
		}
	}
	if page.origin != "" {
		return s.serveOriginPage(w, r, norm, page.origin)
	}
	if !page.found {
		// Not a local project: the pull-through cache, if any, looks
		// upstream (never for a reserved or pending name: upstream.IsLocal).
		if s.upstream != nil {
			return s.serveUpstreamPage(w, r, norm)
		}
		return errNoProject(norm)
	}
	serveRendered(w, r, page)
	return nil
}

// fileURL is the absolute download URL of a file. The digest addresses the
// bytes; the filename is last so installers see the right name.
func (s *Server) fileURL(f *project.File) string {
	return fmt.Sprintf("%s/packages/%s/%s/%s/%s", s.baseURL, f.Blake2_256[:2], f.Blake2_256[2:4], f.Blake2_256, f.Filename)
}

// renderDetail renders a project's Simple API page in both formats. The
// page carries the project's PEP 792 status (api-version 1.4, which PEP 792
// defines): in the JSON, always, as "project-status"; in the HTML, as a
// pypi:project-status meta tag, which PEP 792 lets an index leave out for
// an active project, as PyPI does. A quarantined project's page lists no
// files and no versions: PEP 792 says an index MUST NOT offer them. alts
// are the owners' PEP 708 alternate locations: a pypi:alternate-locations
// meta element each in the HTML, and "alternate-locations" in the JSON
// (always there, empty when there are none, as PyPI sends it).
func (s *Server) renderDetail(d *project.Detail, alts []string) (*rendered, error) {
	p := d.Project
	status := p.Status
	if status == "" {
		status = project.StatusActive
	}
	listed, releases := d.Files, d.Releases
	if status == project.StatusQuarantined {
		listed, releases = nil, nil
	}
	var hb bytes.Buffer
	fmt.Fprintf(&hb, "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"%s\">\n", apiVersion)
	if status != project.StatusActive {
		fmt.Fprintf(&hb, "    <meta name=\"pypi:project-status\" content=\"%s\">\n", status)
	}
	writePEP708(&hb, nil, alts)
	fmt.Fprintf(&hb, "    <title>Links for %s</title>\n  </head>\n  <body>\n    <h1>Links for %s</h1>\n",
		html.EscapeString(p.Name), html.EscapeString(p.Name))
	files := make([]map[string]any, 0, len(listed))
	for i := range listed {
		f := &listed[i]
		url := s.fileURL(f)
		hb.WriteString(`    <a href="` + html.EscapeString(url) + `#sha256=` + f.SHA256 + `"`)
		if f.RequiresPython != "" {
			hb.WriteString(` data-requires-python="` + html.EscapeString(f.RequiresPython) + `"`)
		}
		if f.Yanked {
			hb.WriteString(` data-yanked="` + html.EscapeString(f.YankedReason) + `"`)
		}
		if f.MetadataSHA256 != "" {
			// Both names: pip 23 reads only PEP 658's data-dist-info-metadata,
			// newer clients PEP 714's data-core-metadata.
			hb.WriteString(` data-dist-info-metadata="sha256=` + f.MetadataSHA256 + `" data-core-metadata="sha256=` + f.MetadataSHA256 + `"`)
		}
		var prov any
		if f.Builder != nil {
			// PEP 740: the file's provenance, in the Integrity API.
			prov = s.provenanceURL(p.NormalizedName, f)
			hb.WriteString(` data-provenance="` + html.EscapeString(prov.(string)) + `"`)
		}
		hb.WriteString(">" + html.EscapeString(f.Filename) + "</a><br />\n")

		var yanked any = false
		if f.Yanked {
			yanked = true
			if f.YankedReason != "" {
				yanked = f.YankedReason
			}
		}
		var meta any = false
		if f.MetadataSHA256 != "" {
			meta = map[string]string{"sha256": f.MetadataSHA256}
		}
		var rp any
		if f.RequiresPython != "" {
			rp = f.RequiresPython
		}
		files = append(files, map[string]any{
			"filename":        f.Filename,
			"url":             url,
			"hashes":          map[string]string{"sha256": f.SHA256},
			"requires-python": rp,
			"size":            f.Size,
			"upload-time":     f.UploadedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
			"yanked":          yanked,
			// PEP 714: "core-metadata", plus "data-dist-info-metadata" as PyPI
			// sends. Not "dist-info-metadata": pip 23.0 reads that key as the
			// HTML attribute's string and crashes on the PEP 691 dict
			// ("unhashable type: 'dict'"), which is why PEP 714 renamed it.
			"data-dist-info-metadata": meta,
			"core-metadata":           meta,
			"provenance":              prov,
		})
	}
	fmt.Fprintf(&hb, "  </body>\n</html>\n<!--SERIAL %d-->\n", p.LastSerial)
	versions := make([]string, 0, len(releases))
	for i := len(releases) - 1; i >= 0; i-- { // oldest first, like PyPI
		versions = append(versions, releases[i].Version)
	}
	if alts == nil {
		alts = []string{}
	}
	jb, err := marshalSimple(map[string]any{
		"meta":                map[string]any{"api-version": apiVersion, "_last-serial": p.LastSerial},
		"name":                p.NormalizedName,
		"project-status":      map[string]string{"status": status},
		"versions":            versions,
		"files":               files,
		"alternate-locations": alts,
	})
	if err != nil {
		return nil, err
	}
	return newRendered(p.LastSerial, hb.Bytes(), jb), nil
}

// writePEP708 writes a project page's PEP 708 meta elements: one
// pypi:tracks per project this page tracks, one pypi:alternate-locations
// per alternate location.
func writePEP708(hb *bytes.Buffer, tracks, alts []string) {
	for _, t := range tracks {
		fmt.Fprintf(hb, "    <meta name=\"pypi:tracks\" content=\"%s\">\n", html.EscapeString(t))
	}
	for _, a := range alts {
		fmt.Fprintf(hb, "    <meta name=\"pypi:alternate-locations\" content=\"%s\">\n", html.EscapeString(a))
	}
}

// marshalSimple renders JSON as PyPI does: sorted keys, compact, newline.
// encoding/json sorts map keys; HTML escaping is off so URLs stay readable.
func marshalSimple(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
