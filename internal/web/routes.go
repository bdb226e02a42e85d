package web

import "net/http"

// routes registers Gatehouse's entire HTTP surface.
//
// Tool routes (Simple API, JSON API, files, upload) carry no cookies and need
// no CSRF defence; browser pages get the page middleware (security headers).
// Every handler returns an error, which errors.go turns into a response.
func (s *Server) routes(mux *http.ServeMux) {
	tool := func(h handlerFunc) http.Handler { return s.recoverer(s.logRequests(s.toolErrors(h))) }
	page := func(h handlerFunc) http.Handler {
		return s.recoverer(s.logRequests(s.securityHeaders(s.pageErrors(h))))
	}

	// Simple Repository API (PEP 503, 691, 658, 700, 714).
	mux.Handle("GET /simple/{$}", tool(s.simpleIndex))
	mux.Handle("GET /simple/{project}/{$}", tool(s.simpleDetail))
	mux.Handle("GET /simple/{project}", tool(s.simpleRedirect))

	// Files and their PEP 658 metadata, addressed by blake2b-256 digest.
	mux.Handle("GET /packages/{a}/{b}/{digest}/{filename}", tool(s.serveFile))

	// JSON API.
	mux.Handle("GET /pypi/{project}/json", tool(s.jsonProject))
	mux.Handle("GET /pypi/{project}/{version}/json", tool(s.jsonRelease))

	// Legacy upload API, as twine, uv, poetry and flit speak it.
	mux.Handle("POST /legacy/{$}", s.recoverer(s.logRequests(http.HandlerFunc(s.upload))))
	mux.Handle("POST /legacy", http.RedirectHandler("/legacy/", http.StatusPermanentRedirect))

	// Browser pages.
	mux.Handle("GET /{$}", page(s.homePage))
	mux.Handle("GET /project/{project}/{$}", page(s.projectPage))
	mux.Handle("GET /project/{project}/{version}/{$}", page(s.projectPage))
	mux.Handle("GET /help/{$}", page(s.helpPage))
	mux.Handle("GET /static/{file}", tool(s.serveStatic))

	mux.Handle("GET /healthz", tool(s.healthz))
	mux.Handle("/", page(s.notFound))
}
