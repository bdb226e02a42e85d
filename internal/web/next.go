package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/session"
)

// Coming back after a gate refusal. The management gate (manage, auth.go)
// sends a user without a verified email or a second factor to the page that
// fixes it with ?next= the page they tried. Fixing it takes several steps
// (recovery codes, then the app or key; or a link opened from an email), so
// the fix-it pages keep next in the session, and the step that finishes the
// fix goes there instead of back to the fix-it page. Only same-origin paths
// are kept (safeNext), and only for nextTTL.
const (
	keyManageNext = "manage.next" // "<unix seconds>|<path>"
	nextTTL       = 60 * 60       // seconds
)

// keepNext remembers the request's ?next= in the session, if it is a
// same-origin path. Without ?next= it keeps what is there: the fix-it
// pages send the browser back to themselves between the steps.
func (s *Server) keepNext(r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"), "")
	st := stateOf(r)
	if next == "" || st.sess == nil {
		return nil
	}
	st.sess.Data[keyManageNext] = strconv.FormatInt(s.now().Unix(), 10) + "|" + next
	return s.sessions.SaveData(r.Context(), st.sess)
}

// pendingNext is the remembered page, "" when there is none.
func (s *Server) pendingNext(r *http.Request) string { return s.storedNext(stateOf(r).sess) }

// storedNext reads the remembered page; "" when there is none, or it is
// older than nextTTL.
func (s *Server) storedNext(sess *session.Session) string {
	if sess == nil {
		return ""
	}
	at, next, ok := strings.Cut(sess.Data[keyManageNext], "|")
	t, err := strconv.ParseInt(at, 10, 64)
	if age := s.now().Unix() - t; !ok || err != nil || age < 0 || age > nextTTL {
		return ""
	}
	return safeNext(next, "")
}

// takeNext removes the remembered page from sess (the caller saves the
// session, or replaces it) and returns where to go: that page, or fallback
// when there is none.
func (s *Server) takeNext(sess *session.Session, fallback string) string {
	next := s.storedNext(sess)
	if sess != nil {
		delete(sess.Data, keyManageNext)
	}
	if next == "" {
		return fallback
	}
	return next
}
