package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// handlerFunc is the shape of every handler: it writes a response, or
// returns an error that the route's adapter turns into one.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// statusOf maps an error kind to an HTTP status. This is the only place that
// does so.
func statusOf(err error) int {
	switch {
	case errors.Is(err, derrors.NotFound):
		return http.StatusNotFound
	case errors.Is(err, derrors.Invalid):
		return http.StatusBadRequest
	case errors.Is(err, derrors.Conflict):
		return http.StatusConflict
	case errors.Is(err, derrors.Unauthenticated), errors.Is(err, derrors.Forbidden):
		return http.StatusForbidden
	case errors.Is(err, derrors.TooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, derrors.Unsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, derrors.TooSlow):
		return http.StatusRequestTimeout
	case errors.Is(err, derrors.RateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, derrors.Gone):
		return http.StatusGone
	case errors.Is(err, derrors.Unavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, derrors.NoSpace):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// publicMessage returns the text a client may see for err. Internal errors
// are logged in full and shown only as a generic sentence. A deliberate
// 503 (read-only mode, a health check) is not internal: its message is
// meant for the client.
func (s *Server) publicMessage(w http.ResponseWriter, r *http.Request, err error, status int) string {
	if msg, ok := derrors.Message(err); ok && (status < 500 || status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage) {
		return msg
	}
	s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err, "request_id", requestIDOf(w))
	return "Internal server error. The problem has been logged; please try again later."
}

// toolErrors adapts a handler for tool-facing routes: errors become plain
// text (JSON API errors become {"message": …}, as on PyPI).
func (s *Server) toolErrors(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status := statusOf(err)
		msg := s.publicMessage(w, r, err, status)
		if strings.HasPrefix(r.URL.Path, "/pypi/") {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.WriteHeader(status)
			if status == http.StatusNotFound {
				msg = "Not Found"
			}
			b, _ := json.Marshal(map[string]string{"message": msg})
			w.Write(append(b, '\n'))
			return
		}
		http.Error(w, msg, status)
	})
}

// writeUploadError answers an upload with Warehouse's error format: the
// message is the HTTP reason phrase ("400 File already exists …"), which is
// what twine, uv and poetry print. net/http cannot set a reason phrase, so on
// HTTP/1.x the connection is hijacked and the response written by hand; on
// HTTP/2 (no status line at all) the message goes in the body only.
//
// A client that is still sending (an oversize file refused mid-stream) would
// get a TCP reset instead of the answer if the socket were closed under it,
// so the rest of its body is read and thrown away first, up to drainLimit.
func (s *Server) writeUploadError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := s.publicMessage(w, r, err, status)
	if status >= 500 {
		s.log.Warn("upload failed", "status", status, "request_id", requestIDOf(w))
	} else {
		s.log.Info("upload refused", "status", status, "reason", msg, "request_id", requestIDOf(w))
	}
	body := fmt.Sprintf("<html><head><title>%d %s</title></head><body><h1>%d %s</h1>%s</body></html>\n",
		status, http.StatusText(status), status, http.StatusText(status), htmlEscape(msg))
	hj, ok := w.(http.Hijacker)
	if !ok || r.ProtoMajor != 1 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
		return
	}
	drainBody(r.Body, drainLimit)
	if rec, ok := w.(*statusRecorder); ok && rec.status == 0 {
		// The hand-written answer bypasses WriteHeader; let the request
		// log show the status that was sent, not 0.
		rec.status = status
	}
	conn, buf, herr := hj.Hijack()
	if herr != nil {
		w.WriteHeader(status)
		io.WriteString(w, body)
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
		status, reasonPhrase(msg), len(body), requestIDOf(w), body)
	buf.Flush()
	lingerClose(conn, buf)
}

// drainLimit bounds how much of a refused upload is read and discarded so
// that the client sees the answer.
const drainLimit = 2 << 30

func drainBody(body io.Reader, limit int64) {
	io.Copy(io.Discard, io.LimitReader(body, limit))
}

// lingerClose half-closes the connection and waits briefly for the client to
// finish, so the answer is not lost to a reset.
func lingerClose(conn net.Conn, buf *bufio.ReadWriter) {
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, io.LimitReader(buf, 1<<20))
}

// reasonPhrase makes msg safe for a status line: one line, ISO-8859-1
// printable (non-Latin-1 runes replaced, as Warehouse does).
func reasonPhrase(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == '\r' || r == '\n' || r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteByte('?')
		case r > 0xff:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	// Go's client and Python's http.client both accept Latin-1 here, but the
	// header block itself must be bytes; encode runes 0x80–0xff as Latin-1.
	out := []byte{}
	for _, r := range b.String() {
		out = append(out, byte(r))
	}
	return string(out)
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

// recoverer turns a panic into a logged 500 instead of a dropped connection.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "request_id", requestIDOf(w))
				http.Error(w, "Internal server error.", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile working for file downloads behind the recorder.
func (w *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (hijack, flush).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// userMessage returns the message of an error a person caused and can fix
// (any kind below 500), for showing inside a form. ok=false means the error
// is internal and must go to the error adapter instead.
func userMessage(err error) (string, bool) {
	if statusOf(err) >= 500 {
		return "", false
	}
	return derrors.Message(err)
}

// setRetryAfter adds Retry-After when err is a tripped rate limit. Like the
// message, the wait comes from the error's derrors.Error.
func (s *Server) setRetryAfter(w http.ResponseWriter, err error) {
	if wait, ok := derrors.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
	}
}
