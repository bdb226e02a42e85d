// Package web is all of Gatehouse's HTTP: the tool-facing APIs that pip,
// uv and twine speak (Simple API, JSON API, file downloads, legacy upload)
// and the browser pages. Every route is registered in routes.go.
package web

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// Deps is what the web layer needs; cmd/gatehouse builds it.
type Deps struct {
	Projects *project.Service
	Tokens   *token.Service
	Log      *slog.Logger
	BaseURL  string // public URL without trailing slash; links are built only from it
	SiteName string
	TempDir  string           // where uploads are spooled
	Now      func() time.Time // default time.Now
}

// Server serves Gatehouse over HTTP. Create it with NewServer.
type Server struct {
	projects  *project.Service
	tokens    *token.Service
	log       *slog.Logger
	baseURL   string
	siteName  string
	tempDir   string
	now       func() time.Time
	simple    *simpleCache
	templates map[string]*template.Template
	static    staticFiles
	mux       *http.ServeMux
}

// NewServer builds the server and its routes.
func NewServer(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{
		projects: d.Projects,
		tokens:   d.Tokens,
		log:      d.Log,
		baseURL:  d.BaseURL,
		siteName: d.SiteName,
		tempDir:  d.TempDir,
		now:      d.Now,
		simple:   newSimpleCache(),
	}
	var err error
	if s.templates, err = parseTemplates(); err != nil {
		return nil, err
	}
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.routes(s.mux)
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// WatchChanges keeps the Simple API cache in step with changes made by other
// instances sharing the database, polling the journal every interval until
// ctx ends. Changes made by this instance invalidate the cache at once.
func (s *Server) WatchChanges(ctx context.Context, interval time.Duration) {
	s.simple.watch(ctx, s.projects, interval, s.log)
}
