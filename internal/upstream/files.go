package upstream

// Upstream files: fetched on the first download, streamed to that client
// while they are written to the blob store and hashed, and published under
// upstream/<sha256> only if the bytes match the digest the page gave.
// Concurrent first downloads of one file make one upstream request: the
// others wait for it and are served from the store. A mismatch is never
// served: the client that was being streamed to has its connection cut
// before the last bytes (the caller aborts), nothing is stored, and later
// requests get a 502 until the page is fetched again.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// MismatchHold is how long a file whose upstream bytes did not match its
// digest is refused before it is fetched again.
const MismatchHold = 10 * time.Minute

// maxFile bounds an upstream file (PyPI allows 100 MiB by default, some
// projects several GiB; this is the cache's own limit).
const maxFile = 4 << 30

// Entry is what the cache knows of one upstream file.
type Entry struct {
	SHA256         string
	Name           string // normalized project name
	Filename       string
	URL            string
	MetadataSHA256 string
	Stored         bool // the file's bytes are in the store
	MetadataStored bool
	Mismatch       bool // the upstream sent other bytes than its page said
	Local          bool // its name is local now (IsLocal), so it is not served

	// Downloaded is about when the stored copy was last downloaded (see
	// downloadedEvery); zero if it never was since it was stored.
	Downloaded time.Time
}

// downloadedEvery is how stale upstream_files.downloaded_at may get before
// a download writes it again: a day, so that a file downloaded all day
// costs one write a day, and 'upstream prune --unused-for' ages are in
// days anyway.
const downloadedEvery = 24 * time.Hour

// Key is the blob key of an upstream file, or of its metadata.
func Key(sha string, metadata bool) string {
	k := "upstream/" + sha[:2] + "/" + sha
	if metadata {
		k += ".metadata"
	}
	return k
}

// Lookup returns the cache's entry of the file with this sha256.
func (s *Service) Lookup(ctx context.Context, sha string) (*Entry, error) {
	if !validSHA256(sha) {
		return nil, derrors.New(derrors.NotFound, "No such file.")
	}
	var e Entry
	var stored, mStored, mismatch, downloaded sql.NullTime
	// One query, the name's local check included: a download of a cached
	// file costs what a local one does (docs/benchmarks.md).
	err := s.db.QueryRowContext(ctx, `SELECT sha256, normalized_name, filename, url, metadata_sha256, stored_at, metadata_stored_at, mismatch_at, downloaded_at,
			`+strings.ReplaceAll(localName, "$1", "f.normalized_name")+`
		FROM upstream_files f WHERE sha256 = $1`, sha).Scan(&e.SHA256, &e.Name, &e.Filename, &e.URL, &e.MetadataSHA256, &stored, &mStored, &mismatch, &downloaded, &e.Local)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "No such file.")
	}
	if err != nil {
		return nil, err
	}
	e.Stored, e.MetadataStored = stored.Valid, mStored.Valid
	if downloaded.Valid {
		e.Downloaded = downloaded.Time
	}
	e.Mismatch = mismatch.Valid && s.now().Sub(mismatch.Time) < MismatchHold
	return &e, nil
}

// ErrMismatch is the refusal of a file whose upstream bytes did not match
// the page's digest.
func errMismatch(e *Entry) error {
	return derrors.New(derrors.BadGateway, "The upstream index sent %s with a different sha256 than its page lists, so it is not served. Nothing was stored; it is tried again in %d minutes.", e.Filename, int(MismatchHold.Minutes()))
}

// Fetch brings a file (or, with metadata, its PEP 658 metadata) into the
// store, copying its bytes to w as they arrive. Of concurrent calls for one
// file, one fetches and the others wait for it, writing nothing to w
// (served reports whether this call wrote the body). A digest mismatch is
// an error after bytes went to w: the caller must then break the
// connection, never finish the response.
func (s *Service) Fetch(ctx context.Context, e *Entry, metadata bool, w io.Writer, start func(size int64)) (served bool, err error) {
	if e.Mismatch {
		return false, errMismatch(e)
	}
	want, src := e.SHA256, e.URL
	if metadata {
		if e.MetadataSHA256 == "" {
			return false, derrors.New(derrors.NotFound, "This file has no separate metadata.")
		}
		want, src = e.MetadataSHA256, e.URL+".metadata"
	}
	key := Key(e.SHA256, metadata)
	_, err, _ = s.fetches.Do(key, func() (any, error) {
		// A fetch that finished between the caller's lookup and this
		// flight has stored it already: serve that.
		if done, err := s.stored(ctx, e.SHA256, metadata); err != nil || done {
			return nil, err
		}
		served = true
		return nil, s.fetchOne(context.WithoutCancel(ctx), e, metadata, key, src, want, w, start)
	})
	return served, err
}

func (s *Service) stored(ctx context.Context, sha string, metadata bool) (bool, error) {
	col := "stored_at"
	if metadata {
		col = "metadata_stored_at"
	}
	var at sql.NullTime
	if err := s.db.QueryRowContext(ctx, `SELECT `+col+` FROM upstream_files WHERE sha256 = $1`, sha).Scan(&at); err != nil {
		return false, err
	}
	return at.Valid, nil
}

func (s *Service) fetchOne(ctx context.Context, e *Entry, metadata bool, key, src, want string, w io.Writer, start func(int64)) error {
	s.stats.FileFetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "Gatehouse pull-through cache")
	resp, err := s.client.Do(req)
	if err != nil {
		s.stats.Errors.Add(1)
		return derrors.New(derrors.BadGateway, "The upstream index did not answer for %s: %s", e.Filename, strings.TrimSpace(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.stats.Errors.Add(1)
		return derrors.New(derrors.BadGateway, "The upstream index answered %s for %s.", resp.Status, e.Filename)
	}
	st, err := s.blobs.Stage(ctx)
	if err != nil {
		return err
	}
	defer st.Discard()
	if start != nil {
		start(resp.ContentLength)
	}
	h := sha256.New()
	dst := io.MultiWriter(st, h)
	if w != nil {
		dst = io.MultiWriter(st, h, clientWriter{w})
	}
	n, err := io.Copy(dst, io.LimitReader(resp.Body, maxFile+1))
	s.stats.FileBytes.Add(n)
	if err != nil {
		s.stats.Errors.Add(1)
		return fmt.Errorf("fetch %s: %w", src, err)
	}
	if n > maxFile {
		return derrors.New(derrors.BadGateway, "%s is larger than the cache takes (%d GiB).", e.Filename, maxFile>>30)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		s.stats.FileRefused.Add(1)
		s.log.Warn("upstream file does not match its digest; not stored", "file", e.Filename, "url", src, "want", want, "got", got)
		if _, err := s.db.ExecContext(ctx, `UPDATE upstream_files SET mismatch_at = $2 WHERE sha256 = $1`, e.SHA256, s.now().UTC()); err != nil {
			return err
		}
		return errMismatch(e)
	}
	if err := st.Sync(); err != nil {
		return err
	}
	if err := st.Commit(ctx, key); err != nil {
		return err
	}
	col := "stored_at"
	if metadata {
		col = "metadata_stored_at"
	}
	// The first download is a download: downloaded_at too.
	_, err = s.db.ExecContext(ctx, `UPDATE upstream_files SET `+col+` = $2, downloaded_at = $2, mismatch_at = NULL WHERE sha256 = $1`, e.SHA256, s.now().UTC().Truncate(time.Microsecond))
	return err
}

// clientWriter copies to the client but never fails the fetch: a client
// that leaves does not stop the file being stored for the next one.
type clientWriter struct{ w io.Writer }

func (c clientWriter) Write(p []byte) (int, error) {
	c.w.Write(p)
	return len(p), nil
}

// Open returns the stored bytes of a file (or its metadata), and notes
// the download for 'upstream prune --unused-for' when the last note is
// older than downloadedEvery.
func (s *Service) Open(ctx context.Context, e *Entry, metadata bool) (blob.File, error) {
	f, err := s.blobs.Open(ctx, Key(e.SHA256, metadata))
	if err != nil {
		return nil, err
	}
	s.stats.FileHits.Add(1)
	if now := s.now(); now.Sub(e.Downloaded) >= downloadedEvery {
		// A failure costs only pruning accuracy; the download goes on.
		if _, err := s.db.ExecContext(ctx, `UPDATE upstream_files SET downloaded_at = $2 WHERE sha256 = $1`,
			e.SHA256, now.UTC().Truncate(time.Microsecond)); err != nil {
			s.log.WarnContext(ctx, "cannot note an upstream file's download", "file", e.Filename, "err", err)
		}
	}
	return f, nil
}
