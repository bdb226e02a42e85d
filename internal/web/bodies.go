package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// maxPageBody caps the body of every browser page request. The largest form
// a page sends (a WebAuthn credential with its attestation, a registration)
// is a few KiB; anything near this is not a person filling in a form.
const maxPageBody = 256 << 10

// pageBody reads the body of a page request before its handler runs, so
// that no handler ever reads a body itself:
//
//   - multipart bodies are refused: no page form is multipart, and Go's
//     multipart parser would spool file parts to the temp directory;
//   - the body is capped at maxPageBody with http.MaxBytesReader, and a
//     larger one is answered 413 (at once when Content-Length says so);
//   - a urlencoded form is parsed here (the handlers' PostFormValue calls
//     then find it parsed), anything else is read and discarded;
//   - a body that does not arrive within --read-timeout is answered 408.
//
// Once the whole body is in, the read deadline that http.Server.ReadTimeout
// set is lifted: ReadTimeout bounds reading the request, and left in place it
// would also cancel the request's context in the middle of a slow handler
// (net/http cancels it when the connection's background read times out).
//
// It sits inside withSession, so it and the handler see the same *Request:
// should a handler ever parse a multipart form anyway, it is removed here.
// (net/http removes only the form of the request it created, and
// withSession hands on a copy.)
func (s *Server) pageBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.readPageBody(w, r); err != nil {
			s.pageErrors(func(http.ResponseWriter, *http.Request) error { return err }).ServeHTTP(w, r)
			return
		}
		defer removeMultipartForm(r)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) readPageBody(w http.ResponseWriter, r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		liftReadDeadline(w)
		return nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		return derrors.New(derrors.Unsupported, "This page does not take file uploads (multipart/form-data), so nothing was done. "+
			"Send the form as a browser does (application/x-www-form-urlencoded). To upload a package, use twine with %s/legacy/.", s.baseURL)
	}
	tooLarge := derrors.New(derrors.TooLarge, "The form you sent is larger than %d KiB, the most a page accepts, so nothing was done. "+
		"Go back, shorten what you entered and send it again. To upload a package, use twine with %s/legacy/.", maxPageBody>>10, s.baseURL)
	if r.ContentLength > maxPageBody {
		return tooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPageBody)
	var err error
	if mt == "application/x-www-form-urlencoded" && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
		err = r.ParseForm()
	} else {
		// No page reads any other body; reading it here keeps the cap
		// and the deadline in force for it too.
		_, err = io.Copy(io.Discard, r.Body)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return derrors.New(derrors.TooSlow, "The form took too long to arrive, so nothing was done. Check your connection and send it again.")
	case err != nil:
		return derrors.New(derrors.Invalid, "The form could not be read (%s). Reload the page and send it again.", cleanErr(err))
	}
	liftReadDeadline(w)
	return nil
}

// liftReadDeadline clears the connection's read deadline once a request's
// body has been read to its end (or it had none). Only then: a body still
// unread would be read by net/http after the handler, with no deadline.
func liftReadDeadline(w http.ResponseWriter) {
	// net/http's own ResponseWriter has the method; asking it directly
	// spares every GET a ResponseController. Wrapped writers go through
	// the controller, which unwraps them. ErrNotSupported (a
	// ResponseWriter that is not net/http's) leaves the deadline as it
	// was, which is safe.
	if d, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(time.Time{})
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// noBody lifts the read deadline of a tool request without a body (every
// GET) before its handler runs: a large download to a slow client takes
// longer than --read-timeout, and the deadline would cancel its context.
// A request with a body keeps the deadline; no tool route reads bodies, and
// net/http reads and discards the rest under it.
func noBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			liftReadDeadline(w)
		}
		h.ServeHTTP(w, r)
	})
}

func removeMultipartForm(r *http.Request) {
	if r.MultipartForm != nil {
		r.MultipartForm.RemoveAll()
	}
}
