package main

// End-to-end scenarios with real clients: distributions built by setuptools
// (python -m build), flit and poetry, uploaded with twine, installed and
// downloaded with pip, on SQLite and on PostgreSQL.

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestE2EClients(t *testing.T) {
	t.Parallel()
	tools := e2eTools(t)
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			e2eClientScenario(t, dialect, tools)
		})
	}
}

// e2eVenvResult is a venv being created in the background.
type e2eVenvResult struct {
	dir string
	err error
}

func e2eClientScenario(t *testing.T, dialect string, tools e2eToolSet) {
	work := t.TempDir()
	// The venv takes seconds; make it while the server starts and the
	// uploads run.
	venvc := make(chan e2eVenvResult, 1)
	go func() {
		d, err := e2eVenv(tools, work)
		venvc <- e2eVenvResult{d, err}
	}()
	var venv string
	needVenv := func(t *testing.T) string {
		t.Helper()
		if venv == "" {
			r := <-venvc
			if r.err != nil {
				venvc <- r
				t.Fatalf("creating the venv: %v", r.err)
			}
			venv = r.dir
		}
		return venv
	}
	t.Cleanup(func() {
		if venv == "" {
			<-venvc // do not leave the goroutine writing into a removed dir
		}
	})

	srv := e2eStartServer(t, dialect)
	srv.createUser(t, "alice")
	tok := srv.createToken(t, "alice", "e2e uploads")
	fx := e2eFixtureSet(t)

	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	twine := func(user, pass string, extra []string, files ...string) (string, error) {
		args := []string{"upload", "--repository-url", srv.URL + "/legacy/", "-u", user, "-p", pass,
			"--non-interactive", "--disable-progress-bar"}
		args = append(append(args, extra...), files...)
		return e2eExec(home, e2eEnv(home), tools.twine, args...)
	}

	var all []string // every fixture distribution
	for _, p := range e2eFixtureProjects {
		all = append(all, fx.dists[p].wheel, fx.dists[p].sdist)
	}
	var allNames []string
	for _, p := range all {
		allNames = append(allNames, filepath.Base(p))
	}
	sort.Strings(allNames)

	ok := t.Run("twine uploads setuptools, flit and poetry distributions", func(t *testing.T) {
		out, err := twine("__token__", tok, nil, all...)
		if err != nil {
			t.Fatalf("twine upload: got %v, want success; output:\n%s", err, out)
		}
		for _, name := range allNames {
			if !strings.Contains(out, "Uploading "+name) {
				t.Errorf("twine output does not mention uploading %s:\n%s", name, out)
			}
		}
		st := srv.snapshot(t)
		if !slices.Equal(st.Files, allNames) {
			t.Errorf("files in the database: got %v, want %v", st.Files, allNames)
		}
		if want := e2eFixtureProjects; !slices.Equal(st.Projects, want) {
			t.Errorf("projects in the database: got %v, want %v", st.Projects, want)
		}
		if st.Releases != len(e2eFixtureProjects) {
			t.Errorf("releases: got %d, want %d", st.Releases, len(e2eFixtureProjects))
		}
		// Every file is listed with the sha256 of the bytes twine sent.
		for _, p := range e2eFixtureProjects {
			d := fx.dists[p]
			files, versions := srv.simpleJSON(t, p)
			if !slices.Equal(versions, []string{d.version}) {
				t.Errorf("%s: versions got %v, want [%s]", p, versions, d.version)
			}
			got := map[string]string{}
			for _, f := range files {
				got[f.Filename] = f.Hashes["sha256"]
			}
			for _, path := range []string{d.wheel, d.sdist} {
				if h, want := got[filepath.Base(path)], e2eSHA256File(t, path); h != want {
					t.Errorf("%s: sha256 of %s got %q, want %q", p, filepath.Base(path), h, want)
				}
			}
		}
		// The metadata twine sent made it to the JSON API.
		var doc struct {
			Info struct {
				Description            string   `json:"description"`
				DescriptionContentType string   `json:"description_content_type"`
				RequiresPython         string   `json:"requires_python"`
				RequiresDist           []string `json:"requires_dist"`
			} `json:"info"`
		}
		srv.getJSON(t, "/pypi/demo-pkg/json", &doc)
		if doc.Info.DescriptionContentType != "text/markdown" {
			t.Errorf("demo-pkg description_content_type: got %q, want text/markdown", doc.Info.DescriptionContentType)
		}
		if !strings.Contains(doc.Info.Description, "**markdown** README") {
			t.Errorf("demo-pkg description: got %q, want the README", doc.Info.Description)
		}
		if doc.Info.RequiresPython != ">=3.8" {
			t.Errorf("demo-pkg requires_python: got %q, want >=3.8", doc.Info.RequiresPython)
		}
		if len(doc.Info.RequiresDist) != 1 || !strings.HasPrefix(doc.Info.RequiresDist[0], "demo-dep") {
			t.Errorf("demo-pkg requires_dist: got %q, want [demo-dep …]", doc.Info.RequiresDist)
		}
	})
	if !ok {
		return
	}

	t.Run("twine re-upload of identical files succeeds and changes nothing", func(t *testing.T) {
		before := srv.snapshot(t)
		for _, extra := range [][]string{nil, {"--skip-existing"}} {
			out, err := twine("__token__", tok, extra, all...)
			if err != nil {
				t.Errorf("twine upload %v of identical files: got %v, want success; output:\n%s", extra, err, out)
			}
		}
		e2eSameState(t, before, srv.snapshot(t))
	})

	t.Run("twine upload of a changed file under a used name is refused", func(t *testing.T) {
		orig := fx.dists["demo-pkg"].wheel
		changed := filepath.Join(t.TempDir(), filepath.Base(orig))
		e2eRewriteWheel(t, orig, changed)
		before := srv.snapshot(t)

		out, err := twine("__token__", tok, nil, changed)
		if err == nil {
			t.Errorf("twine upload of a changed %s: got success, want failure; output:\n%s", filepath.Base(changed), out)
		}
		if !strings.Contains(out, "File already exists") {
			t.Errorf("twine output: got\n%s\nwant it to contain %q", out, "File already exists")
		}

		out, err = twine("__token__", tok, []string{"--skip-existing"}, changed)
		if err != nil {
			t.Errorf("twine upload --skip-existing of a changed file: got %v, want success (skipped); output:\n%s", err, out)
		}
		if !strings.Contains(out, "Skipping") {
			t.Errorf("twine --skip-existing output: got\n%s\nwant it to contain %q", out, "Skipping")
		}
		e2eSameState(t, before, srv.snapshot(t))
	})

	t.Run("twine shows why an upload is refused", func(t *testing.T) {
		scoped := srv.createToken(t, "alice", "demo-dep only", "demo-dep")
		before := srv.snapshot(t)
		// The scoped token is good for its own project …
		if out, err := twine("__token__", scoped, nil, fx.dists["demo-dep"].wheel); err != nil {
			t.Errorf("twine upload with a token scoped to demo-dep, to demo-dep: got %v, want success; output:\n%s", err, out)
		}
		for _, c := range []struct {
			name, user, pass, file, want string
		}{
			{"token scoped to another project", "__token__", scoped, fx.dists["flit-demo"].wheel,
				"Invalid API Token: project-scoped token is not valid for project"},
			{"password authentication", "alice", "x", fx.dists["demo-dep"].wheel,
				"Username/Password authentication is no longer supported"},
		} {
			out, err := twine(c.user, c.pass, nil, c.file)
			if err == nil {
				t.Errorf("%s: twine exited 0, want failure; output:\n%s", c.name, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("%s: twine output got\n%s\nwant it to contain %q", c.name, out, c.want)
			}
		}
		e2eSameState(t, before, srv.snapshot(t))
	})

	t.Run("direct upload of a Metadata-Version 2.4 wheel", func(t *testing.T) {
		for _, v := range []string{"0.1", "0.2"} {
			meta := "Metadata-Version: 2.4\nName: meta24-demo\nVersion: " + v + "\n" +
				"Summary: A wheel with core metadata 2.4\nLicense-Expression: MIT OR Apache-2.0\nLicense-File: LICENSE\n" +
				"Requires-Python: >=3.8\nDescription-Content-Type: text/markdown\n\n# meta24\n"
			data := e2eWheel(t, "meta24-demo", v, meta,
				e2eMember{"meta24_demo-" + v + ".dist-info/licenses/LICENSE", []byte("MIT License\n")})
			f := e2eWheelForm("meta24-demo", v, e2eWheelName("meta24-demo", v), data).
				with("metadata_version", "2.4").
				with("summary", "A wheel with core metadata 2.4").
				with("license_expression", "MIT OR Apache-2.0").
				with("license_file", "LICENSE").
				with("requires_python", ">=3.8").
				with("description_content_type", "text/markdown").
				with("description", "# meta24\n")
			if r := srv.upload(t, tok, f); r.code != http.StatusOK {
				t.Fatalf("upload of meta24-demo %s: got %q, want 200; body:\n%s", v, r.status, r.body)
			}
		}
		var doc struct {
			Info struct {
				LicenseExpression string `json:"license_expression"`
				Version           string `json:"version"`
			} `json:"info"`
		}
		srv.getJSON(t, "/pypi/meta24-demo/json", &doc)
		if doc.Info.LicenseExpression != "MIT OR Apache-2.0" || doc.Info.Version != "0.2" {
			t.Errorf("JSON API info: got license_expression %q, version %q; want %q, %q",
				doc.Info.LicenseExpression, doc.Info.Version, "MIT OR Apache-2.0", "0.2")
		}
	})

	// What pip installs, and what proves it: every module imports, and
	// demo_pkg gets its answer from demo_dep, which pip had to resolve.
	installs := []string{"demo-pkg", "flit-demo", "poetry-demo", "meta24-demo"}
	check := `import demo_pkg, demo_dep, flit_demo, poetry_demo, meta24_demo
print(demo_pkg.ANSWER, flit_demo.__version__, poetry_demo.NAME, meta24_demo.VERSION)`
	const wantImport = "42 2.0 poetry 0.2"

	for _, mode := range []struct {
		name      string
		forceHTML bool
		wantType  string
	}{
		{"pip installs via the JSON Simple API", false, "application/vnd.pypi.simple.v1+json"},
		{"pip installs via the HTML Simple API", true, "text/html"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			venv := needVenv(t)
			py, pip := filepath.Join(venv, "bin", "python"), filepath.Join(venv, "bin", "pip")
			px := e2eNewSimpleProxy(t, srv.URL, mode.forceHTML)
			env := e2eEnv(home)
			out := e2eMustExec(t, work, env, pip, append([]string{"install", "--index-url", px.URL + "/simple/"}, installs...)...)
			for _, want := range []string{"demo-dep-0.3", "demo-pkg-1.0", "flit-demo-2.0", "poetry-demo-3.1.0", "meta24-demo-0.2"} {
				if !strings.Contains(out, want) {
					t.Errorf("pip install output does not list %s as installed:\n%s", want, out)
				}
			}
			if got := strings.TrimSpace(e2eMustExec(t, work, env, py, "-c", check)); got != wantImport {
				t.Errorf("importing the installed packages printed %q, want %q", got, wantImport)
			}

			// Every Simple API page pip read came in the expected format.
			seen := px.seen()
			projects := map[string]bool{}
			for _, r := range seen {
				if r.status != http.StatusOK || !strings.HasPrefix(r.contentType, mode.wantType) {
					t.Errorf("GET %s (Accept %q): got %d %q, want 200 %s", r.path, r.accept, r.status, r.contentType, mode.wantType)
				}
				if !mode.forceHTML && !strings.Contains(r.accept, "application/vnd.pypi.simple.v1+json") {
					t.Errorf("GET %s: pip sent Accept %q, want it to ask for JSON", r.path, r.accept)
				}
				projects[r.path] = true
			}
			for _, p := range []string{"demo-pkg", "demo-dep", "flit-demo", "poetry-demo", "meta24-demo"} {
				if !projects["/simple/"+p+"/"] {
					t.Errorf("pip never read /simple/%s/ through the proxy (it read %v)", p, seen)
				}
			}

			// Uninstall, so that the next mode installs from scratch.
			e2eMustExec(t, work, env, pip, append([]string{"uninstall", "-y", "demo-dep"}, installs...)...)
			if out, err := e2eExec(work, env, py, "-c", "import demo_pkg"); err == nil {
				t.Errorf("demo_pkg still imports after pip uninstall:\n%s", out)
			}
		})
	}

	t.Run("pip download fetches the listed bytes", func(t *testing.T) {
		venv := needVenv(t)
		dest := t.TempDir()
		e2eMustExec(t, work, e2eEnv(home), filepath.Join(venv, "bin", "pip"),
			"download", "--no-deps", "-d", dest, "--index-url", srv.URL+"/simple/", "demo-pkg==1.0")
		name := filepath.Base(fx.dists["demo-pkg"].wheel)
		got := e2eSHA256File(t, filepath.Join(dest, name))
		files, _ := srv.simpleJSON(t, "demo-pkg")
		listed := ""
		for _, f := range files {
			if f.Filename == name {
				listed = f.Hashes["sha256"]
			}
		}
		if got != listed {
			t.Errorf("sha256 of the downloaded %s: got %s, want %s (listed by the server)", name, got, listed)
		}
		if want := e2eSHA256File(t, fx.dists["demo-pkg"].wheel); got != want {
			t.Errorf("sha256 of the downloaded %s: got %s, want %s (the uploaded file)", name, got, want)
		}
	})

	t.Run("pip index versions lists the versions", func(t *testing.T) {
		venv := needVenv(t)
		out := e2eMustExec(t, work, e2eEnv(home), filepath.Join(venv, "bin", "pip"),
			"index", "versions", "--index-url", srv.URL+"/simple/", "meta24-demo")
		for _, want := range []string{"meta24-demo (0.2)", "Available versions: 0.2, 0.1"} {
			if !strings.Contains(out, want) {
				t.Errorf("pip index versions: got\n%s\nwant it to contain %q", out, want)
			}
		}
	})
}

// e2eRewriteWheel copies the wheel at src to dst with the same members but
// different bytes (a zip comment), so that it is a different file under the
// same name.
func e2eRewriteWheel(t *testing.T, src, dst string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.SetComment("changed by the end-to-end test"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// e2eProxied is one Simple API request seen by the proxy.
type e2eProxied struct {
	path, accept, contentType string
	status                    int
}

func (r e2eProxied) String() string {
	return fmt.Sprintf("%s→%d %s", r.path, r.status, r.contentType)
}

// e2eSimpleProxy stands between pip and the server. pip 23 always asks for
// JSON first; with forceHTML the proxy rewrites Accept to text/html, so pip
// gets (and must understand) the HTML form. It records what it forwarded.
type e2eSimpleProxy struct {
	URL  string
	mu   sync.Mutex
	reqs []e2eProxied
}

func e2eNewSimpleProxy(t *testing.T, target string, forceHTML bool) *e2eSimpleProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &e2eSimpleProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			if forceHTML {
				pr.Out.Header.Set("Accept", "text/html")
			}
		},
		Transport: e2eClient.Transport,
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &e2eStatusWriter{ResponseWriter: w}
		rp.ServeHTTP(sw, r)
		p.mu.Lock()
		p.reqs = append(p.reqs, e2eProxied{path: r.URL.Path, accept: r.Header.Get("Accept"),
			contentType: w.Header().Get("Content-Type"), status: sw.status})
		p.mu.Unlock()
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

func (p *e2eSimpleProxy) seen() []e2eProxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]e2eProxied(nil), p.reqs...)
}

type e2eStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *e2eStatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *e2eStatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
