package trustedpub

import (
	"context"

	"github.com/gatehouse-index/gatehouse/internal/attest"
)

// AttestationPublisher is publisher id as its PEP 740 attestations must
// name it (internal/attest). Google, ActiveState and custom issuers get
// only their kind: internal/attest refuses their attestations with a
// message saying attestations are supported for GitHub and GitLab.
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
	}
	return out, nil
}
