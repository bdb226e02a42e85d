package web

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// integrityMediaType is PyPI's Integrity API media type (PEP 740).
const integrityMediaType = "application/vnd.pypi.integrity.v1+json"

// provenance serves a file's PEP 740 provenance object: the verified
// attestations, in one bundle with the trusted publisher that made them.
func (s *Server) provenance(w http.ResponseWriter, r *http.Request) error {
	norm := pep.NormalizeName(r.PathValue("project"))
	if ok, err := s.mayRead(r, norm, 0); err != nil {
		return err
	} else if !ok {
		return derrors.New(derrors.NotFound, "Not Found")
	}
	p, err := s.projects.FileProvenance(r.Context(), norm, r.PathValue("version"), r.PathValue("filename"))
	if err != nil {
		return err
	}
	body, err := json.Marshal(provenanceObject(p))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", integrityMediaType)
	_, err = w.Write(body)
	return err
}

// provenanceURL is where the Integrity API serves f's provenance.
func (s *Server) provenanceURL(normalizedName string, f *project.File) string {
	return s.baseURL + "/integrity/" + url.PathEscape(normalizedName) + "/" + url.PathEscape(f.Version) + "/" + url.PathEscape(f.Filename) + "/provenance"
}

// provenanceObject is PEP 740's provenance object, with the publisher in
// pypi-attestations' form (kind "GitHub" or "GitLab").
func provenanceObject(p *project.Provenance) map[string]any {
	pub := map[string]any{}
	switch p.Kind {
	case "github":
		pub["kind"], pub["repository"], pub["workflow"] = "GitHub", p.Repository, p.Workflow
	case "gitlab":
		pub["kind"], pub["repository"], pub["workflow_filepath"] = "GitLab", p.Repository, p.Workflow
	case "google":
		pub["kind"], pub["email"] = "Google", p.Identity
	default:
		// A custom issuer: pypi-attestations has no model for it, so the
		// publisher says what was verified, the issuer and the subject.
		pub["kind"], pub["issuer"], pub["subject"] = p.Kind, p.Issuer, p.Identity
	}
	if p.Environment != "" {
		pub["environment"] = p.Environment
	}
	return map[string]any{
		"version": 1,
		"attestation_bundles": []any{map[string]any{
			"publisher":    pub,
			"attestations": p.Attestations,
		}},
	}
}
