package project

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"

	"golang.org/x/crypto/blake2b"
)

// Spooled is an uploaded file written to a private temp file while its three
// digests were computed, so the bytes are read from the network once and
// hashed once, and memory does not grow with the file's size.
type Spooled struct {
	File       *os.File
	Size       int64
	MD5        string // hex
	SHA256     string // hex
	Blake2_256 string // hex
}

// ErrSpoolTooLarge is returned by Spool when the input exceeds the limit.
var ErrSpoolTooLarge = errors.New("file too large")

// Spool copies r into a new temp file in dir, computing md5, sha256 and
// blake2b-256 on the way. It stops with ErrSpoolTooLarge as soon as more than
// limit bytes arrive, without reading the rest. On error nothing is left on
// disk; on success the caller must Close the Spooled.
func Spool(r io.Reader, dir string, limit int64) (*Spooled, error) {
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return nil, err
	}
	// The temp file is unlinked at once: it is reachable only through f, so a
	// crash leaves nothing behind to sweep.
	os.Remove(f.Name())
	b2, _ := blake2b.New256(nil)
	m, s := md5.New(), sha256.New()
	// The multipart reader hands over small pieces; buffering the file side
	// turns them into few large writes (it showed in upload profiles).
	buf := bufio.NewWriterSize(f, 256<<10)
	w := io.MultiWriter(buf, m, s, b2)
	// Read one byte past the limit to tell "exactly limit" from "more".
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = ErrSpoolTooLarge
	}
	if err == nil {
		err = buf.Flush()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	sum := func(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
	return &Spooled{File: f, Size: n, MD5: sum(m), SHA256: sum(s), Blake2_256: sum(b2)}, nil
}

// Close releases the temp file.
func (s *Spooled) Close() error { return s.File.Close() }
