package project

import (
	"context"
	"database/sql"
	"slices"
	"strings"
)

// StoredBlob is one blob a file row names (the file itself, or a wheel's
// PEP 658 metadata), with what its bytes must be.
type StoredBlob struct {
	Key        string
	Size       int64
	SHA256     string // hex
	Blake2_256 string // hex; "" when not recorded (metadata of old rows)
}

// StoredBlobs lists every blob the index's files name, in key order: what
// moving the files to another store must copy, and what each copy must
// hash to. Blobs no row names (orphans of interrupted uploads) are not
// listed. Quarantined projects' files are: they are kept, only not served.
func (s *Service) StoredBlobs(ctx context.Context) ([]StoredBlob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT blob_key, size, sha256_digest, blake2_256_digest,
		metadata_key, metadata_size, metadata_sha256, metadata_blake2_256 FROM files`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredBlob
	for rows.Next() {
		var f StoredBlob
		var mKey, mSHA, mB2 sql.NullString
		var mSize sql.NullInt64
		if err := rows.Scan(&f.Key, &f.Size, &f.SHA256, &f.Blake2_256, &mKey, &mSize, &mSHA, &mB2); err != nil {
			return nil, err
		}
		out = append(out, f)
		if mKey.Valid && mKey.String != "" {
			out = append(out, StoredBlob{Key: mKey.String, Size: mSize.Int64, SHA256: mSHA.String, Blake2_256: mB2.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Sorted here, not by the database: PostgreSQL's collation would not
	// give byte order, which is the order Store.List uses.
	slices.SortFunc(out, func(a, b StoredBlob) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
