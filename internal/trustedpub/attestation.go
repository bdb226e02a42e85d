package trustedpub

import (
	"context"

	"github.com/gatehouse-index/gatehouse/internal/attest"
)

// AttestationPublisher is publisher id as its PEP 740 attestations must
// name it (internal/attest): GitHub and GitLab by repository and
// workflow, Google by service account, a custom issuer by the sub claim
// its publisher pins (none: internal/attest says the issuer should pin
// it). ActiveState gets only its kind: PyPI verifies no attestations
// from it, and internal/attest refuses them.
func (s *Service) AttestationPublisher(ctx context.Context, id int64) (*attest.Publisher, error) {
	p, err := scanPublisher(s.db.QueryRowContext(ctx, `SELECT `+publisherColumns+` FROM trusted_publishers WHERE id = $1`, id))
	if err != nil {
		return nil, err
	}
	out := &attest.Publisher{Kind: p.Kind, Issuer: p.IssuerURL, Environment: p.Config["environment"]}
	switch p.Kind {
	case KindGitHub:
		out.Repository = p.Config["owner"] + "/" + p.Config["repository"]
		out.Workflow = p.Config["workflow"]
	case KindGitLab:
		out.Repository = p.Config["namespace"] + "/" + p.Config["project"]
		out.Workflow = p.Config["workflow_filepath"]
	case KindGoogle:
		out.Email = p.Config["email"]
	case KindCustom:
		out.Subject, out.IssuerName = p.Config["claim_sub"], p.Config["issuer"]
	}
	return out, nil
}
