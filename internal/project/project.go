// Package project holds Gatehouse's package index: projects, releases, files,
// roles and the journal of changes, the rules an upload must pass, and the
// data behind the Simple and JSON APIs.
//
// Storage layout: a file's bytes live in the blob store under a key derived
// from its blake2b-256 digest ("ab/cd/<64 hex>"), never from the client's
// filename; its PEP 658 metadata under the same key plus ".metadata". The
// database row is written only after the bytes are durable, in the same
// transaction as the journal entry that makes it visible, so a crash at any
// point leaves either nothing listed or a listed file whose bytes exist.
package project

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"github.com/gatehouse-index/gatehouse/internal/attest"
	"io"
	"log/slog"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Roles a user can hold on a project.
const (
	RoleOwner      = "Owner"
	RoleMaintainer = "Maintainer"
)

// Project is one row of the projects table.
type Project struct {
	ID             int64
	Name           string // display name, as first uploaded
	NormalizedName string // PEP 503
	CreatedAt      time.Time
	LastSerial     int64
	TotalSize      int64
	UploadLimit    sql.NullInt64 // per-file limit override, bytes
	TotalSizeLimit sql.NullInt64 // per-project total override, bytes
	// Status is StatusActive, StatusArchived or StatusQuarantined: the
	// project's PEP 792 status marker.
	Status          string
	StatusChangedAt sql.NullTime
	// ReleaseAgeDays overrides the site's release-age policy: no new files
	// on a release older than this many days.
	ReleaseAgeDays sql.NullInt64
}

// Release is one version of a project.
type Release struct {
	ID                     int64
	ProjectID              int64
	Version                string
	CanonicalVersion       string
	IsPrerelease           bool
	Summary                string
	Description            string
	DescriptionContentType string
	DescriptionHTML        string
	RequiresPython         string
	MetadataJSON           string
	Yanked                 bool
	YankedReason           string
	CreatedAt              time.Time
}

// File is one distribution file of a release.
type File struct {
	ID             int64
	ReleaseID      int64
	ProjectID      int64
	Version        string // of its release
	Filename       string
	PackageType    string // "sdist" or "bdist_wheel"
	PythonVersion  string
	RequiresPython string
	Size           int64
	MD5            string
	SHA256         string
	Blake2_256     string
	BlobKey        string
	MetadataSHA256 string // "" when the file has no PEP 658 metadata
	MetadataBlake2 string
	MetadataKey    string
	MetadataSize   int64
	UploadedAt     time.Time
	Yanked         bool
	YankedReason   string
	// Builder is who built the file, from its verified attestations
	// (PEP 740); nil when it has none.
	Builder *Builder
}

// Builder is the trusted publisher a file's attestations name: a forge's
// repository and workflow, or (Google, custom issuers) an identity.
type Builder struct {
	Kind, Repository, Workflow, Commit string
	Issuer, Identity                   string
}

// Key tells builders apart, for "built by another publisher".
func (b *Builder) Key() string {
	return b.Kind + " " + b.Issuer + " " + b.Repository + " " + b.Workflow + " " + b.Identity
}

// Limits bounds what uploads may store.
type Limits struct {
	MaxFileSize    int64 // default per-file limit
	MaxProjectSize int64 // default per-project total
	// ReleaseAgeDays is the site's release-age policy: no new files on a
	// release older than this many days (0: DefaultReleaseAgeDays).
	ReleaseAgeDays int
}

// DefaultReleaseAgeDays is PyPI's release-age policy.
const DefaultReleaseAgeDays = 14

// Service is the package index. Create it with NewService.
type Service struct {
	db      *db.DB
	blobs   blob.Store
	limits  Limits
	log     *slog.Logger
	now     func() time.Time
	helpURL string

	notifier account.Notifier
	links    account.Links
	rand     io.Reader
	created  CreateHook
	attest   *attest.Verifier

	unlisted unlistedQueue // blobs of refused uploads still to remove (blobrefs.go)
}

// CreateHook runs in the transaction that creates a project, after its
// row and its first owner are written. creatorID is that owner.
type CreateHook func(ctx context.Context, tx *sql.Tx, projectID int64, name string, creatorID int64) error

// Options configures a Service.
type Options struct {
	Limits  Limits
	HelpURL string           // base of help links in error messages, e.g. "https://pypi.example.com/help/"
	Now     func() time.Time // default time.Now
	Log     *slog.Logger
	// Notifier queues the emails that tell a project's owners and
	// maintainers of a change (collaboration, yanks, deletions,
	// quarantine); nil drops them (the events are still recorded).
	Notifier account.Notifier
	// Links are the pages emailed links open; invitations use
	// VerifyProjectRole.
	Links account.Links
	Rand  io.Reader // invitation tokens; nil: crypto/rand
	// OnCreate, if set, runs whenever a project is created (trusted
	// publishing invalidates other users' pending publishers for the name).
	OnCreate CreateHook
	// Attest verifies PEP 740 attestations on uploads; nil refuses them.
	Attest *attest.Verifier
}

// NewService returns a Service over d and blobs.
func NewService(d *db.DB, blobs blob.Store, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Limits.ReleaseAgeDays <= 0 {
		o.Limits.ReleaseAgeDays = DefaultReleaseAgeDays
	}
	return &Service{db: d, blobs: blobs, limits: o.Limits, log: o.Log, now: o.Now, helpURL: o.HelpURL,
		notifier: o.Notifier, links: o.Links, rand: o.Rand, created: o.OnCreate, attest: o.Attest}
}

// Blobs returns the blob store holding the files.
func (s *Service) Blobs() blob.Store { return s.blobs }

// DB returns the database.
func (s *Service) DB() *db.DB { return s.db }

func (s *Service) help(anchor string) string { return s.helpURL + "#" + anchor }

const projectColumns = `id, name, normalized_name, created_at, last_serial, total_size, upload_limit, total_size_limit,
	status, status_changed_at, release_age_days`

func scanProject(row interface{ Scan(...any) error }) (*Project, error) {
	var p Project
	err := row.Scan(&p.ID, &p.Name, &p.NormalizedName, &p.CreatedAt, &p.LastSerial, &p.TotalSize, &p.UploadLimit, &p.TotalSizeLimit,
		&p.Status, &p.StatusChangedAt, &p.ReleaseAgeDays)
	if err != nil {
		return nil, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	p.StatusChangedAt.Time = p.StatusChangedAt.Time.UTC()
	return &p, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Get returns the project with the given PEP 503 normalized name.
func (s *Service) Get(ctx context.Context, normalizedName string) (*Project, error) {
	return getProject(ctx, s.db, normalizedName)
}

func getProject(ctx context.Context, q querier, normalizedName string) (*Project, error) {
	p, err := scanProject(q.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE normalized_name = $1`, normalizedName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "project %q not found", normalizedName)
	}
	if err != nil {
		return nil, fmt.Errorf("get project %q: %w", normalizedName, err)
	}
	return p, nil
}

// ByID returns the project with this id.
func (s *Service) ByID(ctx context.Context, id int64) (*Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "project %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get project %d: %w", id, err)
	}
	return p, nil
}

// Role returns the user's role on the project, or "" if none: the
// strongest they hold as a collaborator, through an organization's role or
// through a team (the effective_roles view).
func (s *Service) Role(ctx context.Context, projectID, userID int64) (string, error) {
	return role(ctx, s.db, projectID, userID)
}

func role(ctx context.Context, q querier, projectID, userID int64) (string, error) {
	var r string
	err := q.QueryRowContext(ctx, `SELECT role FROM effective_roles WHERE project_id = $1 AND user_id = $2
		ORDER BY CASE role WHEN 'Owner' THEN 0 ELSE 1 END LIMIT 1`, projectID, userID).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return r, err
}

// ListProjects returns every project, ordered by normalized name.
func (s *Service) ListProjects(ctx context.Context) ([]Project, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY normalized_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// Membership is a user's standing on a project, for the management gate.
type Membership struct {
	Project *Project
	Role    string // RoleOwner, RoleMaintainer, or "" for none
}

// MembershipOf returns the project with this normalized name and the
// user's role on it, in one read.
func (s *Service) MembershipOf(ctx context.Context, normalizedName string, userID int64) (*Membership, error) {
	p, err := getProject(ctx, s.db, normalizedName)
	if err != nil {
		return nil, err
	}
	r, err := role(ctx, s.db, p.ID, userID)
	if err != nil {
		return nil, err
	}
	return &Membership{Project: p, Role: r}, nil
}
