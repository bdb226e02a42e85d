package blob

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Pinger is a Store that can say whether it can serve and take blobs now,
// for readiness checks. A Stat of a missing key cannot: on a directory
// whose root was removed or made read-only it still answers "not found".
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping checks that the root directory still exists at its path, is the
// directory the store opened, and is writable by this process.
func (s *FS) Ping(ctx context.Context) error {
	path := s.root.Name()
	now, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("files directory %s: %w", path, err)
	}
	opened, err := s.root.Stat(".")
	if err != nil {
		return fmt.Errorf("files directory %s: %w", path, err)
	}
	if !os.SameFile(now, opened) {
		return fmt.Errorf("files directory %s was replaced since the server started; restart it", path)
	}
	if err := unix.Access(path, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("files directory %s is not writable: %w", path, err)
	}
	return nil
}

// Ping checks that the bucket answers and exists.
func (s *S3) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return errors.New("bucket " + s.bucket + " does not exist")
	}
	return nil
}
