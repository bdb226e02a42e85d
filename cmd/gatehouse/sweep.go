package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

const sweepUsage = `Usage: gatehouse sweep [--older-than DURATION] [flags]

Removes what interrupted uploads leave in the package files directory:
temporary files, and files that were written but never listed because the
server stopped (a crash, kill -9, a power cut) before the upload committed.
Such files are never served; they only take space. 'gatehouse serve' does
the same at every start, in the background.

It is safe to run while servers are running and accepting uploads: a file
is removed only when no release lists it, under the same lock an upload
takes to publish and list its file, and the temporary files of uploads in
progress are left alone. --older-than leaves recently written files alone
all the same.`

func sweep(ctx context.Context, e env, args []string) error {
	var olderThan time.Duration
	cfg, err := loadConfig(e, "sweep", sweepUsage, args, func(fs *flag.FlagSet) {
		fs.DurationVar(&olderThan, "older-than", 10*time.Minute, "remove only files last written at least this long ago (e.g. 10m, 0s)")
	})
	if err != nil {
		return helpOK(err)
	}
	if olderThan < 0 {
		return usageErr("sweep", "--older-than must not be negative")
	}
	log := newLogger(cfg, e)
	a, err := open(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	blobs, err := blob.NewFS(cfg.FilesDir)
	if err != nil {
		return fail(err, "Gatehouse could not open the package files directory "+abs(cfg.FilesDir)+": "+err.Error(),
			"Check --files-dir (or GATEHOUSE_FILES_DIR) and --data-dir.")
	}
	defer blobs.Close()
	cutoff := time.Now().Add(-olderThan)
	temps, stop, err := blobs.StartWriting(time.Now(), max(olderThan, time.Hour))
	if stop != nil {
		defer stop()
	}
	if err != nil {
		return fail(err, "Gatehouse could not remove temporary files in "+abs(cfg.FilesDir)+": "+err.Error(),
			"Check that this user may write to --files-dir (or GATEHOUSE_FILES_DIR).")
	}
	projects := project.NewService(a.db, blobs, project.Options{Log: log})
	orphans, err := projects.SweepOrphans(ctx, cutoff)
	if err != nil {
		return fail(err, fmt.Sprintf("Gatehouse removed %d unlisted file(s) and then stopped: %v", orphans, err),
			"Check that the database is reachable and this user may write to --files-dir (or GATEHOUSE_FILES_DIR), then run 'gatehouse sweep' again.")
	}
	fmt.Fprintf(e.stdout, "Removed %d temporary file(s) and %d package file(s) that no release lists, from %s.\n", temps, orphans, abs(cfg.FilesDir))
	return nil
}
