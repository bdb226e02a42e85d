// Package config builds Gatehouse's configuration from command-line flags and
// environment variables, with a default for every setting so that
// `gatehouse serve` runs with no configuration at all (SQLite and a files
// folder under ./gatehouse-data, listening on 127.0.0.1:8080).
//
// Each setting is declared once, in settings(), with its flag, environment
// variable, default and help text; the same table produces --help output and
// is checked against docs/configuration.md by a test.
package config

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is the complete server configuration.
type Config struct {
	DataDir        string        // where the SQLite database, files and secret live by default
	Listen         string        // host:port to listen on
	BaseURL        string        // public URL; every link and macaroon location is built from it
	DatabaseURL    string        // sqlite:<path> or postgres://…
	FilesDir       string        // filesystem blob store root
	Storage        Storage       // where package files live: FilesDir, or an S3 bucket
	SecretKey      string        // hex server secret (≥ 32 bytes); from SecretKeyFile when empty
	SecretKeyFile  string        // file holding the hex secret; generated on first start
	SiteName       string        // shown in page titles
	MaxFileSize    int64         // per-file upload limit, bytes
	MaxProjectSize int64         // per-project total size limit, bytes
	ReleaseAgeDays int           // no new files on a release older than this many days
	CachePoll      time.Duration // how often to look for changes made by other instances
	PageCacheSize  int64         // byte budget of the Simple API page cache
	LogFormat      string        // text or json
	LogLevel       string        // debug, info, warn, error
	ShutdownGrace  time.Duration // how long in-flight requests get on SIGTERM

	ReadTimeout      time.Duration // longest time to read one request's headers and body (uploads excepted)
	IdleTimeout      time.Duration // how long an idle keep-alive connection stays open
	UploadMinRate    int64         // bytes per second an upload body must average
	UploadRateWindow time.Duration // an upload may send nothing for this long; the rate is averaged over it

	MailFrom       string        // From: of every email
	SMTPURL        string        // smtp://, smtps:// or smtp+insecure://; "" writes .eml files to MailDir
	MailDir        string        // where the embedded mail transport writes messages
	Registration   string        // "open" or "closed" (initial value; admins can change it)
	HIBPURL        string        // k-anonymity range API for breached passwords; "" = off
	SessionIdle    time.Duration // session idle timeout
	SessionMax     time.Duration // session absolute timeout
	TrustedProxies string        // comma-separated CIDRs whose X-Forwarded-For is believed

	// Serving HTTPS directly, and the metrics listener.
	TLSCert       string // PEM certificate chain file; with TLSKey, --listen serves HTTPS
	TLSKey        string // PEM private key file
	MetricsListen string // host:port of the Prometheus /metrics listener; "" = off

	// Trusted publishing (OIDC).
	TrustedPublishing string // "on" or "off"
	// OrganizationApproval is whether a requested organization waits for
	// an administrator: "required" or "none".
	OrganizationApproval string
	// ReadAccess is "public" or "authenticated" (reading the index needs a
	// token or a signed-in browser).
	ReadAccess string
	// Upstreams are the indexes of the pull-through cache, comma-separated,
	// in priority order; UpstreamTTL and UpstreamMinAge its revalidation
	// age and cooldown.
	Upstreams           string
	UpstreamTTL         time.Duration
	UpstreamMinAge      time.Duration
	OIDCAudience        string        // the audience ID tokens must carry (default: the base URL's host)
	OIDCProviders       string        // comma-separated built-in providers that are on
	OIDCGitHubIssuer    string        // GitHub Actions' issuer (GitHub Enterprise Server has its own)
	OIDCGitLabIssuers   string        // comma-separated GitLab instances, gitlab.com first by default
	SigstoreTrustedRoot string        // trusted_root.json for PEP 740 attestations; "": the embedded public-good root
	OIDCFetchTimeout    time.Duration // bound on an issuer's discovery and JWKS in one exchange
	GitHubAPIURL        string        // where GitHub owners' numeric ids are looked up
	HashCPUs            float64       // CPUs password hashing may use on average; 0 in the settings means DefaultHashCPUs
	HashWait            time.Duration // longest a login waits for a free hash worker before 429
}

// Setting describes one configuration value.
type Setting struct {
	Flag    string
	Env     string
	Default string // as text; "" means computed (see Help)
	Help    string
	set     func(c *Config, v string) error
}

func settings() []Setting {
	str := func(f func(c *Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *f(c) = v; return nil }
	}
	size := func(f func(c *Config) *int64) func(*Config, string) error {
		return func(c *Config, v string) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			*f(c) = n
			return nil
		}
	}
	days := func(f func(c *Config) *int) func(*Config, string) error {
		return func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("not a whole number of days: %q", v)
			}
			*f(c) = n
			return nil
		}
	}
	number := func(f func(c *Config) *float64) func(*Config, string) error {
		return func(c *Config, v string) error {
			if v == "" {
				*f(c) = 0
				return nil
			}
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				return fmt.Errorf("not a number (e.g. 0.5, 2): %q", v)
			}
			*f(c) = n
			return nil
		}
	}
	dur := func(f func(c *Config) *time.Duration) func(*Config, string) error {
		return func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration (e.g. 500ms, 2s, 3d): %q", v)
			}
			*f(c) = d
			return nil
		}
	}
	return []Setting{
		{"data-dir", "GATEHOUSE_DATA_DIR", "./gatehouse-data", "directory for the embedded SQLite database, package files and the server secret",
			str(func(c *Config) *string { return &c.DataDir })},
		{"listen", "GATEHOUSE_LISTEN", "127.0.0.1:8080", "address to listen on (host:port)",
			str(func(c *Config) *string { return &c.Listen })},
		{"base-url", "GATEHOUSE_BASE_URL", "", "public URL of the index, used for every link and as the WebAuthn origin; must name a host, not an IP (default http://localhost:<port> for a loopback or wildcard --listen, else http://<listen>)",
			str(func(c *Config) *string { return &c.BaseURL })},
		{"database-url", "GATEHOUSE_DATABASE_URL", "", "database: sqlite:<path> or postgres://user:pass@host/db (default sqlite:<data-dir>/gatehouse.db)",
			str(func(c *Config) *string { return &c.DatabaseURL })},
		{"files-dir", "GATEHOUSE_FILES_DIR", "", "directory for package files (default <data-dir>/files)",
			str(func(c *Config) *string { return &c.FilesDir })},
		{"storage-url", "GATEHOUSE_STORAGE_URL", "", "where package files are kept: empty for --files-dir, or s3://bucket/prefix for an S3-compatible object store",
			str(func(c *Config) *string { return &c.Storage.URL })},
		{"storage-endpoint", "GATEHOUSE_STORAGE_ENDPOINT", "", "the S3 server's URL, e.g. https://s3.eu-west-1.amazonaws.com or http://minio:9000 (default $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS)",
			str(func(c *Config) *string { return &c.Storage.Endpoint })},
		{"storage-region", "GATEHOUSE_STORAGE_REGION", "", "the bucket's region (default $AWS_REGION, $AWS_DEFAULT_REGION, else asked of the server)",
			str(func(c *Config) *string { return &c.Storage.Region })},
		{"storage-path-style", "GATEHOUSE_STORAGE_PATH_STYLE", "auto", "address the bucket in the path (https://host/bucket/…): on, off (https://bucket.host/…) or auto (path style but for AWS)",
			str(func(c *Config) *string { return &c.Storage.PathStyle })},
		{"storage-access-key", "GATEHOUSE_STORAGE_ACCESS_KEY", "", "S3 access key id (default $AWS_ACCESS_KEY_ID; with neither key set, ~/.aws/credentials and then an instance role)",
			str(func(c *Config) *string { return &c.Storage.AccessKey })},
		{"storage-secret-key", "GATEHOUSE_STORAGE_SECRET_KEY", "", "S3 secret access key (default $AWS_SECRET_ACCESS_KEY); prefer the environment to the flag",
			str(func(c *Config) *string { return &c.Storage.SecretKey })},
		{"storage-redirect", "GATEHOUSE_STORAGE_REDIRECT", "off", "on: answer file downloads from S3 with a redirect to a short-lived presigned URL, so file bytes bypass Gatehouse; off: stream them through",
			str(func(c *Config) *string { return &c.Storage.Redirect })},
		{"storage-redirect-ttl", "GATEHOUSE_STORAGE_REDIRECT_TTL", "5m", "how long a presigned download URL stays valid (--storage-redirect on)",
			dur(func(c *Config) *time.Duration { return &c.Storage.RedirectTTL })},
		{"secret-key", "GATEHOUSE_SECRET_KEY", "", "server secret as hex (at least 32 bytes); API tokens are derived from it. Every instance must share it",
			str(func(c *Config) *string { return &c.SecretKey })},
		{"secret-key-file", "GATEHOUSE_SECRET_KEY_FILE", "", "file holding the hex server secret, created on first start if missing (default <data-dir>/secret.key)",
			str(func(c *Config) *string { return &c.SecretKeyFile })},
		{"site-name", "GATEHOUSE_SITE_NAME", "Gatehouse", "name shown in page titles",
			str(func(c *Config) *string { return &c.SiteName })},
		{"max-file-size", "GATEHOUSE_MAX_FILE_SIZE", "100MiB", "largest file one upload may carry (e.g. 100MiB, 1GiB)",
			size(func(c *Config) *int64 { return &c.MaxFileSize })},
		{"max-project-size", "GATEHOUSE_MAX_PROJECT_SIZE", "10GiB", "total size of all files of one project",
			size(func(c *Config) *int64 { return &c.MaxProjectSize })},
		{"release-age-days", "GATEHOUSE_RELEASE_AGE_DAYS", "14", "no new files may be added to a release older than this many days (PyPI: 14); administrators can set another number per project",
			days(func(c *Config) *int { return &c.ReleaseAgeDays })},
		{"cache-poll", "GATEHOUSE_CACHE_POLL", "1s", "how often each instance checks the database for index changes made by other instances",
			dur(func(c *Config) *time.Duration { return &c.CachePoll })},
		{"page-cache-size", "GATEHOUSE_PAGE_CACHE_SIZE", "64MiB", "memory for rendered Simple API project pages (e.g. 64MiB, 1GiB); the least recently read are dropped past it",
			size(func(c *Config) *int64 { return &c.PageCacheSize })},
		{"log-format", "GATEHOUSE_LOG_FORMAT", "text", "log format: text or json",
			str(func(c *Config) *string { return &c.LogFormat })},
		{"log-level", "GATEHOUSE_LOG_LEVEL", "info", "log level: debug, info, warn or error",
			str(func(c *Config) *string { return &c.LogLevel })},
		{"shutdown-grace", "GATEHOUSE_SHUTDOWN_GRACE", "30s", "time in-flight requests get to finish on SIGTERM",
			dur(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
		{"read-timeout", "GATEHOUSE_READ_TIMEOUT", "30s", "longest a client may take to send one request, headers and body; uploads are held to --upload-min-rate instead",
			dur(func(c *Config) *time.Duration { return &c.ReadTimeout })},
		{"idle-timeout", "GATEHOUSE_IDLE_TIMEOUT", "2m", "how long an idle keep-alive connection is kept open",
			dur(func(c *Config) *time.Duration { return &c.IdleTimeout })},
		{"upload-min-rate", "GATEHOUSE_UPLOAD_MIN_RATE", "8KiB", "least an upload must send per second, on average over --upload-rate-window; a slower one is cut off (e.g. 8KiB)",
			size(func(c *Config) *int64 { return &c.UploadMinRate })},
		{"upload-rate-window", "GATEHOUSE_UPLOAD_RATE_WINDOW", "1m", "an upload that sends nothing for this long is cut off; also the span --upload-min-rate is averaged over",
			dur(func(c *Config) *time.Duration { return &c.UploadRateWindow })},
		{"mail-from", "GATEHOUSE_MAIL_FROM", "", "From address of every email (default \"<site-name> <noreply@<base-url host>>\")",
			str(func(c *Config) *string { return &c.MailFrom })},
		{"smtp-url", "GATEHOUSE_SMTP_URL", "", "SMTP server: smtp://user:pass@host:587 (STARTTLS), smtps://host:465 (TLS), smtp+insecure://host:25; empty writes each email as an .eml file under --mail-dir",
			str(func(c *Config) *string { return &c.SMTPURL })},
		{"mail-dir", "GATEHOUSE_MAIL_DIR", "", "where emails are written when no SMTP server is set (default <data-dir>/mail)",
			str(func(c *Config) *string { return &c.MailDir })},
		{"registration", "GATEHOUSE_REGISTRATION", "open", "whether anyone may register: open or closed (administrators can change it at run time)",
			str(func(c *Config) *string { return &c.Registration })},
		{"hibp-url", "GATEHOUSE_HIBP_URL", "", "breached-password range API (k-anonymity), e.g. https://api.pwnedpasswords.com/range/; empty turns the online check off",
			str(func(c *Config) *string { return &c.HIBPURL })},
		{"session-idle", "GATEHOUSE_SESSION_IDLE", "2h", "a browser session ends after this long without a request",
			dur(func(c *Config) *time.Duration { return &c.SessionIdle })},
		{"session-max", "GATEHOUSE_SESSION_MAX", "12h", "a browser session ends this long after sign-in, however active",
			dur(func(c *Config) *time.Duration { return &c.SessionMax })},
		{"trusted-proxies", "GATEHOUSE_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For gives the client IP (e.g. 127.0.0.1/32)",
			str(func(c *Config) *string { return &c.TrustedProxies })},
		{"tls-cert", "GATEHOUSE_TLS_CERT", "", "PEM file with the server's certificate chain; with --tls-key, --listen serves HTTPS directly (reloaded on SIGHUP). Empty serves plain HTTP, e.g. behind a TLS-terminating proxy",
			str(func(c *Config) *string { return &c.TLSCert })},
		{"tls-key", "GATEHOUSE_TLS_KEY", "", "PEM file with the private key of --tls-cert",
			str(func(c *Config) *string { return &c.TLSKey })},
		{"metrics-listen", "GATEHOUSE_METRICS_LISTEN", "", "address (host:port) of a separate listener serving Prometheus metrics at /metrics, e.g. 127.0.0.1:9090; empty turns metrics off",
			str(func(c *Config) *string { return &c.MetricsListen })},
		{"upstream", "GATEHOUSE_UPSTREAM", "", "indexes to pull names that are not local through, comma-separated, in priority order, e.g. https://pypi.org/simple/ (empty: none)",
			str(func(c *Config) *string { return &c.Upstreams })},
		{"upstream-ttl", "GATEHOUSE_UPSTREAM_TTL", "10m", "how long a cached upstream page is served before it is revalidated",
			dur(func(c *Config) *time.Duration { return &c.UpstreamTTL })},
		{"upstream-min-age", "GATEHOUSE_UPSTREAM_MIN_AGE", "0s", "hide upstream files younger than this, by their upload-time, e.g. 3d or 72h (0: show all)",
			dur(func(c *Config) *time.Duration { return &c.UpstreamMinAge })},
		{"read-access", "GATEHOUSE_READ_ACCESS", "public", "who may read the index (Simple and JSON APIs, files, project pages): public, or authenticated (an API token or a signed-in browser)",
			str(func(c *Config) *string { return &c.ReadAccess })},
		{"organization-approval", "GATEHOUSE_ORGANIZATION_APPROVAL", "required", "whether a requested organization waits for an administrator's approval: required or none",
			str(func(c *Config) *string { return &c.OrganizationApproval })},
		{"trusted-publishing", "GATEHOUSE_TRUSTED_PUBLISHING", "on", "whether CI jobs may exchange OIDC ID tokens for upload tokens (trusted publishing): on or off",
			str(func(c *Config) *string { return &c.TrustedPublishing })},
		{"oidc-audience", "GATEHOUSE_OIDC_AUDIENCE", "", "the audience CI jobs' ID tokens must carry (default the base URL's host, e.g. pypi.example.com)",
			str(func(c *Config) *string { return &c.OIDCAudience })},
		{"oidc-providers", "GATEHOUSE_OIDC_PROVIDERS", "github,gitlab,google,activestate", "built-in trusted publishing providers that are on, comma-separated; \"none\" for none (issuers an administrator registers stay on)",
			str(func(c *Config) *string { return &c.OIDCProviders })},
		{"oidc-github-issuer", "GATEHOUSE_OIDC_GITHUB_ISSUER", "https://token.actions.githubusercontent.com", "GitHub Actions' OIDC issuer (GitHub Enterprise Server: https://HOST/_services/token)",
			str(func(c *Config) *string { return &c.OIDCGitHubIssuer })},
		{"oidc-gitlab-issuers", "GATEHOUSE_OIDC_GITLAB_ISSUERS", "https://gitlab.com", "GitLab instances whose CI tokens are trusted, comma-separated, the default first (add self-managed instances here)",
			str(func(c *Config) *string { return &c.OIDCGitLabIssuers })},
		{"sigstore-trusted-root", "GATEHOUSE_SIGSTORE_TRUSTED_ROOT", "", "Sigstore trusted_root.json that PEP 740 attestations are verified against (default the public-good root built into the binary)",
			str(func(c *Config) *string { return &c.SigstoreTrustedRoot })},
		{"oidc-fetch-timeout", "GATEHOUSE_OIDC_FETCH_TIMEOUT", "3s", "longest an exchange waits for an issuer's discovery document and keys (and a GitHub API lookup); then it answers 503",
			dur(func(c *Config) *time.Duration { return &c.OIDCFetchTimeout })},
		{"github-api-url", "GATEHOUSE_GITHUB_API_URL", "https://api.github.com", "GitHub API that GitHub publishers' owner ids are looked up in (GitHub Enterprise Server: https://HOST/api/v3)",
			str(func(c *Config) *string { return &c.GitHubAPIURL })},
		{"hash-cpus", "GATEHOUSE_HASH_CPUS", "", "CPUs password hashing (argon2id, 19 MiB each) may use on average while logins queue, e.g. 0.5 or 2; the rest stay with the index (default a quarter of the CPUs)",
			number(func(c *Config) *float64 { return &c.HashCPUs })},
		{"hash-wait", "GATEHOUSE_HASH_WAIT", "1s", "longest a login (or registration, password change) waits for a free hash worker; past it the answer is 429 with Retry-After",
			dur(func(c *Config) *time.Duration { return &c.HashWait })},
	}
}

// Settings lists every setting, for documentation and its test.
func Settings() []Setting { return settings() }

// ServeFlags registers the server settings on fs and returns a function that
// builds the Config once fs has been parsed: flags win over environment
// variables, which win over defaults.
func ServeFlags(fs *flag.FlagSet, getenv func(string) string) func() (*Config, error) {
	all := settings()
	vals := make([]*string, len(all))
	for i, s := range all {
		def := s.Default
		if v := getenv(s.Env); v != "" {
			def = v
		}
		help := s.Help + " [$" + s.Env + "]"
		vals[i] = fs.String(s.Flag, def, help)
	}
	return func() (*Config, error) {
		c := &Config{}
		for i, s := range all {
			if err := s.set(c, *vals[i]); err != nil {
				return nil, fmt.Errorf("--%s / %s: %w", s.Flag, s.Env, err)
			}
		}
		c.Storage.awsDefaults(getenv)
		if err := c.complete(); err != nil {
			return nil, err
		}
		return c, nil
	}
}

// FromEnv builds the Config that the environment variables and defaults
// give, as if no flag were passed; help text uses it to show the configured
// base URL.
func FromEnv(getenv func(string) string) (*Config, error) {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	return ServeFlags(fs, getenv)()
}

// complete fills the computed defaults and validates the result.
func (c *Config) complete() error {
	if c.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both files to serve HTTPS, or neither for plain HTTP")
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL(c.Listen)
		if c.TLS() {
			c.BaseURL = "https://" + strings.TrimPrefix(c.BaseURL, "http://")
		}
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--base-url %q: want an absolute http(s) URL, e.g. https://pypi.example.com", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.TLS() && u.Scheme != "https" {
		return fmt.Errorf("--base-url %q is http, but --tls-cert serves HTTPS: give the https:// address people and tools will use", c.BaseURL)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen %q: want host:port, e.g. 127.0.0.1:9090", c.MetricsListen)
		}
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "gatehouse.db")
	}
	if c.FilesDir == "" {
		c.FilesDir = filepath.Join(c.DataDir, "files")
	}
	if err := c.Storage.check(); err != nil {
		return err
	}
	if c.SecretKeyFile == "" {
		c.SecretKeyFile = filepath.Join(c.DataDir, "secret.key")
	}
	if c.MailDir == "" {
		c.MailDir = filepath.Join(c.DataDir, "mail")
	}
	if c.MailFrom == "" {
		c.MailFrom = c.SiteName + " <noreply@" + u.Hostname() + ">"
	}
	if c.SMTPURL != "" {
		su, err := url.Parse(c.SMTPURL)
		if err != nil || (su.Scheme != "smtp" && su.Scheme != "smtps" && su.Scheme != "smtp+insecure") || su.Host == "" {
			return errors.New("--smtp-url: want smtp://[user:pass@]host:port, smtps://… or smtp+insecure://…")
		}
	}
	if c.Registration != "open" && c.Registration != "closed" {
		return fmt.Errorf("--registration %q: want open or closed", c.Registration)
	}
	if c.SessionIdle <= 0 || c.SessionMax <= 0 {
		return errors.New("session timeouts must be positive")
	}
	for _, cidr := range c.ProxyCIDRs() {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("--trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", cidr)
		}
	}
	if c.MaxFileSize <= 0 || c.MaxProjectSize <= 0 {
		return errors.New("size limits must be positive")
	}
	if c.ReleaseAgeDays < 1 || c.ReleaseAgeDays > 36500 {
		return fmt.Errorf("--release-age-days must be a whole number of days from 1 to 36500, e.g. 14 (got %d)", c.ReleaseAgeDays)
	}
	if c.CachePoll <= 0 {
		return errors.New("--cache-poll must be positive")
	}
	if c.ReadTimeout <= 0 || c.IdleTimeout <= 0 || c.UploadRateWindow <= 0 {
		return errors.New("--read-timeout, --idle-timeout and --upload-rate-window must be positive durations, e.g. 30s")
	}
	if c.UploadMinRate <= 0 {
		return errors.New("--upload-min-rate must be positive, e.g. 8KiB (bytes per second)")
	}
	if c.HashCPUs == 0 {
		c.HashCPUs = DefaultHashCPUs(runtime.NumCPU())
	}
	if c.HashCPUs < minHashCPUs {
		return fmt.Errorf("--hash-cpus %g: give at least %g (a tenth of one CPU), or leave it unset for a quarter of the CPUs", c.HashCPUs, minHashCPUs)
	}
	if c.HashWait <= 0 {
		return errors.New("--hash-wait must be a positive duration, e.g. 1s")
	}
	if c.PageCacheSize < 1<<20 {
		return fmt.Errorf("--page-cache-size must be at least 1MiB, e.g. 64MiB (got %d bytes)", c.PageCacheSize)
	}
	for _, u := range c.UpstreamList() {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return fmt.Errorf("--upstream %q: want the index's base URL, such as https://pypi.org/simple/", u)
		}
	}
	if c.ReadAccess != "public" && c.ReadAccess != "authenticated" {
		return fmt.Errorf("--read-access %q: want public or authenticated", c.ReadAccess)
	}
	if c.OrganizationApproval != "required" && c.OrganizationApproval != "none" {
		return fmt.Errorf("--organization-approval %q: want required or none", c.OrganizationApproval)
	}
	if c.TrustedPublishing != "on" && c.TrustedPublishing != "off" {
		return fmt.Errorf("--trusted-publishing %q: want on or off", c.TrustedPublishing)
	}
	if c.OIDCAudience == "" {
		c.OIDCAudience = u.Host
	}
	if c.OIDCFetchTimeout <= 0 {
		return errors.New("--oidc-fetch-timeout must be a positive duration, e.g. 3s")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// DefaultHashCPUs is the CPU budget of password hashing on cpus CPUs
// unless configured: a quarter of them, so that a crowd at the login form
// leaves at least three quarters to the Simple API and file downloads
// (issue 15 asks for 0.7× their idle throughput while 16 clients sign in).
// argon2id with p=1 keeps one CPU busy for about 20 ms a hash, so even a
// quarter of one CPU checks some 12 passwords a second under a crowd, and
// a lone login is never slowed (the budget binds only when logins queue).
// Half the CPUs, or "at least one hash at a time", measured 0.5–0.65× on
// one CPU.
func DefaultHashCPUs(cpus int) float64 { return float64(max(1, cpus)) / 4 }

// minHashCPUs is the smallest budget accepted (workpool.MinCPUs).
const minHashCPUs = 0.1

// DefaultBaseURL is the base URL when none is configured. A loopback or
// wildcard listen address becomes "localhost": WebAuthn (security keys and
// passkeys) refuses IP addresses as relying-party IDs, and browsers treat
// http://localhost as a secure context, so everything works out of the box.
func DefaultBaseURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	switch host {
	case "", "127.0.0.1", "::1", "0.0.0.0", "::", "localhost":
		return "http://localhost:" + port
	}
	return "http://" + listen
}

// TLS reports whether the server serves HTTPS itself.
func (c *Config) TLS() bool { return c.TLSCert != "" }

// OIDCProviderList splits OIDCProviders ("none" is the empty list).
func (c *Config) OIDCProviderList() []string {
	out := []string{}
	for _, p := range strings.Split(c.OIDCProviders, ",") {
		if p = strings.TrimSpace(p); p != "" && p != "none" {
			out = append(out, p)
		}
	}
	return out
}

// UpstreamList splits Upstreams.
func (c *Config) UpstreamList() []string {
	var out []string
	for _, p := range strings.Split(c.Upstreams, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// OIDCGitLabIssuerList splits OIDCGitLabIssuers.
func (c *Config) OIDCGitLabIssuerList() []string {
	var out []string
	for _, p := range strings.Split(c.OIDCGitLabIssuers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ProxyCIDRs splits TrustedProxies.
func (c *Config) ProxyCIDRs() []string {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Secret returns the server secret, reading SecretKeyFile (and creating it
// with 32 random bytes if it does not exist) when SecretKey is not set.
func (c *Config) Secret(random func([]byte) error) ([]byte, error) {
	text := c.SecretKey
	if text == "" {
		b, err := os.ReadFile(c.SecretKeyFile)
		switch {
		case err == nil:
			text = strings.TrimSpace(string(b))
		case errors.Is(err, os.ErrNotExist):
			key := make([]byte, 32)
			if err := random(key); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(filepath.Dir(c.SecretKeyFile), 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(c.SecretKeyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("write secret key: %w", err)
			}
			return key, nil
		default:
			return nil, fmt.Errorf("read secret key: %w", err)
		}
	}
	key, err := hex.DecodeString(text)
	if err != nil || len(key) < 32 {
		return nil, errors.New("the server secret must be at least 32 bytes written as hex (e.g. from `openssl rand -hex 32`)")
	}
	return key, nil
}

// ParseSize parses sizes such as 100MiB, 1GiB, 500KB or a plain byte count.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size (e.g. 100MiB): %q", s)
	}
	return n * mult, nil
}

// ParseDuration is time.ParseDuration that also takes days, as people
// write cooldowns and ages: "3d", "1.5d" (a day is 24 hours).
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, ok := strings.CutSuffix(v, "d"); ok && n != "" {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 100*365 {
			return 0, fmt.Errorf("not a number of days: %q", v)
		}
		return time.Duration(f * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(v)
}
