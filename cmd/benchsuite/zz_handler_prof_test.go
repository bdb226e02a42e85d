//go:build benchprof

package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/token"
	"github.com/gatehouse-index/gatehouse/internal/web"
)

// discardRW is a ResponseWriter that keeps nothing, closer to the real
// writer than a recorder.
type discardRW struct{ h http.Header }

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardRW) WriteHeader(int)             {}

func BenchmarkHandler(b *testing.B) {
	dir := os.Getenv("DATA")
	ctx := context.Background()
	d, err := db.Open(ctx, "sqlite:"+dir+"/gatehouse.db")
	if err != nil {
		b.Fatal(err)
	}
	blobs, _ := blob.NewFS(dir + "/files")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tok, err := token.NewService(d, token.Options{Secret: make([]byte, 32), Location: "x", HelpURL: "http://x/help/"})
	if err != nil {
		b.Fatal(err)
	}
	s, err := web.NewServer(web.Deps{Projects: project.NewService(d, blobs, project.Options{Log: log}), Tokens: tok, Log: log, BaseURL: "http://x"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/simple/bench-small/", nil)
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	etag := rec.Header().Get("ETag")
	for _, c := range []struct{ name, inm string }{{"200", ""}, {"304", etag}} {
		b.Run(c.name, func(b *testing.B) {
			r := req.Clone(ctx)
			if c.inm != "" {
				r.Header.Set("If-None-Match", c.inm)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.ServeHTTP(&discardRW{h: http.Header{}}, r)
			}
		})
	}
}
