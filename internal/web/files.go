package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// serveFile serves /packages/<ab>/<cd>/<blake2 digest>/<filename> and the
// PEP 658 metadata at the same URL plus ".metadata".
//
// http.ServeContent does Range (including suffix ranges, which uv and pip's
// lazy wheel use to read a wheel's central directory), If-None-Match and
// If-Range; the fs blob store hands it an *os.File, so the body goes out with
// sendfile.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) error {
	digest, name := r.PathValue("digest"), r.PathValue("filename")
	if len(digest) != 64 || r.PathValue("a") != digest[:2] || r.PathValue("b") != digest[2:4] {
		return derrors.New(derrors.NotFound, "No such file.")
	}
	f, err := s.projects.FileByDigest(r.Context(), digest)
	if errors.Is(err, derrors.NotFound) {
		return derrors.New(derrors.NotFound, "No such file.")
	}
	if err != nil {
		return err
	}
	// A read token limited to other projects gets the same answer.
	if ok, err := s.mayRead(r, "", f.ProjectID); err != nil {
		return err
	} else if !ok {
		return derrors.New(derrors.NotFound, "No such file.")
	}
	key, etag, ctype := f.BlobKey, `"`+f.Blake2_256+`"`, contentTypeOf(f.Filename)
	switch name {
	case f.Filename:
	case f.Filename + ".metadata":
		if f.MetadataKey == "" {
			return derrors.New(derrors.NotFound, "This file has no separate metadata.")
		}
		key, etag, ctype = f.MetadataKey, `"`+f.MetadataSHA256+`"`, "text/plain; charset=utf-8"
	default:
		return derrors.New(derrors.NotFound, "No such file.")
	}
	disposition := `attachment; filename="` + strings.ReplaceAll(f.Filename, `"`, "") + `"`
	if p, ok := s.projects.Blobs().(presigner); ok && s.downloadRedirect > 0 {
		return s.redirectFile(w, r, p, key, ctype, disposition)
	}
	blob, err := s.projects.Blobs().Open(r.Context(), key)
	if err != nil {
		return err
	}
	defer blob.Close()
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "max-age=31536000, public, immutable")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", disposition)
	http.ServeContent(w, r, "", f.UploadedAt, blob)
	return nil
}

// presigner is a blob store that can hand out URLs that fetch a blob
// directly from it (the S3 store).
type presigner interface {
	Presign(ctx context.Context, key string, ttl time.Duration, contentType, disposition string) (*url.URL, error)
}

// redirectFile answers a download with a redirect to a presigned URL
// (--storage-redirect), so that the bytes go from the object store to the
// client without passing through this instance. The object store then
// answers Range and conditional requests itself, with the same
// Content-Type and Content-Disposition as a streamed download. The
// redirect must not outlive the URL in a cache.
func (s *Server) redirectFile(w http.ResponseWriter, r *http.Request, p presigner, key, ctype, disposition string) error {
	u, err := p.Presign(r.Context(), key, s.downloadRedirect, ctype, disposition)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Access-Control-Allow-Origin", "*")
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}

// contentTypeOf names the media type of a distribution file. A .tar.gz is
// application/gzip, never Content-Encoding: gzip, which would make clients
// unpack it and then fail the hash check.
func contentTypeOf(filename string) string {
	switch {
	case strings.HasSuffix(filename, ".whl"), strings.HasSuffix(filename, ".zip"):
		return "application/zip"
	case strings.HasSuffix(filename, ".tar.gz"):
		return "application/gzip"
	}
	return "application/octet-stream"
}
