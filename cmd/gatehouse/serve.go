package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/config"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/session"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/web"
)

// app is everything a command needs, wired once.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *db.DB
	blobs    *blob.FS
	projects *project.Service
	tokens   *token.Service
	accounts *account.Service
	sessions *session.Manager
	audit    *audit.Service
	mfa      *mfa.Service
	webauthn *mfa.WebAuthn
}

func (a *app) Close() {
	a.db.Close()
	a.blobs.Close()
}

func newLogger(cfg *config.Config, e env) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// open connects to the database (migrating it), the blob store and builds
// the services.
func open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := d.Migrate(ctx, log); err != nil {
		d.Close()
		return nil, err
	}
	blobs, err := blob.NewFS(cfg.FilesDir)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open files dir: %w", err)
	}
	secret, err := cfg.Secret(func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		d.Close()
		return nil, err
	}
	u, _ := url.Parse(cfg.BaseURL)
	tokens, err := token.NewService(d, token.Options{Secret: secret, Location: u.Host, HelpURL: cfg.BaseURL + "/help/"})
	if err != nil {
		d.Close()
		return nil, err
	}
	projects := project.NewService(d, blobs, project.Options{
		Limits:  project.Limits{MaxFileSize: cfg.MaxFileSize, MaxProjectSize: cfg.MaxProjectSize},
		TempDir: tmp,
		HelpURL: cfg.BaseURL + "/help/",
		Log:     log,
	})
	renderer, err := mail.NewRenderer(cfg.SiteName, cfg.BaseURL)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("email templates: %w", err)
	}
	var breach *account.BreachChecker
	if cfg.HIBPURL != "" {
		breach = account.NewBreachChecker(cfg.HIBPURL, nil)
	}
	notifier := mail.NewNotifier(renderer, nil)
	accounts := account.NewService(account.Options{
		DB:                      d,
		Hasher:                  account.NewHasher(runtime.NumCPU()),
		Notifier:                notifier,
		BaseURL:                 cfg.BaseURL,
		Breach:                  breach,
		Log:                     log,
		DefaultRegistrationOpen: cfg.Registration == "open",
	})
	sessions := session.NewManager(d, session.Options{IdleTimeout: cfg.SessionIdle, AbsoluteTimeout: cfg.SessionMax})
	factors, err := mfa.NewService(mfa.Options{DB: d, Secret: secret, SiteName: cfg.SiteName, BaseURL: cfg.BaseURL, Notifier: notifier, Log: log})
	if err != nil {
		d.Close()
		return nil, err
	}
	// WebAuthn binds credentials to the site: the RP ID is the base URL's
	// host and the only accepted origin is the base URL's origin.
	webauthn, err := mfa.NewWebAuthn(mfa.WebAuthnOptions{DB: d, RPID: u.Hostname(), RPOrigins: []string{u.Scheme + "://" + u.Host},
		SiteName: cfg.SiteName, Notifier: notifier, Limiter: factors, Log: log})
	if err != nil {
		d.Close()
		if net.ParseIP(u.Hostname()) != nil {
			return nil, fmt.Errorf("--base-url %s names an IP address, but security keys and passkeys (WebAuthn) need a host name: use http://localhost:%s for a local server, or a DNS name", cfg.BaseURL, u.Port())
		}
		return nil, err
	}
	return &app{cfg: cfg, log: log, db: d, blobs: blobs, projects: projects, tokens: tokens, accounts: accounts,
		sessions: sessions, audit: audit.NewService(d, nil), mfa: factors, webauthn: webauthn}, nil
}

// loadConfig parses the shared server flags plus any extra ones.
func loadConfig(e env, name, usage string, args []string, extra func(fs *flag.FlagSet)) (*config.Config, error) {
	fs := flag.NewFlagSet("gatehouse "+name, flag.ContinueOnError)
	build := config.ServeFlags(fs, e.getenv)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, e, args, usage); err != nil {
		return nil, err
	}
	cfg, err := build()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
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

	// Listen first: with port 0 (tests) the base URL comes from the real port.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running? choose another with --listen)", cfg.Listen, err)
	}
	defer ln.Close()
	if _, port, _ := net.SplitHostPort(cfg.Listen); port == "0" && e.getenv("GATEHOUSE_BASE_URL") == "" && !hasFlag(args, "base-url") {
		cfg.BaseURL = config.DefaultBaseURL(ln.Addr().String())
	}

	a, err := open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if n, err := a.blobs.Sweep(time.Hour); err != nil {
		log.Warn("sweeping temp files failed", "err", err)
	} else if n > 0 {
		log.Info("removed temp files left by an earlier crash", "count", n)
	}

	var sender mail.Sender
	if cfg.SMTPURL != "" {
		sender, err = mail.NewSMTPSender(cfg.SMTPURL)
	} else {
		sender, err = mail.NewFileSender(cfg.MailDir, log)
	}
	if err != nil {
		return fmt.Errorf("mail transport: %w", err)
	}
	worker := mail.NewWorker(a.db, sender, mail.WorkerOptions{From: cfg.MailFrom, Log: log})

	srv, err := web.NewServer(web.Deps{
		Projects:       a.projects,
		Tokens:         a.tokens,
		Accounts:       a.accounts,
		Sessions:       a.sessions,
		Audit:          a.audit,
		MFA:            a.mfa,
		WebAuthn:       a.webauthn,
		MailKick:       worker.Kick,
		TrustedProxies: cfg.ProxyCIDRs(),
		Log:            log,
		BaseURL:        cfg.BaseURL,
		SiteName:       cfg.SiteName,
		TempDir:        filepath.Join(cfg.DataDir, "tmp"),
		PageCacheSize:  cfg.PageCacheSize,
	})
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go srv.WatchChanges(watchCtx, cfg.CachePoll)
	go worker.Run(watchCtx)
	go sweepSessions(watchCtx, a.sessions, log)

	// No ReadTimeout or WriteTimeout: a 100 MiB upload or download on a slow
	// link legitimately takes minutes. Slowloris is bounded by the header
	// timeout and idle connections by the idle timeout.
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("Gatehouse is running", "url", cfg.BaseURL+"/", "database", a.db.Dialect, "data_dir", cfg.DataDir)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// sweepSessions deletes expired sessions every few minutes; expired ones are
// refused on load anyway, this only keeps the table small.
func sweepSessions(ctx context.Context, m *session.Manager, log *slog.Logger) {
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
		}
	}
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "-"+name || a == "--"+name || strings.HasPrefix(a, "-"+name+"=") || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

const migrateUsage = `Usage: gatehouse migrate [flags]

Applies any pending database migrations and exits. 'serve' does this at
start too; run it on its own before rolling out several instances.`

func migrate(ctx context.Context, e env, args []string) error {
	cfg, err := loadConfig(e, "migrate", migrateUsage, args, nil)
	if err != nil {
		return helpOK(err)
	}
	log := newLogger(cfg, e)
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	applied, err := d.Migrate(ctx, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s database is up to date (%d migration(s) applied now).\n", d.Dialect, len(applied))
	return nil
}
