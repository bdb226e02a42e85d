// Package internal_test holds tests about the packages' layering.
package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/gatehouse-index/gatehouse/internal/"

// imports lists each internal package's direct imports of other internal
// packages, as `go list` sees them (test files excluded).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module)
		if !ok {
			continue
		}
		m[pkg] = nil
		for _, imp := range fields[1:] {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				m[pkg] = append(m[pkg], dep)
			}
		}
	}
	return m
}

// TestImportRules asserts the layering docs/architecture.md draws: web is
// HTTP only and opens no transactions; domain packages know nothing of
// HTTP or configuration; only the sign-in flow and web stitch second
// factors and sessions together.
func TestImportRules(t *testing.T) {
	m := imports(t)
	if len(m) < 10 {
		t.Fatalf("go list found only %d internal packages: %v", len(m), m)
	}
	has := func(pkg, dep string) bool {
		for _, d := range m[pkg] {
			if d == dep {
				return true
			}
		}
		return false
	}
	if has("web", "db") {
		t.Error("internal/web imports internal/db: transactions belong to the domain packages")
	}
	for pkg := range m {
		if pkg == "web" || strings.HasPrefix(pkg, "web/") || pkg == "config" {
			continue
		}
		for _, forbidden := range []string{"web", "config"} {
			if has(pkg, forbidden) {
				t.Errorf("internal/%s imports internal/%s: domain packages are wired in cmd, not configured from inside", pkg, forbidden)
			}
		}
	}
	for pkg := range m {
		if pkg != "login" && pkg != "web" && has(pkg, "mfa") && has(pkg, "session") {
			t.Errorf("internal/%s imports both mfa and session: only login (and web) may stitch them together", pkg)
		}
	}
}
