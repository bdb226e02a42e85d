package blob

import (
	"context"
	"fmt"
	"time"
)

// Orphan blobs
//
// A file's bytes are made durable before the transaction that lists it
// commits (see the package documentation), so a crash between the two, or
// an upload that loses a race at commit, leaves a blob that no database
// row names. Such a blob is never served (downloads look the digest up in
// the database first), but it takes space. SweepOrphans finds and removes
// them.
//
// Whether a blob is referenced is the database's business, so the caller
// decides, blob by blob, through drop. drop must be safe against an upload
// in flight that wrote the same key and has not committed yet: the project
// package deletes a blob only inside a transaction that holds the blob's
// lock and finds no row naming it, and every upload re-checks, under the
// same lock and in the transaction that lists the file, that its blobs are
// still there (and writes them again if not).

// SweepOrphans calls drop for every blob in s last written before before,
// in key order, and returns how many drop removed. It stops at the first
// error. drop reports whether it removed the blob; it is called while the
// listing is under way, which Store.List allows.
func SweepOrphans(ctx context.Context, s Store, before time.Time, drop func(ctx context.Context, key string) (bool, error)) (int, error) {
	n := 0
	err := s.List(ctx, "", func(key string, info Info) error {
		if !info.ModTime.Before(before) {
			return nil // written since: most likely an upload in flight
		}
		removed, err := drop(ctx, key)
		if err != nil {
			return fmt.Errorf("blob: sweep orphan %q: %w", key, err)
		}
		if removed {
			n++
		}
		return nil
	})
	return n, err
}
