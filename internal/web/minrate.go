package web

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Defaults of --upload-min-rate and --upload-rate-window, used when Deps
// leaves them zero.
const (
	defaultUploadMinRate    = 8 << 10 // bytes per second: 64 kbit/s
	defaultUploadRateWindow = time.Minute
)

// errTooSlow is what a minRateReader returns, for good, once the client fell
// below the minimum rate.
var errTooSlow = errors.New("upload body arrived below the minimum transfer rate")

// minRateReader holds an upload body to a minimum average transfer rate, so
// that a client trickling a large body cannot hold a connection (and a
// handler, and a spooled temp file) for as long as it likes. An upload has
// no fixed deadline, since a large file on a slow link legitimately takes
// minutes; instead the connection's read deadline moves as bytes arrive:
//
//   - it starts one window ahead;
//   - every n bytes read push it n/rate further;
//   - it is never more than one window ahead, so no credit is banked for
//     later.
//
// A client that sends nothing for a window is cut off; one that averages
// r < rate is cut off after about window/(1-r/rate); one at or above the
// rate never is. The kernel enforces the deadline on the blocked read, so
// time the server itself spends between reads (writing the spool file) is
// never held against the client.
//
// When the body has been read to its end the deadline is lifted: the
// handler's own work after that is not the client's to hurry.
type minRateReader struct {
	body        io.ReadCloser
	rate        float64 // bytes per second
	window      time.Duration
	now         func() time.Time
	setDeadline func(time.Time) error
	deadline    time.Time
	err         error       // errTooSlow (or errShuttingDown) once tripped
	stopping    atomic.Bool // set by stop, from another goroutine
	read        int64       // bytes of the body read so far (the upload metrics)
}

func newMinRateReader(body io.ReadCloser, rate int64, window time.Duration, now func() time.Time, setDeadline func(time.Time) error) *minRateReader {
	m := &minRateReader{body: body, rate: float64(rate), window: window, now: now, setDeadline: setDeadline}
	m.deadline = now().Add(window)
	// An error means the connection cannot take deadlines (not net/http's
	// HTTP/1 or HTTP/2 server); the upload then runs unguarded, as before.
	m.setDeadline(m.deadline)
	return m
}

// holdToMinRate wraps an upload body in the server's minimum-rate rule.
// Deadlines are wall-clock times that the kernel checks, so the wall clock
// is used here, not the server's injectable domain clock.
func (s *Server) holdToMinRate(w http.ResponseWriter, body io.ReadCloser) *minRateReader {
	rc := http.NewResponseController(w)
	return newMinRateReader(body, s.uploadMinRate, s.uploadRateWindow, time.Now, rc.SetReadDeadline)
}

func (m *minRateReader) Read(p []byte) (int, error) {
	if m.err == nil && m.stopping.Load() {
		m.err = errShuttingDown
	}
	if m.err != nil {
		return 0, m.err
	}
	n, err := m.body.Read(p)
	m.read += int64(n)
	if n > 0 {
		now := m.now()
		next := m.deadline
		if next.Before(now) {
			// The server was busy between reads and the bytes waited
			// in the socket: that is not the client's delay.
			next = now
		}
		next = next.Add(time.Duration(float64(n) / m.rate * float64(time.Second)))
		if limit := now.Add(m.window); next.After(limit) {
			next = limit
		}
		if !next.Equal(m.deadline) && !m.stopping.Load() {
			m.deadline = next
			m.setDeadline(next)
		}
	}
	switch {
	case err == io.EOF:
		m.setDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded) && m.stopping.Load():
		m.err = errShuttingDown
		return n, m.err
	case errors.Is(err, os.ErrDeadlineExceeded):
		m.err = errTooSlow
		return n, m.err
	}
	return n, err
}

// errShuttingDown is what a minRateReader returns once the server, shutting
// down, has stopped reading uploads.
var errShuttingDown = errors.New("the server is shutting down and stopped reading the upload")

// stop makes the upload's blocked or next read fail at once (the server is
// shutting down). Safe to call from another goroutine.
func (m *minRateReader) stop() {
	m.stopping.Store(true)
	m.setDeadline(time.Now())
}

// stopped reports whether the upload was cut off by stop.
func (m *minRateReader) stopped() bool { return m.err == errShuttingDown }

func (m *minRateReader) Close() error { return m.body.Close() }

// tooSlow reports whether the client was cut off for sending too slowly.
func (m *minRateReader) tooSlow() bool { return m.err == errTooSlow }

// humanDuration writes a window as a person reads it: "200ms", "2 seconds".
func humanDuration(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " seconds"
}
