package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The charts are plain SVG written here, so that a run needs no plotting
// tool: docs/benchmarks.md links them.

const (
	colMet    = "#2e7d32"
	colMissed = "#c62828"
	colRecord = "#757575"
	colAxis   = "#444"
	colGrid   = "#ddd"
)

var seriesColours = []string{"#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457"}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ratiosSVG draws every charted ratio as a bar with its goal: green when
// met, red when missed, grey when only recorded.
func ratiosSVG(lines []line, subtitle string) []byte {
	var ls []line
	for _, l := range lines {
		if l.chart && l.unit == "×" && finite(l.value) && finite(l.lo) && finite(l.hi) {
			ls = append(ls, l)
		}
	}
	const (
		left, right, top, rowH = 400.0, 40.0, 66.0, 22.0
		width                  = 1000.0
	)
	xmax := 2.0
	for _, l := range ls {
		xmax = math.Max(xmax, math.Ceil(l.hi*2)/2)
	}
	xmax = math.Min(xmax, 4) // longer bars are clipped and labelled
	height := top + rowH*float64(len(ls)) + 40
	plotW := width - left - right
	x := func(v float64) float64 { return left + plotW*math.Min(v, xmax)/xmax }
	var b strings.Builder
	svgOpen(&b, width, height)
	text(&b, 10, 22, "start", 15, "bold", "Gatehouse ÷ reference (median of rounds; whiskers: range). Tick: goal. Green met, red missed, grey recorded.")
	text(&b, 10, 42, "start", 12, "", subtitle)
	for v := 0.0; v <= xmax+1e-9; v += 0.5 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x(v), top-6, x(v), height-34, colGrid)
		text(&b, x(v), height-18, "middle", 11, "", fmt.Sprintf("%.1f×", v))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", x(1), top-6, x(1), height-34, colAxis)
	for i, l := range ls {
		y := top + rowH*float64(i)
		col := colRecord
		if l.goal.judged() {
			col = colMissed
			if l.met() {
				col = colMet
			}
		}
		text(&b, left-8, y+14, "end", 12, "", chartLabel(l))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.85"/>`+"\n", x(0), y+3, x(l.value)-x(0), rowH-8, col)
		if l.lo != l.hi {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x(l.lo), y+rowH/2, x(l.hi), y+rowH/2, colAxis)
		}
		for _, g := range []struct {
			v  float64
			on bool
		}{{l.goal.min, l.goal.hasMin}, {l.goal.max, l.goal.hasMax}} {
			if g.on {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="2.5"/>`+"\n", x(g.v), y, x(g.v), y+rowH-2)
			}
		}
		label := fmt.Sprintf("%.2f", l.value)
		if l.value > xmax {
			label += " →"
		}
		text(&b, math.Min(x(l.value)+4, width-right+4), y+14, "start", 11, "", label)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func chartLabel(l line) string {
	s := shortVariant(l)
	if !strings.HasPrefix(s, l.ours.Bench) {
		s = l.ours.Bench + " " + s
	}
	if len(s) > 62 {
		s = s[:60] + "…"
	}
	return s
}

// growthSVG draws P11's curve (each measure ÷ its value at the first
// scale, with the ±20 % band) and, beside it, the root index's cold build
// and the worst request after one upload, against the number of projects.
func growthSVG(ps []growthPoint, cfg config, subtitle string) []byte {
	const width, height = 1000.0, 440.0
	var b strings.Builder
	svgOpen(&b, width, height)
	if len(ps) == 0 {
		text(&b, 20, 40, "start", 14, "", "No growth points measured.")
		b.WriteString("</svg>\n")
		return []byte(b.String())
	}
	text(&b, 10, 22, "start", 15, "bold", "Growth with the number of projects (log scale)")
	text(&b, 10, 40, "start", 12, "", subtitle)
	type series struct {
		name string
		vals []float64
	}
	lo, hi := float64(ps[0].projects), float64(ps[len(ps)-1].projects)
	if hi <= lo {
		hi = lo * 10
	}
	lx := func(x0, w, p float64) float64 {
		return x0 + w*(math.Log10(p)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	// Left: normalised latencies.
	rel := []series{
		{fmt.Sprintf("P1 p50 (warm, n=%d)", cfg.smallFiles), nil},
		{fmt.Sprintf("P2 p50 (cold page, n=%d)", cfg.seedFiles), nil},
		{"upload p50 (16 KiB wheel)", nil},
	}
	for _, p := range ps {
		rel[0].vals = append(rel[0].vals, p.p1.P50)
		rel[1].vals = append(rel[1].vals, percentile(p.p2, 50))
		rel[2].vals = append(rel[2].vals, percentile(p.uploads, 50))
	}
	ymax := 2.0
	for _, s := range rel {
		for _, v := range s.vals {
			if s.vals[0] > 0 {
				ymax = math.Max(ymax, math.Ceil(v/s.vals[0]*2)/2)
			}
		}
	}
	ymax = math.Min(ymax, 5)
	x0, y0, w, h := 70.0, 80.0, 380.0, 280.0
	y := func(v float64) float64 { return y0 + h - h*math.Min(v, ymax)/ymax }
	text(&b, x0, y0-14, "start", 13, "bold", "÷ value at the first scale (band: ±20 %)")
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#e8f5e9"/>`+"\n", x0, y(1.2), w, y(0.8)-y(1.2))
	for v := 0.0; v <= ymax+1e-9; v += 0.5 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x0, y(v), x0+w, y(v), colGrid)
		text(&b, x0-6, y(v)+4, "end", 11, "", fmt.Sprintf("%.1f×", v))
	}
	xTicks(&b, ps, func(p float64) float64 { return lx(x0, w, p) }, y0+h)
	for i, s := range rel {
		if s.vals[0] <= 0 {
			continue
		}
		var pts []string
		for j, p := range ps {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(x0, w, float64(p.projects)), y(s.vals[j]/s.vals[0])))
		}
		polyline(&b, pts, seriesColours[i])
		legend(&b, x0+10, y0+h+40+float64(i)*16, seriesColours[i], s.name)
	}
	// Right: root index times, log-log.
	x1 := 560.0
	abs := []series{{"root: first GET builds it (ms)", nil}, {"root: slowest of 32 GETs after an upload to a new project (ms)", nil}}
	for _, p := range ps {
		abs[0].vals = append(abs[0].vals, p.rootColdMs)
		m := 0.0
		if len(p.bursts) > 0 {
			m = p.bursts[0].maxMs
		}
		abs[1].vals = append(abs[1].vals, m)
	}
	vmin, vmax := math.Inf(1), 0.0
	for _, s := range abs {
		for _, v := range s.vals {
			if v > 0 {
				vmin, vmax = math.Min(vmin, v), math.Max(vmax, v)
			}
		}
	}
	if vmax == 0 {
		vmin, vmax = 1, 10
	}
	dlo, dhi := math.Floor(math.Log10(vmin)), math.Ceil(math.Log10(vmax))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	ly := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, dlo))
		return y0 + h - h*(math.Log10(v)-dlo)/(dhi-dlo)
	}
	text(&b, x1, y0-14, "start", 13, "bold", "root /simple/, milliseconds (log)")
	for d := dlo; d <= dhi; d++ {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x1, ly(math.Pow(10, d)), x1+w, ly(math.Pow(10, d)), colGrid)
		text(&b, x1-6, ly(math.Pow(10, d))+4, "end", 11, "", fmt.Sprintf("%g", math.Pow(10, d)))
	}
	xTicks(&b, ps, func(p float64) float64 { return lx(x1, w, p) }, y0+h)
	for i, s := range abs {
		var pts []string
		for j, p := range ps {
			if s.vals[j] > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(x1, w, float64(p.projects)), ly(s.vals[j])))
			}
		}
		polyline(&b, pts, seriesColours[i+3])
		legend(&b, x1+10, y0+h+40+float64(i)*16, seriesColours[i+3], s.name)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func xTicks(b *strings.Builder, ps []growthPoint, x func(float64) float64, yAxis float64) {
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x(float64(ps[0].projects)), yAxis, x(float64(ps[len(ps)-1].projects)), yAxis, colAxis)
	for _, p := range ps {
		text(b, x(float64(p.projects)), yAxis+16, "middle", 11, "", thousands(float64(p.projects)))
	}
}

func polyline(b *strings.Builder, pts []string, col string) {
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
	for _, p := range pts {
		xy := strings.SplitN(p, ",", 2)
		fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], col)
	}
}

func legend(b *strings.Builder, x, y float64, col, name string) {
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="4" fill="%s"/>`+"\n", x, y-6, col)
	text(b, x+18, y, "start", 12, "", name)
}

func svgOpen(b *strings.Builder, w, h float64) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
}

func text(b *strings.Builder, x, y float64, anchor string, size int, weight, s string) {
	fw := ""
	if weight != "" {
		fw = ` font-weight="` + weight + `"`
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d"%s fill="#222">%s</text>`+"\n", x, y, anchor, size, fw, html.EscapeString(s))
}
