package web

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/session"
)

// Flash kinds, which set the message's look and ARIA role.
const (
	flashInfo    = "info"
	flashSuccess = "success"
	flashError   = "error"
)

// flashMsg is a one-time message shown on the next page.
type flashMsg struct {
	Kind string `json:"k"`
	Text string `json:"t"`
}

// flash stores a message for the next page this browser loads. A visitor
// without a session gets an anonymous one, which holds nothing else.
func (s *Server) flash(w http.ResponseWriter, r *http.Request, kind, text string) {
	st := stateOf(r)
	if st.sess == nil {
		sess := &session.Session{Level: session.Anonymous, IP: st.ip, UserAgent: st.agent}
		raw, err := s.sessions.New(r.Context(), nil, sess)
		if err != nil {
			s.log.Error("new session for flash", "err", err)
			return
		}
		s.setSessionCookie(w, raw)
		st.sess = sess
	}
	var msgs []flashMsg
	json.Unmarshal([]byte(st.sess.Data["flash"]), &msgs)
	msgs = append(msgs, flashMsg{kind, text})
	b, _ := json.Marshal(msgs)
	st.sess.Data["flash"] = string(b)
	if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
		s.log.Error("save flash", "err", err)
	}
}

// popFlashes returns and clears the pending messages.
func (s *Server) popFlashes(r *http.Request) []flashMsg {
	st := stateOf(r)
	if st.sess == nil || st.sess.Data["flash"] == "" {
		return nil
	}
	var msgs []flashMsg
	json.Unmarshal([]byte(st.sess.Data["flash"]), &msgs)
	delete(st.sess.Data, "flash")
	if err := s.sessions.SaveData(r.Context(), st.sess); err != nil {
		s.log.Error("clear flash", "err", err)
	}
	return msgs
}
