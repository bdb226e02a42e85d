package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// moduleRoot is the repository root, seen from this package's directory.
const moduleRoot = "../.."

var (
	// helpLinkRE is a literal link to a help section: "/help/#anchor", in a
	// template or a Go string.
	helpLinkRE = regexp.MustCompile(`/help/#([A-Za-z0-9_-]+)`)
	// helpFormatRE is a link built by formatting the help page's URL,
	// "See %s#anchor", as the token package's messages do.
	helpFormatRE = regexp.MustCompile(`%s#([A-Za-z0-9_-]+)`)
)

// helpAnchors collects, from the module's sources, every /help/ section the
// code can link to, with where each link is made. It reads:
//   - Go sources (not tests): the anchors passed to help-link builders —
//     any function whose body holds a string literal ending in "#", such as
//     web's helpURL and project's help — which must be string literals, so
//     that every anchor is known; and string literals holding "/help/#x" or
//     a "%s#x" format;
//   - templates and other text under internal/ and cmd/: "/help/#x" links.
func helpAnchors(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	anchors := map[string][]string{}
	add := func(anchor, where string) { anchors[anchor] = append(anchors[anchor], where) }
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != moduleRoot && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch ext := filepath.Ext(path); {
		case ext == ".go":
			if strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files = append(files, f)
		case slices.Contains([]string{".html", ".txt", ".tmpl", ".js"}, ext):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range helpLinkRE.FindAllStringSubmatch(string(b), -1) {
				add(m[1], path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the sources: %v", err)
	}

	// The builders: functions that append an anchor to a URL ending in "#".
	builders := map[string]bool{}
	for _, f := range files {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasSuffix(v, "#") {
						builders[fn.Name.Name] = true
					}
				}
				return true
			})
		}
	}
	if !builders["helpURL"] || !builders["help"] {
		t.Fatalf("found help-link builders %v, want at least web's helpURL and project's help: the scan is broken", builders)
	}

	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				v, err := strconv.Unquote(n.Value)
				if err != nil {
					return true
				}
				for _, re := range []*regexp.Regexp{helpLinkRE, helpFormatRE} {
					for _, m := range re.FindAllStringSubmatch(v, -1) {
						add(m[1], fset.Position(n.Pos()).String())
					}
				}
			case *ast.CallExpr:
				var name string
				switch fun := n.Fun.(type) {
				case *ast.Ident:
					name = fun.Name
				case *ast.SelectorExpr:
					name = fun.Sel.Name
				}
				if !builders[name] || len(n.Args) != 1 {
					return true
				}
				where := fset.Position(n.Pos()).String()
				lit, ok := n.Args[0].(*ast.BasicLit)
				v, err := "", error(nil)
				if ok && lit.Kind == token.STRING {
					v, err = strconv.Unquote(lit.Value)
				}
				if !ok || lit.Kind != token.STRING || err != nil {
					t.Errorf("%s: %s called with a computed anchor; pass a string literal so this test can check the section exists", where, name)
					return true
				}
				add(v, where)
			}
			return true
		})
	}
	return anchors
}

// TestHelpAnchorsExist: every /help/#… link the code can produce — in
// upload errors, token errors, project errors, templates — points at a
// section that exists on the rendered help page.
func TestHelpAnchorsExist(t *testing.T) {
	anchors := helpAnchors(t)
	// Links known to exist, one per way of making them, so that a scan
	// that finds nothing cannot pass.
	for _, a := range []string{"verified-email", "two-factor-authentication", "project-name", "invalid-auth", "apitoken"} {
		if len(anchors[a]) == 0 {
			t.Errorf("the scan did not find the link to #%s; found %v", a, anchors)
		}
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		r := f.getOK(t, "/help/")
		ids := map[string]bool{}
		for _, n := range findAll(parseHTML(t, r.body), func(*htmlNode) bool { return true }) {
			if id, ok := attrOK(n, "id"); ok {
				ids[id] = true
			}
		}
		// The page's own "#x" links count too.
		for _, a := range findAll(parseHTML(t, r.body), byTag("a")) {
			if h := attr(a, "href"); strings.HasPrefix(h, "#") {
				anchors[h[1:]] = append(anchors[h[1:]], "/help/ itself")
			}
		}
		for a, where := range anchors {
			if !ids[a] {
				t.Errorf("/help/ has no section id=%q, linked from %s", a, strings.Join(where, ", "))
			}
		}
	})
}
