// Package blob stores package files (wheels, sdists and their .metadata
// files) as immutable blobs under caller-chosen, content-addressed keys.
//
// # Keys
//
// Keys look like relative slash-separated paths, for example
// "ab/cd/<rest of blake2 digest>/<filename>". They are chosen by the caller
// and validated by [ValidKey] on every [Store] call; a Store never derives a
// storage location from anything other than the key. Segments starting with
// ".tmp-" are reserved for a Store's own temporary files and are never valid
// keys, so temporary files can neither be addressed nor listed.
//
// # Staged writes
//
// An upload's key is derived from its blake2b digest, which is known only
// once the last byte has arrived, and the upload must be checked (its
// archive read, its digests compared) before it is stored. [Store.Stage]
// serves both: the bytes stream into the store's own temporary area as they
// arrive, can be read back there for the checks, and then either become the
// blob under its key with [Staged.Commit] (for the filesystem store, a
// rename: no second copy) or vanish with [Staged.Discard]. A staged blob is
// invisible to Open, Stat and List.
//
// # Durability protocol (filesystem store)
//
// An index that has told a client "upload accepted" (and has recorded the
// file in its database) must still be able to serve that file after a crash
// or power loss, and a reader must never be handed a half-written wheel whose
// hash does not match what the index advertises. [FS.Put] and
// [Staged.Commit] therefore publish every blob with the classic POSIX
// atomic-replace sequence:
//
//  1. Write the bytes to a temporary file ".tmp-<random>" at the top of the
//     store's root. It is on the same filesystem as every key, which is what
//     makes the final rename atomic. Nobody can see this file under a key.
//  2. fsync the temporary file, so its data blocks reach stable storage
//     before its name does. Skipping this is the famous "zero-length file
//     after crash" bug: on many filesystems the rename can be persisted
//     before the data.
//  3. Create any missing parent directories of the key. For every directory
//     this creates, the directory's parent is fsynced, because a new
//     directory entry is only durable once the directory containing it is
//     synced; without that, a crash could lose the whole subtree including
//     the blob.
//  4. rename(2) the temporary file over the final name. rename is atomic: a
//     concurrent reader opens either the old file, or nothing, or the complete
//     new file, never a partial one. Cancellation is checked just before this
//     point; after it the blob is published.
//  5. fsync the destination directory, which persists the rename itself.
//     Only then does Put (or Commit) return nil. The root, where the
//     temporary name was, is not synced: if a crash resurrected that name
//     it would be one more link to the blob's inode, and the sweep below
//     unlinks it.
//
// On any failure before the rename the temporary file is removed, and so is
// a discarded staged blob. If the process dies mid-write, the orphaned
// ".tmp-*" file is invisible to Open/Stat/List and is removed at the next
// startup by [FS.Sweep].
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen is the maximum length of a key in bytes.
const MaxKeyLen = 1024

// TempPrefix starts the name of every temporary file a Store creates. Key
// segments may not start with it.
const TempPrefix = ".tmp-"

// ErrNotFound is returned (wrapped) when a key does not exist. Test for it
// with errors.Is.
var ErrNotFound = errors.New("blob not found")

// ErrInvalidKey is returned (wrapped) by every Store method, and by
// [ValidKey], for a key that fails validation.
var ErrInvalidKey = errors.New("invalid blob key")

// Store keeps immutable blobs under keys. Keys are chosen by the caller
// (content-addressed: e.g. "ab/cd/<blake2 rest>/<filename>"); a Store must
// never derive paths from anything else.
//
// All methods are safe for concurrent use. Implementations must pass the
// conformance suite in package blobtest.
type Store interface {
	// Put stores r's bytes under key atomically and durably: readers see
	// either nothing or the whole blob, and after Put returns nil the blob
	// survives a crash/power loss. If key already exists Put replaces it
	// atomically (content-addressed callers write identical bytes).
	Put(ctx context.Context, key string, r io.Reader) error

	// Open returns the blob for reading. For the filesystem store the
	// returned value's concrete type is *os.File so net/http can use
	// sendfile. Missing key → error wrapping ErrNotFound (errors.Is).
	Open(ctx context.Context, key string) (File, error)

	// Stat reports size and modification time; missing → ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)

	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// Stage starts a blob whose key is not known yet. Its bytes are
	// written to the returned Staged, read back from it if need be, and
	// then published under a key with Commit or dropped with Discard.
	// Until Commit it is invisible to Open, Stat and List. The caller must
	// end every Staged with Commit or Discard (deferring Discard is the
	// usual way: it does nothing after a Commit).
	Stage(ctx context.Context) (Staged, error)

	// List calls fn for every key with the given prefix ("" = all), in
	// lexical (byte-wise) order. It stops at, and returns, the first error
	// fn returns. Used to find orphan blobs.
	//
	// A non-empty prefix must be the beginning of some valid key (ending on
	// a UTF-8 rune boundary); otherwise List returns an error wrapping
	// ErrInvalidKey.
	List(ctx context.Context, prefix string, fn func(key string, info Info) error) error
}

// Staged is a blob being written before its key is known (see
// [Store.Stage]). It is for one goroutine at a time.
//
// The filesystem store keeps it as a temporary file in its root and commits
// it by renaming. An object store can stream the bytes into a multipart
// upload of a temporary object and, at Commit, complete it and copy it to
// the key server-side (or keep a local temporary file and upload it to the
// key at Commit); ReadAt may then be served from a local copy, since the
// archive checks read with many small ReadAt calls.
type Staged interface {
	// Write appends p to the blob.
	io.Writer

	// ReadAt reads bytes already written. Call it only after the last
	// Write; it follows the io.ReaderAt rules (io.EOF at the end).
	io.ReaderAt

	// Size is the number of bytes written so far.
	Size() int64

	// Sync makes the bytes written so far durable, as Commit does before
	// it publishes them. Calling it first is optional; it lets a caller do
	// the slow part of a Commit before taking a lock that the Commit must
	// run under (the project package commits an upload's blobs inside the
	// transaction that lists them).
	Sync() error

	// Commit publishes the bytes under key, atomically and durably, with
	// the same promises as Put: after it returns nil the blob survives a
	// crash, and an existing blob under key is replaced. Commit ends the
	// Staged whatever its outcome: on failure nothing is published and the
	// staged bytes are removed. A cancelled ctx is honoured until the
	// moment of publication.
	Commit(ctx context.Context, key string) error

	// Discard removes the staged bytes. It does nothing (and returns nil)
	// after Commit or an earlier Discard.
	Discard() error
}

// ErrStagedDone is returned (wrapped) by the methods of a [Staged] that was
// already committed or discarded.
var ErrStagedDone = errors.New("staged blob already committed or discarded")

// File is an open blob. *os.File satisfies it.
type File interface {
	io.ReadSeekCloser
	io.ReaderAt
}

// Info describes a stored blob.
type Info struct {
	Size    int64     // length in bytes
	ModTime time.Time // when the blob was last written
}

// ValidKey reports whether key is acceptable to a Store. A valid key is
// non-empty, at most [MaxKeyLen] bytes of valid, printable UTF-8 (no control
// characters, no NUL), has no leading '/', and consists of '/'-separated
// segments that are each non-empty, not "." or "..", free of backslashes,
// and do not start with [TempPrefix]. The returned error wraps
// [ErrInvalidKey].
func ValidKey(key string) error {
	if key == "" {
		return invalidKey(key, "empty")
	}
	return checkKey(key, key, MaxKeyLen)
}

// ValidPrefix reports whether prefix is acceptable to Store.List: either
// empty, or the beginning of some valid key. The returned error wraps
// [ErrInvalidKey].
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	// Completing the prefix with one more character turns "ab/" and
	// "ab/c" into checkable keys while still rejecting "a//", "../" and
	// ".tmp-".
	return checkKey(prefix, prefix+"x", MaxKeyLen+1)
}

// checkKey validates key against the key rules with the given length limit;
// shown is what error messages display.
func checkKey(shown, key string, maxLen int) error {
	if len(key) > maxLen {
		return invalidKey(shown, fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	}
	if !utf8.ValidString(key) {
		return invalidKey(shown, "not valid UTF-8")
	}
	for _, r := range key {
		switch {
		case r == 0:
			return invalidKey(shown, "contains NUL")
		case r == '\\':
			return invalidKey(shown, "contains a backslash")
		case !unicode.IsPrint(r):
			return invalidKey(shown, fmt.Sprintf("contains unprintable character %U", r))
		}
	}
	if key[0] == '/' {
		return invalidKey(shown, "starts with '/'")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return invalidKey(shown, "empty segment")
		case seg == "." || seg == "..":
			return invalidKey(shown, fmt.Sprintf("segment %q", seg))
		case strings.HasPrefix(seg, TempPrefix):
			return invalidKey(shown, fmt.Sprintf("segment prefix %q is reserved", TempPrefix))
		}
	}
	return nil
}

func invalidKey(key, reason string) error {
	const maxShown = 80
	if len(key) > maxShown {
		key = key[:maxShown] + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, reason)
}
