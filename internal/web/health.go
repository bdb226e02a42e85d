package web

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// healthz is the liveness check: 200 while the process serves HTTP at
// all. It looks at nothing else, so that an orchestrator restarts an
// instance that hangs, not every instance when the shared database has a
// bad minute (that is /readyz).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
	return nil
}

// readyz is the readiness check a load balancer sends traffic by: 200 when
// the database and the file store answer and the database's migrations
// are those this binary expects; 503 with the reason otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			return derrors.New(derrors.Unavailable, "Not ready: %v", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
	return nil
}
