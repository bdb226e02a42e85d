package web

import "testing"

// FuzzNegotiate checks that any Accept header yields one of the three Simple
// API media types (never a 406, never a panic).
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/html", "application/vnd.pypi.simple.v1+json",
		"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
		"text/html;q=0", "application/json;q=abc", ";;;,,,q=", "TEXT/HTML; Q=0.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		switch got := negotiate(accept); got {
		case mediaJSON, mediaHTMLv1, mediaHTMLLegacy:
		default:
			t.Fatalf("negotiate(%q) = %q, not a Simple API type", accept, got)
		}
	})
}
