// Package backup takes a consistent snapshot of a running index, its
// database and the package files that database lists, into a directory,
// and restores one.
//
// Consistency comes from the database: the snapshot is one point in its
// history (SQLite's VACUUM INTO; for PostgreSQL, pg_dump running in an
// exported snapshot), and the files copied are exactly those the snapshot
// lists, read through the blob Store interface (so any store can be backed
// up). A blob is always stored before the database row that names it is
// committed, and blobs are immutable, so every file the snapshot lists is
// in the store when it is copied; its sha256 is checked as it is.
// Uploads that finish after the snapshot are simply not in it.
//
// A backup directory holds manifest.json (written last: a directory
// without it is an interrupted backup), the database (gatehouse.db or
// gatehouse.pgdump), the server secret when it came from a file
// (secret.key), and files/<blob key>.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Format is the manifest's version; Restore refuses others.
const Format = 1

// Names inside a backup directory.
const (
	ManifestName = "manifest.json"
	SQLiteName   = "gatehouse.db"
	PgDumpName   = "gatehouse.pgdump"
	SecretName   = "secret.key"
	FilesDir     = "files"
)

// Manifest describes one backup.
type Manifest struct {
	Format   int       `json:"format"`
	Created  time.Time `json:"created"`
	Dialect  string    `json:"dialect"`  // "sqlite" or "postgres"
	Database string    `json:"database"` // file name of the database in the backup
	// Secret is SecretName when the server secret was copied, "" when it
	// is configured outside the data directory (--secret-key) and must be
	// kept with the configuration.
	Secret string  `json:"secret,omitempty"`
	Files  []Entry `json:"files"`
	Bytes  int64   `json:"bytes"` // of all files
}

// Entry is one blob of the backup: a package file or its metadata file.
type Entry struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReadManifest reads dir's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: it is not a Gatehouse backup, or the backup did not finish", dir, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s is a backup of format %d; this version of Gatehouse reads format %d", dir, m.Format, Format)
	}
	if m.Dialect != "sqlite" && m.Dialect != "postgres" {
		return nil, fmt.Errorf("%s: unknown database kind %q", filepath.Join(dir, ManifestName), m.Dialect)
	}
	return &m, nil
}

// Progress is told how far a backup or restore is: done of total files,
// bytes of totalBytes. It is called after each file.
type Progress func(done, total int, bytes, totalBytes int64)
