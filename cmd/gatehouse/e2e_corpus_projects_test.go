package main

// The generated half of the corpus test (e2e_corpus_test.go): one project
// per build backend that Debian ships, each written the way that backend's
// users write theirs, and built offline with `python3 -m build
// --no-isolation` into an sdist and a wheel.
//
// Every project has two extras (so that Provides-Extra repeats, as it does
// in most of PyPI): "next", which requires the next project of the ring
// below, and "wheel", which requires Debian's wheel. It has a console
// script that imports the next project (so it runs only where that extra
// was installed), several project URLs and classifiers, a LICENSE file, a
// README in Markdown, reST or plain text, and a Requires-Python.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
)

// corpusProject is one generated project.
type corpusProject struct {
	name    string // as uploaded, e.g. "corpus-flit"
	version string // the version the build must produce
	backend string // what builds it, for messages
	// readme is the README's file name; its suffix gives the content type.
	readme string
	// requiresPython is the Requires-Python the built metadata must carry.
	requiresPython string
	// deps are the plain (non-extra) dependencies, as project names.
	deps []string
	// gitTag, if set, makes the tree a git repository with one commit
	// tagged so: setuptools-scm, flit_scm, hatch-vcs and pbr take the
	// version from it, and meson-python's sdist is `meson dist`, which
	// needs a repository.
	gitTag string
	// skipDepCheck is why `build` must not check the backend's declared
	// requirements ("" to check them).
	skipDepCheck string
	// files is the build configuration and the module's location, as
	// templates over corpusTmplData. The README, LICENSE and NOTICE are
	// added to every project.
	files map[string]string

	next string // the project extra "next" requires (set by the ring)
}

// module is the project's import name.
func (p *corpusProject) module() string { return strings.ReplaceAll(p.name, "-", "_") }

// corpusProjects is the ring of generated projects, in order: each one's
// extra "next" requires the one after it, and the last one's the first.
// Backends in bookworm left out: sipbuild (needs C++ bindings to build at
// all) and setuptools-rust (needs crates from a registry, and makes a
// linux_x86_64 wheel, which an index refuses as PyPI does).
var corpusProjects = []*corpusProject{
	{
		name: "corpus-setuptools", version: "1.0.0", backend: "setuptools (pyproject.toml)",
		readme: "README.md", requiresPython: ">=3.8",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{{.Name}}"
version = "{{.Version}}"
description = "{{.Summary}}"
readme = "README.md"
requires-python = ">=3.8"
license = {file = "LICENSE"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
maintainers = [{name = "Bob Example", email = "bob@example.com"}]
keywords = ["gatehouse", "corpus", "setuptools"]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}; python_version >= '3.8'"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}
`,
			"src/{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		// No pyproject.toml: build falls back to setuptools' legacy
		// backend, as for a large share of the sdists on PyPI.
		name: "corpus-setupcfg", version: "2.1", backend: "setuptools (setup.cfg and setup.py, no pyproject.toml)",
		readme: "README.rst", requiresPython: ">=3.7",
		files: map[string]string{
			"setup.py": "from setuptools import setup\n\nsetup()\n",
			"setup.cfg": `[metadata]
name = {{.Name}}
version = {{.Version}}
description = {{.Summary}}
long_description = file: README.rst
long_description_content_type = text/x-rst
author = Alice Example
author_email = alice@example.com
license = MIT
license_files =
    LICENSE
    NOTICE
platforms = any, linux
keywords = gatehouse, corpus, setup.cfg
classifiers ={{range .Classifiers}}
    {{.}}{{end}}
project_urls ={{range .URLs}}
    {{index . 0}} = {{index . 1}}{{end}}

[options]
packages = find:
python_requires = >=3.7

[options.extras_require]
next =
    {{.NextReq}}
wheel =
    wheel>=0.38

[options.entry_points]
console_scripts =
    {{.Name}} = {{.Module}}:main
gui_scripts =
    {{.Name}}-gui = {{.Module}}:main
`,
			"{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		name: "corpus-scm", version: "3.0.0", backend: "setuptools with setuptools-scm", gitTag: "v3.0.0",
		// setuptools sorts the specifiers of Requires-Python.
		readme: "README.txt", requiresPython: "<4,>=3.8",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["setuptools>=61", "setuptools_scm>=7"]
build-backend = "setuptools.build_meta"

[project]
name = "{{.Name}}"
dynamic = ["version"]
description = "{{.Summary}}"
readme = {file = "README.txt", content-type = "text/plain"}
requires-python = ">=3.8,<4"
license = {text = "MIT"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}

[tool.setuptools_scm]
`,
			"{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		// flit takes the version and the summary from the module.
		name: "corpus-flit", version: "4.2", backend: "flit_core",
		readme: "README.rst", requiresPython: "~=3.8",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["flit_core>=3.2,<4"]
build-backend = "flit_core.buildapi"

[project]
name = "{{.Name}}"
dynamic = ["version", "description"]
readme = "README.rst"
requires-python = "~=3.8"
license = {file = "LICENSE"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
keywords = ["gatehouse", "corpus", "flit"]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}
`,
			"{{.Module}}/__init__.py": corpusModule + "\n__version__ = \"{{.Version}}\"\n",
		},
	},
	{
		name: "corpus-flitscm", version: "5.0.1", backend: "flit_scm (flit_core with setuptools-scm)", gitTag: "v5.0.1",
		readme: "README.md", requiresPython: ">=3.8",
		skipDepCheck: "flit_scm declares setuptools_scm~=6.4; bookworm ships 7.1, which builds it",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["flit_scm"]
build-backend = "flit_scm:buildapi"

[project]
name = "{{.Name}}"
dynamic = ["version"]
description = "{{.Summary}}"
readme = "README.md"
requires-python = ">=3.8"
license = {file = "LICENSE"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}

[tool.setuptools_scm]
write_to = "{{.Module}}/_version.py"
`,
			// flit wants a __version__ even where the version is dynamic.
			"{{.Module}}/__init__.py": corpusModule + "\nfrom ._version import version as __version__  # noqa: E402\n",
		},
	},
	{
		// poetry's own table, not [project]: extras are optional
		// dependencies named in [tool.poetry.extras], and "^3.8" becomes
		// Requires-Python ">=3.8,<4.0".
		name: "corpus-poetry", version: "6.0.0", backend: "poetry-core",
		readme: "README.md", requiresPython: ">=3.8,<4.0", deps: []string{"corpus-setuptools"},
		files: map[string]string{
			"pyproject.toml": `[tool.poetry]
name = "{{.Name}}"
version = "{{.Version}}"
description = "{{.Summary}}"
authors = ["Alice Example <alice@example.com>"]
maintainers = ["Bob Example <bob@example.com>"]
license = "MIT"
readme = "README.md"
homepage = "{{index (index .URLs 0) 1}}"
documentation = "{{index (index .URLs 1) 1}}"
repository = "{{index (index .URLs 2) 1}}"
keywords = ["gatehouse", "corpus", "poetry"]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]
packages = [{include = "{{.Module}}"}]

[tool.poetry.dependencies]
python = "^3.8"
corpus-setuptools = ">=1.0"
{{.Next}} = {version = ">={{.NextVersion}}", optional = true}
wheel = {version = ">=0.38", optional = true}

[tool.poetry.extras]
next = ["{{.Next}}"]
wheel = ["wheel"]

[tool.poetry.scripts]
{{.Name}} = "{{.Module}}:main"

[tool.poetry.urls]{{range slice .URLs 3}}
{{index . 0}} = "{{index . 1}}"{{end}}

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
`,
			"{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		name: "corpus-hatch", version: "7.0.0", backend: "hatchling",
		readme: "README.rst", requiresPython: ">=3.8",
		skipDepCheck: "hatchling declares editables, which bookworm does not ship and a build does not use",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{{.Name}}"
version = "{{.Version}}"
description = "{{.Summary}}"
readme = "README.rst"
requires-python = ">=3.8"
license = "MIT"
license-files = {paths = ["LICENSE", "NOTICE"]}
authors = [{name = "Alice Example", email = "alice@example.com"}]
keywords = ["gatehouse", "corpus", "hatch"]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.entry-points."corpus.plugins"]
hatch = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}

[tool.hatch.build.targets.wheel]
packages = ["src/{{.Module}}"]
`,
			"src/{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		// The dependencies, extras included, come from requirements
		// files, and the version from git.
		name: "corpus-hatchvcs", version: "8.0.0", backend: "hatchling with hatch-vcs and hatch-requirements-txt", gitTag: "v8.0.0",
		readme: "README.md", requiresPython: ">=3.8", deps: []string{"wheel"},
		skipDepCheck: "hatchling declares editables, which bookworm does not ship and a build does not use",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["hatchling", "hatch-vcs", "hatch-requirements-txt"]
build-backend = "hatchling.build"

[project]
name = "{{.Name}}"
dynamic = ["version", "dependencies", "optional-dependencies"]
description = "{{.Summary}}"
readme = "README.md"
requires-python = ">=3.8"
license = "MIT"
license-files = {paths = ["LICENSE"]}
authors = [{name = "Alice Example", email = "alice@example.com"}]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}

[tool.hatch.version]
source = "vcs"

[tool.hatch.build.hooks.vcs]
version-file = "src/{{.Module}}/_version.py"

[tool.hatch.metadata.hooks.requirements_txt]
files = ["requirements.txt"]

[tool.hatch.metadata.hooks.requirements_txt.optional-dependencies]
next = ["requirements-next.txt"]
wheel = ["requirements-wheel.txt"]
`,
			"requirements.txt":            "# The plain dependency: Debian's own wheel of wheel.\nwheel>=0.38\n",
			"requirements-next.txt":       "{{.NextReq}}\n",
			"requirements-wheel.txt":      "wheel>=0.38\n",
			"src/{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		name: "corpus-pdm", version: "9.0.post1", backend: "pdm-pep517",
		readme: "README.rst", requiresPython: ">=3.8,!=3.9.0",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["pdm-pep517>=1.0"]
build-backend = "pdm.pep517.api"

[project]
name = "{{.Name}}"
version = "{{.Version}}"
description = "{{.Summary}}"
readme = "README.rst"
requires-python = ">=3.8,!=3.9.0"
license = {text = "MIT"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
keywords = ["gatehouse", "corpus", "pdm"]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}

[tool.pdm]
license-files = ["LICENSE"]
`,
			"src/{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		// A pure-Python package built by Meson; its sdist is `meson dist`.
		name: "corpus-meson", version: "10.0.0", backend: "meson-python", gitTag: "v10.0.0",
		readme: "README.md", requiresPython: ">=3.8",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["meson-python"]
build-backend = "mesonpy"

[project]
name = "{{.Name}}"
version = "{{.Version}}"
description = "{{.Summary}}"
readme = "README.md"
requires-python = ">=3.8"
license = {file = "LICENSE"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}
`,
			"meson.build": `project('{{.Name}}', version: '{{.Version}}')
py = import('python').find_installation(pure: true)
py.install_sources('{{.Module}}/__init__.py', subdir: '{{.Module}}', pure: true)
`,
			"{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		// pbr: metadata in setup.cfg, version from the git tag, AUTHORS and
		// ChangeLog from the history.
		name: "corpus-pbr", version: "11.0.0", backend: "pbr", gitTag: "11.0.0",
		readme: "README.rst", requiresPython: ">=3.8",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["pbr>=5.7", "setuptools>=36.6.0"]
build-backend = "pbr.build"
`,
			"setup.py": "import setuptools\n\nsetuptools.setup(pbr=True)\n",
			"setup.cfg": `[metadata]
name = {{.Name}}
summary = {{.Summary}}
description_file = README.rst
description_content_type = text/x-rst
author = Alice Example
author_email = alice@example.com
home_page = {{index (index .URLs 0) 1}}
project_urls ={{range slice .URLs 1}}
    {{index . 0}} = {{index . 1}}{{end}}
python_requires = >=3.8
license = MIT
classifier ={{range .Classifiers}}
    {{.}}{{end}}

[files]
packages = {{.Module}}

[extras]
next =
    {{.NextReq}}
wheel =
    wheel>=0.38

[entry_points]
console_scripts =
    {{.Name}} = {{.Module}}:main
`,
			"{{.Module}}/__init__.py": corpusModule,
		},
	},
	{
		name: "corpus-jupyter", version: "12.0.0", backend: "jupyter-packaging",
		readme: "README.md", requiresPython: ">=3.8",
		files: map[string]string{
			"pyproject.toml": `[build-system]
requires = ["jupyter_packaging>=0.10"]
build-backend = "jupyter_packaging.build_api"

[project]
name = "{{.Name}}"
version = "{{.Version}}"
description = "{{.Summary}}"
readme = "README.md"
requires-python = ">=3.8"
license = {text = "MIT"}
authors = [{name = "Alice Example", email = "alice@example.com"}]
classifiers = [{{range .Classifiers}}
    "{{.}}",{{end}}
]

[project.optional-dependencies]
next = ["{{.NextReq}}"]
wheel = ["wheel>=0.38"]

[project.scripts]
{{.Name}} = "{{.Module}}:main"

[project.urls]{{range .URLs}}
{{index . 0}} = "{{index . 1}}"{{end}}
`,
			"{{.Module}}/__init__.py": corpusModule,
		},
	},
}

func init() {
	for i, p := range corpusProjects {
		p.next = corpusProjects[(i+1)%len(corpusProjects)].name
	}
}

// corpusProjectByName returns a generated project, or nil.
func corpusProjectByName(name string) *corpusProject {
	for _, p := range corpusProjects {
		if p.name == name {
			return p
		}
	}
	return nil
}

// corpusModule is every generated package's code. Its console script
// imports the project that the extra "next" brings in, so it runs only where
// that extra was installed.
const corpusModule = `"""{{.Summary}}"""

import importlib
import importlib.metadata

NAME = "{{.Name}}"
NEXT = "{{.Next}}"


def main():
    importlib.import_module(NEXT.replace("-", "_"))
    print(NAME, importlib.metadata.version(NAME), "next", NEXT, importlib.metadata.version(NEXT))
`

// corpusClassifiers are every generated project's classifiers.
var corpusClassifiers = []string{
	"Development Status :: 5 - Production/Stable",
	"Intended Audience :: Developers",
	"License :: OSI Approved :: MIT License",
	"Operating System :: OS Independent",
	"Programming Language :: Python :: 3",
	"Programming Language :: Python :: 3 :: Only",
	"Topic :: Software Development :: Libraries",
}

// corpusURLs are a generated project's project URLs (label, URL).
func corpusURLs(name string) [][2]string {
	base := "https://example.org/" + name
	return [][2]string{
		{"Homepage", base},
		{"Documentation", base + "/docs"},
		{"Source", base + "/src"},
		{"Issues", base + "/issues"},
		{"Changelog", base + "/changes"},
	}
}

// corpusTmplData is what a project's templates see.
type corpusTmplData struct {
	Name, Version, Module, Summary string
	Next, NextVersion, NextReq     string
	Classifiers                    []string
	URLs                           [][2]string
}

func (p *corpusProject) tmplData() corpusTmplData {
	next := corpusProjectByName(p.next)
	return corpusTmplData{
		Name: p.name, Version: p.version, Module: p.module(),
		Summary: p.name + ": a package of Gatehouse's corpus test, built with " + p.backend + ".",
		Next:    next.name, NextVersion: next.version, NextReq: next.name + ">=" + next.version,
		Classifiers: corpusClassifiers, URLs: corpusURLs(p.name),
	}
}

// corpusLicense is every project's LICENSE: the whole MIT licence, which
// some backends copy into the License field, lines and all.
const corpusLicense = `MIT License

Copyright (c) 2024 The Gatehouse corpus test

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

// corpusReadmes are the READMEs, by suffix.
var corpusReadmes = map[string]string{
	".md": `# {{.Name}}

{{.Summary}}

## Install

` + "```sh\npip install '{{.Name}}[next]'\n```" + `

* It has an extra, **next**, that installs [{{.Next}}](https://example.org/{{.Next}}).
* It has a console script, ` + "`{{.Name}}`" + `.
`,
	".rst": `{{.Name}}
{{.Underline}}

{{.Summary}}

Install
-------

::

    pip install '{{.Name}}[next]'

* It has an extra, **next**, that installs ` + "`{{.Next}} <https://example.org/{{.Next}}>`_" + `.
* It has a console script, ` + "``{{.Name}}``" + `.
`,
	".txt": `{{.Name}}

{{.Summary}}

Install it with: pip install '{{.Name}}[next]'
`,
}

// corpusDescriptionTypes are the Description-Content-Type of each README.
var corpusDescriptionTypes = map[string]string{".md": "text/markdown", ".rst": "text/x-rst", ".txt": "text/plain"}

// tree is every file of the project's source tree, templates expanded.
func (p *corpusProject) tree() (map[string]string, error) {
	data := p.tmplData()
	expand := func(name, text string) (string, error) {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		// The reST title's underline is as long as the title.
		err = t.Execute(&b, struct {
			corpusTmplData
			Underline string
		}{data, strings.Repeat("=", len(p.name))})
		return b.String(), err
	}
	readme, ok := corpusReadmes[filepath.Ext(p.readme)]
	if !ok {
		return nil, fmt.Errorf("%s: no README template for %s", p.name, p.readme)
	}
	src := map[string]string{
		p.readme:  readme,
		"LICENSE": corpusLicense,
		"NOTICE":  "The Gatehouse corpus test made this project.\n",
	}
	for k, v := range p.files {
		src[k] = v
	}
	out := map[string]string{}
	for name, text := range src {
		n, err := expand(p.name+":"+name, name)
		if err != nil {
			return nil, err
		}
		if out[n], err = expand(p.name+":"+name, text); err != nil {
			return nil, fmt.Errorf("%s: %s: %v", p.name, name, err)
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Building

// corpusBuilt is one generated project's sdist and wheel.
type corpusBuilt struct {
	project      *corpusProject
	wheel, sdist string // absolute paths
}

type corpusBuildSet struct {
	dir   string
	built []corpusBuilt // in the ring's order
	err   error
}

var (
	corpusBuildOnce sync.Once
	corpusBuildVal  corpusBuildSet
)

// corpusBuildAll builds every generated project once per test binary; the
// SQLite and PostgreSQL runs share the files, which must not be modified.
func corpusBuildAll(tools e2eToolSet) *corpusBuildSet {
	corpusBuildOnce.Do(func() { corpusBuildVal = corpusBuild(tools) })
	return &corpusBuildVal
}

func corpusBuild(tools e2eToolSet) corpusBuildSet {
	var bs corpusBuildSet
	dir, err := os.MkdirTemp("", "gatehouse-e2e-corpus")
	if err != nil {
		bs.err = err
		return bs
	}
	bs.dir = dir
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		bs.err = err
		return bs
	}
	bs.built = make([]corpusBuilt, len(corpusProjects))
	errs := make([]error, len(corpusProjects))
	// Two builds at a time: the machine has two cores.
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, p := range corpusProjects {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			bs.built[i], errs[i] = corpusBuildOne(tools, filepath.Join(dir, p.name), home, p)
		}()
	}
	wg.Wait()
	bs.err = errors.Join(errs...)
	return bs
}

// corpusBuildOne writes a project's tree into pdir and builds it.
func corpusBuildOne(tools e2eToolSet, pdir, home string, p *corpusProject) (corpusBuilt, error) {
	b := corpusBuilt{project: p}
	files, err := p.tree()
	if err != nil {
		return b, err
	}
	for rel, content := range files {
		path := filepath.Join(pdir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return b, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return b, err
		}
	}
	env := e2eEnv(home, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Alice Example", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice Example", "GIT_COMMITTER_EMAIL=alice@example.com")
	var cmds [][]string
	if p.gitTag != "" {
		cmds = append(cmds, []string{"git", "init", "-q"}, []string{"git", "add", "-A"},
			[]string{"git", "commit", "-q", "-m", "The corpus test's project"}, []string{"git", "tag", p.gitTag})
	}
	build := []string{tools.python, "-m", "build", "--no-isolation", "--outdir", filepath.Join(pdir, "..", p.name+"-dist")}
	if p.skipDepCheck != "" {
		build = append(build, "--skip-dependency-check")
	}
	cmds = append(cmds, append(build, "."))
	for _, c := range cmds {
		if out, err := e2eExec(pdir, env, c[0], c[1:]...); err != nil {
			return b, fmt.Errorf("%s (%s): %s: %v\n%s", p.name, p.backend, strings.Join(c, " "), err, out)
		}
	}
	dist := filepath.Join(pdir, "..", p.name+"-dist")
	wheels, _ := filepath.Glob(filepath.Join(dist, "*.whl"))
	sdists, _ := filepath.Glob(filepath.Join(dist, "*.tar.gz"))
	if len(wheels) != 1 || len(sdists) != 1 {
		return b, fmt.Errorf("%s: built wheels %v and sdists %v, want one of each", p.name, wheels, sdists)
	}
	b.wheel, b.sdist = wheels[0], sdists[0]
	for _, path := range []string{b.wheel, b.sdist} {
		m, err := corpusReadMetadata(path)
		if err != nil {
			return b, fmt.Errorf("%s: %v", filepath.Base(path), err)
		}
		if m.version != p.version || m.requiresPython != p.requiresPython {
			return b, fmt.Errorf("%s: built Version %q and Requires-Python %q, want %q and %q",
				filepath.Base(path), m.version, m.requiresPython, p.version, p.requiresPython)
		}
		if m.metadataVersion > "2.2" || len(m.metadataVersion) != 3 {
			return b, fmt.Errorf("%s: Metadata-Version %s, want at most 2.2 (Debian's twine 4.0.2 accepts no later)", filepath.Base(path), m.metadataVersion)
		}
	}
	return b, nil
}
