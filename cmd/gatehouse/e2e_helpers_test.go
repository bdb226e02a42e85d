package main

// Shared helpers of the end-to-end tests (e2e_*_test.go): they start the real
// server through run(), create users and tokens through run(), build real
// distributions with Debian's setuptools, flit and poetry, and look at the
// database and the blob store directly to prove what a request changed.
//
// The Python tools are Debian's (scripts/test installs them and sets
// GATEHOUSE_TEST_PYTHON=/usr/bin/python3). Without them the tests that need
// them skip, unless GATEHOUSE_TEST_REQUIRE_POSTGRES=1 (CI), where they fail.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// e2eDialects are the databases every end-to-end scenario runs on.
var e2eDialects = []string{"sqlite", "postgres"}

// e2eCmdTimeout bounds every external command (pip, twine, a build).
const e2eCmdTimeout = 3 * time.Minute

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	if e2eFix.dir != "" {
		os.RemoveAll(e2eFix.dir)
	}
	if corpusBuildVal.dir != "" {
		os.RemoveAll(corpusBuildVal.dir)
	}
	os.Exit(code)
}

// e2eRequired reports whether missing tools must fail rather than skip.
func e2eRequired() bool { return os.Getenv("GATEHOUSE_TEST_REQUIRE_POSTGRES") == "1" }

// e2eSkipOrFail skips the test, or fails it in CI.
func e2eSkipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if e2eRequired() {
		t.Fatalf(format+" (GATEHOUSE_TEST_REQUIRE_POSTGRES=1: the end-to-end tools are required)", args...)
	}
	t.Skipf(format, args...)
}

// ---------------------------------------------------------------------------
// Python tools

type e2eToolSet struct {
	python, twine, flit, poetry string
	err                         error
}

var (
	e2eToolsOnce sync.Once
	e2eToolsVal  e2eToolSet
)

// e2eTools returns the Python tools, skipping (or failing in CI) when one is
// missing.
func e2eTools(t *testing.T) e2eToolSet {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real clients; skipped with -short")
	}
	e2eToolsOnce.Do(func() { e2eToolsVal = e2eFindTools() })
	if e2eToolsVal.err != nil {
		e2eSkipOrFail(t, "end-to-end tools missing: %v", e2eToolsVal.err)
	}
	return e2eToolsVal
}

func e2eFindTools() e2eToolSet {
	var ts e2eToolSet
	find := func(path string) (string, error) {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		return exec.LookPath(filepath.Base(path))
	}
	ts.python = os.Getenv("GATEHOUSE_TEST_PYTHON")
	if ts.python == "" {
		ts.python = "/usr/bin/python3"
	}
	var (
		errs []error
		err  error
	)
	if ts.twine, err = find("/usr/bin/twine"); err != nil {
		errs = append(errs, err)
	}
	if ts.flit, err = find("/usr/bin/flit"); err != nil {
		errs = append(errs, err)
	}
	if ts.poetry, err = find("/usr/bin/poetry"); err != nil {
		errs = append(errs, err)
	}
	home, err := os.MkdirTemp("", "gatehouse-e2e-probe")
	if err != nil {
		errs = append(errs, err)
	} else {
		defer os.RemoveAll(home)
		out, err := e2eExec(home, e2eEnv(home), ts.python, "-c", "import build, setuptools, wheel, venv, ensurepip, pip")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s lacks build, setuptools, wheel, venv, ensurepip or pip: %v\n%s", ts.python, err, out))
		}
	}
	ts.err = errors.Join(errs...)
	return ts
}

// e2eEnv is the whole environment of every external command: nothing is
// inherited (no pyenv, no user pip.conf or .pypirc, no proxy settings).
func e2eEnv(home string, extra ...string) []string {
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONNOUSERSITE=1",
		"NO_COLOR=1",
		"PIP_CONFIG_FILE=" + os.DevNull,
		"PIP_NO_CACHE_DIR=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_INPUT=1",
		"PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring",
		"TWINE_NON_INTERACTIVE=1",
		"POETRY_VIRTUALENVS_CREATE=false",
		"POETRY_CACHE_DIR=" + filepath.Join(home, ".cache", "pypoetry"),
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return append(env, extra...)
}

// e2eExec runs a command and returns its combined output.
func e2eExec(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, e2eCmdTimeout)
	}
	return out.String(), err
}

// e2eMustExec runs a command that must succeed.
func e2eMustExec(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := e2eExec(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: got error %v, want success; output:\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// ---------------------------------------------------------------------------
// Fixture distributions, built once per test binary.

// e2eDist is one project's built distributions.
type e2eDist struct {
	project string // as uploaded, e.g. "demo-pkg"
	version string
	wheel   string // absolute path
	sdist   string // absolute path
}

type e2eFixtures struct {
	dir   string
	dists map[string]e2eDist // by project
	err   error
}

var (
	e2eFixOnce sync.Once
	e2eFix     e2eFixtures
)

// e2eFixtureProjects are the projects built with real tools: demo-pkg
// (setuptools, markdown README, requires-python, depends on demo-dep),
// demo-dep (setuptools), flit-demo (flit) and poetry-demo (poetry).
var e2eFixtureProjects = []string{"demo-dep", "demo-pkg", "flit-demo", "poetry-demo"}

// e2eFixtureSet builds the fixture distributions on first use and returns
// them. Every caller shares the same files; they must not be modified.
func e2eFixtureSet(t *testing.T) *e2eFixtures {
	t.Helper()
	tools := e2eTools(t)
	e2eFixOnce.Do(func() { e2eFix = e2eBuildFixtures(tools) })
	if e2eFix.err != nil {
		t.Fatalf("building the fixture distributions: %v", e2eFix.err)
	}
	return &e2eFix
}

func e2eBuildFixtures(tools e2eToolSet) e2eFixtures {
	fx := e2eFixtures{dists: map[string]e2eDist{}}
	dir, err := os.MkdirTemp("", "gatehouse-e2e-fixtures")
	if err != nil {
		fx.err = err
		return fx
	}
	fx.dir = dir
	write := func(rel, content string) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(content), 0o644)
	}
	files := map[string]string{
		"demo-dep/pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-dep"
version = "0.3"
description = "The dependency of demo-pkg"
requires-python = ">=3.8"
`,
		"demo-dep/src/demo_dep/__init__.py": "VALUE = 42\n",

		"demo-pkg/pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-pkg"
version = "1.0"
description = "A demo package built with setuptools"
readme = "README.md"
requires-python = ">=3.8"
dependencies = ["demo-dep>=0.2"]
`,
		"demo-pkg/README.md":                  "# Demo package\n\nHello *world*, from a **markdown** README.\n",
		"demo-pkg/src/demo_pkg/__init__.py":   "from demo_dep import VALUE\n\nANSWER = VALUE\n",
		"flit-demo/pyproject.toml":            "[build-system]\nrequires = [\"flit_core >=3.2,<4\"]\nbuild-backend = \"flit_core.buildapi\"\n\n[project]\nname = \"flit-demo\"\nreadme = \"README.md\"\nrequires-python = \">=3.8\"\ndynamic = [\"version\", \"description\"]\n",
		"flit-demo/README.md":                 "# flit demo\n",
		"flit-demo/flit_demo/__init__.py":     "\"\"\"A package built with flit.\"\"\"\n\n__version__ = \"2.0\"\n",
		"poetry-demo/README.md":               "# poetry demo\n",
		"poetry-demo/poetry_demo/__init__.py": "\"\"\"A package built with poetry.\"\"\"\n\nNAME = \"poetry\"\n",
		"poetry-demo/pyproject.toml": `[tool.poetry]
name = "poetry-demo"
version = "3.1.0"
description = "A package built with poetry"
authors = ["Alice <alice@example.com>"]
readme = "README.md"
packages = [{include = "poetry_demo"}]

[tool.poetry.dependencies]
python = ">=3.8"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
`,
	}
	for rel, content := range files {
		if err := write(rel, content); err != nil {
			fx.err = err
			return fx
		}
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		fx.err = err
		return fx
	}
	env := e2eEnv(home)
	type build struct {
		project, version string
		cmds             [][]string // run in the project's directory; output in dist/
	}
	builds := []build{
		{"demo-dep", "0.3", [][]string{{tools.python, "-m", "build", "--no-isolation", "--outdir", "dist", "."}}},
		{"demo-pkg", "1.0", [][]string{{tools.python, "-m", "build", "--no-isolation", "--outdir", "dist", "."}}},
		{"flit-demo", "2.0", [][]string{{tools.flit, "build", "--format", "wheel"}, {tools.flit, "build", "--format", "sdist"}}},
		{"poetry-demo", "3.1.0", [][]string{{tools.poetry, "build", "--no-interaction"}}},
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pdir := filepath.Join(dir, b.project)
			for _, c := range b.cmds {
				if out, err := e2eExec(pdir, env, c[0], c[1:]...); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %s: %v\n%s", b.project, strings.Join(c, " "), err, out))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		fx.err = errors.Join(errs...)
		return fx
	}
	for _, b := range builds {
		d := e2eDist{project: b.project, version: b.version}
		wheels, _ := filepath.Glob(filepath.Join(dir, b.project, "dist", "*.whl"))
		sdists, _ := filepath.Glob(filepath.Join(dir, b.project, "dist", "*.tar.gz"))
		if len(wheels) != 1 || len(sdists) != 1 {
			errs = append(errs, fmt.Errorf("%s: built wheels %v and sdists %v, want one of each", b.project, wheels, sdists))
			continue
		}
		d.wheel, d.sdist = wheels[0], sdists[0]
		// twine 4.0.2 (Debian 12) refuses Metadata-Version above 2.2, so
		// the fixtures must stay at or below it.
		for _, p := range []string{d.wheel, d.sdist} {
			mv, err := e2eMetadataVersion(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", filepath.Base(p), err))
			} else if mv > "2.2" || len(mv) != 3 {
				errs = append(errs, fmt.Errorf("%s: Metadata-Version %s, want at most 2.2 (Debian's twine 4.0.2 accepts no later)", filepath.Base(p), mv))
			}
		}
		fx.dists[b.project] = d
	}
	fx.err = errors.Join(errs...)
	return fx
}

// e2eMetadataVersion reads Metadata-Version from a wheel's METADATA or an
// sdist's PKG-INFO.
func e2eMetadataVersion(path string) (string, error) {
	meta, err := e2eMetadataFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(meta), "\n") {
		if v, ok := strings.CutPrefix(line, "Metadata-Version:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("metadata has no Metadata-Version")
}

// e2eMetadataFile returns a wheel's top-level .dist-info/METADATA or an
// sdist's (.tar.gz) top-level PKG-INFO.
func e2eMetadataFile(path string) ([]byte, error) {
	var meta []byte
	if strings.HasSuffix(path, ".whl") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		for _, f := range zr.File {
			if strings.HasSuffix(f.Name, ".dist-info/METADATA") && strings.Count(f.Name, "/") == 1 {
				rc, err := f.Open()
				if err != nil {
					return nil, err
				}
				meta, err = io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return nil, err
				}
			}
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if strings.Count(h.Name, "/") == 1 && strings.HasSuffix(h.Name, "/PKG-INFO") {
				if meta, err = io.ReadAll(tr); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	if meta == nil {
		return nil, errors.New("no metadata file found")
	}
	return meta, nil
}

// e2eSHA256File returns the hex sha256 of a file.
func e2eSHA256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return e2eSHA256(b)
}

func e2eSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ---------------------------------------------------------------------------
// A virtual environment with Debian's pip.

// e2eVenv creates a venv with pip in dir and returns its directory.
func e2eVenv(tools e2eToolSet, dir string) (string, error) {
	venv := filepath.Join(dir, "venv")
	out, err := e2eExec(dir, e2eEnv(dir), tools.python, "-m", "venv", venv)
	if err != nil {
		return "", fmt.Errorf("python3 -m venv: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "pip")); err != nil {
		return "", fmt.Errorf("the venv has no pip: %v", err)
	}
	return venv, nil
}

// ---------------------------------------------------------------------------
// The server

// e2eServer is a real Gatehouse server started through run().
type e2eServer struct {
	URL     string // base URL, no trailing slash
	dataDir string
	dbURL   string
	log     *e2eLog
	// client, if set, is how the test speaks to a server that serves
	// HTTPS itself; nil: e2eClient.
	client *http.Client

	dbOnce sync.Once
	db     *db.DB
	dbErr  error
}

// e2eNoEnv is the server's environment: nothing, so that a developer's
// GATEHOUSE_* variables cannot leak into a test.
func e2eNoEnv(string) string { return "" }

// e2eStartServer starts `gatehouse serve` on a free port with a new data dir
// and a new database of the given dialect, and stops it when t ends. It also
// fails t if the server logged an error (an internal error, a panic).
func e2eStartServer(t *testing.T, dialect string, extra ...string) *e2eServer {
	t.Helper()
	dataDir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dataDir, "gatehouse.db")
	if dialect == "postgres" {
		dbURL = dbtest.PostgresURL(t)
	}
	s := &e2eServer{dataDir: dataDir, dbURL: dbURL, log: newE2ELog()}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--database-url", dbURL,
		"--shutdown-grace", "5s", "--cache-poll", "200ms"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = run(ctx, args, e2eNoEnv, strings.NewReader(""), io.Discard, s.log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				t.Errorf("server: run returned %v, want nil after cancel", runErr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s of its context being cancelled")
		}
		logText := s.log.String()
		for _, bad := range []string{"level=ERROR", "level=WARN", "panic"} {
			if strings.Contains(logText, bad) {
				t.Errorf("server log contains %q", bad)
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logText)
		}
	})
	select {
	case u := <-s.log.ready:
		s.URL = strings.TrimRight(u, "/")
	case <-done:
		t.Fatalf("server exited before it was ready: %v\n%s", runErr, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server not ready after 60s; log:\n%s", s.log.String())
	}
	t.Cleanup(func() {
		if s.db != nil {
			s.db.Close()
		}
	})
	return s
}

// e2eLog collects the server's log and signals the URL from its
// "Gatehouse is running" line. Safe for concurrent use.
type e2eLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan string
	sent  bool
	wake  chan struct{} // a write happened (see waitFor)
}

var e2eRunningRE = regexp.MustCompile(`msg="Gatehouse is running" url=(\S+)`)

func newE2ELog() *e2eLog { return &e2eLog{ready: make(chan string, 1), wake: make(chan struct{}, 1)} }

func (l *e2eLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	if !l.sent {
		if m := e2eRunningRE.FindSubmatch(l.buf.Bytes()); m != nil {
			l.sent = true
			l.ready <- string(m[1])
		}
	}
	return len(p), nil
}

func (l *e2eLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the log has a line matching re after its first from
// bytes, and returns that line; it fails t after a minute. One waiter at a
// time.
func (l *e2eLog) waitFor(t *testing.T, from int, re *regexp.Regexp) string {
	t.Helper()
	line, err := l.await(from, re, nil)
	if err != nil {
		t.Fatalf("%v; the log:\n%s", err, l.String())
	}
	return line
}

// await is waitFor for a process that may exit first: it gives up when
// exited delivers (nil: never), or after a minute.
func (l *e2eLog) await(from int, re *regexp.Regexp, exited <-chan error) (string, error) {
	deadline := time.After(time.Minute)
	for {
		l.mu.Lock()
		m := re.Find(l.buf.Bytes()[from:])
		l.mu.Unlock()
		if m != nil {
			return string(m), nil
		}
		select {
		case <-l.wake:
		case err := <-exited:
			return "", fmt.Errorf("the process exited (%v) before logging a line matching %q", err, re)
		case <-deadline:
			return "", fmt.Errorf("no line matching %q after a minute", re)
		}
	}
}

// len is how much has been logged so far (a from for waitFor).
func (l *e2eLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// admin runs a gatehouse command against the server's data dir and
// database, and returns its standard output.
func (s *e2eServer) admin(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	full := append(append([]string{}, args...), "--data-dir", s.dataDir, "--database-url", s.dbURL)
	if err := run(context.Background(), full, e2eNoEnv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func (s *e2eServer) createUser(t *testing.T, name string) {
	t.Helper()
	out := s.admin(t, "user", "create", "--username", name, "--email", name+"@example.com", "--email-verified", "--no-password")
	if !strings.Contains(out, "Created user") {
		t.Fatalf("user create %s: got %q, want \"Created user …\"", name, out)
	}
	s.giveSecondFactor(t, name)
}

// giveSecondFactor gives a user a second factor directly in the database.
// Uploads need one (as on PyPI); these tests are about uploads and
// installs, and the browser flows that enrol factors are tested elsewhere.
func (s *e2eServer) giveSecondFactor(t *testing.T, name string) {
	t.Helper()
	d, err := db.Open(context.Background(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(`INSERT INTO totp_secrets (user_id, secret_enc, created_at) SELECT id, 'unused', $1 FROM users WHERE username_key = $2`,
		time.Now().UTC(), strings.ToLower(name)); err != nil {
		t.Fatalf("second factor for %s: %v", name, err)
	}
}

// createToken makes an API token for user, limited to projects if any.
func (s *e2eServer) createToken(t *testing.T, user, description string, projects ...string) string {
	t.Helper()
	args := []string{"token", "create", "--user", user, "--description", description}
	for _, p := range projects {
		args = append(args, "--project", p)
	}
	out := s.admin(t, args...)
	raw, _, _ := strings.Cut(out, "\n")
	raw = strings.TrimSpace(raw)
	if !strings.HasPrefix(raw, token.Prefix) {
		t.Fatalf("token create: got %q, want a token starting with %q", out, token.Prefix)
	}
	return raw
}

// e2eState is what the database and the blob store hold.
type e2eState struct {
	Files    []string // SELECT filename FROM files
	Projects []string // SELECT normalized_name FROM projects
	Releases int
	Journal  int
	Blobs    []string // every entry below <data-dir>/files, with its size
}

// snapshot reads the database (a second connection; SQLite is in WAL mode)
// and walks the files directory, ignoring nothing.
func (s *e2eServer) snapshot(t *testing.T) e2eState {
	t.Helper()
	ctx := context.Background()
	s.dbOnce.Do(func() { s.db, s.dbErr = db.Open(ctx, s.dbURL) })
	if s.dbErr != nil {
		t.Fatalf("open database: %v", s.dbErr)
	}
	var st e2eState
	strs := func(q string) []string {
		rows, err := s.db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		out := []string{}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	count := func(q string) int {
		var n int
		if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	st.Files = strs(`SELECT filename FROM files`)
	st.Projects = strs(`SELECT normalized_name FROM projects`)
	st.Releases = count(`SELECT count(*) FROM releases`)
	st.Journal = count(`SELECT count(*) FROM journal`)
	st.Blobs = []string{}
	root := filepath.Join(s.dataDir, "files")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			st.Blobs = append(st.Blobs, rel+"/")
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st.Blobs = append(st.Blobs, fmt.Sprintf("%s (%d bytes)", rel, info.Size()))
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return st
}

// e2eSameState fails t unless two snapshots are equal.
func e2eSameState(t *testing.T, before, after e2eState) {
	t.Helper()
	if reflect.DeepEqual(before, after) {
		return
	}
	b, _ := json.MarshalIndent(before, "", "  ")
	a, _ := json.MarshalIndent(after, "", "  ")
	t.Errorf("the database or blob store changed:\ngot  %s\nwant %s", a, b)
}

// ---------------------------------------------------------------------------
// HTTP: uploads by hand and the Simple API

// e2eClient talks to the test servers directly (never through a proxy).
var e2eClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{Proxy: nil, DisableCompression: true},
}

// http is the client for this server: e2eClient, or one that trusts the
// certificate of a server serving HTTPS itself.
func (s *e2eServer) http() *http.Client {
	if s.client != nil {
		return s.client
	}
	return e2eClient
}

// e2ePart is one part of a multipart upload body.
type e2ePart struct {
	field    string
	value    []byte
	filename string // a file part if non-empty
	// disposition, if set, is the exact Content-Disposition header.
	disposition string
}

// e2eForm is an upload body, in order.
type e2eForm []e2ePart

// e2eWheelForm is the form twine sends for a wheel (fields, then content).
func e2eWheelForm(name, version, filename string, data []byte) e2eForm {
	f := e2eForm{}
	for _, kv := range [][2]string{
		{":action", "file_upload"}, {"protocol_version", "1"}, {"metadata_version", "2.1"},
		{"name", name}, {"version", version}, {"filetype", "bdist_wheel"}, {"pyversion", "py3"},
		{"summary", "an end-to-end test wheel"}, {"sha256_digest", e2eSHA256(data)},
	} {
		f = append(f, e2ePart{field: kv[0], value: []byte(kv[1])})
	}
	return append(f, e2ePart{field: "content", filename: filename, value: data})
}

// with returns a copy with the first field named field set to value (added
// before the content if absent).
func (f e2eForm) with(field, value string) e2eForm {
	out := append(e2eForm{}, f...)
	for i := range out {
		if out[i].field == field && out[i].filename == "" {
			out[i].value = []byte(value)
			return out
		}
	}
	return out.plus(field, value)
}

// plus returns a copy with another field added before the content.
func (f e2eForm) plus(field, value string) e2eForm {
	out := e2eForm{}
	for _, p := range f {
		if p.filename != "" || p.disposition != "" {
			out = append(out, e2ePart{field: field, value: []byte(value)})
			field = ""
		}
		out = append(out, p)
	}
	if field != "" {
		out = append(out, e2ePart{field: field, value: []byte(value)})
	}
	return out
}

// without returns a copy without the parts named field.
func (f e2eForm) without(field string) e2eForm {
	out := e2eForm{}
	for _, p := range f {
		if p.field != field {
			out = append(out, p)
		}
	}
	return out
}

// withContentDisposition replaces the content part's Content-Disposition.
func (f e2eForm) withContentDisposition(disp string) e2eForm {
	out := append(e2eForm{}, f...)
	for i := range out {
		if out[i].field == "content" {
			out[i].disposition = disp
		}
	}
	return out
}

func (f e2eForm) encode() (body []byte, contentType string, err error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range f {
		h := textproto.MIMEHeader{}
		switch {
		case p.disposition != "":
			h.Set("Content-Disposition", p.disposition)
			h.Set("Content-Type", "application/octet-stream")
		case p.filename != "":
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.field, p.filename))
			h.Set("Content-Type", "application/octet-stream")
		default:
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"`, p.field))
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(p.value); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), mw.FormDataContentType(), nil
}

// e2eReply is the answer to an upload.
type e2eReply struct {
	code   int
	status string // the whole status line after the protocol: "400 File already exists …"
	body   string
}

// upload posts a form to /legacy/ with basic auth __token__:tok (no
// Authorization header if tok is empty).
func (s *e2eServer) upload(t *testing.T, tok string, f e2eForm) e2eReply {
	t.Helper()
	body, ct, err := f.encode()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/legacy/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if tok != "" {
		req.SetBasicAuth("__token__", tok)
	}
	resp, err := s.http().Do(req)
	if err != nil {
		t.Fatalf("POST /legacy/: %v", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return e2eReply{code: resp.StatusCode, status: resp.Status, body: string(rb)}
}

// mustUpload uploads a wheel that must be accepted.
func (s *e2eServer) mustUpload(t *testing.T, tok string, f e2eForm) {
	t.Helper()
	if r := s.upload(t, tok, f); r.code != http.StatusOK {
		t.Fatalf("upload: got %q, want 200 OK; body:\n%s", r.status, r.body)
	}
}

// e2eSimpleFile is one file of a PEP 691 project page.
type e2eSimpleFile struct {
	Filename string            `json:"filename"`
	URL      string            `json:"url"`
	Hashes   map[string]string `json:"hashes"`
}

// simpleJSON fetches /simple/<project>/ as PEP 691 JSON.
func (s *e2eServer) simpleJSON(t *testing.T, project string) (files []e2eSimpleFile, versions []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/simple/"+project+"/", nil)
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json")
	resp, err := s.http().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /simple/%s/: got %s, want 200", project, resp.Status)
	}
	var page struct {
		Files    []e2eSimpleFile `json:"files"`
		Versions []string        `json:"versions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatalf("GET /simple/%s/: %v", project, err)
	}
	return page.Files, page.Versions
}

// getJSON fetches a JSON document.
func (s *e2eServer) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := s.http().Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s, want 200", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// ---------------------------------------------------------------------------
// Wheels built in Go

// e2eMember is one archive member.
type e2eMember struct {
	name string
	data []byte
}

// e2eMetadata is a Metadata-Version 2.1 METADATA file.
func e2eMetadata(name, version string) string {
	return fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: an end-to-end test wheel\n\n", name, version)
}

// e2eWheel builds a pure-Python wheel of project name (a module of the same
// name with "-" as "_") at version, with the given METADATA text and extra
// members. RECORD lists every member with its hash.
func e2eWheel(t *testing.T, name, version, metadata string, extra ...e2eMember) []byte {
	t.Helper()
	mod := strings.ReplaceAll(name, "-", "_")
	di := mod + "-" + version + ".dist-info/"
	members := []e2eMember{
		{mod + "/__init__.py", []byte(fmt.Sprintf("VERSION = %q\n", version))},
		{di + "METADATA", []byte(metadata)},
		{di + "WHEEL", []byte("Wheel-Version: 1.0\nGenerator: gatehouse-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
	}
	members = append(members, extra...)
	var record strings.Builder
	for _, m := range members {
		sum := sha256.Sum256(m.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", m.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(m.data))
	}
	record.WriteString(di + "RECORD,,\n")
	members = append(members, e2eMember{di + "RECORD", []byte(record.String())})

	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// e2eWheelName is the file name of e2eWheel's wheel.
func e2eWheelName(name, version string) string {
	return strings.ReplaceAll(name, "-", "_") + "-" + version + "-py3-none-any.whl"
}

// e2eZeros reads zero bytes forever.
type e2eZeros struct{}

func (e2eZeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

var (
	e2eBombOnce sync.Once
	e2eBombData []byte
	e2eBombErr  error
)

// The zip bomb's project and version.
const (
	e2eBombProject = "proj-a"
	e2eBombVersion = "6.0"
)

// e2eZipBomb is a wheel of e2eBombProject at e2eBombVersion whose METADATA,
// WHEEL and RECORD are fine but which also holds 100 MiB of deflated zeros
// (about 100 KB compressed). It is built once per test binary.
func e2eZipBomb(t *testing.T) []byte {
	t.Helper()
	e2eBombOnce.Do(func() {
		name, version := e2eBombProject, e2eBombVersion
		mod := strings.ReplaceAll(name, "-", "_")
		di := mod + "-" + version + ".dist-info/"
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		add := func(n string, r io.Reader) error {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate})
			if err != nil {
				return err
			}
			_, err = io.Copy(w, r)
			return err
		}
		for _, m := range []struct {
			name string
			r    io.Reader
		}{
			{mod + "/__init__.py", strings.NewReader("")},
			{mod + "/zeros.bin", io.LimitReader(e2eZeros{}, 100<<20)},
			{di + "METADATA", strings.NewReader(e2eMetadata(name, version))},
			{di + "WHEEL", strings.NewReader("Wheel-Version: 1.0\nGenerator: gatehouse-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
			{di + "RECORD", strings.NewReader("")},
		} {
			if e2eBombErr = add(m.name, m.r); e2eBombErr != nil {
				return
			}
		}
		e2eBombErr = zw.Close()
		e2eBombData = b.Bytes()
	})
	if e2eBombErr != nil {
		t.Fatal(e2eBombErr)
	}
	return e2eBombData
}
