package attest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// Publisher is the trusted publisher whose token made the upload, in the
// words the certificate uses.
//
//   - github, gitlab: Repository is "owner/name" (GitLab:
//     "namespace/project"); Workflow the workflow file name (GitHub) or
//     the CI file path (GitLab).
//   - google: Email is the service account.
//   - custom: Subject is the `sub` claim the publisher pins (empty when
//     the issuer's publishers do not pin it); IssuerName labels it.
//   - activestate: no attestations (PyPI verifies none either).
//
// Environment is not in a Fulcio certificate: the token exchange already
// checked it, and the Integrity API reports it.
type Publisher struct {
	Kind        string
	Issuer      string
	Repository  string
	Workflow    string
	Environment string
	Email       string
	Subject     string
	IssuerName  string
}

const (
	githubIssuer = "https://token.actions.githubusercontent.com"
	gitlabIssuer = "https://gitlab.com"
	googleIssuer = "https://accounts.google.com"
)

// matches compares the certificate with the publisher as
// pypi-attestations' publisher policies do. For GitHub and GitLab: the
// OIDC issuer (OID 1.3.6.1.4.1.57264.1.8), the source repository (…1.12)
// and the build config (…1.18), which must be the publisher's workflow
// at the certificate's own commit (…1.13) or ref (…1.14). Where a
// certificate lacks those extensions (older Fulcio, test CAs) the SAN,
// which Fulcio sets to the workflow ref, is read instead. For Google, the
// SAN is the service account's email; for a custom issuer, the token's
// subject.
func (p Publisher) matches(c certificate.Summary) error {
	switch p.Kind {
	case "github":
		return p.matchesForge(c, "https://github.com/", "/.github/workflows/")
	case "gitlab":
		return p.matchesForge(c, strings.TrimSuffix(p.issuer(), "/")+"/", "//")
	case "google":
		if err := p.matchesIssuer(c); err != nil {
			return err
		}
		if !strings.EqualFold(c.SubjectAlternativeName, p.Email) {
			return invalid("the certificate was issued to %s, not the trusted publisher's service account %s", c.SubjectAlternativeName, p.Email)
		}
		return nil
	case "custom":
		if err := p.matchesIssuer(c); err != nil {
			return err
		}
		if p.Subject == "" {
			return invalid("the %s issuer's publishers do not pin the token's sub claim, which is the identity Fulcio certifies, so an attestation cannot be tied to this publisher; an administrator can register the issuer with sub among its claims", p.IssuerName)
		}
		if c.SubjectAlternativeName != p.Subject {
			return invalid("the certificate was issued to %s, not the trusted publisher's subject %s", c.SubjectAlternativeName, p.Subject)
		}
		return nil
	case "activestate":
		return invalid("attestations are not supported for ActiveState publishers; upload without them")
	case "":
		return invalid("the upload was not made by a trusted publisher")
	}
	return invalid("attestations are not supported for %s publishers", p.Kind)
}

func (p Publisher) matchesIssuer(c certificate.Summary) error {
	if c.Issuer != p.issuer() {
		return invalid("the certificate was issued for %q, not the publisher's issuer %q", c.Issuer, p.issuer())
	}
	return nil
}

func (p Publisher) matchesForge(c certificate.Summary, host, sep string) error {
	if err := p.matchesIssuer(c); err != nil {
		return err
	}
	config := c.BuildConfigURI
	if config == "" {
		config = c.SubjectAlternativeName
	}
	repoURL := c.SourceRepositoryURI
	if repoURL == "" {
		repoURL, _, _ = strings.Cut(config, sep)
	}
	want := host + p.Repository
	if !strings.EqualFold(repoURL, want) {
		return invalid("the certificate's source repository %s does not match the trusted publisher's %s", repoURL, want)
	}
	// config is https://github.com/OWNER/REPO/.github/workflows/FILE@REF.
	rest, ok := strings.CutPrefix(strings.ToLower(config), strings.ToLower(want+sep))
	workflow, at, _ := strings.Cut(rest, "@")
	if !ok || workflow != strings.ToLower(p.Workflow) {
		return invalid("the certificate's workflow %s does not match the trusted publisher's workflow %s", config, p.Workflow)
	}
	// What follows the @ must be the run's own commit or ref, so a
	// workflow of that name elsewhere in the build config cannot pass.
	var suffixes []string
	for _, s := range []string{c.SourceRepositoryDigest, c.SourceRepositoryRef} {
		if s != "" {
			suffixes = append(suffixes, strings.ToLower(s))
		}
	}
	if len(suffixes) > 0 && !slices.Contains(suffixes, at) {
		return invalid("the certificate's build config %s is not at the run's commit or ref (%s)", config, strings.Join(suffixes, ", "))
	}
	return nil
}

func (p Publisher) issuer() string {
	if p.Issuer != "" {
		return p.Issuer
	}
	switch p.Kind {
	case "gitlab":
		return gitlabIssuer
	case "google":
		return googleIssuer
	}
	return githubIssuer
}

// String names the publisher for messages and the project page.
func (p Publisher) String() string {
	switch p.Kind {
	case "google":
		return "google " + p.Email
	case "custom":
		return fmt.Sprintf("%s %s", p.IssuerName, p.Subject)
	}
	return fmt.Sprintf("%s %s (%s)", p.Kind, p.Repository, p.Workflow)
}
