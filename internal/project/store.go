package project

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
	"golang.org/x/crypto/blake2b"
)

// storedMetadata is the PEP 658 metadata file of a wheel.
type storedMetadata struct {
	key            string
	sha256, blake2 string
	size           int64
}

func newStoredMetadata(fileKey string, b []byte) *storedMetadata {
	s := sha256.Sum256(b)
	b2 := blake2b.Sum256(b)
	return &storedMetadata{key: fileKey + ".metadata", sha256: hex.EncodeToString(s[:]), blake2: hex.EncodeToString(b2[:]), size: int64(len(b))}
}

const releaseColumns = `id, project_id, version, canonical_version, is_prerelease, summary, description,
	description_content_type, description_html, requires_python, metadata_json, yanked, yanked_reason, created_at`

func scanRelease(row interface{ Scan(...any) error }) (*Release, error) {
	var r Release
	err := row.Scan(&r.ID, &r.ProjectID, &r.Version, &r.CanonicalVersion, &r.IsPrerelease, &r.Summary, &r.Description,
		&r.DescriptionContentType, &r.DescriptionHTML, &r.RequiresPython, &r.MetadataJSON, &r.Yanked, &r.YankedReason, &r.CreatedAt)
	if err != nil {
		return nil, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return &r, nil
}

// getRelease finds a release by version, comparing canonical forms so that
// 1.0 and 1.0.0 are one release.
func getRelease(ctx context.Context, q querier, projectID int64, v pep.Version) (*Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx,
		`SELECT `+releaseColumns+` FROM releases WHERE project_id = $1 AND canonical_version = $2`, projectID, v.Canonical()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "release %s not found", v.String())
	}
	return r, err
}

// journal records a change and returns its serial, which also becomes the
// project's last serial.
func (s *Service) journal(ctx context.Context, tx *sql.Tx, projectID int64, name, version, action, by string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO journal (project_id, name, version, action, submitted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		projectID, name, version, action, by, s.now().UTC()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projects SET last_serial = $1 WHERE id = $2`, id, projectID); err != nil {
		return 0, err
	}
	return id, nil
}

// insertFile writes the rows for an accepted upload: the project (if new,
// with the uploader as Owner), the release (if new), the file, its name in
// the filename log, and the journal entries. Checks that can race with a
// concurrent upload are repeated here, inside the transaction, or enforced by
// unique indexes.
func (s *Service) insertFile(ctx context.Context, tx *sql.Tx, who Uploader, up *Upload, isNew bool, key string, m *storedMetadata, limit, totalLimit int64) (int64, error) {
	f, c := up.Form, up.Content
	now := s.now().UTC()
	norm := pep.NormalizeName(f.Name)
	var projectID int64
	if isNew {
		var err error
		if projectID, err = s.createProject(ctx, tx, f.Name, who.UserID, who.Username, nil); err != nil {
			return 0, err
		}
		if err := s.uploadEvent(ctx, tx, who, projectID, audit.ProjectCreate, map[string]any{"name": f.Name}); err != nil {
			return 0, err
		}
	} else {
		p, err := getProject(ctx, tx, norm)
		if err != nil {
			return 0, err
		}
		projectID = p.ID
	}

	// The project's total, checked and added in one statement so two
	// concurrent uploads cannot both squeeze under the limit. The statement
	// also requires the project to be active: it locks the row, so an
	// archive or a quarantine that committed since the checks outside this
	// transaction is seen here, and one that comes later waits for this
	// upload to commit.
	r, err := tx.ExecContext(ctx, `UPDATE projects SET total_size = total_size + $1 WHERE id = $2 AND total_size + $1 <= $3 AND status = $4`,
		c.Size, projectID, totalLimit, StatusActive)
	if err != nil {
		return 0, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		p, err := getProject(ctx, tx, norm)
		if err != nil {
			return 0, err
		}
		if err := s.refuseByStatus(p); err != nil {
			return 0, err
		}
		return 0, s.projectTooLarge(f.Name, totalLimit)
	}

	rel, err := getRelease(ctx, tx, projectID, f.Version)
	if errors.Is(err, derrors.NotFound) {
		rel, err = s.insertRelease(ctx, tx, who, projectID, f)
	}
	if err != nil {
		return 0, err
	}
	if f.Filetype == "sdist" {
		if err := checkOneSdist(ctx, tx, rel.ID); err != nil {
			return 0, err
		}
	}

	var mSHA, mB2, mKey sql.NullString
	var mSize sql.NullInt64
	if m != nil {
		mSHA = sql.NullString{String: m.sha256, Valid: true}
		mB2 = sql.NullString{String: m.blake2, Valid: true}
		mKey = sql.NullString{String: m.key, Valid: true}
		mSize = sql.NullInt64{Int64: m.size, Valid: true}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO files (release_id, project_id, filename, packagetype, python_version,
		requires_python, size, md5_digest, sha256_digest, blake2_256_digest, blob_key,
		metadata_sha256, metadata_blake2_256, metadata_key, metadata_size, uploaded_at, uploader_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		rel.ID, projectID, up.Filename, f.Filetype, f.PyVersion, f.RequiresPython, c.Size, c.MD5, c.SHA256, c.Blake2_256, key,
		mSHA, mB2, mKey, mSize, now, nullUser(who.UserID))
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO filename_log (filename, created_at, blake2_256_digest) VALUES ($1, $2, $3)`,
		up.Filename, now, c.Blake2_256); err != nil {
		return 0, err
	}
	if err := s.uploadEvent(ctx, tx, who, projectID, audit.FileAdd, map[string]any{"filename": up.Filename, "version": rel.Version,
		"canonical_version": rel.CanonicalVersion, "submitted_by": who.Username}); err != nil {
		return 0, err
	}
	return s.journal(ctx, tx, projectID, f.Name, rel.Version, fmt.Sprintf("add %s file %s", f.PyVersion, up.Filename), who.Username)
}

// uploadEvent records a project event caused by an upload.
func (s *Service) uploadEvent(ctx context.Context, tx *sql.Tx, who Uploader, projectID int64, tag string, add map[string]any) error {
	return audit.Record(ctx, tx, s.now(), audit.Event{ProjectID: projectID, Tag: tag, ActorID: who.UserID, Actor: who.Username,
		IP: who.Client.IP, UserAgent: who.Client.UserAgent, Additional: add})
}

func (s *Service) insertRelease(ctx context.Context, tx *sql.Tx, who Uploader, projectID int64, f *Form) (*Release, error) {
	ct := f.DescriptionContentType
	html := RenderDescription(f.Description, ct)
	_, err := tx.ExecContext(ctx, `INSERT INTO releases (project_id, version, canonical_version, is_prerelease, summary,
		description, description_content_type, description_html, requires_python, metadata_json, uploader_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		projectID, f.Version.String(), f.Version.Canonical(), f.Version.IsPrerelease(), f.Summary,
		f.Description, ct, html, f.RequiresPython, releaseFields(f), nullUser(who.UserID), s.now().UTC())
	if err != nil {
		return nil, err
	}
	if _, err := s.journal(ctx, tx, projectID, f.Name, f.Version.String(), "new release", who.Username); err != nil {
		return nil, err
	}
	if err := s.uploadEvent(ctx, tx, who, projectID, audit.ProjectReleaseAdd, map[string]any{"version": f.Version.String(),
		"canonical_version": f.Version.Canonical(), "submitted_by": who.Username}); err != nil {
		return nil, err
	}
	return getRelease(ctx, tx, projectID, f.Version)
}
