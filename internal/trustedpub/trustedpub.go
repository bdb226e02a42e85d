// Package trustedpub is trusted publishing: a CI job proves who it is with
// an OpenID Connect ID token, and the index exchanges that token for an
// upload token that lives 15 minutes (spec §3, checks G1–G8). It is
// compatible with the exchange pypa/gh-action-pypi-publish and
// `uv publish --trusted-publishing` perform against PyPI.
//
// The parts, one file each:
//
//   - issuers.go: which issuers are trusted: GitHub Actions, GitLab
//     (gitlab.com and the self-managed instances the operator lists),
//     Google, ActiveState, and issuers an administrator registers (Gitea
//     and Forgejo Actions, any OIDC CI) with the claims their publishers
//     must name. Every lookup is by (kind, issuer URL), so a token from one
//     issuer can never match another issuer's publisher (G7).
//   - keys.go: discovery and JWKS, fetched from the issuer within a bounded
//     time and cached; an unknown key id refreshes them at most once a
//     minute (G1).
//   - verify.go: the JWT itself: RS256 only, no keys from the token, strict
//     single audience, iss/exp/iat/nbf with a 30-second leeway, jti
//     required (G1–G3).
//   - claims.go: the claims each provider's publisher binds (G6).
//   - publisher.go, manage.go: publishers, as entered on a project's
//     settings page, and their storage.
//   - pending.go: pending publishers, which create their project on the
//     first exchange.
//   - exchange.go: the exchange, one transaction: the jti is claimed with a
//     unique insert in the transaction that mints the token, so of any
//     number of concurrent exchanges of one token exactly one mints (G4,
//     G5); the record outlives exp plus the leeway.
//   - policy.go: "trusted publishing only" and the notice when a
//     long-lived token uploads to a project that has a publisher.
package trustedpub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/throttle"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// Numbers from Warehouse (spec §3).
const (
	// Leeway is the clock skew allowed on exp, iat and nbf.
	Leeway = 30 * time.Second
	// jtiMargin is how much longer than exp+Leeway a jti is kept.
	jtiMargin = 5 * time.Second
	// keyRefreshEvery bounds JWKS refreshes caused by unknown key ids.
	keyRefreshEvery = time.Minute
	// MaxPending is how many pending publishers one user may have.
	MaxPending = 3
	// PendingLifetime is how long a pending publisher waits for its first
	// exchange.
	PendingLifetime = 30 * 24 * time.Hour
	// DefaultFetchTimeout bounds the work against an issuer (discovery and
	// JWKS) in one exchange. pypa/gh-action-pypi-publish gives the whole
	// mint request 5 seconds, so an issuer that does not answer must cost
	// less than that for the job to see our 503 rather than its own timeout.
	DefaultFetchTimeout = 3 * time.Second
)

// Canonical issuers.
const (
	GitHubIssuer      = "https://token.actions.githubusercontent.com"
	GitLabIssuer      = "https://gitlab.com"
	GoogleIssuer      = "https://accounts.google.com"
	ActiveStateIssuer = "https://platform.activestate.com/api/v1/oauth/oidc"
	GitHubAPI         = "https://api.github.com"
)

// Service is trusted publishing. Create it with New.
type Service struct {
	db        *db.DB
	tokens    *token.Service
	projects  *project.Service
	notifier  account.Notifier
	audience  string
	builtins  map[string]builtinIssuer // issuer URL → provider
	gitlab    []string                 // GitLab issuers, gitlab.com first
	disabled  bool
	githubAPI string
	client    *http.Client
	timeout   time.Duration
	keys      *keyCache
	baseURL   string
	siteName  string
	now       func() time.Time
	log       *slog.Logger

	userRegister *throttle.Limiter
	ipRegister   *throttle.Limiter
}

// Options configure a Service. DB, Tokens, Projects, Audience and BaseURL
// are required.
type Options struct {
	DB       *db.DB
	Tokens   *token.Service
	Projects *project.Service
	// Notifier sends the emails (publisher added or removed, pending
	// publisher used, invalidated or expired); nil records events only.
	Notifier account.Notifier
	// Audience is the one audience tokens must carry, and what
	// GET /_/oidc/audience answers.
	Audience string
	// Disabled turns trusted publishing off: the audience endpoint and
	// every exchange say so.
	Disabled bool
	// Providers are the built-in providers that are on (github, gitlab,
	// google, activestate); nil means all. A token from one that is off
	// gets "not-enabled". Issuers an administrator registered are on.
	Providers []string
	// GitHubIssuer replaces GitHub's issuer (GitHub Enterprise Server, a
	// test issuer); GitLabIssuers are the GitLab instances trusted, the
	// first being the default (default just gitlab.com). GoogleIssuer and
	// ActiveStateIssuer likewise replace theirs.
	GitHubIssuer, GoogleIssuer, ActiveStateIssuer string
	GitLabIssuers                                 []string
	// GitHubAPI is where a GitHub owner's numeric id is looked up (default
	// https://api.github.com).
	GitHubAPI string
	// HTTPClient fetches discovery documents, JWKS and GitHub owners.
	// Default: a client with no cookies and the FetchTimeout.
	HTTPClient *http.Client
	// FetchTimeout bounds the time spent on an issuer in one exchange, and
	// on one GitHub API lookup (default DefaultFetchTimeout).
	FetchTimeout time.Duration
	// BaseURL (no trailing slash) and SiteName are for emails.
	BaseURL  string
	SiteName string
	Now      func() time.Time
	Log      *slog.Logger
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.DB == nil || o.Tokens == nil || o.Projects == nil {
		return nil, errors.New("trustedpub.New: DB, Tokens and Projects are required")
	}
	if strings.TrimSpace(o.Audience) == "" {
		return nil, errors.New("trustedpub.New: an audience is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.FetchTimeout}
	}
	if o.GitHubAPI == "" {
		o.GitHubAPI = GitHubAPI
	}
	s := &Service{
		db: o.DB, tokens: o.Tokens, projects: o.Projects, notifier: o.Notifier,
		audience: o.Audience, disabled: o.Disabled,
		githubAPI: strings.TrimRight(o.GitHubAPI, "/"),
		client:    o.HTTPClient, timeout: o.FetchTimeout,
		baseURL: strings.TrimRight(o.BaseURL, "/"), siteName: o.SiteName,
		now: o.Now, log: o.Log,
		userRegister: throttle.New(o.DB, "user_oidc.publisher.register", o.Now, throttle.Limit{N: 100, Per: 24 * time.Hour}),
		ipRegister:   throttle.New(o.DB, "ip_oidc.publisher.register", o.Now, throttle.Limit{N: 100, Per: 24 * time.Hour}),
	}
	var err error
	if s.builtins, s.gitlab, err = builtinIssuers(o); err != nil {
		return nil, err
	}
	s.keys = newKeyCache(s.client, o.Now)
	return s, nil
}

// Audience is the audience CI jobs must request their tokens for, and
// whether trusted publishing is on at all.
func (s *Service) Audience() (aud string, enabled bool) { return s.audience, !s.disabled }

// GitLabIssuers lists the GitLab instances publishers may name.
func (s *Service) GitLabIssuers() []string { return append([]string(nil), s.gitlab...) }

// checkIssuerURL accepts https URLs, and http only for loopback hosts
// (local and test issuers): an ID token's keys must come over TLS.
func checkIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an issuer URL such as https://ci.example.com", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
	}
	return fmt.Errorf("issuer %q must use https", raw)
}

// Actor is who changes publishers, for the audit trail and emails.
type Actor struct {
	UserID   int64
	Username string
	Client   account.Client
}

// Sweep deletes what has outlived its use: jti records past their keep
// time, expired publisher tokens, and pending publishers past their 30 days
// (each owner is told). cmd/gatehouse runs it every few minutes.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now().UTC()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oidc_jtis WHERE keep_until < $1`, now.Unix()); err != nil {
		return fmt.Errorf("sweep jti records: %w", err)
	}
	// Kept a day past expiry, as Warehouse keeps them, for the record.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oidc_tokens WHERE expires_at < $1`, now.Add(-24*time.Hour)); err != nil {
		return fmt.Errorf("sweep publisher tokens: %w", err)
	}
	return s.expirePending(ctx)
}
