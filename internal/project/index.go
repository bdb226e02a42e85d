package project

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// Detail is everything the Simple API, the JSON API and the project page
// show about one project.
type Detail struct {
	Project  Project
	Releases []Release // newest version first (PEP 440 order)
	Files    []File    // ordered by version (PEP 440), then filename
}

// Detail loads a project with its releases and files, in two queries
// whatever the number of files.
func (s *Service) Detail(ctx context.Context, normalizedName string) (*Detail, error) {
	p, err := getProject(ctx, s.db, normalizedName)
	if err != nil {
		return nil, err
	}
	d := &Detail{Project: *p}
	rows, err := s.db.QueryContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE project_id = $1`, p.ID)
	if err != nil {
		return nil, err
	}
	byID := map[int64]*Release{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		d.Releases = append(d.Releases, *r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortReleases(d.Releases)
	for i := range d.Releases {
		byID[d.Releases[i].ID] = &d.Releases[i]
	}

	rows, err = s.db.QueryContext(ctx, `SELECT f.id, f.release_id, f.project_id, f.filename, f.packagetype, f.python_version,
		f.requires_python, f.size, f.md5_digest, f.sha256_digest, f.blake2_256_digest, f.blob_key,
		f.metadata_sha256, f.metadata_blake2_256, f.metadata_key, f.metadata_size, f.uploaded_at,
		fp.publisher_kind, fp.repository, fp.workflow, fp.commit_sha, fp.issuer, fp.identity
		FROM files f LEFT JOIN file_provenance fp ON fp.file_id = f.id WHERE f.project_id = $1`, p.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var f File
		var mSHA, mB2, mKey, bKind, bRepo, bWorkflow, bCommit, bIssuer, bIdentity sql.NullString
		var mSize sql.NullInt64
		if err := rows.Scan(&f.ID, &f.ReleaseID, &f.ProjectID, &f.Filename, &f.PackageType, &f.PythonVersion,
			&f.RequiresPython, &f.Size, &f.MD5, &f.SHA256, &f.Blake2_256, &f.BlobKey,
			&mSHA, &mB2, &mKey, &mSize, &f.UploadedAt, &bKind, &bRepo, &bWorkflow, &bCommit, &bIssuer, &bIdentity); err != nil {
			return nil, err
		}
		f.MetadataSHA256, f.MetadataBlake2, f.MetadataKey, f.MetadataSize = mSHA.String, mB2.String, mKey.String, mSize.Int64
		if bKind.Valid {
			f.Builder = &Builder{Kind: bKind.String, Repository: bRepo.String, Workflow: bWorkflow.String, Commit: bCommit.String,
				Issuer: bIssuer.String, Identity: bIdentity.String}
		}
		f.UploadedAt = f.UploadedAt.UTC()
		if r := byID[f.ReleaseID]; r != nil {
			f.Version, f.Yanked, f.YankedReason = r.Version, r.Yanked, r.YankedReason
		}
		d.Files = append(d.Files, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	order := map[int64]int{}
	for i, r := range d.Releases {
		order[r.ID] = len(d.Releases) - i // oldest first for files, like PyPI
	}
	sort.SliceStable(d.Files, func(i, j int) bool {
		a, b := d.Files[i], d.Files[j]
		if order[a.ReleaseID] != order[b.ReleaseID] {
			return order[a.ReleaseID] < order[b.ReleaseID]
		}
		return a.Filename < b.Filename
	})
	return d, nil
}

// sortReleases orders releases newest first by PEP 440.
func sortReleases(rs []Release) {
	parsed := make(map[int64]pep.Version, len(rs))
	for _, r := range rs {
		v, _ := pep.ParseVersion(r.Version)
		parsed[r.ID] = v
	}
	sort.SliceStable(rs, func(i, j int) bool { return pep.Compare(parsed[rs[i].ID], parsed[rs[j].ID]) > 0 })
}

// Latest returns the release a project page shows: the newest non-yanked
// final release, else the newest non-yanked one, else the newest.
func (d *Detail) Latest() *Release {
	for i := range d.Releases {
		if r := &d.Releases[i]; !r.Yanked && !r.IsPrerelease {
			return r
		}
	}
	for i := range d.Releases {
		if !d.Releases[i].Yanked {
			return &d.Releases[i]
		}
	}
	if len(d.Releases) > 0 {
		return &d.Releases[0]
	}
	return nil
}

// Release finds a release of the project by version (canonical comparison).
func (d *Detail) Release(version string) (*Release, error) {
	v, err := pep.ParseVersion(version)
	if err == nil {
		for i := range d.Releases {
			if d.Releases[i].CanonicalVersion == v.Canonical() {
				return &d.Releases[i], nil
			}
		}
	}
	return nil, derrors.New(derrors.NotFound, "%s has no release %s.", d.Project.Name, version)
}

// FilesOf returns the files of one release.
func (d *Detail) FilesOf(releaseID int64) []File {
	var out []File
	for _, f := range d.Files {
		if f.ReleaseID == releaseID {
			out = append(out, f)
		}
	}
	return out
}

// Fields decodes a release's stored metadata fields.
func (r *Release) Fields() map[string][]string {
	m := map[string][]string{}
	json.Unmarshal([]byte(r.MetadataJSON), &m)
	return m
}

// Field returns the first value of a stored metadata field.
func (r *Release) Field(name string) string {
	if v := r.Fields()[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// FileByDigest finds a listed file by its blake2b-256 digest, the key of the
// download URL. A blob without a row (an upload that crashed before its
// commit, a deleted file) is never served, nor is a file of a quarantined
// project (PEP 792).
func (s *Service) FileByDigest(ctx context.Context, blake2Hex string) (*File, error) {
	var f File
	var mSHA, mKey sql.NullString
	var mSize sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT f.id, f.project_id, f.filename, f.size, f.sha256_digest, f.blake2_256_digest, f.blob_key,
		f.metadata_sha256, f.metadata_key, f.metadata_size, f.uploaded_at FROM files f JOIN projects p ON p.id = f.project_id
		WHERE f.blake2_256_digest = $1 AND p.status <> $2`, blake2Hex, StatusQuarantined).Scan(
		&f.ID, &f.ProjectID, &f.Filename, &f.Size, &f.SHA256, &f.Blake2_256, &f.BlobKey, &mSHA, &mKey, &mSize, &f.UploadedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "file not found")
	}
	if err != nil {
		return nil, err
	}
	f.MetadataSHA256, f.MetadataKey, f.MetadataSize = mSHA.String, mKey.String, mSize.Int64
	return &f, nil
}

// RecentRelease is a row of the home page's list.
type RecentRelease struct {
	Project, NormalizedName, Version, Summary string
	CreatedAt                                 time.Time
}

// RecentReleases returns the newest releases across the index.
func (s *Service) RecentReleases(ctx context.Context, limit int) ([]RecentRelease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.name, p.normalized_name, r.version, r.summary, r.created_at
		FROM releases r JOIN projects p ON p.id = r.project_id ORDER BY r.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RecentRelease
	for rows.Next() {
		var r RecentRelease
		if err := rows.Scan(&r.Project, &r.NormalizedName, &r.Version, &r.Summary, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// Change is one journal entry, as seen by cache invalidation.
type Change struct {
	Serial int64
	Name   string // normalized project name
}

// ChangesSince returns journal entries with a serial above after, oldest
// first, at most limit of them.
func (s *Service) ChangesSince(ctx context.Context, after int64, limit int) ([]Change, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name FROM journal WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.Serial, &c.Name); err != nil {
			return nil, err
		}
		c.Name = pep.NormalizeName(c.Name)
		out = append(out, c)
	}
	return out, rows.Err()
}

// LastSerial returns the newest journal serial (0 for an empty index).
func (s *Service) LastSerial(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(id) FROM journal`).Scan(&n)
	return n.Int64, err
}

// notMetadata are form fields that describe the upload, not the release.
var notMetadata = map[string]bool{":action": true, "protocol_version": true, "md5_digest": true, "sha256_digest": true,
	"blake2_256_digest": true, "filetype": true, "pyversion": true, "comment": true, "gpg_signature": true, "attestations": true}

func metadataOnly(fields map[string][]string) map[string][]string {
	out := make(map[string][]string, len(fields))
	for k, v := range fields {
		if !notMetadata[k] && !strings.HasPrefix(k, ":") {
			out[k] = v
		}
	}
	return out
}

// IndexEntry is one project as the root of the Simple API lists it.
type IndexEntry struct {
	Name           string // display name
	NormalizedName string
	LastSerial     int64
}

// indexPage is how many projects one SQLite query of EachIndexEntry reads.
const indexPage = 5000

// IndexEntry returns one project as the root index lists it; a project
// the root index leaves out (quarantined, as on PyPI) is NotFound.
func (s *Service) IndexEntry(ctx context.Context, normalizedName string) (*IndexEntry, error) {
	p, err := getProject(ctx, s.db, normalizedName)
	if err != nil {
		return nil, err
	}
	if p.Status == StatusQuarantined {
		return nil, derrors.New(derrors.NotFound, "project %q is quarantined", normalizedName)
	}
	return &IndexEntry{Name: p.Name, NormalizedName: p.NormalizedName, LastSerial: p.LastSerial}, nil
}

// EachIndexEntry calls fn for every project the root index lists (all but
// the quarantined ones), in byte order of normalized
// name: the order of Go's string comparison, whatever the database's
// collation, so that callers can binary-search what they built from it.
//
// On PostgreSQL it is one streamed query (COLLATE "C" is byte order; the
// default collation may ignore hyphens). On SQLite, whose BINARY collation
// is byte order and whose unique index serves it, it reads keyset pages, so
// that the single connection is free between pages and uploads are not held
// up behind a scan of every project.
func (s *Service) EachIndexEntry(ctx context.Context, fn func(IndexEntry) error) error {
	if s.db.Dialect == db.Postgres {
		rows, err := s.db.QueryContext(ctx, `SELECT name, normalized_name, last_serial FROM projects WHERE status <> $1 ORDER BY normalized_name COLLATE "C"`, StatusQuarantined)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e IndexEntry
			if err := rows.Scan(&e.Name, &e.NormalizedName, &e.LastSerial); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	after := ""
	for {
		page, err := s.indexPage(ctx, after)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < indexPage {
			return nil
		}
		after = page[len(page)-1].NormalizedName
	}
}

func (s *Service) indexPage(ctx context.Context, after string) ([]IndexEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, normalized_name, last_serial FROM projects
		WHERE normalized_name > $1 AND status <> $2 ORDER BY normalized_name LIMIT $3`, after, StatusQuarantined, indexPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]IndexEntry, 0, indexPage)
	for rows.Next() {
		var e IndexEntry
		if err := rows.Scan(&e.Name, &e.NormalizedName, &e.LastSerial); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
