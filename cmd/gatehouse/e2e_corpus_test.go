package main

// The real-world corpus test (issue 12 §1): many real distributions, as
// varied as this machine offers without PyPI, uploaded with Debian's twine
// and installed back with Debian's pip from the index alone, on SQLite and
// on PostgreSQL. A refusal of any of them fails the test with twine's
// output, reason phrase included.
//
// The corpus is
//   - every distribution found on the machine (e2e_corpus_found_test.go):
//     Debian's wheels of pip, setuptools and wheel, and those that Python
//     installations here bundle;
//   - a project per build backend Debian ships, built offline into an sdist
//     and a wheel (e2e_corpus_projects_test.go).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/pep"
)

func TestE2ECorpus(t *testing.T) {
	t.Parallel()
	tools := e2eTools(t)
	found := corpusFindAll()
	if found.err != nil {
		e2eSkipOrFail(t, "the corpus's Debian wheels are missing: %v", found.err)
	}
	t.Logf("corpus: %d distributions found on this machine, %d generated projects (an sdist and a wheel each)",
		len(found.found), len(corpusProjects))
	for _, s := range found.skipped {
		t.Logf("left out of the corpus: %s", s)
	}
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			corpusScenario(t, dialect, tools, found)
		})
	}
}

func corpusScenario(t *testing.T, dialect string, tools e2eToolSet, found *corpusFoundSet) {
	srv := e2eStartServer(t, dialect)
	srv.createUser(t, "corpus")
	tok := srv.createToken(t, "corpus", "corpus uploads")
	built := corpusBuildAll(tools)
	if built.err != nil {
		t.Fatalf("building the generated projects: %v", built.err)
	}
	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}

	var files []string
	for _, f := range found.found {
		files = append(files, f.path)
	}
	for _, b := range built.built {
		files = append(files, b.wheel, b.sdist)
	}
	if refused := corpusUpload(tools, srv.URL, tok, home, files); len(refused) > 0 {
		var msg strings.Builder
		for _, r := range refused {
			fmt.Fprintf(&msg, "\n--- %s: twine said:\n%s", r.file, r.output)
		}
		t.Fatalf("the index refused %d of the corpus's %d files:%s", len(refused), len(files), msg.String())
	}

	t.Run("the Simple API lists every file with the sha256 of its bytes", func(t *testing.T) {
		byProject := map[string][]string{}
		for _, f := range found.found {
			byProject[pep.NormalizeName(f.project)] = append(byProject[pep.NormalizeName(f.project)], f.path)
		}
		for _, b := range built.built {
			byProject[b.project.name] = append(byProject[b.project.name], b.wheel, b.sdist)
		}
		for project, paths := range byProject {
			listed, _ := srv.simpleJSON(t, project)
			sums := map[string]string{}
			for _, f := range listed {
				sums[f.Filename] = f.Hashes["sha256"]
			}
			for _, p := range paths {
				if got, want := sums[filepath.Base(p)], e2eSHA256File(t, p); got != want {
					t.Errorf("/simple/%s/: %s listed with sha256 %q, want %q", project, filepath.Base(p), got, want)
				}
			}
		}
	})

	t.Run("the JSON API has each generated project's metadata", func(t *testing.T) {
		for _, b := range built.built {
			corpusCheckJSON(t, srv, b.project)
		}
	})

	pip := func(t *testing.T, venv string, args ...string) string {
		t.Helper()
		// --no-compile: byte-compiling pip's and setuptools' thousands of
		// modules, round after round, is most of the time and none of the test.
		full := append([]string{"-m", "pip", "--python", filepath.Join(venv, "bin", "python"), "install",
			"--index-url", srv.URL + "/simple/", "--no-compile"}, args...)
		return e2eMustExec(t, work, e2eEnv(home), tools.python, full...)
	}

	t.Run("pip installs each generated wheel with its extra", func(t *testing.T) {
		for _, b := range built.built {
			p := b.project
			venv := corpusVenv(t, tools, home, false)
			out := pip(t, venv, p.name+"[next]")
			if !strings.Contains(out, filepath.Base(b.wheel)) {
				t.Errorf("pip install %s[next] did not fetch %s:\n%s", p.name, filepath.Base(b.wheel), out)
			}
			// The extra, and only the extra, brought in the next project.
			want := corpusClosure(p.name, p.next)
			if got := corpusInstalled(t, venv, home); !slices.Equal(corpusNames(got), want) {
				t.Errorf("pip install %s[next] installed %v, want %v; pip said:\n%s", p.name, got, want, out)
			} else if got[p.name] != p.version {
				t.Errorf("pip install %s[next] installed version %s, want %s", p.name, got[p.name], p.version)
			}
			corpusRunScript(t, venv, home, p)
		}
	})

	t.Run("pip builds and installs each generated sdist with its extra", func(t *testing.T) {
		// The build backends are Debian's, in the system site-packages.
		venv := corpusVenv(t, tools, home, true)
		var names, reqs []string
		for _, b := range built.built {
			names = append(names, b.project.name)
			reqs = append(reqs, b.project.name+"[next]")
		}
		// --use-pep517: a wheel is built for corpus-setupcfg too, which has
		// no pyproject.toml (as pip 23.1 and later do anyway).
		out := pip(t, venv, append([]string{"--no-build-isolation", "--use-pep517", "--no-binary", strings.Join(names, ",")}, reqs...)...)
		got := corpusInstalled(t, venv, home)
		for _, b := range built.built {
			p := b.project
			if !strings.Contains(out, filepath.Base(b.sdist)) || !strings.Contains(out, "Created wheel for "+p.name+":") {
				t.Errorf("pip did not fetch %s and build a wheel from it:\n%s", filepath.Base(b.sdist), out)
			}
			if got[p.name] != p.version {
				t.Errorf("%s: installed version %q, want %q", p.name, got[p.name], p.version)
			}
			corpusRunScript(t, venv, home, p)
		}
	})

	t.Run("pip installs every distribution found on the machine", func(t *testing.T) {
		for _, round := range corpusInstallRounds(found.found) {
			venv := corpusVenv(t, tools, home, false)
			// The found files were made for the Python that bundles them
			// (and their dependencies are not all in the corpus); what this
			// proves is that the index serves them so that pip installs them.
			args := []string{"--no-deps", "--ignore-requires-python"}
			var noBinary []string
			want := map[string]string{}
			for _, f := range round {
				args = append(args, f.project+"=="+f.version)
				want[pep.NormalizeName(f.project)] = f.version
				if f.sdist {
					noBinary = append(noBinary, f.project)
				}
			}
			if len(noBinary) > 0 {
				args = append(args, "--no-binary", strings.Join(noBinary, ","))
			}
			out := pip(t, venv, args...)
			got := corpusInstalled(t, venv, home)
			for _, f := range round {
				if !strings.Contains(out, f.filename) {
					t.Errorf("pip install %s==%s did not fetch %s:\n%s", f.project, f.version, f.filename, out)
				}
			}
			if !corpusSameVersions(got, want) {
				t.Errorf("pip install %v installed %v, want %v", args, got, want)
			}
		}
	})
}

// corpusSameVersions compares name → version maps, versions as PEP 440.
func corpusSameVersions(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for n, w := range want {
		gv, err1 := pep.ParseVersion(got[n])
		wv, err2 := pep.ParseVersion(w)
		if err1 != nil || err2 != nil || gv.String() != wv.String() {
			return false
		}
	}
	return true
}

// corpusRefusal is a file the index refused, with what twine printed.
type corpusRefusal struct {
	file, output string
}

// corpusUpload uploads files with Debian's twine, all in one run while the
// index accepts them. twine stops at the first refusal; the test goes on
// with the files twine had not reached, so that every refusal is reported.
// (twine uploads the wheels first, whatever the order it is given.)
func corpusUpload(tools e2eToolSet, url, tok, home string, files []string) []corpusRefusal {
	var refused []corpusRefusal
	// A wide terminal, so that rich does not wrap the reason phrase.
	env := e2eEnv(home, "COLUMNS=250")
	for len(files) > 0 {
		args := append([]string{"upload", "--repository-url", url + "/legacy/", "-u", "__token__", "-p", tok,
			"--non-interactive", "--disable-progress-bar"}, files...)
		out, err := e2eExec(home, env, tools.twine, args...)
		if err == nil {
			return refused
		}
		// The refused file is the last one twine announced.
		var rest []string
		refusedAt, refusedFile := -1, ""
		for _, f := range files {
			at := strings.LastIndex(out, "Uploading "+filepath.Base(f)+"\n")
			if at < 0 {
				rest = append(rest, f)
			} else if at > refusedAt {
				refusedAt, refusedFile = at, filepath.Base(f)
			}
		}
		if refusedAt < 0 {
			return append(refused, corpusRefusal{"(before any upload)", corpusPlain(out)})
		}
		after := out[refusedAt+len("Uploading "+refusedFile+"\n"):]
		refused = append(refused, corpusRefusal{refusedFile, corpusPlain(after)})
		files = rest
	}
	return refused
}

// corpusANSI matches the colour codes twine's rich prints despite NO_COLOR.
var corpusANSI = regexp.MustCompile("\x1b\\[[0-9;]*m")

// corpusPlain is twine's output without colours and padding.
func corpusPlain(out string) string {
	lines := strings.Split(corpusANSI.ReplaceAllString(out, ""), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// corpusVenv makes a fresh venv without pip of its own: pip is Debian's,
// run with --python. With systemSite it sees Debian's packages, the build
// backends among them.
func corpusVenv(t *testing.T, tools e2eToolSet, home string, systemSite bool) string {
	t.Helper()
	venv := filepath.Join(t.TempDir(), "venv")
	args := []string{"-m", "venv", "--without-pip"}
	if systemSite {
		args = append(args, "--system-site-packages")
	}
	e2eMustExec(t, home, e2eEnv(home), tools.python, append(args, venv)...)
	return venv
}

// corpusInstalled returns what is installed in venv's own site-packages,
// normalized name → version.
func corpusInstalled(t *testing.T, venv, home string) map[string]string {
	t.Helper()
	const script = `import importlib.metadata, json, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
print(json.dumps({d.metadata["Name"]: d.version for d in importlib.metadata.distributions(path=[site])}))`
	out := e2eMustExec(t, home, e2eEnv(home), filepath.Join(venv, "bin", "python"), "-c", script)
	var raw map[string]string
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("listing what is installed in %s: %v\n%s", venv, err, out)
	}
	got := map[string]string{}
	for n, v := range raw {
		got[pep.NormalizeName(n)] = v
	}
	return got
}

func corpusNames(m map[string]string) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// corpusClosure is the sorted set of projects that installing the given
// ones brings in through plain dependencies.
func corpusClosure(names ...string) []string {
	seen := map[string]string{}
	var visit func(string)
	visit = func(n string) {
		if _, ok := seen[n]; ok {
			return
		}
		seen[n] = ""
		if p := corpusProjectByName(n); p != nil {
			for _, d := range p.deps {
				visit(d)
			}
		}
	}
	for _, n := range names {
		visit(n)
	}
	return corpusNames(seen)
}

// corpusRunScript runs a generated project's console script, which works
// only where its extra's dependency is installed.
func corpusRunScript(t *testing.T, venv, home string, p *corpusProject) {
	t.Helper()
	next := corpusProjectByName(p.next)
	script := filepath.Join(venv, "bin", p.name)
	out, err := e2eExec(home, e2eEnv(home), script)
	if err != nil {
		t.Errorf("%s: the console script failed: %v\n%s", p.name, err, out)
		return
	}
	if got, want := strings.TrimSpace(out), fmt.Sprintf("%s %s next %s %s", p.name, p.version, next.name, next.version); got != want {
		t.Errorf("%s: the console script printed %q, want %q", p.name, got, want)
	}
}

// corpusCheckJSON checks what the JSON API says of a generated project
// against what it declares.
func corpusCheckJSON(t *testing.T, srv *e2eServer, p *corpusProject) {
	t.Helper()
	var doc struct {
		Info struct {
			Version                string            `json:"version"`
			RequiresPython         string            `json:"requires_python"`
			DescriptionContentType string            `json:"description_content_type"`
			Description            string            `json:"description"`
			Classifiers            []string          `json:"classifiers"`
			ProvidesExtra          []string          `json:"provides_extra"`
			RequiresDist           []string          `json:"requires_dist"`
			ProjectURLs            map[string]string `json:"project_urls"`
			HomePage               string            `json:"home_page"`
		} `json:"info"`
	}
	srv.getJSON(t, "/pypi/"+p.name+"/json", &doc)
	in := doc.Info
	if in.Version != p.version {
		t.Errorf("%s: version %q, want %q", p.name, in.Version, p.version)
	}
	if in.RequiresPython != p.requiresPython {
		t.Errorf("%s: requires_python %q, want %q", p.name, in.RequiresPython, p.requiresPython)
	}
	if ct := corpusDescriptionTypes[filepath.Ext(p.readme)]; !strings.HasPrefix(in.DescriptionContentType, ct) {
		t.Errorf("%s: description_content_type %q, want %q", p.name, in.DescriptionContentType, ct)
	}
	if !strings.Contains(in.Description, "pip install '"+p.name+"[next]'") {
		t.Errorf("%s: description %q, want the README", p.name, in.Description)
	}
	for _, c := range corpusClassifiers {
		if !slices.Contains(in.Classifiers, c) {
			t.Errorf("%s: classifiers %q lack %q", p.name, in.Classifiers, c)
		}
	}
	if !slices.Contains(in.ProvidesExtra, "next") || !slices.Contains(in.ProvidesExtra, "wheel") {
		t.Errorf("%s: provides_extra %q, want it to hold \"next\" and \"wheel\"", p.name, in.ProvidesExtra)
	}
	extraReq := false
	for _, r := range in.RequiresDist {
		extraReq = extraReq || (strings.HasPrefix(r, p.next) && strings.Contains(r, "extra =="))
	}
	if !extraReq {
		t.Errorf("%s: requires_dist %q, want a requirement of %s for extra \"next\"", p.name, in.RequiresDist, p.next)
	}
	urls := map[string]bool{in.HomePage: true}
	for _, u := range in.ProjectURLs {
		urls[u] = true
	}
	for _, u := range corpusURLs(p.name) {
		if !urls[u[1]] {
			t.Errorf("%s: project_urls %v and home_page %q lack %s", p.name, in.ProjectURLs, in.HomePage, u[1])
		}
	}
}
