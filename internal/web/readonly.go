package web

import (
	"net/http"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// readOnlyGuard refuses changes while an administrator has put the site in
// read-only mode (for maintenance or during an incident). Signing in and out
// and the admin switch itself keep working, so the mode can be turned off.
func (s *Server) readOnlyGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !readOnlyExempt(r.URL.Path) && s.accounts.ReadOnly(r.Context()) {
			s.pageErrors(func(w http.ResponseWriter, r *http.Request) error {
				return derrors.New(derrors.Unavailable, "Read-only mode: changes are temporarily disabled. Try again later.")
			}).ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func readOnlyExempt(path string) bool {
	switch path {
	case "/account/login/", "/account/logout/", "/account/reauthenticate/",
		// The second step of a login, a passkey sign-in and sudo mode with a
		// key: without them nobody with a second factor (every
		// administrator) could sign in to turn the mode off.
		"/account/two-factor/totp/", "/account/recovery-code/",
		"/account/webauthn-authenticate/options/", "/account/webauthn-authenticate/validate/",
		"/account/passkey/options/", "/account/passkey/login/",
		"/account/reauthenticate/webauthn/options/", "/account/reauthenticate/webauthn/validate/":
		return true
	}
	return strings.HasPrefix(path, "/admin/settings/")
}
