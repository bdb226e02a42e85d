package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"github.com/gatehouse-index/gatehouse/internal/attest"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/config"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/session"
	"github.com/gatehouse-index/gatehouse/internal/throttle"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
	"github.com/gatehouse-index/gatehouse/internal/web"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// app is everything a command needs, wired once. The user and token
// commands use the database, accounts, tokens and second factors; serve
// adds the rest with openServer.
type app struct {
	cfg      *settings
	log      *slog.Logger
	db       *db.DB
	secret   []byte
	notifier *mail.Notifier
	tokens   *token.Service
	accounts *account.Service
	hashes   *workpool.Pool // the password hashes' CPU budget (--hash-cpus)
	audit    *audit.Service
	mfa      *mfa.Service

	// serve only (openServer)
	blobs    fileStore // the files directory or an S3 bucket (storage.go)
	projects *project.Service
	sessions *session.Manager
	webauthn *mfa.WebAuthn
	tp       *trustedpub.Service
}

func (a *app) Close() {
	a.db.Close()
	if a.blobs != nil {
		a.blobs.Close()
	}
}

func newLogger(cfg *settings, e env) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// open connects to the database (migrating it) and builds the account,
// token and second-factor services. With create (serve, migrate --create)
// it makes the data directory, database and server secret when they are
// missing; without it (every other command) it refuses to, see
// requireIndex.
func open(ctx context.Context, cfg *settings, log *slog.Logger, create bool) (*app, error) {
	if create {
		if err := makeDataDir(cfg, log); err != nil {
			return nil, err
		}
	} else if err := requireIndex(cfg); err != nil {
		return nil, err
	}
	d, _, err := openDB(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a, err := services(cfg, log, d)
	if err != nil {
		d.Close()
		return nil, err
	}
	return a, nil
}

// makeDataDir creates the data directory, saying so in the log when it is
// new: a server started in the wrong directory then shows where its new,
// empty index is. (Uploads are staged in the blob store itself, so there is
// no temp directory.)
func makeDataDir(cfg *settings, log *slog.Logger) error {
	if missing(cfg.DataDir) {
		log.Info("creating a new, empty data directory", "path", abs(cfg.DataDir))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return explain(err)
	}
	return nil
}

// openDB connects to the database and applies pending migrations, returning
// how many it applied.
func openDB(ctx context.Context, cfg *settings, log *slog.Logger) (*db.DB, int, error) {
	where := "--database-url (or GATEHOUSE_DATABASE_URL)"
	check := "Check " + where + " and that the PostgreSQL server is running and accepts this user and password."
	if _, ok := sqlitePath(cfg.DatabaseURL); ok {
		if !cfg.given["database-url"] && cfg.getenv("GATEHOUSE_DATABASE_URL") == "" {
			where = "--data-dir (or GATEHOUSE_DATA_DIR)"
		}
		check = "Check " + where + ": the file's directory must exist and be writable, and the file must be a Gatehouse SQLite database."
	}
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		if e := explainSystem(err); e != nil {
			return nil, 0, e
		}
		return nil, 0, fail(err, fmt.Sprintf("Gatehouse could not open the database %s: %v", redactURL(cfg.DatabaseURL), err), check)
	}
	applied, err := d.Migrate(ctx, log)
	if err != nil {
		d.Close()
		if ctx.Err() != nil {
			return nil, 0, explain(ctx.Err())
		}
		return nil, 0, fail(err, fmt.Sprintf("Gatehouse could not bring the database %s up to date: %v", redactURL(cfg.DatabaseURL), err),
			"Check that "+where+" names a Gatehouse database. If a newer Gatehouse has already migrated it, run that version.")
	}
	return d, len(applied), nil
}

// redactURL hides the password in a database URL.
func redactURL(s string) string {
	if _, ok := sqlitePath(s); ok {
		return abs(strings.TrimPrefix(s, "sqlite:"))
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(an unreadable URL)"
	}
	return u.Redacted()
}

// services builds what every command shares on an open database.
func services(cfg *settings, log *slog.Logger, d *db.DB) (*app, error) {
	secret, err := cfg.Secret(func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		if e := explainSystem(err); e != nil {
			return nil, e
		}
		return nil, fail(err, "The server secret is not usable: "+err.Error(),
			"Give the server's own secret with --secret-key / GATEHOUSE_SECRET_KEY or --secret-key-file / GATEHOUSE_SECRET_KEY_FILE.")
	}
	renderer, err := mail.NewRenderer(cfg.SiteName, cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("email templates: %w", err)
	}
	u, _ := url.Parse(cfg.BaseURL)
	tokens, err := token.NewService(d, token.Options{Secret: secret, Location: u.Host, HelpURL: cfg.BaseURL + "/help/",
		Notifier: mail.NewNotifier(renderer, nil), Links: web.EmailLinks(cfg.BaseURL), Logger: log})
	if err != nil {
		return nil, err
	}
	var breach *account.BreachChecker
	if cfg.HIBPURL != "" {
		breach = account.NewBreachChecker(cfg.HIBPURL, nil)
	}
	notifier := mail.NewNotifier(renderer, nil)
	hashes := workpool.New(workpool.Options{CPUs: cfg.HashCPUs, Wait: cfg.HashWait})
	accounts := account.NewService(account.Options{
		DB:                      d,
		Hasher:                  account.NewHasher(hashes),
		Notifier:                notifier,
		Links:                   web.EmailLinks(cfg.BaseURL),
		Breach:                  breach,
		Log:                     log,
		DefaultRegistrationOpen: cfg.Registration == "open",
	})
	factors, err := mfa.NewService(mfa.Options{DB: d, Secret: secret, SiteName: cfg.SiteName, Links: web.EmailLinks(cfg.BaseURL), Notifier: notifier, Log: log})
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, log: log, db: d, secret: secret, notifier: notifier, tokens: tokens, accounts: accounts, hashes: hashes,
		audit: audit.NewService(d, nil), mfa: factors}, nil
}

// openServer adds what only the server needs: the package files, projects,
// sessions and WebAuthn.
func (a *app) openServer(ctx context.Context, log *slog.Logger) error {
	cfg := a.cfg
	blobs, err := openStore(ctx, cfg, storageLocation(cfg))
	if err != nil {
		return err
	}
	a.blobs = blobs
	trusted, err := attest.LoadTrustedRoot(cfg.SigstoreTrustedRoot)
	if err != nil {
		return fail(errUsage, "Attestations cannot be verified: "+err.Error(),
			"Check --sigstore-trusted-root (or GATEHOUSE_SIGSTORE_TRUSTED_ROOT): it names a Sigstore trusted_root.json; leave it empty for the public-good root.")
	}
	verifier, err := attest.NewVerifier(trusted)
	if err != nil {
		return err
	}
	a.projects = project.NewService(a.db, blobs, project.Options{
		Limits:  project.Limits{MaxFileSize: cfg.MaxFileSize, MaxProjectSize: cfg.MaxProjectSize, ReleaseAgeDays: cfg.ReleaseAgeDays},
		HelpURL: cfg.BaseURL + "/help/",
		Log:     log,
		// Collaboration and project changes email through the one notice
		// path, and invitations link to web's page.
		Notifier: a.notifier,
		Links:    web.EmailLinks(cfg.BaseURL),
		// A new project (by upload or a pending publisher) invalidates
		// other users' pending publishers for its name.
		OnCreate: trustedpub.PendingInvalidator{Notifier: a.notifier, BaseURL: cfg.BaseURL}.ProjectCreated,
		Attest:   verifier,
	})
	a.tp, err = trustedpub.New(trustedpub.Options{
		DB: a.db, Tokens: a.tokens, Projects: a.projects, Notifier: a.notifier,
		Audience: cfg.OIDCAudience, Disabled: cfg.TrustedPublishing == "off", Providers: cfg.OIDCProviderList(),
		GitHubIssuer: cfg.OIDCGitHubIssuer, GitLabIssuers: cfg.OIDCGitLabIssuerList(),
		GitHubAPI: cfg.GitHubAPIURL, FetchTimeout: cfg.OIDCFetchTimeout,
		BaseURL: cfg.BaseURL, SiteName: cfg.SiteName, Log: log,
	})
	if err != nil {
		return fail(errUsage, "Trusted publishing cannot start: "+err.Error(),
			"Check --oidc-providers, --oidc-github-issuer and --oidc-gitlab-issuers (or their GATEHOUSE_OIDC_* variables).")
	}
	a.sessions = session.NewManager(a.db, session.Options{IdleTimeout: cfg.SessionIdle, AbsoluteTimeout: cfg.SessionMax})
	// WebAuthn binds credentials to the site: the RP ID is the base URL's
	// host and the only accepted origin is the base URL's origin.
	u, _ := url.Parse(cfg.BaseURL)
	a.webauthn, err = mfa.NewWebAuthn(mfa.WebAuthnOptions{DB: a.db, RPID: u.Hostname(), RPOrigins: []string{u.Scheme + "://" + u.Host},
		SiteName: cfg.SiteName, Notifier: a.notifier, Limiter: a.mfa, Log: log})
	if err != nil {
		if net.ParseIP(u.Hostname()) != nil {
			return fail(errUsage, fmt.Sprintf("--base-url %s names an IP address, but security keys and passkeys (WebAuthn) need a host name", cfg.BaseURL),
				fmt.Sprintf("Use http://localhost:%s for a local server, or a DNS name.", u.Port()))
		}
		return err
	}
	return nil
}

const serveUsage = `Usage: gatehouse serve [flags]

Runs the package index. With no flags it keeps everything in ./gatehouse-data
(a SQLite database, package files and the server secret) and listens on
http://127.0.0.1:8080/. Point pip at <base-url>/simple/ and twine at
<base-url>/legacy/.`

func serve(ctx context.Context, e env, args []string) error {
	cfg, err := loadConfig(e, "serve", serveUsage, args, nil)
	if err != nil {
		return helpOK(err)
	}
	log := newLogger(cfg, e)

	// The certificate before the port: a server that cannot serve HTTPS
	// must not take the address.
	var certs *certReloader
	if cfg.TLS() {
		if certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fail(err, "Gatehouse could not load the TLS certificate and key: "+err.Error(),
				"Check --tls-cert and --tls-key (or GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY): two PEM files, the certificate chain (leaf first) and its private key, readable by this user.")
		}
	}

	// Listen first: with port 0 (tests) the base URL comes from the real port.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return explainListen(cfg.Listen, "--listen (or GATEHOUSE_LISTEN)", err)
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.MetricsListen != "" {
		if mln, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return explainListen(cfg.MetricsListen, "--metrics-listen (or GATEHOUSE_METRICS_LISTEN)", err)
		}
		defer mln.Close()
	}
	if _, port, _ := net.SplitHostPort(cfg.Listen); port == "0" && cfg.origin("base-url", "GATEHOUSE_BASE_URL") == "the default" {
		cfg.BaseURL = config.DefaultBaseURL(ln.Addr().String())
		if cfg.TLS() {
			cfg.BaseURL = "https://" + strings.TrimPrefix(cfg.BaseURL, "http://")
		}
		if cfg.origin("oidc-audience", "GATEHOUSE_OIDC_AUDIENCE") == "the default" {
			u, _ := url.Parse(cfg.BaseURL)
			cfg.OIDCAudience = u.Host
		}
	}

	a, err := open(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.Close()
	// The password hashes get processors of their own, so that the Go
	// scheduler never runs a hash ahead of the requests on theirs.
	defer workpool.ReserveProcs(a.hashes.Workers())()
	if err := a.openServer(ctx, log); err != nil {
		return err
	}
	started := time.Now()

	var sender mail.Sender
	if cfg.SMTPURL != "" {
		sender, err = mail.NewSMTPSender(cfg.SMTPURL)
	} else {
		sender, err = mail.NewFileSender(cfg.MailDir, log)
	}
	if err != nil {
		return fail(err, "Gatehouse could not set up sending email: "+err.Error(),
			"Check --smtp-url (or GATEHOUSE_SMTP_URL), or --mail-dir when no SMTP server is set.")
	}
	worker := mail.NewWorker(a.db, sender, mail.WorkerOptions{From: cfg.MailFrom, Log: log})
	var m *metrics.Metrics
	if mln != nil {
		m = metrics.New()
	}

	orgs := org.New(org.Options{DB: a.db, Projects: a.projects, Notifier: a.notifier, Links: web.EmailLinks(cfg.BaseURL),
		BaseURL: cfg.BaseURL, NeedApproval: cfg.OrganizationApproval == "required", Log: log, PublisherNames: a.tp.PublisherNames,
		Issuers: a.tp})
	var up *upstream.Service
	if ups := cfg.UpstreamList(); len(ups) > 0 {
		up = upstream.New(upstream.Options{DB: a.db, Blobs: a.blobs, Upstreams: ups, TTL: cfg.UpstreamTTL, MinAge: cfg.UpstreamMinAge, Log: log})
	}
	srv, err := web.NewServer(web.Deps{
		Projects:   a.projects,
		Tokens:     a.tokens,
		Accounts:   a.accounts,
		Sessions:   a.sessions,
		Audit:      a.audit,
		MFA:        a.mfa,
		WebAuthn:   a.webauthn,
		TrustedPub: a.tp,
		Orgs:       orgs,
		ReadAccess: cfg.ReadAccess,
		Upstream:   up,
		Login: login.NewService(login.Options{DB: a.db, Accounts: a.accounts, MFA: a.mfa, WebAuthn: a.webauthn,
			Sessions: a.sessions, ConfirmEveryLogin: orgs.ConfirmEveryLogin}),
		MailKick:       worker.Kick,
		TrustedProxies: cfg.ProxyCIDRs(),
		Log:            log,
		BaseURL:        cfg.BaseURL,
		SiteName:       cfg.SiteName,

		UploadMinRate:    cfg.UploadMinRate,
		UploadRateWindow: cfg.UploadRateWindow,
		PageCacheSize:    cfg.PageCacheSize,
		DownloadRedirect: downloadRedirect(cfg),

		Metrics: m,
		Ready:   a.ready,
	})
	if err != nil {
		return err
	}
	if m != nil {
		if err := watch(m, a, srv, worker, up); err != nil {
			return err
		}
	}
	if benchHook != nil {
		benchHook(srv, log)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go srv.WatchChanges(watchCtx, cfg.CachePoll)
	go worker.Run(watchCtx)
	go sweepTables(watchCtx, a.db, a.sessions, log)
	// The temp-file sweep walks the whole file store (or the bucket's
	// unfinished uploads): it runs beside the server, not before it, so
	// that start-up does no work that grows with the index (P9). On a
	// directory it also registers this process as a writer (a shared flock
	// on the store) and removes the temp files of dead writers; files this
	// process writes after started are kept.
	swept := make(chan struct{})
	var stopWriting func()
	// Stop it, then wait for it, before a.Close closes the store.
	defer func() {
		stopWatch()
		<-swept
		if stopWriting != nil {
			stopWriting()
		}
	}()
	go func() {
		defer close(swept)
		stopWriting = sweepTemps(watchCtx, a.blobs, started, log)
	}()
	go sweepTrustedPublishing(watchCtx, a.tp, log)
	// Files written by uploads that a crash stopped before they were
	// listed. In the background: start-up must not wait on a walk of every
	// file, and the sweep is safe beside uploads (project/blobrefs.go).
	var sweeping sync.WaitGroup
	defer func() { stopWatch(); sweeping.Wait() }() // before the database and the files close
	sweeping.Go(func() { sweepOrphans(watchCtx, a.projects, started, log) })

	// ReadTimeout bounds reading a request, headers and body: page forms
	// are small. The web layer lifts it once a body is in, so slow handlers
	// and long downloads are not cut, and uploads replace it with their
	// minimum transfer rate (--upload-min-rate), since a large file on a
	// slow link legitimately takes minutes. No WriteTimeout, for the same
	// reason on downloads. Idle keep-alive connections close after
	// IdleTimeout.
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          serverErrorLog(log),
	}
	errc := make(chan error, 2)
	if certs != nil {
		hs.TLSConfig = certs.tlsConfig()
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go certs.reloadOnSignal(hup, watchCtx.Done(), log)
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	var ms *http.Server
	if mln != nil {
		ms = metricsServer(m, log)
		go func() { errc <- ms.Serve(mln) }()
		log.Info("serving metrics", "url", "http://"+mln.Addr().String()+"/metrics")
	}
	log.Info("Gatehouse is running", "url", cfg.BaseURL+"/", "tls", certs != nil, "database", a.db.Dialect, "data_dir", abs(cfg.DataDir), "files", storageName(cfg))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if ms != nil {
		ms.Close() // a scrape can be cut: the next one sees the new instance
	}
	err = hs.Shutdown(sctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// The grace is over. Uploads still arriving are told so (503) rather
	// than cut off; anything else still running is closed.
	log.Warn("shutdown grace is over; refusing the uploads still in flight and closing the remaining connections")
	stopCtx, cancelStop := context.WithTimeout(context.Background(), uploadStopTime)
	defer cancelStop()
	srv.StopUploads(stopCtx)
	hs.Close()
	return nil
}

// uploadStopTime bounds how long uploads still in flight when the shutdown
// grace ends take to be answered 503 (the answer waits briefly for the
// client to stop sending, so that it is read and not lost to a reset).
const uploadStopTime = 3 * time.Second

// sweepTables deletes expired sessions and rate-limit counts no limit can
// still use, every few minutes; neither is ever read again, this only keeps
// the tables small.
func sweepTables(ctx context.Context, d *db.DB, m *session.Manager, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn("sweeping expired sessions failed", "err", err)
			}
			if _, err := throttle.Sweep(ctx, d, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("sweeping old rate-limit counts failed", "err", err)
			}
		}
	}
}

// sweepTrustedPublishing drops used JWT ids past their keep time and
// expired publisher tokens, and expires pending publishers (telling their
// owners), every few minutes.
func sweepTrustedPublishing(ctx context.Context, tp *trustedpub.Service, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := tp.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn("trusted publishing sweep failed", "err", err)
			}
		}
	}
}

// sweepOrphans removes the package files no row names that were written
// before the server started, logging what it did.
func sweepOrphans(ctx context.Context, p *project.Service, before time.Time, log *slog.Logger) {
	n, err := p.SweepOrphans(ctx, before)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("sweeping unlisted package files failed; run 'gatehouse sweep' to retry", "removed", n, "err", err)
	case err != nil:
	case n > 0:
		log.Info("removed unlisted package files left by interrupted uploads", "count", n)
	default:
		log.Debug("removed unlisted package files left by interrupted uploads", "count", 0)
	}
}

// explainListen says why the server cannot listen on addr, which setting
// names (as "--listen (or GATEHOUSE_LISTEN)").
func explainListen(addr, setting string, err error) error {
	host, port, _ := net.SplitHostPort(addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		next := "8081"
		if n, convErr := strconv.Atoi(port); convErr == nil && n < 65535 {
			next = strconv.Itoa(n + 1)
		}
		return fail(err, fmt.Sprintf("Another program is already listening on %s (perhaps another 'gatehouse serve')", addr),
			fmt.Sprintf("Stop it, or choose a free address with %s, e.g. %s %s.", setting, strings.Fields(setting)[0], net.JoinHostPort(host, next)))
	case errors.Is(err, syscall.EACCES):
		return fail(err, fmt.Sprintf("Gatehouse may not listen on %s: ports below 1024 need extra privileges", addr),
			"Listen on a port above 1023 (e.g. --listen 127.0.0.1:8080) behind a reverse proxy, or give the binary CAP_NET_BIND_SERVICE.")
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fail(err, fmt.Sprintf("%s is not an address of this machine", host),
			"Use --listen 127.0.0.1:"+port+" for this machine only, or 0.0.0.0:"+port+" for every network interface.")
	}
	return fail(err, fmt.Sprintf("Gatehouse cannot listen on %s: %v", addr, err),
		"Choose another address with "+setting+", as host:port.")
}

const migrateUsage = `Usage: gatehouse migrate [--create] [flags]

Applies any pending database migrations and exits. 'serve' does this at
start too; run it on its own before rolling out several instances.

The other commands ('user', 'token') work only on an index that exists, so
that one run in the wrong directory does not quietly start a new, empty
index. To set up a new index before its first 'serve' (to create the first
administrator, say), run 'gatehouse migrate --create': it creates the data
directory, the database and the server secret.`

func migrate(ctx context.Context, e env, args []string) error {
	var create bool
	cfg, err := loadConfig(e, "migrate", migrateUsage, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&create, "create", false, "create a new index (data directory, database and server secret) if there is none")
	})
	if err != nil {
		return helpOK(err)
	}
	log := newLogger(cfg, e)
	if create {
		// The same setup serve does, so the server later finds exactly this.
		existed := !missing(cfg.DataDir)
		a, err := open(ctx, cfg, log, true)
		if err != nil {
			return err
		}
		dialect := a.db.Dialect
		a.Close()
		if !existed {
			fmt.Fprintf(e.stdout, "Created a new index in %s.\n", abs(cfg.DataDir))
		}
		fmt.Fprintf(e.stdout, "The %s database is up to date.\n", dialectName(dialect))
		return nil
	}
	// Only the database: a PostgreSQL database is made by its administrator
	// and migrate fills it, but a missing SQLite file means the wrong
	// directory, not a new index.
	if path, ok := sqlitePath(cfg.DatabaseURL); ok && missing(path) {
		return requireIndex(cfg)
	}
	d, applied, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(e.stdout, "The %s database is up to date (%d migration(s) applied now).\n", dialectName(d.Dialect), applied)
	return nil
}

// dialectName is a database kind as people write it.
func dialectName(d db.Dialect) string {
	if d == db.Postgres {
		return "PostgreSQL"
	}
	return "SQLite"
}
