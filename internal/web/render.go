package web

import (
	"bytes"

	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"github.com/gatehouse-index/gatehouse/internal/account"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// basePage is embedded in every page struct.
type basePage struct {
	Title    string
	SiteName string
	CSS      string        // URL of the stylesheet, with its content hash
	JS       string        // URL of webauthn.js; pages that need it include it
	User     *account.User // nil when nobody is signed in
	Flashes  []flashMsg
	Banners  []banner
	Path     string // the current path, for "log in and come back" links
}

// banner is a standing notice about the account, shown on every page until
// its cause is fixed.
type banner struct {
	Text     string
	LinkText string
	Link     string
}

// parseTemplates parses every page with the shared layout, once at start.
// trustedPublishing says whether the publishing pages exist, for the
// navigation that links them.
func parseTemplates(trustedPublishing bool) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"trustedPublishing": func() bool { return trustedPublishing },
		"date":              func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"datetime":          func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size":              humanSize,
		"datetimeShort":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	// Files named _*.html hold partials that any page may use (the project
	// pages' navigation and field errors); they are parsed with every page.
	shared := []string{"templates/layout.html"}
	for _, p := range pages {
		if base := path.Base(p); strings.HasPrefix(base, "_") || strings.HasPrefix(base, "partial_") {
			shared = append(shared, p)
		}
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := path.Base(p)
		if name == "layout.html" || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "partial_") {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, append(slices.Clone(shared), p)...)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page. It renders into a buffer first so that a template
// error becomes a clean 500, not half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, page any) error {
	t, ok := s.templates[name]
	if !ok {
		return fmt.Errorf("no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", page); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
	return nil
}

// base fills the parts of a page every template uses. It pops the flash
// messages, so call it once per rendered page.
func (s *Server) base(r *http.Request, title string) basePage {
	st := stateOf(r)
	b := basePage{Title: title, SiteName: s.siteName, CSS: "/static/" + s.static.cssName, JS: "/static/" + s.static.jsName, User: st.user, Path: r.URL.RequestURI()}
	b.Flashes = s.popFlashes(r)
	if u := st.user; u != nil {
		switch {
		case u.PrimaryEmail == "":
			b.Banners = append(b.Banners, banner{"You do not have a primary email address.", "Add one", "/manage/unverified-account/"})
		case !u.PrimaryVerified:
			b.Banners = append(b.Banners, banner{"Your primary email address (" + u.PrimaryEmail + ") is unverified.", "Verify or change it", "/manage/unverified-account/"})
		default:
			if has, err := s.mfa.HasTwoFactor(r.Context(), u.ID); err == nil && !has {
				b.Banners = append(b.Banners, banner{"Two-factor authentication is required to publish packages and manage your account.", "Enable it now", "/manage/account/two-factor/"})
			} else if rs, err := s.mfa.RecoveryStatus(r.Context(), u.ID); err == nil && has && rs.Unused == 0 {
				b.Banners = append(b.Banners, banner{"You have no unused recovery codes.", "Generate new ones", "/manage/account/two-factor/"})
			}
		}
	}
	return b
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// staticFiles are the embedded assets, served under content-hashed names so
// they can be cached forever.
type staticFiles struct {
	cssName    string
	jsName     string
	copyJSName string // copy.js, only on the page that shows a new API token
	files      map[string][]byte
}

func loadStatic() (staticFiles, error) {
	sf := staticFiles{files: map[string][]byte{}}
	hashed := func(file, stem, ext string) (string, error) {
		b, err := staticFS.ReadFile("static/" + file)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		name := stem + "." + hex.EncodeToString(sum[:6]) + ext
		sf.files[name] = b
		return name, nil
	}
	var err error
	if sf.cssName, err = hashed("gatehouse.css", "gatehouse", ".css"); err != nil {
		return sf, err
	}
	if sf.jsName, err = hashed("webauthn.js", "webauthn", ".js"); err != nil {
		return sf, err
	}
	if sf.copyJSName, err = hashed("copy.js", "copy", ".js"); err != nil {
		return sf, err
	}
	return sf, nil
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) error {
	b, ok := s.static.files[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return nil
	}
	ctype := "application/octet-stream"
	switch {
	case strings.HasSuffix(r.PathValue("file"), ".css"):
		ctype = "text/css; charset=utf-8"
	case strings.HasSuffix(r.PathValue("file"), ".js"):
		ctype = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "max-age=31536000, public, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
	return nil
}

// securityHeaders sets the headers every page carries (spec D8): a CSP that
// allows no script and no inline style from descriptions, no framing, no
// MIME sniffing, and a strict referrer policy.
//
// HSTS is sent when the configured base URL is https: behind a TLS-terminating
// proxy r.TLS is nil, so the request cannot tell.
func (s *Server) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		// no-referrer: reset and verification pages carry one-time tokens
		// in their URL, which must not leak to any link target.
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil || strings.HasPrefix(s.baseURL, "https://") {
			hd.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		h.ServeHTTP(w, r)
	})
}

// errorPage is the friendly page for a browser error.
type errorPage struct {
	basePage
	Status  int
	Message string
}

// pageErrors adapts a page handler: errors become a friendly HTML page.
func (s *Server) pageErrors(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status := statusOf(err)
		msg := s.publicMessage(w, r, err, status)
		s.setRetryAfter(w, err)
		if r.Header.Get("Accept") == "application/json" {
			// webauthn.js's fetches: it shows the message under its button.
			writeJSONResponse(w, status, map[string]string{"error": msg})
			return
		}
		page := errorPage{basePage: s.base(r, http.StatusText(status)), Status: status, Message: msg}
		if rerr := s.render(w, status, "error.html", page); rerr != nil {
			s.log.Error("render error page", "err", rerr)
			http.Error(w, msg, status)
		}
	})
}

// favicon answers browsers' automatic /favicon.ico request with "no
// content" (cached for a day) instead of a 404 on every page load.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "max-age=86400, public")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// noSniff marks a tool response so a browser never second-guesses its type:
// the JSON APIs carry package metadata, and a summary of "<script>…" must
// stay text.
func noSniff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = hdrNoSniff // shared, as in simpleHeaders
		h.ServeHTTP(w, r)
	})
}

var hdrNoSniff = []string{"nosniff"}
