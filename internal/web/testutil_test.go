package web

// Shared fixture for the web tests: a real Server (project and token
// services over a dbtest database and a blob.FS in a temp dir) behind an
// httptest.Server, a user with a whole-account token, and builders for
// wheels and sdists made in-test with archive/zip, archive/tar and
// compress/gzip.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse-index/gatehouse/internal/attest"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/net/html"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/login"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
	"github.com/gatehouse-index/gatehouse/internal/mfa"
	"github.com/gatehouse-index/gatehouse/internal/org"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/session"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// testSecret is the server secret of every test token service; instances
// sharing a database share it, so a token minted on one works on the other.
var testSecret = bytes.Repeat([]byte("web-test-secret-"), 4)

// t0 is the fixtures' clock at start. Microseconds, so that both databases
// store it exactly.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

const coreMetadataHelp = "https://packaging.python.org/specifications/core-metadata"

// instance is one Gatehouse server: what cmd/gatehouse would build.
type instance struct {
	db       *db.DB
	blobs    blob.Store
	projects *project.Service
	tokens   *token.Service
	accounts *account.Service
	sessions *session.Manager
	mfa      *mfa.Service
	orgs     *org.Service
	srv      *Server
	ts       *httptest.Server
	url      string // the server's base URL, also Deps.BaseURL
	client   *http.Client
	logs     *lockedBuffer // what the server logged
}

// fixtureConfig changes how newInstance builds an instance.
type fixtureConfig struct {
	limits  project.Limits
	blobDir string           // default: a new temp dir
	clock   *testclock.Clock // default: a new clock at t0

	uploadMinRate    int64         // default: the server's default
	uploadRateWindow time.Duration // default: the server's default
	// pageCacheSize is the page cache's budget (default the server's).
	pageCacheSize int64
	// hashPool runs the password hashes (default: two CPUs, waiting as
	// long as the request does).
	hashPool *workpool.Pool
	// store, if set, holds the files instead of a filesystem store in
	// blobDir (an S3 store, say); downloadRedirect is Deps.DownloadRedirect.
	store            blob.Store
	downloadRedirect time.Duration
	// attest verifies PEP 740 attestations on uploads (default none).
	attest *attest.Verifier
	// metrics, ready and proxies are Deps' Metrics, Ready and
	// TrustedProxies (default none).
	metrics *metrics.Metrics
	ready   func(ctx context.Context) error
	proxies []string
	// log receives the server's log (default: kept, shown on failure).
	log *slog.Logger
	// readAccess is Deps.ReadAccess (default public).
	readAccess string
	// upstreams, if any, turn the pull-through cache on (Deps.Upstream),
	// with upstreamMinAge as --upstream-min-age.
	upstreams      []string
	upstreamMinAge time.Duration
}

// newInstance starts a server over d. Its base URL is the httptest URL, so
// the absolute links it renders can be followed as they are.
func newInstance(t *testing.T, d *db.DB, cfg fixtureConfig) *instance {
	t.Helper()
	if cfg.limits == (project.Limits{}) {
		cfg.limits = project.Limits{MaxFileSize: 100 << 20, MaxProjectSize: 10 << 30}
	}
	if cfg.blobDir == "" {
		cfg.blobDir = t.TempDir()
	}
	if cfg.clock == nil {
		cfg.clock = testclock.New(t0)
	}
	// Registered first, so it runs last, once the server has finished
	// every request: no upload, accepted, refused or cut off, may leave a
	// staged file behind.
	t.Cleanup(func() {
		if tmp := stagedFiles(t, cfg.blobDir); len(tmp) > 0 {
			t.Errorf("uploads left staged files in the blob store: %q", tmp)
		}
	})
	var blobs blob.Store = cfg.store
	if blobs == nil {
		fsStore, err := blob.NewFS(cfg.blobDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fsStore.Close() })
		blobs = fsStore
	}
	log, logs := newTestLoggerBuf(t)
	if cfg.log != nil {
		log = cfg.log
	}
	var err error

	in := &instance{db: d, blobs: blobs, logs: logs}
	var handler http.Handler = http.NotFoundHandler()
	in.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(in.ts.Close)
	in.url = in.ts.URL
	help := in.url + "/help/"

	in.tokens, err = token.NewService(d, token.Options{Secret: testSecret, Location: strings.TrimPrefix(in.url, "http://"), HelpURL: help, Now: cfg.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := mail.NewRenderer("Gatehouse Test", in.url)
	if err != nil {
		t.Fatal(err)
	}
	// Project notices (collaboration, yanks, deletions, quarantine) are
	// rendered and queued in the outbox, where the tests read them.
	in.projects = project.NewService(d, blobs, project.Options{Limits: cfg.limits, HelpURL: help, Now: cfg.clock.Now, Log: log,
		Notifier: mail.NewNotifier(renderer, cfg.clock.Now), Links: EmailLinks(in.url), Attest: cfg.attest})
	if cfg.hashPool == nil {
		cfg.hashPool = workpool.New(workpool.Options{CPUs: 2})
	}
	in.accounts = account.NewService(account.Options{DB: d, Hasher: account.NewHasher(cfg.hashPool), Links: EmailLinks(in.url), Log: log, Now: cfg.clock.Now, DefaultRegistrationOpen: true})
	in.sessions = session.NewManager(d, session.Options{Now: cfg.clock.Now})
	in.mfa, err = mfa.NewService(mfa.Options{DB: d, Secret: testSecret, SiteName: "Gatehouse Test", Links: EmailLinks(in.url), Now: cfg.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wa, err := mfa.NewWebAuthn(mfa.WebAuthnOptions{DB: d, RPID: "localhost", RPOrigins: []string{strings.Replace(in.url, "127.0.0.1", "localhost", 1)}, SiteName: "Gatehouse Test",
		Limiter: in.mfa, Now: cfg.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	var up *upstream.Service
	if len(cfg.upstreams) > 0 {
		up = upstream.New(upstream.Options{DB: d, Blobs: blobs, Upstreams: cfg.upstreams, MinAge: cfg.upstreamMinAge, Now: cfg.clock.Now, Log: log})
	}
	in.orgs = org.New(org.Options{DB: d, Projects: in.projects, Notifier: mail.NewNotifier(renderer, cfg.clock.Now), Links: EmailLinks(in.url),
		BaseURL: in.url, NeedApproval: true, Now: cfg.clock.Now, Log: log})
	in.srv, err = NewServer(Deps{Projects: in.projects, Tokens: in.tokens, Accounts: in.accounts, Sessions: in.sessions,
		Audit: audit.NewService(d, cfg.clock.Now), MFA: in.mfa, WebAuthn: wa, Log: log, Orgs: in.orgs,
		Login: login.NewService(login.Options{DB: d, Accounts: in.accounts, MFA: in.mfa, WebAuthn: wa, Sessions: in.sessions, Now: cfg.clock.Now,
			ConfirmEveryLogin: in.orgs.ConfirmEveryLogin}),
		BaseURL: in.url, SiteName: "Gatehouse Test", Now: cfg.clock.Now,
		UploadMinRate: cfg.uploadMinRate, UploadRateWindow: cfg.uploadRateWindow,
		PageCacheSize: cfg.pageCacheSize, DownloadRedirect: cfg.downloadRedirect,
		Metrics: cfg.metrics, Ready: cfg.ready, TrustedProxies: cfg.proxies, ReadAccess: cfg.readAccess, Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	handler = in.srv
	// No redirects followed, no transparent gzip: tests see the raw answer.
	in.client = &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return in
}

// fixture is one instance with a user, alice, and her whole-account token.
type fixture struct {
	*instance
	clock *testclock.Clock
	alice int64
	token string
}

func newFixture(t *testing.T, d *db.DB) *fixture { return newFixtureWith(t, d, fixtureConfig{}) }

func newFixtureWith(t *testing.T, d *db.DB, cfg fixtureConfig) *fixture {
	t.Helper()
	if cfg.clock == nil {
		cfg.clock = testclock.New(t0)
	}
	f := &fixture{instance: newInstance(t, d, cfg), clock: cfg.clock}
	f.alice = addUser(t, d, "alice")
	f.token = f.mintToken(t, f.alice)
	return f
}

// addUser inserts a user row directly.
func addUser(t *testing.T, d *db.DB, name string) int64 {
	t.Helper()
	var id int64
	err := d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ($1, $2, $3) RETURNING id`,
		name, strings.ToLower(name), t0).Scan(&id)
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	// Uploading needs a verified primary email and a second factor; a test
	// fixture gives the user both directly (the second factor's secret is
	// never used here: uploads authenticate with tokens).
	if _, err := d.Exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES ($1, $2, $2, TRUE, TRUE, $3)`,
		id, strings.ToLower(name)+"@example.com", t0); err != nil {
		t.Fatalf("add email for %s: %v", name, err)
	}
	if _, err := d.Exec(`INSERT INTO totp_secrets (user_id, secret_enc, created_at) VALUES ($1, 'unused', $2)`, id, t0); err != nil {
		t.Fatalf("add second factor for %s: %v", name, err)
	}
	return id
}

// mintToken creates an API token for user, limited to projects if any.
func (in *instance) mintToken(t *testing.T, user int64, projects ...string) string {
	t.Helper()
	raw, _, err := in.tokens.Create(context.Background(), user, fmt.Sprintf("test token %d %v", user, projects), projects, nil, token.Origin{CommandLine: true})
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	return raw
}

// lockedBuffer collects the server log; it is printed when a test fails.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestLogger(t *testing.T) *slog.Logger {
	l, _ := newTestLoggerBuf(t)
	return l
}

// newTestLoggerBuf is newTestLogger and what it has written, for tests of
// what the server logs (spec F1, J1: no secret in the log).
func newTestLoggerBuf(t *testing.T) (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})), buf
}

// ---- distributions ----

// meta is the core metadata of a test distribution.
type meta struct {
	Name, Version          string
	Summary                string
	RequiresPython         string
	Description            string
	DescriptionContentType string
	Classifiers            []string
	ProjectURLs            []string // "Label, URL"
	RequiresDist           []string
	ProvidesExtra          []string
	// Payload is the content of the package's __init__.py; vary it to make
	// different files of one name.
	Payload string
}

// metadataFile renders m as a METADATA / PKG-INFO file.
func (m meta) metadataFile() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", m.Name, m.Version)
	if m.Summary != "" {
		fmt.Fprintf(&b, "Summary: %s\n", m.Summary)
	}
	if m.RequiresPython != "" {
		fmt.Fprintf(&b, "Requires-Python: %s\n", m.RequiresPython)
	}
	for _, c := range m.Classifiers {
		fmt.Fprintf(&b, "Classifier: %s\n", c)
	}
	for _, u := range m.ProjectURLs {
		fmt.Fprintf(&b, "Project-URL: %s\n", u)
	}
	for _, r := range m.RequiresDist {
		fmt.Fprintf(&b, "Requires-Dist: %s\n", r)
	}
	for _, e := range m.ProvidesExtra {
		fmt.Fprintf(&b, "Provides-Extra: %s\n", e)
	}
	if m.DescriptionContentType != "" {
		fmt.Fprintf(&b, "Description-Content-Type: %s\n", m.DescriptionContentType)
	}
	if m.Description != "" {
		b.WriteString("\n" + m.Description)
	}
	return []byte(b.String())
}

// dist is a distribution file ready to upload.
type dist struct {
	Meta      meta
	Filename  string
	Filetype  string // "bdist_wheel" or "sdist"
	PyVersion string // "py3" or "source"
	Content   []byte
	Metadata  []byte // the METADATA (wheel) or PKG-INFO (sdist) bytes inside
}

// escapedName is the project name as it appears in file names.
func escapedName(name string) string { return strings.ReplaceAll(pep.NormalizeName(name), "-", "_") }

// wheel builds a pure-Python wheel <name>-<version>-py3-none-any.whl.
func wheel(t testing.TB, m meta) *dist {
	t.Helper()
	return wheelTagged(t, m, "py3")
}

// wheelTagged builds <name>-<version>-<python>-none-any.whl.
func wheelTagged(t testing.TB, m meta, python string) *dist {
	t.Helper()
	tag := python + "-none-any"
	n := escapedName(m.Name)
	distInfo := n + "-" + m.Version + ".dist-info"
	md := m.metadataFile()
	content := buildZip(t, []zipMember{
		{n + "/__init__.py", []byte("# " + m.Name + " " + m.Version + "\n" + m.Payload)},
		{distInfo + "/METADATA", md},
		{distInfo + "/WHEEL", []byte("Wheel-Version: 1.0\nGenerator: gatehouse-test\nRoot-Is-Purelib: true\nTag: " + tag + "\n")},
		{distInfo + "/RECORD", []byte(n + "/__init__.py,,\n" + distInfo + "/METADATA,,\n" + distInfo + "/WHEEL,,\n" + distInfo + "/RECORD,,\n")},
	})
	return &dist{Meta: m, Filename: n + "-" + m.Version + "-" + tag + ".whl", Filetype: "bdist_wheel", PyVersion: python, Content: content, Metadata: md}
}

// sdist builds <name>-<version>.tar.gz.
func sdist(t testing.TB, m meta) *dist {
	t.Helper()
	top := escapedName(m.Name) + "-" + m.Version
	md := m.metadataFile()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: 0o755, ModTime: t0}))
	for _, mem := range []zipMember{
		{top + "/PKG-INFO", md},
		{top + "/setup.py", []byte("from setuptools import setup\nsetup()\n" + m.Payload)},
	} {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: mem.name, Mode: 0o644, Size: int64(len(mem.body)), ModTime: t0}))
		_, err := tw.Write(mem.body)
		must(err)
	}
	must(tw.Close())
	must(gz.Close())
	return &dist{Meta: m, Filename: top + ".tar.gz", Filetype: "sdist", PyVersion: "source", Content: buf.Bytes(), Metadata: md}
}

// sdistZip builds the legacy <name>-<version>.zip form of an sdist.
func sdistZip(t testing.TB, m meta) *dist {
	t.Helper()
	top := escapedName(m.Name) + "-" + m.Version
	md := m.metadataFile()
	content := buildZip(t, []zipMember{
		{top + "/PKG-INFO", md},
		{top + "/setup.py", []byte("from setuptools import setup\nsetup()\n" + m.Payload)},
	})
	return &dist{Meta: m, Filename: top + ".zip", Filetype: "sdist", PyVersion: "source", Content: content, Metadata: md}
}

type zipMember struct {
	name string
	body []byte
}

func buildZip(t testing.TB, members []zipMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: t0})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
func blake2Hex(b []byte) string { s := blake2b.Sum256(b); return hex.EncodeToString(s[:]) }

// fileURL is where a server serves the dist.
func (in *instance) fileURL(d *dist) string {
	b := blake2Hex(d.Content)
	return in.url + "/packages/" + b[:2] + "/" + b[2:4] + "/" + b + "/" + d.Filename
}

// ---- uploads ----

// field is one form field; a form is a list so fields can repeat and keep
// their order, as twine sends them.
type field struct{ name, value string }

// form returns the fields twine sends for d.
func (d *dist) form() []field {
	m := d.Meta
	fs := []field{
		{":action", "file_upload"},
		{"protocol_version", "1"},
		{"metadata_version", "2.1"},
		{"name", m.Name},
		{"version", m.Version},
		{"filetype", d.Filetype},
		{"pyversion", d.PyVersion},
	}
	add := func(name, value string) {
		if value != "" {
			fs = append(fs, field{name, value})
		}
	}
	add("summary", m.Summary)
	add("description", m.Description)
	add("description_content_type", m.DescriptionContentType)
	add("requires_python", m.RequiresPython)
	for _, c := range m.Classifiers {
		add("classifiers", c)
	}
	for _, u := range m.ProjectURLs {
		add("project_urls", u)
	}
	for _, r := range m.RequiresDist {
		add("requires_dist", r)
	}
	for _, e := range m.ProvidesExtra {
		add("provides_extras", e) // twine 4's spelling
	}
	add("md5_digest", md5Hex(d.Content))
	add("sha256_digest", sha256Hex(d.Content))
	add("blake2_256_digest", blake2Hex(d.Content))
	return fs
}

// withField returns fs with every field called name replaced by one with
// value, or removed when value is "".
func withField(fs []field, name, value string) []field {
	out := slices.DeleteFunc(slices.Clone(fs), func(f field) bool { return f.name == name })
	if value != "" {
		out = append(out, field{name, value})
	}
	return out
}

// uploadResult is the answer to POST /legacy/. For errors, reason is the
// status line's reason phrase, which carries Warehouse's message.
type uploadResult struct {
	code   int
	reason string
	body   string
}

func (r uploadResult) String() string { return fmt.Sprintf("%d %s", r.code, r.reason) }

// basicToken is the Authorization header twine sends for an API token.
func basicToken(tok string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("__token__:"+tok))
}

// post sends an upload with the given Authorization header ("" for none);
// content is nil for a form without a file part.
func (in *instance) post(auth string, fields []field, filename string, content []byte) (uploadResult, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fields {
		if err := mw.WriteField(f.name, f.value); err != nil {
			return uploadResult{}, err
		}
	}
	if content != nil {
		w, err := mw.CreateFormFile("content", filename)
		if err != nil {
			return uploadResult{}, err
		}
		w.Write(content)
	}
	mw.Close()
	req, err := http.NewRequest("POST", in.url+"/legacy/", &body)
	if err != nil {
		return uploadResult{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return uploadResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return uploadResult{}, err
	}
	reason := strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)+" ")
	return uploadResult{code: resp.StatusCode, reason: reason, body: string(b)}, nil
}

// upload sends d with alice's token.
func (f *fixture) upload(t *testing.T, d *dist) uploadResult {
	t.Helper()
	return f.uploadAs(t, f.token, d.form(), d)
}

func (in *instance) uploadAs(t *testing.T, tok string, fields []field, d *dist) uploadResult {
	t.Helper()
	res, err := in.post(basicToken(tok), fields, d.Filename, d.Content)
	if err != nil {
		t.Fatalf("upload %s: %v", d.Filename, err)
	}
	return res
}

// mustUpload uploads d and fails the test unless it is accepted.
func (f *fixture) mustUpload(t *testing.T, d *dist) {
	t.Helper()
	if res := f.upload(t, d); res.code != http.StatusOK {
		t.Fatalf("upload %s: got %s, want 200", d.Filename, res)
	}
}

// ---- requests ----

type response struct {
	code   int
	header http.Header
	body   []byte
}

// get fetches path (or an absolute URL) with the given header pairs.
func (in *instance) get(t *testing.T, path string, headerPairs ...string) response {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = in.url + path
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headerPairs); i += 2 {
		req.Header.Set(headerPairs[i], headerPairs[i+1])
	}
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// getOK is get that requires 200.
func (in *instance) getOK(t *testing.T, path string, headerPairs ...string) response {
	t.Helper()
	r := in.get(t, path, headerPairs...)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200; body: %.500s", path, r.code, r.body)
	}
	return r
}

// decodeJSON decodes a JSON body into a generic value for exact comparison.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, b)
	}
	return v
}

// jsonOf turns a Go value into the generic form decodeJSON produces, so
// expected values can be written as Go literals with ints and structs.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// mustJSON renders v indented, for failure messages.
func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// serialOf is the project's last serial as stored.
func (in *instance) serialOf(t *testing.T, normalized string) int64 {
	t.Helper()
	p, err := in.projects.Get(context.Background(), normalized)
	if err != nil {
		t.Fatalf("get project %s: %v", normalized, err)
	}
	return p.LastSerial
}

// ---- HTML ----

// parseHTML parses a page.
func parseHTML(t *testing.T, b []byte) *html.Node {
	t.Helper()
	n, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return n
}

// findAll returns the elements below n for which match is true, in
// document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func byTag(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag }
}

func byClass(tag, class string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		return n.Data == tag && slices.Contains(strings.Fields(attr(n, "class")), class)
	}
}

// attr returns an attribute's value, "" if absent.
func attr(n *html.Node, key string) string {
	v, _ := attrOK(n, key)
	return v
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// attrs returns all attributes of n as a map.
func attrs(n *html.Node) map[string]string {
	m := map[string]string{}
	for _, a := range n.Attr {
		m[a.Key] = a.Val
	}
	return m
}

// text returns the text content of n, with runs of white space collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

type htmlNode = html.Node

const htmlElement = html.ElementNode

// stagedFiles lists the blob store's temporary files below dir: uploads
// staged and never committed or discarded.
func stagedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), blob.TempPrefix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // a test may remove the store
		t.Errorf("listing the blob store: %v", err)
	}
	return out
}
