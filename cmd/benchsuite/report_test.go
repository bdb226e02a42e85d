package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// Lines of a real pip 23.0.1 --log (Debian), with the lines around them.
const pipLogSample = `2026-12-03T08:00:33,488 Starting new HTTP connection (1): localhost:38823
2026-12-03T08:00:33,489 http://localhost:38823 "GET /p12/simple/p12-00/ HTTP/1.1" 200 785
2026-12-03T08:00:33,510   Found link http://localhost:38823/p12/packages/p12_00-1.0-py3-none-any.whl#sha256=8c4f (from http://localhost:38823/p12/simple/p12-00/) (requires-python:>=3.8), version: 1.0
2026-12-03T08:00:33,515   http://localhost:38823 "GET /p12/packages/p12_00-1.1-py3-none-any.whl.metadata HTTP/1.1" 200 222
2026-12-03T08:00:33,516   Downloading http://localhost:38823/p12/packages/p12_00-1.1-py3-none-any.whl.metadata (222 bytes)
2026-12-03T08:00:33,594 http://localhost:38823 "GET /p12/packages/p12_00-1.1-py3-none-any.whl HTTP/1.1" 200 921
2026-12-03T08:00:33,602 http://localhost:38823 "GET /p12/packages/p12_00-1.1-py3-none-any.whl HTTP/1.1" 200 921
2026-12-03T08:00:33,700 http://localhost:38823 "GET /simple/p12-99/ HTTP/1.1" 404 17
`

func TestCountPipRequests(t *testing.T) {
	got := countPipRequests(pipLogSample)
	want := map[string]int{"page": 2, "metadata": 1, "file": 2, "status 404": 1}
	if len(got) != len(want) {
		t.Errorf("countPipRequests: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("countPipRequests[%q]: got %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestIntList(t *testing.T) {
	got, err := intList(" 1000, 100000,,1000000 ")
	if err != nil || len(got) != 3 || got[0] != 1000 || got[2] != 1000000 {
		t.Errorf("intList: got %v, %v", got, err)
	}
	for _, bad := range []string{"10,x", "0", "-5"} {
		if _, err := intList(bad); err == nil {
			t.Errorf("intList(%q): no error", bad)
		}
	}
}

// TestChartsAreXML: both charts parse as XML, with every line's label in
// them, even with no growth points.
func TestChartsAreXML(t *testing.T) {
	lines := []line{
		{ours: result{Bench: "P1", Variant: "json n=7"}, refName: "nginx", value: 0.42, lo: 0.4, hi: 0.5, unit: "×", chart: true, goal: ratioGoal(0.6, "nginx req/s")},
		{ours: result{Bench: "P7", Variant: "8 logins <&>"}, refName: "no logins", value: 12.6, lo: 12.6, hi: 12.6, unit: "×", chart: true, goal: atMost(2, "p99 ≤ 2× idle")},
	}
	points := []growthPoint{{projects: 1000, rootColdMs: 5}, {projects: 1000000, rootColdMs: 2900}}
	for name, svg := range map[string][]byte{
		"ratios": ratiosSVG(lines, "run"), "growth": growthSVG(points, config{smallFiles: 7, seedFiles: 1}, "run"), "growth, empty": growthSVG(nil, config{}, ""),
	} {
		d := xml.NewDecoder(strings.NewReader(string(svg)))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s chart is not XML: %v\n%s", name, err, svg)
			}
		}
	}
	if s := string(ratiosSVG(lines, "run")); !strings.Contains(s, "P1 json n=7 vs nginx") || !strings.Contains(s, "8 logins &lt;&amp;&gt;") {
		t.Errorf("ratios chart lacks its labels:\n%s", s)
	}
}
