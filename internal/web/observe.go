package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
)

// observe is the outermost layer of every request: it gives the request
// its id (the X-Request-Id response header, and request_id in the log),
// and after the mux has run the route, counts it under its route pattern
// and logs it.
//
// It runs on the Simple API's hot path, which allocates nothing of its
// own (hotpath_test.go): the id comes from a batch made ahead, the status
// recorder from a pool, and the route's counters were resolved when the
// route was registered. Without metrics, and when the request's log line
// is below the log level, no recorder is used at all.
func (s *Server) observe(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()[requestIDHeader] = s.requestID(r)
		level := slog.LevelDebug
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			level = slog.LevelInfo
		}
		logged := s.log.Enabled(r.Context(), level)
		if s.metrics == nil && !logged {
			mux.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := recorders.Get().(*statusRecorder)
		*rec = statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		took := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK // a handler that wrote nothing
		}
		s.metrics.RouteFor(r.Pattern).Observe(status, took)
		if logged {
			s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", status,
				"bytes", rec.bytes, "took", took.Round(time.Microsecond), "request_id", requestIDOf(w))
		}
		*rec = statusRecorder{}
		recorders.Put(rec)
	})
}

// recorders are reused: one per request would be the hot path's only
// allocation. A recorder is not used once its request's handler returned.
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

// routeRecorder registers routes on the mux and, with metrics on, resolves
// each route pattern's series as it is registered.
type routeRecorder struct {
	mux     *http.ServeMux
	metrics *metrics.Metrics
}

func (rr routeRecorder) Handle(pattern string, h http.Handler) {
	rr.metrics.Route(pattern)
	rr.mux.Handle(pattern, h)
}

// requestIDHeader carries a request's id in the response, and in a request
// from a trusted proxy that made one (nginx's $request_id, Caddy's
// {http.request.uuid}), so that one id follows a request through both logs.
const requestIDHeader = "X-Request-Id"

// requestID is the id of r, as the header's value: the trusted proxy's, or
// a new one.
func (s *Server) requestID(r *http.Request) []string {
	if len(s.proxyPrefixes) > 0 {
		if v := r.Header[requestIDHeader]; len(v) == 1 && goodRequestID(v[0]) && s.fromProxy(r.RemoteAddr) {
			return v[:1:1] // capacity 1: an Add on the response cannot write into the request's header
		}
	}
	return s.ids.next()
}

// fromProxy reports whether addr (host:port) is a trusted proxy. netip
// parses without allocating.
func (s *Server) fromProxy(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.proxyPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// goodRequestID accepts a proxy's id of up to 64 letters, digits, '-', '_'
// and '.': enough for UUIDs and nginx's hex ids, and nothing that could
// pass for something else in a log line.
func goodRequestID(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// requestIDOf is the id observe gave the request being answered on w.
func requestIDOf(w http.ResponseWriter) string {
	if v := w.Header()[requestIDHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestIDs hands out request ids: a random prefix drawn once per
// process, so that instances behind one load balancer do not repeat each
// other, and a sequence number. They are made idBatch at a time into one
// string and one array of header values, so that each request's id costs
// no allocation of its own.
type requestIDs struct {
	mu     sync.Mutex
	prefix string // 12 hex digits
	seq    uint64
	batch  *idBatchVals
	used   int
}

const (
	idBatch  = 256
	idSeqLen = 8 // hex digits of the sequence number in an id
)

type idBatchVals [idBatch][1]string

// newRequestIDs draws the prefix from random.
func newRequestIDs(random func([]byte) (int, error)) (*requestIDs, error) {
	b := make([]byte, 6)
	if _, err := random(b); err != nil {
		return nil, err
	}
	const hexDigits = "0123456789abcdef"
	p := make([]byte, 0, 12)
	for _, c := range b {
		p = append(p, hexDigits[c>>4], hexDigits[c&15])
	}
	return &requestIDs{prefix: string(p), used: idBatch}, nil
}

// next returns a new id as a header value ([]string of one).
func (g *requestIDs) next() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used == idBatch {
		g.fill()
	}
	v := g.batch[g.used][:]
	g.used++
	return v
}

// fill makes the next batch: one string holding idBatch ids, sliced.
func (g *requestIDs) fill() {
	const hexDigits = "0123456789abcdef"
	n := len(g.prefix) + idSeqLen
	buf := make([]byte, 0, n*idBatch)
	for range idBatch {
		buf = append(buf, g.prefix...)
		for i := idSeqLen - 1; i >= 0; i-- {
			buf = append(buf, hexDigits[(g.seq>>(4*i))&15])
		}
		g.seq++
	}
	all := string(buf)
	g.batch = new(idBatchVals)
	for i := range g.batch {
		g.batch[i][0] = all[i*n : (i+1)*n]
	}
	g.used = 0
}

// loginOutcome is how a sign-in step's error counts in the metrics.
func loginOutcome(err error) metrics.LoginOutcome {
	switch {
	case err == nil:
		return metrics.LoginOK
	case errors.Is(err, derrors.RateLimited):
		return metrics.LoginLimited
	case statusOf(err) >= 500:
		return metrics.LoginError
	}
	return metrics.LoginRefused
}

// SetReadDeadline is net/http's own writer's method, passed through so
// that liftReadDeadline, on every GET, finds it without a
// ResponseController behind the recorder.
func (w *statusRecorder) SetReadDeadline(t time.Time) error {
	if d, ok := w.ResponseWriter.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return http.NewResponseController(w.ResponseWriter).SetReadDeadline(t)
}
