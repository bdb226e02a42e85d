package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/config"
)

// fileStore is where the package files live, as a command holds it: the
// files directory (blob.FS) or an S3 bucket (blob.S3).
type fileStore interface {
	blob.Store
	Close() error
}

// storageLocation is where the settings keep the files: the S3 URL, or
// the files directory.
func storageLocation(cfg *settings) string {
	if cfg.Storage.IsS3() {
		return cfg.Storage.URL
	}
	return cfg.FilesDir
}

// openStore opens the store at loc: an s3://bucket/prefix URL (with the
// connection settings of cfg) or a directory.
func openStore(ctx context.Context, cfg *settings, loc string) (fileStore, error) {
	bucket, prefix, ok := blob.ParseS3URL(loc)
	if !ok {
		s, err := blob.NewFS(loc)
		if err != nil {
			if e := explainSystem(err); e != nil {
				return nil, e
			}
			return nil, fail(err, "Gatehouse could not open the package files directory "+abs(loc)+": "+err.Error(),
				"Check --files-dir (or GATEHOUSE_FILES_DIR) and --data-dir.")
		}
		return s, nil
	}
	s, err := blob.NewS3(ctx, s3Options(cfg.Storage, bucket, prefix))
	if err != nil {
		return nil, fail(err, "Gatehouse could not use the bucket of "+loc+": "+err.Error(),
			"Check --storage-url, --storage-endpoint and --storage-region (or their GATEHOUSE_STORAGE_* variables), "+
				"and that the credentials (--storage-access-key and --storage-secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) may read and write it.")
	}
	return s, nil
}

func s3Options(st config.Storage, bucket, prefix string) blob.S3Options {
	return blob.S3Options{
		Bucket: bucket, Prefix: prefix, Endpoint: st.Endpoint, Region: st.Region, PathStyle: st.PathStyle,
		AccessKey: st.AccessKey, SecretKey: st.SecretKey, SessionToken: st.SessionToken,
	}
}

// sweepTemps removes what uploads killed mid-way left in the store: the
// filesystem's temporary files, or the bucket's unfinished multipart
// uploads and temporary objects. Only those an hour old go: another
// instance may be writing the newer ones. On a directory with no other
// writer alive, every temp file from before started goes (blob.FS.StartWriting);
// stop then ends this process's registration as a writer.
func sweepTemps(ctx context.Context, s fileStore, started time.Time, log *slog.Logger) (stop func()) {
	var n int
	var err error
	switch s := s.(type) {
	case *blob.FS:
		n, stop, err = s.StartWriting(started, time.Hour)
	case *blob.S3:
		n, err = s.Sweep(ctx, time.Hour, time.Now())
	default:
		err = errors.New("this store cannot be swept")
	}
	switch {
	case err != nil:
		log.Warn("sweeping temp files failed", "err", err)
	case n > 0:
		log.Info("removed temp files left by an earlier crash", "count", n)
	default:
		// Said even so (at debug), so that a test can wait for it.
		log.Debug("removed temp files left by an earlier crash", "count", 0)
	}
	return stop
}

// storageName says where files are, for logs and messages.
func storageName(cfg *settings) string {
	if cfg.Storage.IsS3() {
		return cfg.Storage.URL
	}
	return abs(cfg.FilesDir)
}

// downloadRedirect is how long presigned download URLs live, or 0 when
// files are streamed through the server.
func downloadRedirect(cfg *settings) time.Duration {
	if cfg.Storage.Redirect != "on" {
		return 0
	}
	return cfg.Storage.RedirectTTL
}
