package web

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzNegotiate checks that any Accept header yields one of the three Simple
// API media types (never a 406, never a panic), and the same one as
// negotiateSplit, the straightforward version negotiate replaced to stop
// allocating on every request.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/html", "application/vnd.pypi.simple.v1+json",
		"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
		"text/html;q=0", "application/json;q=abc", ";;;,,,q=", "TEXT/HTML; Q=0.5",
		"*/*;q=0.5, text/html;q=0.5", "application/*;q=NaN, text/*;q=1e9", "text/html;q=0.2;q=0.9, application/vnd.pypi.simple.v1+json;q=0.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		switch got := negotiate(accept); got {
		case mediaJSON, mediaHTMLv1, mediaHTMLLegacy:
		default:
			t.Fatalf("negotiate(%q) = %q, not a Simple API type", accept, got)
		}
		if got, want := negotiate(accept), negotiateSplit(accept); got != want {
			t.Fatalf("negotiate(%q) = %q, negotiateSplit says %q", accept, got, want)
		}
	})
}

// negotiateSplit is negotiate as it was written first, splitting the header
// into slices: the oracle for FuzzNegotiate.
func negotiateSplit(accept string) string {
	if accept == "" {
		return mediaHTMLLegacy
	}
	best, bestQ, bestRank := mediaHTMLLegacy, -1.0, 0
	rank := func(mt string) int {
		switch mt {
		case mediaJSON:
			return 3
		case mediaHTMLv1:
			return 2
		}
		return 1
	}
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		var candidates []string
		switch mt {
		case mediaJSON, mediaHTMLv1, mediaHTMLLegacy:
			candidates = []string{mt}
		case "*/*", "application/*":
			candidates = []string{mediaJSON}
			if mt == "*/*" {
				candidates = append(candidates, mediaHTMLLegacy)
			}
		case "text/*":
			candidates = []string{mediaHTMLLegacy}
		}
		for _, c := range candidates {
			if q <= 0 {
				continue
			}
			if q > bestQ || (q == bestQ && rank(c) > bestRank) {
				best, bestQ, bestRank = c, q, rank(c)
			}
		}
	}
	if strings.TrimSpace(accept) == "*/*" {
		return mediaHTMLLegacy
	}
	return best
}
