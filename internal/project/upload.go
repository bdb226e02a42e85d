package project

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"github.com/gatehouse-index/gatehouse/internal/attest"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/archive"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/failpoint"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// Uploader is who is uploading: the user behind an API token, with the
// token's own restrictions.
type Uploader struct {
	UserID   int64
	Username string
	// CanCreateProjects is false for tokens limited to some projects: such a
	// token can never create a new project.
	CanCreateProjects bool
	// Permits checks the token's caveats against a project.
	Permits func(normalizedName string, projectID int64) error
	// Prerequisites checks what the account itself must have to upload (a
	// verified primary email and a second factor); it runs after the
	// permission check, as on PyPI (pypi/warehouse#18575). May be nil.
	Prerequisites func() error
	// Policies checks the security policies that hold on the project (its
	// organization's and the site's: trusted publishing only, a security
	// key on the account) once the uploader is known to be allowed there,
	// so that nobody learns a project's policies without a role on it
	// (projectID 0: a new project). May be nil.
	Policies func(normalizedName string, projectID int64) error
	// Publisher is set for a token minted for a trusted publisher (UserID
	// is then 0): Permits, which checks the project is one of the
	// publisher's, is the whole permission; no role is looked up. Username
	// is what the journal records as the submitter.
	Publisher bool
	// Attest is the trusted publisher as its attestations must name it
	// (nil for a long-lived token: attestations are then refused).
	Attest *attest.Publisher
	// Client is where the upload came from, for the audit trail.
	Client account.Client
}

// Upload is one file upload: the validated form plus the spooled content.
type Upload struct {
	Form        *Form
	Filename    string // from the content part's Content-Disposition
	ContentType string // of the content part
	Content     *Spooled
	// Attestations is the PEP 740 `attestations` field ("": none).
	Attestations string
}

// UploadResult says what an upload did.
type UploadResult struct {
	Project   string // normalized name
	Filename  string
	Duplicate bool // an identical file was already there; nothing changed
	Serial    int64
}

// FileLimit returns the per-file upload limit that applies to a project name,
// so the web layer can stop reading as soon as it is exceeded.
func (s *Service) FileLimit(ctx context.Context, name string) int64 {
	limit := s.limits.MaxFileSize
	if p, err := getProject(ctx, s.db, pep.NormalizeName(name)); err == nil && p.UploadLimit.Valid {
		limit = p.UploadLimit.Int64
	}
	return limit
}

// TooLargeError is the message for a file over the per-file limit.
func (s *Service) TooLargeError(name string, limit int64) error {
	return derrors.New(derrors.Invalid, "File too large. Limit for project '%s' is %d MB. See %s for more information.",
		name, limit/(1<<20), s.help("file-size-limit"))
}

// AcceptUpload runs the checks of spec §4.2 from step 9 on, in Warehouse's
// order, then stores the file. The bytes are made durable before the
// database transaction that lists them commits; if anything fails, nothing
// is listed and no row is written.
func (s *Service) AcceptUpload(ctx context.Context, who Uploader, up *Upload) (UploadResult, error) {
	res, err := s.acceptUpload(ctx, who, up)
	if errors.Is(err, errProjectCreatedMeanwhile) {
		// Another upload created the project between this one's look-up
		// and its commit: most often the same user sending several files
		// of a new project at once (CI jobs in parallel). It is an
		// existing project now, with the permission rules of one.
		res, err = s.acceptUpload(ctx, who, up)
	}
	return res, err
}

// errProjectCreatedMeanwhile: the upload meant to create its project, and
// a concurrent upload created it first. AcceptUpload runs it again.
var errProjectCreatedMeanwhile = errors.New("the project was created by a concurrent upload")

func (s *Service) acceptUpload(ctx context.Context, who Uploader, up *Upload) (res UploadResult, err error) {
	defer derrors.Wrap(&err, "upload %q", up.Filename)
	f := up.Form
	norm := pep.NormalizeName(f.Name)
	res.Project, res.Filename = norm, up.Filename

	// Step 9: the project, or the right to create it.
	proj, err := getProject(ctx, s.db, norm)
	isNew := errors.Is(err, derrors.NotFound)
	if err != nil && !isNew {
		return res, err
	}
	var projectID int64
	displayName := f.Name
	if isNew {
		if !who.CanCreateProjects {
			return res, derrors.New(derrors.Forbidden, "The given token isn't allowed to create the new project '%s'. Create it with a token scoped to your whole account. See %s for more information.", f.Name, s.help("project-name"))
		}
		if err := s.checkNewProjectName(ctx, s.db, f.Name); err != nil {
			// A concurrent upload may have created the project since the
			// lookup above; then it is an existing project, not a new one.
			p, gerr := getProject(ctx, s.db, norm)
			if gerr != nil {
				return res, err
			}
			proj, isNew = p, false
		}
	}
	if !isNew {
		projectID, displayName = proj.ID, proj.Name
	}

	// Step 10: permission. The token's caveats speak first, then the role.
	if who.Permits != nil {
		if err := who.Permits(norm, projectID); err != nil {
			return res, err
		}
	}
	if !isNew && !who.Publisher {
		r, err := role(ctx, s.db, proj.ID, who.UserID)
		if err != nil {
			return res, err
		}
		if r != RoleOwner && r != RoleMaintainer {
			return res, derrors.New(derrors.Forbidden, "The user '%s' isn't allowed to upload to project '%s'. See %s for more information.", who.Username, displayName, s.help("project-name"))
		}
		// PEP 792: neither an archived nor a quarantined project takes
		// uploads. PyPI answers an archived project with the permission
		// message above; this says what is going on and what to do.
		if err := s.refuseByStatus(proj); err != nil {
			return res, err
		}
	}

	// Step 11: the account's own prerequisites, then the policies.
	if who.Prerequisites != nil {
		if err := who.Prerequisites(); err != nil {
			return res, err
		}
	}
	if who.Policies != nil {
		if err := who.Policies(norm, projectID); err != nil {
			return res, err
		}
	}

	// Step 16: the release, if it exists.
	rel, err := getRelease(ctx, s.db, projectID, f.Version)
	if err != nil && !errors.Is(err, derrors.NotFound) {
		return res, err
	}

	// Step 17: the filename.
	if err := s.checkFilename(up); err != nil {
		return res, err
	}

	// Step 18: size and digests.
	limit := s.limits.MaxFileSize
	totalLimit := s.limits.MaxProjectSize
	var totalSize int64
	if !isNew {
		if proj.UploadLimit.Valid {
			limit = proj.UploadLimit.Int64
		}
		if proj.TotalSizeLimit.Valid {
			totalLimit = proj.TotalSizeLimit.Int64
		}
		totalSize = proj.TotalSize
	}
	c := up.Content
	if c.Size > limit {
		return res, s.TooLargeError(displayName, limit)
	}
	if totalSize+c.Size > totalLimit {
		return res, s.projectTooLarge(displayName, totalLimit)
	}
	if (f.MD5 != "" && f.MD5 != c.MD5) || (f.SHA256 != "" && f.SHA256 != c.SHA256) || (f.Blake2 != "" && f.Blake2 != c.Blake2_256) {
		return res, derrors.New(derrors.Invalid, "The digest supplied does not match a digest calculated from the uploaded file.")
	}

	// Step 19: duplicates and filename reuse.
	if dup, err := s.checkDuplicate(ctx, s.db, up); err != nil || dup {
		res.Duplicate = dup
		return res, err
	}
	// Past this point a refusal can be the doing of a concurrent upload of
	// this very file that committed after the check above (it took the new
	// project's name, or the release's one sdist): that upload is then a
	// duplicate, and is answered as one.
	defer func() {
		if err != nil {
			if dup, derr := s.checkDuplicate(ctx, s.db, up); derr == nil && dup {
				res.Duplicate, err = true, nil
			}
		}
	}()

	// Steps 20 and 21: release rules. The release-age policy (14 days on
	// PyPI; a setting here, per site and per project): a file added long
	// after a release is out is a typical sign of a hijacked account
	// planting malware in a version everyone trusts.
	if rel != nil {
		if days := s.ReleaseAgeDays(proj); s.now().Sub(rel.CreatedAt) > time.Duration(days)*24*time.Hour {
			return res, derrors.New(derrors.Invalid, "Uploading new files to releases older than %s is not allowed.", daysText(days))
		}
		if f.Filetype == "sdist" {
			if err := checkOneSdist(ctx, s.db, rel.ID); err != nil {
				return res, err
			}
		}
	}

	// Steps 22 to 24: the archive, its filename and its metadata.
	meta, err := s.inspect(up, norm)
	if err != nil {
		return res, err
	}

	// Step 25: attestations, verified before anything is written.
	mustAttest, err := requireAttestations(ctx, s.db, projectID)
	if err != nil {
		return res, err
	}
	atts, err := s.checkAttestations(who, up, mustAttest)
	if err != nil {
		return res, err
	}

	// Step 26: make the bytes durable, then list them. The staged bytes
	// (the file, and a wheel's METADATA) are flushed first; they become
	// blobs under their keys only inside the transaction that lists them,
	// under the blobs' lock (storeBlobs, blobrefs.go). So a sweep of orphan
	// blobs can never take them between the two, and an upload the
	// database refuses before that point (it is down, a concurrent upload
	// won) leaves no blob: its staged files are discarded.
	key := BlobKey(c.Blake2_256)
	var m *storedMetadata
	var ms blob.Staged
	if f.Filetype == "bdist_wheel" {
		m = newStoredMetadata(key, meta)
		if ms, err = s.stageMetadata(ctx, meta); err != nil {
			return res, err
		}
		defer ms.Discard()
	}
	if err := c.sync(); err != nil {
		return res, OutOfSpace(err)
	}
	failpoint.Hit("upload-staged")
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		res.Serial, err = s.insertFile(ctx, tx, who, up, isNew, key, m, limit, totalLimit)
		if err != nil {
			return err
		}
		if err := storeProvenance(ctx, tx, up.Filename, atts); err != nil {
			return err
		}
		if err := s.storeBlobs(ctx, tx, c, key, m, ms); err != nil {
			return err
		}
		failpoint.Hit("upload-before-commit")
		return nil
	})
	if err != nil && c.stored {
		// Published, then not listed (the commit failed): what this
		// upload wrote must not linger. If the error is a lost race with
		// an identical upload, its row names the blobs and they stay.
		s.dropUnlisted(ctx, err, key, m)
	} else if err == nil {
		failpoint.Hit("upload-committed")
		s.retryUnlisted(ctx)
	}
	// Whichever check noticed (the unique index, or the name checks in the
	// transaction, which can see the other project half-way: "too similar"
	// before "conflicts"), a new project that now exists was created by a
	// concurrent upload. Its bytes are still staged for the second try.
	if isNew && err != nil && !c.stored {
		if _, gerr := getProject(ctx, s.db, norm); gerr == nil {
			if dup, derr := s.checkDuplicate(ctx, s.db, up); derr != nil || !dup {
				return res, errProjectCreatedMeanwhile
			}
		}
	}
	if db.IsUniqueViolation(err) {
		// A concurrent upload won the race: answer as if it had come first.
		dup, derr := s.checkDuplicate(ctx, s.db, up)
		if derr != nil {
			return res, derr
		}
		if dup {
			res.Duplicate = true
			return res, nil
		}
		if isNew {
			return res, derrors.New(derrors.Conflict, "The name '%s' conflicts with an existing project. See %s for more information.", f.Name, s.help("project-name"))
		}
		return res, derrors.New(derrors.Conflict, "File already exists ('%s', with blake2_256 hash '%s'). See %s for more information.", up.Filename, c.Blake2_256, s.help("file-name-reuse"))
	}
	return res, err
}

// OutOfSpace turns a write the disk refused for lack of space (or quota)
// into the error the client is told about (507); other errors are returned
// as they are. Nothing of the upload is kept: the caller removes what it
// wrote.
func OutOfSpace(err error) error {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return err
	}
	return &outOfSpace{err}
}

type outOfSpace struct{ err error }

func (e *outOfSpace) Error() string { return e.err.Error() }
func (e *outOfSpace) Unwrap() []error {
	return []error{&derrors.Error{Kind: derrors.NoSpace, Msg: e.message()}, e.err}
}
func (e *outOfSpace) message() string {
	return "The server has run out of disk space, so this file was not stored. Nothing was changed; upload it again later, or tell the index's administrator."
}

func (s *Service) projectTooLarge(name string, limit int64) error {
	return derrors.New(derrors.Invalid, "Project size too large. Limit for project '%s' total size is %d GB. See %s for more information.",
		name, limit/(1<<30), s.help("project-size-limit"))
}

// BlobKey is where a file's bytes live: derived from its blake2b-256 digest
// only, split so no directory grows too large.
func BlobKey(blake2Hex string) string {
	return blake2Hex[:2] + "/" + blake2Hex[2:4] + "/" + blake2Hex
}

func (s *Service) checkFilename(up *Upload) error {
	name := up.Filename
	for _, r := range name {
		if r < 32 || r == 127 {
			return derrors.New(derrors.Invalid, "Cannot upload a file with non-printable characters (ascii 0-31) or the DEL character (ascii 127) in the name.")
		}
	}
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return derrors.New(derrors.Invalid, "Cannot upload a file with '/' or '\\' in the name.")
	}
	if len(name) > 255 {
		return derrors.New(derrors.Invalid, "Filename is too long (at most 255 characters).")
	}
	var ok bool
	switch up.Form.Filetype {
	case "sdist":
		ok = strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".zip")
	case "bdist_wheel":
		ok = strings.HasSuffix(name, ".whl")
	}
	if !ok {
		return derrors.New(derrors.Invalid, "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information")
	}
	if strings.HasPrefix(strings.ToLower(up.ContentType), "image/") {
		return derrors.New(derrors.Invalid, "Invalid distribution file.")
	}
	return nil
}

// checkDuplicate reports whether an identical file (same name, same sha256
// and blake2b) is already there, and refuses a different file that reuses a
// name or the same bytes under another name, or a name used before.
func (s *Service) checkDuplicate(ctx context.Context, q querier, up *Upload) (bool, error) {
	c := up.Content
	// The filename log is read before the files: a file and its log entry
	// are committed together, so a concurrent upload that commits between
	// the two queries shows up in files, not as a deleted file's name.
	// The log also says whether these bytes were ever uploaded under
	// another name (wasAs): the bytes of a deleted file do not come back
	// under another name either, or a deletion that raced with such an
	// upload could remove the new file's bytes after it was listed.
	rows, err := q.QueryContext(ctx, `SELECT filename FROM filename_log WHERE filename = $1 OR blake2_256_digest = $2`, up.Filename, c.Blake2_256)
	if err != nil {
		return false, err
	}
	logged, wasAs := false, ""
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return false, err
		}
		if name == up.Filename {
			logged = true
		} else {
			wasAs = name
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	var filename, sha, b2 string
	err = q.QueryRowContext(ctx,
		`SELECT filename, sha256_digest, blake2_256_digest FROM files WHERE filename = $1 OR blake2_256_digest = $2 LIMIT 1`,
		up.Filename, c.Blake2_256).Scan(&filename, &sha, &b2)
	switch {
	case err == nil:
		if filename == up.Filename && sha == c.SHA256 && b2 == c.Blake2_256 {
			return true, nil
		}
		return false, derrors.New(derrors.Invalid, "File already exists ('%s', with blake2_256 hash '%s'). See %s for more information.", up.Filename, c.Blake2_256, s.help("file-name-reuse"))
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	if logged {
		return false, derrors.New(derrors.Invalid, "This filename was previously used by a file that has since been deleted. Use a different version. See %s for more information.", s.help("file-name-reuse"))
	}
	if wasAs != "" {
		return false, derrors.New(derrors.Invalid, "This file was previously uploaded as '%s', which has since been deleted. Build a new version. See %s for more information.", wasAs, s.help("file-name-reuse"))
	}
	return false, nil
}

// daysText is "1 day" or "14 days".
func daysText(n int) string {
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

// refuseByStatus refuses uploads to an archived or quarantined project.
func (s *Service) refuseByStatus(p *Project) error {
	switch p.Status {
	case StatusArchived:
		return derrors.New(derrors.Forbidden, "Project '%s' is archived and accepts no uploads. An owner can unarchive it on its settings page. See %s for more information.", p.Name, s.help("archived"))
	case StatusQuarantined:
		return derrors.New(derrors.Forbidden, "Project '%s' is quarantined by the administrators and accepts no uploads. See %s for more information.", p.Name, s.help("quarantined"))
	}
	return nil
}

func checkOneSdist(ctx context.Context, q querier, releaseID int64) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE release_id = $1 AND packagetype = 'sdist'`, releaseID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return derrors.New(derrors.Invalid, "Only one sdist may be uploaded per release.")
	}
	return nil
}

// inspect validates the archive and checks that its filename and its own
// metadata agree with the form. It returns the metadata file's bytes.
func (s *Service) inspect(up *Upload, norm string) ([]byte, error) {
	f := up.Form
	var (
		kind     archive.Kind
		distInfo string
		fileVer  string
		fileName string
	)
	switch f.Filetype {
	case "bdist_wheel":
		w, err := pep.ParseWheelFilename(up.Filename)
		if err != nil {
			return nil, derrors.New(derrors.Invalid, "Invalid wheel filename (wrong number of parts): %s", up.Filename)
		}
		kind, fileName, fileVer = archive.Wheel, w.Name, w.Version
		distInfo = w.Name + "-" + w.Version + ".dist-info"
	default:
		sd, err := parseSdistFor(up.Filename, norm)
		if err != nil {
			return nil, derrors.New(derrors.Invalid, "Invalid source distribution filename: %s. It should be '%s'.", up.Filename, pep.SdistFilenameFor(f.Name, f.Version.String()))
		}
		kind, fileName, fileVer = archive.SdistTarGz, sd.Name, sd.Version
		if sd.Ext == ".zip" {
			kind = archive.SdistZip
		}
	}
	if pep.NormalizeName(fileName) != norm {
		return nil, derrors.New(derrors.Invalid, "Start filename for '%s' with '%s'.", f.Name, strings.ReplaceAll(norm, "-", "_"))
	}
	if v, err := pep.ParseVersion(fileVer); err != nil || v.Canonical() != f.Version.Canonical() {
		return nil, derrors.New(derrors.Invalid, "Version in filename should be '%s' not '%s'.", f.Version.String(), fileVer)
	}
	res, err := archive.Inspect(up.Content, up.Content.Size, kind, distInfo, archive.DefaultLimits())
	if err != nil {
		if errors.Is(err, archive.ErrInvalid) {
			return nil, derrors.New(derrors.Invalid, "Invalid distribution file. %s", err.Error())
		}
		return nil, err
	}
	md, err := pep.ParseMetadata(res.Metadata)
	if err != nil {
		return nil, derrors.New(derrors.Invalid, "Invalid distribution file. %s: %s", res.MetadataPath, err.Error())
	}
	if pep.NormalizeName(md.Name()) != norm {
		return nil, derrors.New(derrors.Invalid, "Invalid distribution file. The name in %s ('%s') does not match the upload ('%s').", res.MetadataPath, md.Name(), f.Name)
	}
	if v, err := pep.ParseVersion(md.Version()); err != nil || v.Canonical() != f.Version.Canonical() {
		return nil, derrors.New(derrors.Invalid, "Invalid distribution file. The version in %s ('%s') does not match the upload ('%s').", res.MetadataPath, md.Version(), f.Version.String())
	}
	if err := agreeWithMetadata(f, md, res.MetadataPath); err != nil {
		return nil, err
	}
	return res.Metadata, nil
}

// releaseFields renders the form's metadata as JSON for the JSON API.
func releaseFields(f *Form) string {
	b, _ := json.Marshal(metadataOnly(f.Fields))
	return string(b)
}

// parseSdistFor parses an sdist filename knowing which project it belongs
// to. Legacy names ("my-pkg-1.0-rc-1.tar.gz") are ambiguous on their own; the
// split whose name part normalizes to the project wins.
func parseSdistFor(filename, norm string) (pep.SdistFilename, error) {
	sd, err := pep.ParseSdistFilename(filename)
	if err != nil || pep.NormalizeName(sd.Name) == norm {
		return sd, err
	}
	base := strings.TrimSuffix(strings.TrimSuffix(filename, ".tar.gz"), ".zip")
	for i := strings.Index(base, "-"); i > 0; i = nextDash(base, i) {
		if pep.NormalizeName(base[:i]) == norm {
			if _, verr := pep.ParseVersion(base[i+1:]); verr == nil {
				return pep.SdistFilename{Name: base[:i], Version: base[i+1:], Ext: filename[len(base):]}, nil
			}
		}
	}
	return sd, nil
}

func nextDash(s string, i int) int {
	j := strings.Index(s[i+1:], "-")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
