package project

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// Deleting files, releases and projects. Each is one transaction that
// removes the rows, keeps every filename in the filename log with the
// digest of its bytes (so neither the name nor the bytes can be uploaded
// again, spec §4.2 step 19), journals the change, records the event and
// queues the emails PyPI sends to every owner and maintainer. The bytes are
// removed from the blob store after the commit: until then they stay
// listed, and after it nothing lists them, so a failed removal leaves
// bytes that are never served (FileByDigest needs a row), not a listed
// file without bytes.

// doomedFile is what a deletion must remember of a file.
type doomedFile struct {
	id               int64
	releaseID        int64
	filename         string
	size             int64
	blake2           string
	blobKey, metaKey string
}

func (s *Service) filesWhere(ctx context.Context, tx *sql.Tx, where string, arg int64) ([]doomedFile, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, release_id, filename, size, blake2_256_digest, blob_key, metadata_key
		FROM files WHERE `+where+` = $1 ORDER BY filename`, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []doomedFile
	for rows.Next() {
		var f doomedFile
		var meta sql.NullString
		if err := rows.Scan(&f.id, &f.releaseID, &f.filename, &f.size, &f.blake2, &f.blobKey, &meta); err != nil {
			return nil, err
		}
		f.metaKey = meta.String
		out = append(out, f)
	}
	return out, rows.Err()
}

// forget removes the files' rows and keeps their names and digests in the
// filename log; it returns the bytes freed.
func forget(ctx context.Context, tx *sql.Tx, now time.Time, fs []doomedFile) (int64, error) {
	var freed int64
	for _, f := range fs {
		// Files uploaded before the log kept digests have a row without
		// one; a file is always logged at upload, so the update finds it,
		// and the insert covers a log that somehow lost it.
		r, err := tx.ExecContext(ctx, `UPDATE filename_log SET blake2_256_digest = $1 WHERE filename = $2`, f.blake2, f.filename)
		if err != nil {
			return 0, err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO filename_log (filename, created_at, blake2_256_digest) VALUES ($1, $2, $3)`,
				f.filename, now, f.blake2); err != nil {
				return 0, err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = $1`, f.id); err != nil {
			return 0, err
		}
		freed += f.size
	}
	return freed, nil
}

// dropBlobs removes deleted files' bytes, after the commit. A failure is
// logged, not returned: the deletion has happened, and unlisted bytes are
// never served.
func (s *Service) dropBlobs(ctx context.Context, fs []doomedFile) {
	for _, f := range fs {
		for _, key := range []string{f.blobKey, f.metaKey} {
			if key == "" {
				continue
			}
			if err := s.blobs.Delete(context.WithoutCancel(ctx), key); err != nil {
				s.log.Warn("removing a deleted file's bytes failed; they are no longer served", "file", f.filename, "err", err)
			}
		}
	}
}

// RemoveFile deletes one file of a release. The owner types the filename
// to confirm. The filename can never be used again.
func (s *Service) RemoveFile(ctx context.Context, a Actor, normalizedName, version string, fileID int64, confirm string) error {
	var gone []doomedFile
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		gone = nil
		p, rel, err := s.releaseForChange(ctx, tx, a, normalizedName, version)
		if err != nil {
			return err
		}
		fs, err := s.filesWhere(ctx, tx, "release_id", rel.ID)
		if err != nil {
			return err
		}
		var f *doomedFile
		for i := range fs {
			if fs[i].id == fileID {
				f = &fs[i]
			}
		}
		if f == nil {
			return derrors.New(derrors.NotFound, "Release %s of %s has no such file. Reload the page and try again.", rel.Version, p.Name)
		}
		if err := confirmName("confirm_filename", confirm, f.filename, "the filename "+f.filename); err != nil {
			return err
		}
		freed, err := forget(ctx, tx, s.now().UTC(), []doomedFile{*f})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET total_size = total_size - $1 WHERE id = $2`, freed, p.ID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, rel.Version, "remove file "+f.filename, a.Username); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.FileRemove, map[string]any{"filename": f.filename, "version": rel.Version,
			"canonical_version": rel.CanonicalVersion, "submitted_by": a.Username}); err != nil {
			return err
		}
		gone = []doomedFile{*f}
		return s.tellAboutRelease(ctx, tx, a, p, rel, mail.TemplateRemovedFile, map[string]any{"File": f.filename})
	})
	if err == nil {
		s.dropBlobs(ctx, gone)
	}
	return err
}

// RemoveRelease deletes a release and its files. The owner types the
// version to confirm. None of its filenames can be used again; the version
// itself can be uploaded again with new filenames (a new build tag, say).
func (s *Service) RemoveRelease(ctx context.Context, a Actor, normalizedName, version, confirm string) error {
	var gone []doomedFile
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		gone = nil
		p, rel, err := s.releaseForChange(ctx, tx, a, normalizedName, version)
		if err != nil {
			return err
		}
		if err := confirmName("confirm_delete_version", confirm, rel.Version, "the version "+rel.Version); err != nil {
			return err
		}
		fs, err := s.filesWhere(ctx, tx, "release_id", rel.ID)
		if err != nil {
			return err
		}
		freed, err := forget(ctx, tx, s.now().UTC(), fs)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM releases WHERE id = $1`, rel.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET total_size = total_size - $1 WHERE id = $2`, freed, p.ID); err != nil {
			return err
		}
		if _, err := s.journal(ctx, tx, p.ID, p.Name, rel.Version, "remove release", a.Username); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.ProjectReleaseRemove, map[string]any{"version": rel.Version,
			"canonical_version": rel.CanonicalVersion, "files": len(fs), "submitted_by": a.Username}); err != nil {
			return err
		}
		gone = fs
		return s.tellAboutRelease(ctx, tx, a, p, rel, mail.TemplateRemovedRelease, nil)
	})
	if err == nil {
		s.dropBlobs(ctx, gone)
	}
	return err
}

// RemoveProject deletes a project with its releases, files and roles. The
// owner types the project's name to confirm. Its filenames stay used; the
// name itself becomes free, as on PyPI. Its events stay in the audit trail.
func (s *Service) RemoveProject(ctx context.Context, a Actor, normalizedName, confirm string) error {
	var gone []doomedFile
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		gone = nil
		p, err := ownedForChange(ctx, tx, a, normalizedName)
		if err != nil {
			return err
		}
		if err := confirmName("confirm_project_name", confirm, p.Name, "the project name "+p.Name); err != nil {
			return err
		}
		cs, err := collaborators(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		fs, err := s.filesWhere(ctx, tx, "project_id", p.ID)
		if err != nil {
			return err
		}
		if _, err := forget(ctx, tx, s.now().UTC(), fs); err != nil {
			return err
		}
		// The journal entry first: it moves the serial of a row that is
		// about to go, and it is what tells other instances to drop the
		// project's cached page.
		if _, err := s.journal(ctx, tx, p.ID, p.Name, "", "remove project", a.Username); err != nil {
			return err
		}
		if err := s.record(ctx, tx, a, p, audit.ProjectRemove, map[string]any{"name": p.Name, "files": len(fs), "submitted_by": a.Username}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id = $1`, p.ID); err != nil {
			return err
		}
		gone = fs
		return s.tellCollaborators(ctx, tx, cs, p, mail.TemplateRemovedProject, map[string]any{
			"Submitter": a.Username, "SubmitterRole": roleOf(cs, a.UserID)})
	})
	if err == nil {
		s.dropBlobs(ctx, gone)
	}
	return err
}
