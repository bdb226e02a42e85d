package web

// Read protection (--read-access authenticated): the Simple API, the JSON
// API, the files and the browse pages need a signed-in browser or an API
// token. Tools send the token as HTTP Basic auth (username __token__),
// which is what pip does with https://__token__:<token>@host/simple/, with
// .netrc or keyring, and what uv sends for UV_INDEX_<NAME>_USERNAME and
// _PASSWORD; a request without one gets 401 with WWW-Authenticate: Basic,
// so pip asks. Read tokens (token.CreateReadOnly) read and never upload;
// upload tokens read too. A token limited to projects reads those only:
// any other project, existing or not, answers the same 404.
//
// With --read-access public (the default) the wrappers are not installed at
// all (routes.go registers the handlers themselves), so the public hot path
// is exactly what it was.

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// The --read-access settings.
const (
	ReadPublic        = "public"
	ReadAuthenticated = "authenticated"
)

// reader is who reads under --read-access authenticated: a token (which
// may be limited to projects), or a signed-in browser (everything).
type reader struct {
	tok *token.Verified // nil: a signed-in browser
}

type readerKey struct{}

func readerOf(ctx context.Context) *reader {
	rd, _ := ctx.Value(readerKey{}).(*reader)
	return rd
}

// errReadAuth marks a tool request without usable credentials; readTool
// answers it with the 401 challenge.
var errReadAuth = errors.New("no read credentials")

// readAuthMessage is the body of that 401.
const readAuthMessage = "Authentication required: this index is private. Give pip or uv an API token as the password for the username __token__, e.g. https://__token__:<token>@host/simple/ or a .netrc entry.\n"

// readTool is the guard of the tool routes that read (Simple, JSON, files)
// when reading needs authentication.
func (s *Server) readTool(h handlerFunc) handlerFunc {
	if s.readAccess != ReadAuthenticated {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		rd, err := s.authenticateReader(r)
		if errors.Is(err, errReadAuth) {
			// 401 with a Basic challenge, so pip asks for credentials and
			// keyring and .netrc are consulted.
			h := w.Header()
			h.Set("WWW-Authenticate", `Basic realm="Gatehouse"`)
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, readAuthMessage)
			return nil
		}
		if err != nil {
			return err
		}
		// Responses to authenticated requests are for this reader only:
		// no shared cache may keep them.
		w.Header().Set("Cache-Control", "private, no-cache")
		return h(&privateCache{ResponseWriter: w}, r.WithContext(context.WithValue(r.Context(), readerKey{}, rd)))
	}
}

// authenticateReader finds the reader of a tool request: a token in the
// Authorization header, or a browser's session cookie. Any failure is the
// one 401, whatever the reason, so a refusal says nothing about a token.
func (s *Server) authenticateReader(r *http.Request) (*reader, error) {
	raw, ok, err := token.FromRequest(r)
	if ok && err == nil {
		v, err := s.tokens.Authenticate(r.Context(), raw)
		if err != nil || v.IsPublisher() {
			return nil, errReadAuth
		}
		return &reader{tok: v}, nil
	}
	if c, err := r.Cookie(s.cookieName()); err == nil {
		if sess, err := s.sessions.Load(r.Context(), c.Value); err == nil {
			if _, ok, err := s.signin.Current(r.Context(), sess); err == nil && ok {
				return &reader{}, nil
			}
		}
	}
	return nil, errReadAuth
}

// mayRead reports whether the request's reader may read the project (by
// name, or by id when only that is known). A caller answers false with
// what a project that does not exist gets, byte for byte. With public
// reading it costs a context lookup and allocates nothing.
func (s *Server) mayRead(r *http.Request, normalizedName string, projectID int64) (bool, error) {
	rd := readerOf(r.Context())
	if rd == nil || rd.tok == nil || rd.tok.CanCreateProjects() {
		return true, nil // public, a browser, or a token not limited to projects
	}
	var p *project.Project
	var err error
	if normalizedName != "" {
		p, err = s.projects.Get(r.Context(), normalizedName)
	} else {
		p, err = s.projects.ByID(r.Context(), projectID)
	}
	if errors.Is(err, derrors.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return rd.tok.PermitsProject(p.NormalizedName, p.ID) == nil, nil
}

// mayReadAll is for pages that list every project (the root index): a
// token limited to projects may not read them.
func (s *Server) mayReadAll(r *http.Request, notFound error) error {
	rd := readerOf(r.Context())
	if rd != nil && rd.tok != nil && !rd.tok.CanCreateProjects() {
		return notFound
	}
	return nil
}

// readPage is the guard of the browse pages (home, project pages,
// organization profiles) when reading needs authentication: anyone not
// signed in is sent to log in and come back.
func (s *Server) readPage(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.readAccess == ReadAuthenticated && stateOf(r).user == nil {
			http.Redirect(w, r, loginURL(r), http.StatusSeeOther)
			return nil
		}
		return h(w, r)
	}
}

// privateCache turns the handlers' "public" caching into "private" as
// their headers are written: a shared cache must not keep a page that
// needed credentials. It keeps ReadFrom, so file bodies still go out with
// sendfile.
type privateCache struct {
	http.ResponseWriter
	done bool
}

func (p *privateCache) fix() {
	if p.done {
		return
	}
	p.done = true
	h := p.Header()
	switch h.Get("Cache-Control") {
	case "", "no-store":
	default:
		h.Set("Cache-Control", "private, no-cache")
	}
}

func (p *privateCache) WriteHeader(code int) { p.fix(); p.ResponseWriter.WriteHeader(code) }

func (p *privateCache) Write(b []byte) (int, error) { p.fix(); return p.ResponseWriter.Write(b) }

func (p *privateCache) ReadFrom(src io.Reader) (int64, error) {
	p.fix()
	if rf, ok := p.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(p.ResponseWriter, src)
}

func (p *privateCache) Unwrap() http.ResponseWriter { return p.ResponseWriter }
