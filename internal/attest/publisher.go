package attest

import (
	"fmt"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// Publisher is the trusted publisher whose token made the upload, in the
// words the certificate uses. Kind is "github" or "gitlab"; Repository
// is "owner/name" (GitLab: "namespace/project"); Workflow the workflow
// file name (GitHub) or the CI file path (GitLab).
//
// Environment is not in a Fulcio certificate: the token exchange already
// checked it, and the Integrity API reports it.
type Publisher struct {
	Kind        string
	Issuer      string
	Repository  string
	Workflow    string
	Environment string
}

const (
	githubIssuer = "https://token.actions.githubusercontent.com"
	gitlabIssuer = "https://gitlab.com"
)

// matches compares the certificate with the publisher as
// pypi-attestations' GitHubPublisher and GitLabPublisher policies do:
// the OIDC issuer (OID 1.3.6.1.4.1.57264.1.8), the source repository
// (…1.12) and the build config, the calling workflow (…1.18), whose
// path the SAN also carries. Where a certificate lacks the source
// repository or build config extensions (older Fulcio, test CAs) the
// SAN, which Fulcio always sets to the workflow ref, is read instead.
func (p Publisher) matches(c certificate.Summary) error {
	var host, sep string
	switch p.Kind {
	case "github":
		host, sep = "https://github.com/", "/.github/workflows/"
	case "gitlab":
		host, sep = strings.TrimSuffix(p.issuer(), "/")+"/", "//"
	case "":
		return invalid("the upload was not made by a trusted publisher")
	default:
		return invalid("attestations are supported for GitHub and GitLab trusted publishers; this upload's publisher is %s", p.Kind)
	}
	if c.Issuer != p.issuer() {
		return invalid("the certificate was issued for %q, not the publisher's issuer %q", c.Issuer, p.issuer())
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
	workflow, _, _ := strings.Cut(rest, "@")
	if !ok || workflow != strings.ToLower(p.Workflow) {
		return invalid("the certificate's workflow %s does not match the trusted publisher's workflow %s", config, p.Workflow)
	}
	return nil
}

func (p Publisher) issuer() string {
	if p.Issuer != "" {
		return p.Issuer
	}
	if p.Kind == "gitlab" {
		return gitlabIssuer
	}
	return githubIssuer
}

// String names the publisher for messages and the project page.
func (p Publisher) String() string {
	return fmt.Sprintf("%s %s (%s)", p.Kind, p.Repository, p.Workflow)
}
