package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// The leaked-token report, POST /_/secrets/disclose-token (spec §1.7). The
// body is what secret scanners send PyPI: a JSON array of
//
//	{"token": "pypi-…", "type": "pypi_api_token", "url": "https://where.it/was/found"}
//
// Every genuine token among them is revoked and its owner emailed. As on
// PyPI the answer is 204 No Content whatever was revoked, so the endpoint
// tells nobody whether a value was a live token; a body that is not such an
// array is a 400 that says what to send, and revokes nothing. PyPI also
// checks a signature from GitHub over the body: GitHub scans for pypi.org's
// tokens only, and on a self-hosted index whoever holds a token's value may
// destroy it (token.RevokeLeaked), so no signature is asked for.
//
// It is a tool route: it reads no cookie and no session, so cross-site
// requests do it no harm and the CSRF check does not apply.

const (
	// maxLeakBody bounds a report's body; maxLeaks the records in it.
	maxLeakBody = 1 << 20
	maxLeaks    = 100
	// leakType is the matcher name PyPI gives secret scanners.
	leakType = "pypi_api_token"
)

// leakRecord is one record of a report. Pointers tell a missing field from
// an empty one.
type leakRecord struct {
	Token  *string `json:"token"`
	Type   *string `json:"type"`
	URL    *string `json:"url"`
	Source string  `json:"source"`
}

func (s *Server) discloseToken(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLeakBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return derrors.New(derrors.TooLarge, "The report is larger than %d KiB. Send at most %d records at a time.", maxLeakBody>>10, maxLeaks)
	}
	if err != nil {
		return derrors.New(derrors.Invalid, "The report could not be read. Send it again.")
	}
	leaks, err := parseLeakReport(body)
	if err != nil {
		return err
	}
	c := account.Client{IP: s.clientIP(r), UserAgent: r.UserAgent()}
	revoked, err := s.tokens.RevokeLeaked(r.Context(), leaks, token.Origin{Client: c})
	if err != nil {
		return err
	}
	if len(revoked) > 0 {
		s.mailKick()
		// Ids and owners only: never a token.
		for _, t := range revoked {
			s.log.Info("leaked API token revoked", "token_id", t.ID, "user", t.Username)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseLeakReport checks a report's shape: an array of at most maxLeaks
// records, each with a token, the type pypi_api_token and a url.
func parseLeakReport(body []byte) ([]token.Leak, error) {
	const shape = `Send a JSON array of records like [{"token": "pypi-…", "type": "pypi_api_token", "url": "https://where.it/was/found"}].`
	var recs []json.RawMessage
	if err := json.Unmarshal(body, &recs); err != nil {
		return nil, derrors.New(derrors.Invalid, "The report is not a JSON array. %s", shape)
	}
	if len(recs) == 0 {
		return nil, derrors.New(derrors.Invalid, "The report holds no records. %s", shape)
	}
	if len(recs) > maxLeaks {
		return nil, derrors.New(derrors.Invalid, "The report holds %d records; send at most %d at a time.", len(recs), maxLeaks)
	}
	leaks := make([]token.Leak, 0, len(recs))
	for i, raw := range recs {
		var rec leakRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, derrors.New(derrors.Invalid, "Record %d is not an object with string fields token, type and url. %s", i+1, shape)
		}
		var missing []string
		for _, f := range []struct {
			name string
			v    *string
		}{{"token", rec.Token}, {"type", rec.Type}, {"url", rec.URL}} {
			if f.v == nil {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			return nil, derrors.New(derrors.Invalid, "Record %d lacks %s. %s", i+1, strings.Join(missing, " and "), shape)
		}
		if *rec.Type != leakType {
			return nil, derrors.New(derrors.Invalid, "Record %d has type %q; the only type is %q.", i+1, *rec.Type, leakType)
		}
		leaks = append(leaks, token.Leak{Token: *rec.Token, URL: *rec.URL})
	}
	return leaks, nil
}
