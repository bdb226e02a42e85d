package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/trustedpub"
)

// Limiting a publisher to an environment (spec §3.1). The email Warehouse
// calls environment-ignored-in-trusted-publisher links to the project's
// publishing page with ?constrain_publisher_id=…&constrain_environment=…;
// the page then offers, as one confirmed POST, to replace the publisher
// with the same one limited to that environment.

// constrainOffer is that offer, on the publishing page.
type constrainOffer struct {
	PublisherID int64
	Publisher   string
	Environment string
}

// constrainFor finds the offer a link (or a refused form) asks for among
// the project's publishers: only a GitHub or GitLab publisher with no
// environment can be limited. gone reports a link whose publisher is not
// such a publisher of the project any more (limited already, or removed).
func constrainFor(pubs []trustedpub.Publisher, rawID, env string) (offer *constrainOffer, gone bool) {
	if rawID == "" {
		return nil, false
	}
	id, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil {
		return nil, true
	}
	for _, p := range pubs {
		if p.ID == id && (p.Kind == trustedpub.KindGitHub || p.Kind == trustedpub.KindGitLab) && p.Environment == "" {
			return &constrainOffer{PublisherID: id, Publisher: p.Name(), Environment: env}, false
		}
	}
	return nil, true
}

// constrainPublisher limits one of the project's publishers to an
// environment.
func (s *Server) constrainPublisher(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireTrustedPub(); err != nil {
		return err
	}
	p := stateOf(r).membership.Project
	env := strings.TrimSpace(r.PostFormValue("environment"))
	id, err := formID(r, "publisher_id")
	var pub *trustedpub.Publisher
	if err == nil {
		pub, err = s.tp.ConstrainEnvironment(r.Context(), s.actor(r), p, id, env)
	}
	success := ""
	if err == nil {
		success = "Trusted publisher limited to the environment " + env + ": " + pub.Name() + "."
	}
	return s.finishForm(w, r, err, success, s.publishingURL(p), func(status int, msg string) error {
		return s.renderPublishing(w, r, status, publishingPage{Project: p, Error: msg, Form: map[string]string{},
			constrainID: r.PostFormValue("publisher_id"), constrainEnv: env})
	})
}
