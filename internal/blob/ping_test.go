package blob_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
)

// A directory store's Ping fails once its directory is gone or replaced,
// where a Stat of a missing key still said "not found" (the readiness check
// used to pass then).
func TestFSPing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "files")
	s, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a fresh store: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "probe"); err == nil {
		t.Fatal("Stat found a key in a removed directory")
	}
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "files directory") {
		t.Fatalf("Ping of a removed directory: %v", err)
	}
	// A new directory at the same path is not the one the store holds open.
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("Ping of a replaced directory: %v", err)
	}
}

// An S3 store's Ping fails once its bucket is gone.
func TestS3Ping(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Versitygw(t)
	s := srv.Store(t, "")
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	bucket := strings.TrimSuffix(strings.TrimPrefix(s.String(), "s3://"), "/")
	if err := srv.Client(t).RemoveBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), bucket) {
		t.Fatalf("Ping of a removed bucket: %v", err)
	}
}
