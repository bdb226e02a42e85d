package web

import (
	"context"

	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// uploaderFor is who an upload's token acts for. A token minted for a
// trusted publisher has no user: its caveats (the publisher's projects,
// checked when it is used) are the whole permission, and the account
// prerequisites do not apply. A user's long-lived token is also held to
// the project's "trusted publishing only" setting, and to the security
// policies of the project's organization and of the site (internal/org):
// trusted publishing only, and a security key on the account.
func (s *Server) uploaderFor(ctx context.Context, v *token.Verified) project.Uploader {
	if v.IsPublisher() {
		up := project.Uploader{Username: "trusted publisher " + v.Publisher, Publisher: true, Permits: v.PermitsProject}
		// The publisher as its attestations must name it; without it
		// (a publisher removed since) attestations are refused.
		if s.tp != nil {
			if pub, err := s.tp.AttestationPublisher(ctx, v.PublisherID); err == nil {
				up.Attest = pub
			} else {
				s.log.Warn("trusted publisher for attestations not found", "publisher", v.PublisherID, "err", err)
			}
		}
		return up
	}
	return project.Uploader{
		UserID:            v.UserID,
		Username:          v.Username,
		CanCreateProjects: v.CanCreateProjects(),
		Permits: func(normalizedName string, projectID int64) error {
			if err := v.PermitsProject(normalizedName, projectID); err != nil {
				return err
			}
			if s.tp == nil {
				return nil
			}
			return s.tp.RefuseLongLived(ctx, projectID, normalizedName)
		},
		Prerequisites: func() error { return s.uploadPrerequisites(ctx, v.UserID, v.Username) },
		Policies: func(normalizedName string, projectID int64) error {
			return s.orgs.CheckUpload(ctx, v.UserID, projectID, normalizedName)
		},
	}
}

// afterUpload tells a project's owners, once per token, that a long-lived
// token uploaded to a project that has a trusted publisher. It is a notice:
// a failure is logged, the upload stands.
func (s *Server) afterUpload(ctx context.Context, v *token.Verified, res project.UploadResult) {
	if s.tp == nil || v.IsPublisher() || res.Duplicate {
		return
	}
	if err := s.tp.NoteLongLivedUpload(ctx, v.TokenID, res.Project); err != nil {
		s.log.Warn("trusted publisher notice for a token upload failed", "project", res.Project, "err", err)
		return
	}
	s.mailKick()
}
