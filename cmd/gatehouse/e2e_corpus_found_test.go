package main

// The found half of the corpus test (e2e_corpus_test.go): every wheel that
// Debian ships under /usr/share/python-wheels (python3-pip-whl,
// python3-setuptools-whl, python3-wheel-whl; scripts/test installs them),
// and every other wheel and sdist that lies on this machine without any
// download: the wheels that Python installations bundle for ensurepip and
// for their own tests (a pyenv's, an SDK's), under /usr/lib, /usr/local,
// /opt and a pyenv root.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// corpusDebianWheels is where Debian's *-whl packages put their wheels.
const corpusDebianWheels = "/usr/share/python-wheels"

// corpusDebianWheelProjects are the projects whose wheels Debian bookworm
// ships there (python3-pip-whl, python3-setuptools-whl, python3-wheel-whl).
var corpusDebianWheelProjects = []string{"pip", "setuptools", "wheel"}

// corpusFound is a distribution found on this machine.
type corpusFound struct {
	path, filename   string
	project, version string // from its metadata
	sdist            bool
}

type corpusFoundSet struct {
	found   []corpusFound // Debian's first, each file name once
	skipped []string      // what was left out, and why
	err     error
}

var (
	corpusFoundOnce sync.Once
	corpusFoundVal  corpusFoundSet
)

// corpusFindAll looks for the distributions once per test binary.
func corpusFindAll() *corpusFoundSet {
	corpusFoundOnce.Do(func() { corpusFoundVal = corpusFind() })
	return &corpusFoundVal
}

// corpusFindRoots are the directories searched, Debian's wheels first, so
// that where two files share a name, Debian's is the one kept.
func corpusFindRoots() []string {
	roots := []string{corpusDebianWheels, "/usr/lib", "/usr/local", "/opt"}
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		roots = append(roots, r)
	}
	if h, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(h, ".pyenv"))
	}
	return roots
}

func corpusFind() corpusFoundSet {
	var set corpusFoundSet
	byName := map[string][]byte{} // file name → contents, of what was kept
	seenRoot := map[string]bool{}
	for _, root := range corpusFindRoots() {
		real, err := filepath.EvalSymlinks(root)
		if err != nil || seenRoot[real] {
			continue
		}
		seenRoot[real] = true
		err = filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				// An unreadable directory is not part of the corpus.
				return fs.SkipDir
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			name := d.Name()
			if !strings.HasSuffix(name, ".whl") && !strings.HasSuffix(name, ".tar.gz") {
				return nil
			}
			if _, err := pep.ParseSdistFilename(name); err != nil && strings.HasSuffix(name, ".tar.gz") {
				return nil // some other tarball
			}
			f, why := corpusExamine(path)
			if why != "" {
				set.skipped = append(set.skipped, path+": "+why)
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				set.skipped = append(set.skipped, path+": "+err.Error())
				return nil
			}
			if prev, ok := byName[name]; ok {
				if !bytes.Equal(prev, data) {
					set.skipped = append(set.skipped, path+": another file of this name, with other bytes, is already in the corpus (an index holds one file per name)")
				}
				return nil
			}
			byName[name] = data
			set.found = append(set.found, f)
			return nil
		})
		if err != nil {
			set.err = errors.Join(set.err, fmt.Errorf("searching %s: %v", real, err))
		}
	}
	// Debian's wheels must all be there: scripts/test installs them.
	for _, p := range corpusDebianWheelProjects {
		ok := false
		for _, f := range set.found {
			ok = ok || (f.project == p && filepath.Dir(f.path) == corpusDebianWheels)
		}
		if !ok {
			set.err = errors.Join(set.err, fmt.Errorf("no wheel of %s in %s: install python3-%s-whl", p, corpusDebianWheels, p))
		}
	}
	sort.Strings(set.skipped)
	return set
}

// corpusExamine returns a found file as a corpus member, or why it is not
// one: not a distribution, a platform wheel (the test installs every file
// back here, and a linux_x86_64 one PyPI refuses anyway), or metadata newer
// than Debian's twine (4.0.2) can upload.
func corpusExamine(path string) (corpusFound, string) {
	f := corpusFound{path: path, filename: filepath.Base(path), sdist: strings.HasSuffix(path, ".tar.gz")}
	var fnName, fnVersion string
	if f.sdist {
		sd, err := pep.ParseSdistFilename(f.filename)
		if err != nil {
			return f, err.Error()
		}
		fnName, fnVersion = sd.Name, sd.Version
	} else {
		wf, err := pep.ParseWheelFilename(f.filename)
		if err != nil {
			return f, err.Error()
		}
		for _, p := range wf.PlatformTags {
			if p != "any" {
				return f, "a platform wheel (" + p + "); the corpus takes pure wheels, which install anywhere"
			}
		}
		fnName, fnVersion = wf.Name, wf.Version
	}
	m, err := corpusReadMetadata(path)
	if err != nil {
		return f, err.Error()
	}
	if m.metadataVersion > "2.2" || len(m.metadataVersion) != 3 {
		return f, "Metadata-Version " + m.metadataVersion + ", which Debian's twine 4.0.2 cannot upload"
	}
	f.project, f.version = m.name, m.version
	if pep.NormalizeName(fnName) != pep.NormalizeName(m.name) {
		return f, fmt.Sprintf("the file name says project %q, the metadata %q", fnName, m.name)
	}
	fv, err1 := pep.ParseVersion(fnVersion)
	mv, err2 := pep.ParseVersion(m.version)
	if err1 != nil || err2 != nil || fv.String() != mv.String() {
		return f, fmt.Sprintf("the file name says version %q, the metadata %q", fnVersion, m.version)
	}
	return f, ""
}

// corpusMeta is what the corpus test reads from a distribution's metadata.
type corpusMeta struct {
	metadataVersion, name, version, requiresPython string
}

// corpusReadMetadata reads a wheel's METADATA or an sdist's PKG-INFO.
func corpusReadMetadata(path string) (corpusMeta, error) {
	raw, err := e2eMetadataFile(path)
	if err != nil {
		return corpusMeta{}, err
	}
	m, err := pep.ParseMetadata(raw)
	if err != nil {
		return corpusMeta{}, err
	}
	return corpusMeta{m.MetadataVersion(), m.Name(), m.Version(), m.RequiresPython()}, nil
}

// corpusInstallRounds groups found distributions into rounds that pip can
// install together: at most one version of each project per round (pip
// installs one version of a project into an environment).
func corpusInstallRounds(found []corpusFound) [][]corpusFound {
	var rounds [][]corpusFound
	used := []map[string]bool{}
	for _, f := range found {
		key := pep.NormalizeName(f.project)
		i := 0
		for i < len(rounds) && used[i][key] {
			i++
		}
		if i == len(rounds) {
			rounds = append(rounds, nil)
			used = append(used, map[string]bool{})
		}
		rounds[i] = append(rounds[i], f)
		used[i][key] = true
	}
	return rounds
}
