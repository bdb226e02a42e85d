package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// writeSoakSVG draws RSS (left axis) and p99 latency (right axis) over the
// soak as a small standalone SVG.
func writeSoakSVG(path string, samples []soakSample, dur time.Duration) error {
	const (
		w, h             = 640.0, 300.0
		left, right      = 60.0, 60.0
		top, bottom      = 30.0, 40.0
		plotW, plotH     = w - left - right, h - top - bottom
		rssColor, pColor = "#1f77b4", "#d62728"
	)
	maxT := samples[len(samples)-1].at.Seconds()
	var maxRSS, maxP float64
	for _, s := range samples {
		maxRSS = math.Max(maxRSS, s.rssMiB)
		maxP = math.Max(maxP, ms(s.p99))
	}
	maxRSS = niceCeil(maxRSS * 1.1)
	maxP = niceCeil(maxP * 1.1)
	x := func(t float64) float64 { return left + plotW*t/math.Max(maxT, 1) }
	yR := func(v float64) float64 { return top + plotH*(1-v/maxRSS) }
	yP := func(v float64) float64 { return top + plotH*(1-v/maxP) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="13">Gatehouse soak (%s): RSS and p99 latency</text>`+"\n", left, dur)
	// Grid and axes.
	for i := 0; i <= 4; i++ {
		fy := top + plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, fy, left+plotW, fy)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", left-5, fy+4, rssColor, trimFloat(maxRSS*(1-float64(i)/4)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", left+plotW+5, fy+4, pColor, trimFloat(maxP*(1-float64(i)/4)))
	}
	for i := 0; i <= 4; i++ {
		t := maxT * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(t), top+plotH+15, (time.Duration(t) * time.Second).String())
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="15" y="%.1f" fill="%s" transform="rotate(-90 15 %.1f)" text-anchor="middle">RSS (MiB)</text>`+"\n", top+plotH/2, rssColor, top+plotH/2)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" transform="rotate(90 %.1f %.1f)" text-anchor="middle">p99 (ms)</text>`+"\n", w-15, top+plotH/2, pColor, w-15, top+plotH/2)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">time since the load started</text>`+"\n", left+plotW/2, h-8)
	line := func(color string, y func(soakSample) float64) {
		var pts []string
		for _, s := range samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.at.Seconds()), y(s)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
	}
	line(rssColor, func(s soakSample) float64 { return yR(s.rssMiB) })
	line(pColor, func(s soakSample) float64 { return yP(ms(s.p99)) })
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
