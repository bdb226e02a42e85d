package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
)

// check is one line of the report: a count or a measurement of a case,
// with what it must be.
type check struct {
	Case string `json:"case"`
	DB   string `json:"db"`
	What string `json:"what"`
	Got  string `json:"got"`
	Want string `json:"want"`
	OK   bool   `json:"ok"`
	Note string `json:"note,omitempty"`
}

// report collects the checks of every case.
type report struct {
	mu     sync.Mutex
	checks []check
	notes  []string
	out    io.Writer
}

// add records a check and prints it at once, so a long run shows progress.
func (r *report) add(c check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, c)
	mark := "ok  "
	if !c.OK {
		mark = "FAIL"
	}
	fmt.Fprintf(r.out, "faults: %s %-22s %-8s %s = %s (want %s)%s\n", mark, c.Case, c.DB, c.What, c.Got, c.Want, noteSuffix(c.Note))
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return "; " + n
}

// count adds a check that got must equal want.
func (r *report) count(cs, dbName, what string, got, want int, note string) {
	r.add(check{Case: cs, DB: dbName, What: what, Got: fmt.Sprint(got), Want: fmt.Sprint(want), OK: got == want, Note: note})
}

// atMost adds a check that got ≤ limit.
func (r *report) atMost(cs, dbName, what string, got, limit float64, unit, note string) {
	r.add(check{Case: cs, DB: dbName, What: what, Got: trimFloat(got) + unit, Want: "≤ " + trimFloat(limit) + unit, OK: got <= limit, Note: note})
}

// info adds a measurement without a pass criterion.
func (r *report) info(cs, dbName, what, got, note string) {
	r.add(check{Case: cs, DB: dbName, What: what, Got: got, Want: "(measured)", OK: true, Note: note})
}

// fail adds a check that failed outright (the case could not run).
func (r *report) fail(cs, dbName string, err error) {
	r.add(check{Case: cs, DB: dbName, What: "ran", Got: "error", Want: "no error", OK: false, Note: oneLine(err.Error())})
}

// skip records a case that cannot run here, and why.
func (r *report) skip(cs, dbName, why string) {
	r.add(check{Case: cs, DB: dbName, What: "skipped", Got: "-", Want: "-", OK: true, Note: why})
}

func (r *report) failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.checks {
		if !c.OK {
			n++
		}
	}
	return n
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// table writes every check, aligned.
func (r *report) table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tDB\tCHECK\tGOT\tWANT\tRESULT")
	for _, c := range r.checks {
		res := "ok"
		if !c.OK {
			res = "FAIL"
		}
		if c.Note != "" {
			res += "  (" + c.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Case, c.DB, c.What, c.Got, c.Want, res)
	}
	tw.Flush()
}

// markdown is the same table for docs/reliability.md.
func (r *report) markdown(w io.Writer) {
	fmt.Fprintln(w, "| Case | DB | Check | Got | Want | Result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, c := range r.checks {
		res := "ok"
		if !c.OK {
			res = "**FAIL**"
		}
		if c.Note != "" {
			res += " (" + esc(c.Note) + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", esc(c.Case), c.DB, esc(c.What), esc(c.Got), esc(c.Want), res)
	}
}

// write saves report.txt, report.md and report.json in dir.
func (r *report) write(dir, header string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var txt, md strings.Builder
	txt.WriteString(header + "\n\n")
	r.table(&txt)
	md.WriteString(header + "\n\n")
	r.markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(txt.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(r.checks, "", "  ")
	return os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644)
}
