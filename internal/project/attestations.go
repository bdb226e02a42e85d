package project

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"

	"github.com/gatehouse-index/gatehouse/internal/attest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// checkedAttestations is what an upload's attestations field became
// once verified: nil when the upload had none.
type checkedAttestations struct {
	pub      attest.Publisher
	verified []attest.Verified
	json     []byte
}

// checkAttestations verifies the attestations field (PEP 740) against
// the trusted publisher that made the upload, with PyPI's messages. A
// project that requires attestations refuses an upload without them.
func (s *Service) checkAttestations(who Uploader, up *Upload, requireAttestations bool) (*checkedAttestations, error) {
	if up.Attestations == "" {
		if requireAttestations {
			return nil, derrors.New(derrors.Invalid, "This project requires attestations: upload from a trusted publisher with attestations on (pypa/gh-action-pypi-publish does this by default). See %s for more information.", s.help("attestations"))
		}
		return nil, nil
	}
	if who.Attest == nil {
		return nil, derrors.New(derrors.Invalid, "Invalid attestations supplied during upload: Attestations are only supported when using Trusted Publishing")
	}
	if s.attest == nil {
		return nil, derrors.New(derrors.Invalid, "Invalid attestations supplied during upload: this index does not verify attestations (no Sigstore trusted root is configured)")
	}
	atts, err := attest.Parse([]byte(up.Attestations))
	if err == nil {
		var vs []attest.Verified
		vs, err = s.attest.Verify(atts, attest.File{Filename: up.Filename, SHA256: up.Content.SHA256}, *who.Attest)
		if err == nil {
			b, merr := json.Marshal(atts)
			if merr != nil {
				return nil, merr
			}
			return &checkedAttestations{pub: *who.Attest, verified: vs, json: b}, nil
		}
	}
	var inv *attest.Invalid
	if errors.As(err, &inv) {
		return nil, derrors.New(derrors.Invalid, "Invalid attestations supplied during upload: %s", inv.Reason)
	}
	return nil, err
}

// storeProvenance lists the verified attestations with the file, in the
// upload's transaction.
func storeProvenance(ctx context.Context, tx *sql.Tx, filename string, a *checkedAttestations) error {
	if a == nil {
		return nil
	}
	commit := ""
	if len(a.verified) > 0 {
		commit = a.verified[0].Certificate.SourceRepositoryDigest
	}
	identity := a.pub.Email
	if a.pub.Kind == "custom" {
		identity = a.pub.Subject
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO file_provenance (file_id, publisher_kind, repository, workflow, environment, commit_sha, attestations, issuer, identity)
		SELECT id, $2, $3, $4, $5, $6, $7, $8, $9 FROM files WHERE filename = $1`,
		filename, a.pub.Kind, a.pub.Repository, a.pub.Workflow, a.pub.Environment, commit, string(a.json), a.pub.Issuer, identity)
	return err
}

// Provenance is a file's PEP 740 provenance, as the Integrity API serves it.
type Provenance struct {
	Kind, Repository, Workflow, Environment, Commit string
	// Issuer is the publisher's OIDC issuer; Identity the Google service
	// account or the custom issuer's subject.
	Issuer, Identity string
	Attestations     json.RawMessage
}

// FileProvenance returns the provenance of a file of project/version;
// derrors.NotFound when the file does not exist or has none.
func (s *Service) FileProvenance(ctx context.Context, normalizedName, version, filename string) (*Provenance, error) {
	var p Provenance
	var atts string
	err := s.db.QueryRowContext(ctx, `SELECT fp.publisher_kind, fp.repository, fp.workflow, fp.environment, fp.commit_sha, fp.issuer, fp.identity, fp.attestations
		FROM file_provenance fp JOIN files f ON f.id = fp.file_id JOIN releases r ON r.id = f.release_id JOIN projects p ON p.id = f.project_id
		WHERE p.normalized_name = $1 AND r.version = $2 AND f.filename = $3 AND p.status <> '`+StatusQuarantined+`'`, normalizedName, version, filename).
		Scan(&p.Kind, &p.Repository, &p.Workflow, &p.Environment, &p.Commit, &p.Issuer, &p.Identity, &atts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "No provenance for %s %s %s.", normalizedName, version, filename)
	}
	if err != nil {
		return nil, err
	}
	p.Attestations = json.RawMessage(atts)
	return &p, nil
}

// SetRequireAttestations sets a project's "require attestations" policy,
// recorded in the project's history. An organization-wide setting is the
// hook left for the organizations branch (internal/org):
// requireAttestations is where it would be ORed in.
func (s *Service) SetRequireAttestations(ctx context.Context, actor account.Client, actorID int64, actorName string, projectID int64, on bool) (err error) {
	defer derrors.Wrap(&err, "project.SetRequireAttestations(%d, %v)", projectID, on)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		was, err := requireAttestations(ctx, tx, projectID)
		if err != nil || was == on {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET require_attestations = $1 WHERE id = $2`, on, projectID); err != nil {
			return err
		}
		tag := audit.RequireAttestationsEnabled
		if !on {
			tag = audit.RequireAttestationsDisabled
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{ProjectID: projectID, Tag: tag, ActorID: actorID, Actor: actorName,
			IP: actor.IP, UserAgent: actor.UserAgent})
	})
}

// RequireAttestations says whether a project requires attestations.
func (s *Service) RequireAttestations(ctx context.Context, projectID int64) (bool, error) {
	return requireAttestations(ctx, s.db, projectID)
}

// requireAttestations reads the project's policy (false for a new project).
func requireAttestations(ctx context.Context, q querier, projectID int64) (bool, error) {
	if projectID == 0 {
		return false, nil
	}
	// The project's own setting, or its organization's.
	var on bool
	err := q.QueryRowContext(ctx, `SELECT p.require_attestations OR EXISTS (SELECT 1 FROM organization_projects op
		JOIN organizations o ON o.id = op.organization_id WHERE op.project_id = p.id AND o.require_attestations)
		FROM projects p WHERE p.id = $1`, projectID).Scan(&on)
	return on, err
}
