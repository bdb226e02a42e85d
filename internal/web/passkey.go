package web

import (
	"net/http"

	"github.com/gatehouse-index/gatehouse/internal/metrics"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

// passkeyOptions starts a passwordless sign-in: a discoverable credential
// with user verification names the account and proves two factors at once
// (something you have, unlocked by something you know or are).
func (s *Server) passkeyOptions(w http.ResponseWriter, r *http.Request) error {
	opts, state, err := s.webauthn.BeginPasskeyLogin(r.Context())
	if err != nil {
		return s.jsonError(w, err)
	}
	st := stateOf(r)
	if st.sess == nil {
		// A visitor with no session gets an anonymous one to hold the challenge.
		sess := &session.Session{Level: session.Anonymous, IP: st.ip, UserAgent: st.agent}
		raw, err := s.sessions.New(r.Context(), nil, sess)
		if err != nil {
			return err
		}
		s.setSessionCookie(w, raw)
		st.sess = sess
	}
	return s.sendCeremony(w, r, opts, state, nil)
}

func (s *Server) passkeyLogin(w http.ResponseWriter, r *http.Request) error {
	state, err := s.takeCeremony(r)
	if err != nil {
		return s.jsonError(w, err)
	}
	next := safeNext(r.PostFormValue("next"), "/manage/account/")
	res, err := s.signin.Passkey(r.Context(), s.browser(r), state, []byte(r.PostFormValue("credential")), next)
	s.metrics.Login(metrics.FactorPasskey, loginOutcome(err))
	if err != nil {
		s.mailKick()
		return s.jsonError(w, err)
	}
	return s.stepAsJSON(w, r, res)
}

// reauthWebAuthnOptions lets sudo mode be satisfied with a security key or
// passkey instead of the password (pypi/warehouse#8442).
func (s *Server) reauthWebAuthnOptions(w http.ResponseWriter, r *http.Request) error {
	u := stateOf(r).user
	opts, state, err := s.webauthn.BeginLogin(r.Context(), u.ID)
	return s.sendCeremony(w, r, opts, state, err)
}

func (s *Server) reauthWebAuthnValidate(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	state, err := s.takeCeremony(r)
	if err != nil {
		return s.jsonError(w, err)
	}
	if _, err := s.webauthn.FinishLogin(r.Context(), st.user.ID, state, []byte(r.PostFormValue("credential")), st.client()); err != nil {
		s.mailKick()
		return s.jsonError(w, err)
	}
	if err := s.sessions.MarkReauth(r.Context(), st.sess); err != nil {
		return err
	}
	return writeJSONResponse(w, http.StatusOK, map[string]string{"redirect": safeNext(r.PostFormValue("next"), "/manage/account/")})
}
