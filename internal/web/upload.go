package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/metrics"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// Limits on the non-file part of an upload: the long description is the only
// big field, and it is bounded too, so a client cannot make the server hold
// an unbounded form in memory.
const (
	maxFieldSize  = 8 << 20
	maxFieldsSize = 16 << 20
	maxFields     = 2000
	// maxEpilogue is how much may follow the closing boundary (RFC 2046
	// allows an epilogue; clients send a CRLF at most).
	maxEpilogue = 64 << 10
	// uploadReadBuffer is how much of an upload body is read from the
	// connection at once.
	uploadReadBuffer = 64 << 10
)

// upload is POST /legacy/, the upload API of twine, uv, poetry and flit
// (spec §4). Errors are answered in Warehouse's format by writeUploadError.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	// The whole body is read through the minimum-rate rule, including the
	// rest of a refused upload that writeUploadError drains.
	body := s.holdToMinRate(w, r.Body)
	r.Body = body
	if !s.uploads.add(body) {
		s.writeUploadError(w, r, errShutdown)
		return
	}
	defer s.uploads.remove(body)
	res, err := s.handleUpload(r)
	if err != nil && body.stopped() {
		err = errShutdown
	}
	if err != nil && body.tooSlow() {
		err = derrors.New(derrors.TooSlow, "Upload too slow: less than %s per second arrived on average, or nothing for %s, so the server stopped reading. Check the connection and upload again.",
			humanSize(s.uploadMinRate), humanDuration(s.uploadRateWindow))
	}
	if err != nil {
		s.writeUploadError(w, r, err)
		outcome := metrics.UploadRefused
		if statusOf(err) >= 500 {
			outcome = metrics.UploadFailed
		}
		// After writeUploadError, which drains what the client still sent.
		s.metrics.Upload(outcome, body.read)
		return
	}
	outcome := metrics.UploadAccepted
	if res.Duplicate {
		outcome = metrics.UploadDuplicate
	}
	s.metrics.Upload(outcome, body.read)
	if res.Duplicate {
		s.log.Info("upload was a duplicate; nothing changed", "project", res.Project, "file", res.Filename, "request_id", requestIDOf(w))
	} else {
		s.simple.invalidate(res.Project)
		s.log.Info("uploaded", "project", res.Project, "file", res.Filename, "serial", res.Serial, "request_id", requestIDOf(w))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleUpload(r *http.Request) (project.UploadResult, error) {
	var none project.UploadResult
	ctx := r.Context()

	// Step 2: administrator switches.
	if s.accounts.ReadOnly(ctx) {
		return none, derrors.New(derrors.Forbidden, "Read-only mode: Uploads are temporarily disabled.")
	}

	// Steps 3 and 4: who is this? Decided from headers alone, before a byte
	// of the body is read.
	raw, ok, err := token.FromRequest(r)
	if errors.Is(err, token.ErrPasswordAuth) {
		return none, s.tokens.PasswordAuthError()
	}
	if !ok || err != nil {
		return none, s.tokens.InvalidAuth()
	}
	v, err := s.tokens.Authenticate(ctx, raw)
	if err != nil {
		return none, err
	}
	if v.ReadOnly() {
		return none, s.tokens.ErrReadOnly()
	}

	// The body: form fields into memory (bounded), the file staged in the
	// blob store while it is hashed, with the size limit enforced as it
	// streams.
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return none, derrors.New(derrors.Invalid, "Invalid request: the upload must be multipart/form-data.")
	}
	// The multipart reader reads 4 KiB at a time; in front of the socket
	// that is one system call per 4 KiB, which showed in upload profiles.
	body := bufio.NewReaderSize(r.Body, uploadReadBuffer)
	mr := multipart.NewReader(body, params["boundary"])
	fields := map[string][]string{}
	var (
		content            *project.Spooled
		filename, partType string
		fieldBytes, nField int
	)
	defer func() {
		if content != nil {
			content.Close()
		}
	}()
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			// Read the body to its end (the final CRLF), which also lifts
			// the read deadline for the work that follows.
			n, err := io.Copy(io.Discard, io.LimitReader(body, maxEpilogue+1))
			if err != nil {
				return none, derrors.New(derrors.Invalid, "Invalid request: malformed multipart body (%s).", cleanErr(err))
			}
			if n > maxEpilogue {
				return none, derrors.New(derrors.Invalid, "Invalid request: more than %d KiB of data after the end of the multipart body.", maxEpilogue>>10)
			}
			break
		}
		if err != nil {
			return none, derrors.New(derrors.Invalid, "Invalid request: malformed multipart body (%s).", cleanErr(err))
		}
		field := part.FormName()
		rawName := rawFileName(part)
		isFile := rawName != ""
		switch {
		case field == "":
			part.Close()
			continue
		case field == "content":
			if !isFile {
				return none, derrors.New(derrors.Invalid, "Upload payload does not have a file.")
			}
			if content != nil {
				return none, derrors.New(derrors.Invalid, "content: Field given more than once; send it once.")
			}
			name := ""
			if n := fields["name"]; len(n) > 0 {
				name = n[0]
			}
			limit := s.projects.FileLimit(ctx, name)
			filename, partType = rawName, part.Header.Get("Content-Type")
			content, err = s.projects.Spool(ctx, part, limit)
			if errors.Is(err, project.ErrSpoolTooLarge) {
				return none, s.projects.TooLargeError(name, limit)
			}
			if errors.Is(err, project.ErrSpoolStore) {
				// The server's fault, not the file's: a full disk is a
				// 507 with a message, anything else a 500.
				return none, project.OutOfSpace(err)
			}
			if err != nil {
				return none, derrors.New(derrors.Invalid, "Invalid request: the file could not be read (%s).", cleanErr(err))
			}
		case isFile && field == "gpg_signature":
			// Signatures are no longer accepted by PyPI; read past them.
			io.Copy(io.Discard, io.LimitReader(part, maxFieldSize))
		case isFile:
			return none, derrors.New(derrors.Invalid, "%s: Should not be a tuple.", field)
		default:
			nField++
			b, err := io.ReadAll(io.LimitReader(part, maxFieldSize+1))
			if err != nil {
				return none, derrors.New(derrors.Invalid, "Invalid request: malformed multipart body (%s).", cleanErr(err))
			}
			fieldBytes += len(b)
			if len(b) > maxFieldSize || fieldBytes > maxFieldsSize || nField > maxFields {
				return none, derrors.New(derrors.Invalid, "%s: Field too large; the form fields may hold at most %d MiB.", field, maxFieldsSize>>20)
			}
			if !utf8.Valid(b) {
				return none, derrors.New(derrors.Invalid, "%s: Field is not valid UTF-8.", field)
			}
			// NUL has no place in metadata and confuses C-string consumers.
			fields[field] = append(fields[field], strings.ReplaceAll(string(b), "\x00", `\x00`))
		}
	}

	if a := fields[":action"]; len(a) != 1 || a[0] != "file_upload" {
		return none, actionError(fields[":action"])
	}
	fields, err = project.Sanitize(fields)
	if err != nil {
		return none, err
	}
	form, err := project.ParseForm(fields)
	if err != nil {
		return none, err
	}
	if content == nil {
		return none, derrors.New(derrors.Invalid, "Upload payload does not have a file.")
	}
	who := s.uploaderFor(ctx, v)
	who.Client = account.Client{IP: s.clientIP(r), UserAgent: r.UserAgent()}
	res, err := s.projects.AcceptUpload(ctx, who, &project.Upload{Form: form, Filename: filename, ContentType: partType, Content: content,
		Attestations: firstField(fields, "attestations")})
	if err == nil {
		s.afterUpload(ctx, v, res)
	}
	return res, err
}

// rawFileName is the part's filename parameter exactly as the client sent
// it. Part.FileName passes it through filepath.Base, which would silently
// turn "../x.whl" or "dist/x.whl" into "x.whl": the upload checks must see
// (and refuse) the name as sent, as Warehouse does.
func rawFileName(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

func actionError(action []string) error {
	switch {
	case len(action) == 0:
		return derrors.New(derrors.Invalid, "Missing :action field; twine and other clients send ':action=file_upload'.")
	case len(action) > 1:
		return derrors.New(derrors.Invalid, ":action: Field given more than once; send it once.")
	case action[0] == "submit" || action[0] == "submit_pkg_info":
		return derrors.New(derrors.Gone, "Project pre-registration is no longer required or supported, upload your files instead.")
	case action[0] == "doc_upload":
		return derrors.New(derrors.Gone, "Uploading documentation is no longer supported, we recommend using https://readthedocs.org/.")
	}
	return derrors.New(derrors.Invalid, "Unknown :action %q; the only action is 'file_upload'.", action[0])
}

// cleanErr returns an error's text without anything that could carry
// request bytes into a status line unchecked.
func cleanErr(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

func (s *Server) helpURL(anchor string) string { return s.baseURL + "/help/#" + anchor }

// uploadPrerequisites is Warehouse's step 11: the user behind the token
// must have a verified primary email and two-factor authentication.
func (s *Server) uploadPrerequisites(ctx context.Context, userID int64, username string) error {
	u, err := s.accounts.ByID(ctx, userID)
	if err != nil {
		return err
	}
	if !u.PrimaryVerified {
		return derrors.New(derrors.Forbidden, "User '%s', associated with the API token used, does not have a verified primary email address. Please add a verified primary email before attempting to upload to %s. See %s for more information.",
			username, s.siteName, s.helpURL("verified-email"))
	}
	has, err := s.mfa.HasTwoFactor(ctx, userID)
	if err != nil {
		return err
	}
	if !has {
		return derrors.New(derrors.Forbidden, "User '%s', associated with the API token used, does not have two-factor authentication enabled. Please enable two-factor authentication before attempting to upload to %s. See %s for more information.",
			username, s.siteName, s.helpURL("two-factor-authentication"))
	}
	return nil
}

// firstField is a form field's value ("" when absent; ParseForm has
// refused repeats of single-use fields).
func firstField(fields map[string][]string, name string) string {
	if v := fields[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
