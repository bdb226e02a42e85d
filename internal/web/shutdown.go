package web

import (
	"context"
	"sync"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// On SIGTERM, serve stops accepting connections and gives requests in
// flight --shutdown-grace to finish. An upload still being received when
// the grace ends is not simply cut (the client would see a reset and could
// not tell whether the file was taken): StopUploads stops reading it, and
// it is answered 503 with the reason before the connection closes. Nothing
// of it was stored: its spooled file is removed like any refused upload's,
// and an upload already past its body finishes normally.

var errShutdown = derrors.New(derrors.Unavailable,
	"The server is shutting down, so it stopped receiving this upload; nothing was stored. Upload it again in a moment.")

// uploadSet is the uploads in flight.
type uploadSet struct {
	mu       sync.Mutex
	active   map[*minRateReader]struct{}
	stopping bool
	idle     chan struct{} // closed when stopping and none is left
}

// add registers an upload; false once the server is stopping uploads.
func (u *uploadSet) add(m *minRateReader) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stopping {
		return false
	}
	if u.active == nil {
		u.active = map[*minRateReader]struct{}{}
	}
	u.active[m] = struct{}{}
	return true
}

func (u *uploadSet) remove(m *minRateReader) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.active, m)
	if u.stopping && len(u.active) == 0 && u.idle != nil {
		close(u.idle)
		u.idle = nil
	}
}

// StopUploads stops reading every upload in flight, so that each is
// answered 503 at once, refuses new ones, and waits until all have been
// answered or ctx ends. Call it when the shutdown grace is over.
func (s *Server) StopUploads(ctx context.Context) {
	u := &s.uploads
	u.mu.Lock()
	u.stopping = true
	if len(u.active) == 0 {
		u.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	u.idle = idle
	for m := range u.active {
		m.stop()
	}
	u.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}
