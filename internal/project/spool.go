package project

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/blake2b"

	"github.com/gatehouse-index/gatehouse/internal/blob"
)

// Spooled is an uploaded file as it arrived: staged in the blob store while
// its three digests were computed, so the bytes are read from the network
// once, hashed once, written once, and memory does not grow with the file's
// size. AcceptUpload reads it back for the checks and, if they pass, makes it
// the blob by committing it; otherwise Close removes it.
type Spooled struct {
	staged     blob.Staged
	stored     bool // committed under its key (it may have been removed since)
	Size       int64
	MD5        string // hex
	SHA256     string // hex
	Blake2_256 string // hex
}

// ErrSpoolTooLarge is returned by Spool when the input exceeds the limit.
var ErrSpoolTooLarge = errors.New("file too large")

// ErrSpoolStore is wrapped by the errors of Spool that are the blob store's
// (a full disk, say), not the upload's.
var ErrSpoolStore = errors.New("staging the upload in the blob store")

// Spool stages r in the blob store, computing md5, sha256 and blake2b-256 on
// the way, each on its own goroutine. It stops with ErrSpoolTooLarge as soon
// as more than limit bytes arrive, without reading the rest. On error nothing
// is left in the store; on success the caller must Close the Spooled (which
// is a no-op once AcceptUpload has stored it).
func (s *Service) Spool(ctx context.Context, r io.Reader, limit int64) (*Spooled, error) {
	return spool(ctx, s.blobs, r, limit)
}

func spool(ctx context.Context, store blob.Store, r io.Reader, limit int64) (*Spooled, error) {
	st, err := store.Stage(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpoolStore, err)
	}
	b2, _ := blake2b.New256(nil)
	m, s := md5.New(), sha256.New()
	// Read one byte past the limit to tell "exactly limit" from "more".
	n, err := copyFanout(io.LimitReader(r, limit+1), fanoutChunk, fanoutChunks, storeWriter{st}, b2, m, s)
	if err == nil && n > limit {
		err = ErrSpoolTooLarge
	}
	if err != nil {
		st.Discard()
		return nil, err
	}
	sum := func(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
	return &Spooled{staged: st, Size: n, MD5: sum(m), SHA256: sum(s), Blake2_256: sum(b2)}, nil
}

// storeWriter marks the staged blob's write errors as the store's.
type storeWriter struct{ st blob.Staged }

func (w storeWriter) Write(p []byte) (int, error) {
	n, err := w.st.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrSpoolStore, err)
	}
	return n, err
}

// ReadAt reads the spooled bytes (for the archive checks).
func (s *Spooled) ReadAt(p []byte, off int64) (int, error) { return s.staged.ReadAt(p, off) }

// sync makes the spooled bytes durable ahead of store, so that store,
// which runs under the blob's lock, has little left to do.
func (s *Spooled) sync() error {
	if err := s.staged.Sync(); err != nil {
		return fmt.Errorf("store file: %w", err)
	}
	return nil
}

// store makes the spooled bytes the blob under key, durably: after it
// returns nil they survive a crash. It ends the Spooled either way.
func (s *Spooled) store(ctx context.Context, key string) error {
	s.stored = true // even a failed Commit may have renamed the file
	if err := s.staged.Commit(ctx, key); err != nil {
		return fmt.Errorf("store file: %w", err)
	}
	return nil
}

// Close removes the spooled bytes unless they were stored.
func (s *Spooled) Close() error { return s.staged.Discard() }
