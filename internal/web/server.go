// Package web is all of Gatehouse's HTTP: the tool-facing APIs that pip,
// uv and twine speak (Simple API, JSON API, file downloads, legacy upload)
// and the browser pages. Every route is registered in routes.go.
package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/session"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

// Deps is what the web layer needs; cmd/gatehouse builds it.
type Deps struct {
	Projects *project.Service
	Tokens   *token.Service
	Accounts *account.Service
	Sessions *session.Manager
	Audit    *audit.Service
	MFA      *mfa.Service
	WebAuthn *mfa.WebAuthn
	Login    *login.Service
	Log      *slog.Logger

	// TrustedPub is trusted publishing; nil turns its endpoints and pages
	// off.
	TrustedPub *trustedpub.Service
	// Orgs is organizations, teams and their security policies, which the
	// guards and the upload path enforce (required).
	Orgs *org.Service
	// ReadAccess is --read-access: ReadPublic (default) or
	// ReadAuthenticated, where reading the index needs a token or a
	// signed-in browser (readaccess.go).
	ReadAccess string

	// MailKick wakes the mail worker after a change queued email (may be nil).
	MailKick func()
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string
	BaseURL        string // public URL without trailing slash; links are built only from it
	SiteName       string
	Now            func() time.Time // default time.Now

	// UploadMinRate (bytes per second) and UploadRateWindow hold upload
	// bodies to a minimum transfer rate (see minRateReader); zero takes
	// the defaults of --upload-min-rate and --upload-rate-window.
	UploadMinRate    int64
	UploadRateWindow time.Duration
	// PageCacheSize is the Simple API page cache's byte budget
	// (default DefaultPageCacheSize).
	PageCacheSize int64
	// DownloadRedirect, when positive and the blob store can presign
	// (S3), answers file downloads with a redirect to a presigned URL
	// valid this long, instead of streaming the bytes through.
	DownloadRedirect time.Duration

	// Metrics counts requests, uploads and sign-ins; nil counts nothing
	// (--metrics-listen unset).
	Metrics *metrics.Metrics
	// Ready answers /readyz: nil when this instance can serve (database
	// and file store reachable, migrations current). Nil Ready is always
	// ready.
	Ready func(ctx context.Context) error
	// Random fills request ids' per-process prefix (default crypto/rand).
	Random func([]byte) (int, error)
}

// Server serves Gatehouse over HTTP. Create it with NewServer.
type Server struct {
	projects *project.Service
	tokens   *token.Service
	accounts *account.Service
	sessions *session.Manager
	audit    *audit.Service
	mfa      *mfa.Service
	webauthn *mfa.WebAuthn
	signin   *login.Service
	tp       *trustedpub.Service
	orgs     *org.Service
	// readAccess is ReadPublic or ReadAuthenticated.
	readAccess string
	mailKick   func()
	proxies    []*net.IPNet
	// proxyPrefixes are the same networks for netip, which parses
	// without allocating (observe's request ids).
	proxyPrefixes []netip.Prefix
	csrf          *http.CrossOriginProtection
	log           *slog.Logger
	baseURL       string
	siteName      string
	now           func() time.Time
	simple        *simpleCache
	templates     map[string]*template.Template
	static        staticFiles
	mux           *http.ServeMux
	handler       http.Handler // observe around the mux
	metrics       *metrics.Metrics
	ids           *requestIDs
	ready         func(ctx context.Context) error

	uploadMinRate    int64 // bytes per second; see minRateReader
	uploadRateWindow time.Duration
	downloadRedirect time.Duration // 0: files are streamed (see serveFile)
	uploads          uploadSet     // in flight, for StopUploads
}

// NewServer builds the server and its routes.
func NewServer(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.UploadMinRate <= 0 {
		d.UploadMinRate = defaultUploadMinRate
	}
	if d.UploadRateWindow <= 0 {
		d.UploadRateWindow = defaultUploadRateWindow
	}
	s := &Server{
		projects: d.Projects,
		tokens:   d.Tokens,
		accounts: d.Accounts,
		sessions: d.Sessions,
		audit:    d.Audit,
		mfa:      d.MFA,
		webauthn: d.WebAuthn,
		signin:   d.Login,
		tp:       d.TrustedPub,
		orgs:     d.Orgs,

		readAccess: d.ReadAccess,
		mailKick:   d.MailKick,
		log:        d.Log,
		baseURL:    d.BaseURL,
		siteName:   d.SiteName,
		now:        d.Now,

		uploadMinRate:    d.UploadMinRate,
		downloadRedirect: d.DownloadRedirect,
		uploadRateWindow: d.UploadRateWindow,
	}
	switch s.readAccess {
	case "":
		s.readAccess = ReadPublic
	case ReadPublic, ReadAuthenticated:
	default:
		return nil, fmt.Errorf("web.NewServer: read access %q: want %s or %s", s.readAccess, ReadPublic, ReadAuthenticated)
	}
	if s.orgs == nil {
		return nil, errors.New("web.NewServer: no organizations service (Deps.Orgs)")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.simple = newSimpleCache(d.Projects, d.PageCacheSize, s.log)
	if s.mailKick == nil {
		s.mailKick = func() {}
	}
	for _, cidr := range d.TrustedProxies {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", cidr, err)
		}
		s.proxies = append(s.proxies, n)
		p, err := netip.ParsePrefix(n.String())
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", cidr, err)
		}
		s.proxyPrefixes = append(s.proxyPrefixes, p)
	}
	if d.Random == nil {
		d.Random = rand.Read
	}
	var err error
	if s.ids, err = newRequestIDs(d.Random); err != nil {
		return nil, fmt.Errorf("request ids: %w", err)
	}
	s.metrics, s.ready = d.Metrics, d.Ready
	// CSRF defence for every browser route: the standard library's
	// cross-origin protection refuses state-changing requests that
	// Sec-Fetch-Site or Origin mark as coming from another site. The public
	// base URL is trusted explicitly for deployments behind a proxy that
	// rewrites Host.
	s.csrf = http.NewCrossOriginProtection()
	if u, err := url.Parse(d.BaseURL); err == nil && u.Host != "" {
		if err := s.csrf.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, err
		}
	}
	s.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path)
		http.Error(w, "Cross-origin request refused. Reload the page and submit the form again.", http.StatusForbidden)
	}))
	if s.templates, err = parseTemplates(s.tp != nil); err != nil {
		return nil, err
	}
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.routes(routeRecorder{mux: s.mux, metrics: d.Metrics})
	s.handler = s.observe(s.mux)
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// WatchChanges keeps the Simple API cache in step with changes made by other
// instances sharing the database, polling the journal every interval until
// ctx ends. Changes made by this instance invalidate the cache at once.
func (s *Server) WatchChanges(ctx context.Context, interval time.Duration) {
	s.simple.watch(ctx, s.projects, interval, s.log)
}

// PageCacheStats reports the Simple API cache's counters and usage.
func (s *Server) PageCacheStats() PageCacheStats { return s.simple.stats() }
