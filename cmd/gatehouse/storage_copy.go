package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

const storageUsage = `Usage: gatehouse storage copy --from WHERE --to WHERE [flags]

Copies every package file the index lists (and each wheel's metadata file)
from one store to another: a directory, or an S3 bucket written as
s3://bucket/prefix. The S3 connection settings (--storage-endpoint,
--storage-region, the credentials) are the server's.

Each file is hashed as it is copied and written under its name only if its
sha256 and blake2b-256 digests are the ones the database records; a file
that is already at the destination with the right size is left alone, so
an interrupted copy resumes where it stopped when run again. It prints its
progress and ends with a summary; it fails if any file could not be copied.

To move an index: stop the servers (or let them run: files uploaded during
the copy are picked up by running it again), copy, then start the servers
with the new --storage-url or --files-dir.

Examples:
  gatehouse storage copy --from ./gatehouse-data/files --to s3://pypi-files/gatehouse
  gatehouse storage copy --from s3://pypi-files/gatehouse --to /srv/gatehouse/files`

func storageCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "copy" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			fmt.Fprintln(e.stdout, storageUsage)
			return nil
		}
		return usageErr("storage copy", "The storage command has one subcommand, copy: gatehouse storage copy --from WHERE --to WHERE")
	}
	var from, to string
	var jobs int
	cfg, err := loadConfig(e, "storage copy", storageUsage, args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "the store to copy from: a directory or s3://bucket/prefix")
		fs.StringVar(&to, "to", "", "the store to copy to: a directory or s3://bucket/prefix")
		fs.IntVar(&jobs, "jobs", 4, "files copied at once")
	})
	if err != nil {
		return helpOK(err)
	}
	switch {
	case from == "" || to == "":
		return usageErr("storage copy", "Say where to copy from and to, with --from and --to (a directory, or s3://bucket/prefix)")
	case from == to:
		return usageErr("storage copy", "--from and --to are both %s: give two different stores", from)
	case jobs < 1 || jobs > 64:
		return usageErr("storage copy", "--jobs %d: give from 1 to 64", jobs)
	}
	log := newLogger(cfg, e)
	a, err := open(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	src, err := openStore(ctx, cfg, from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStore(ctx, cfg, to)
	if err != nil {
		return err
	}
	defer dst.Close()
	blobs, err := project.NewService(a.db, src, project.Options{Log: log}).StoredBlobs(ctx)
	if err != nil {
		return fail(err, "Gatehouse could not read the list of files from the database: "+err.Error(), "Check --database-url (or GATEHOUSE_DATABASE_URL).")
	}
	c := &copier{src: src, dst: dst, out: e.stderr, now: time.Now, total: len(blobs)}
	c.run(ctx, blobs, jobs)
	fmt.Fprintf(e.stdout, "Copied %d file(s) (%s) from %s to %s; %d were there already; %d failed.\n",
		c.copied, humanBytes(c.bytes), from, to, c.skipped, len(c.failed))
	if ctx.Err() != nil {
		return fail(ctx.Err(), "The copy was interrupted", "Run the same command again: it goes on where it stopped.")
	}
	if len(c.failed) > 0 {
		shown := c.failed[:min(len(c.failed), 10)]
		more := ""
		if len(c.failed) > len(shown) {
			more = fmt.Sprintf("\n  … and %d more", len(c.failed)-len(shown))
		}
		return fail(errCopyFailed, fmt.Sprintf("%d file(s) were not copied:\n  %s%s", len(c.failed), strings.Join(shown, "\n  "), more),
			"Nothing wrong was written. Fix what the messages say and run the same command again: it copies only what is missing.")
	}
	return nil
}

var errCopyFailed = errors.New("some files were not copied")

// copier copies blobs between stores, verifying each.
type copier struct {
	src, dst fileStore
	out      io.Writer
	now      func() time.Time
	total    int

	mu       sync.Mutex
	done     int
	copied   int
	skipped  int
	bytes    int64
	failed   []string
	lastShow time.Time
}

func (c *copier) run(ctx context.Context, blobs []project.StoredBlob, jobs int) {
	work := make(chan project.StoredBlob)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for b := range work {
				copied, err := c.copyOne(ctx, b)
				c.record(b, copied, err)
			}
		})
	}
feed:
	for _, b := range blobs {
		select {
		case work <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	c.show(true)
}

func (c *copier) record(b project.StoredBlob, copied bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done++
	switch {
	case err != nil:
		c.failed = append(c.failed, b.Key+": "+err.Error())
	case copied:
		c.copied++
		c.bytes += b.Size
	default:
		c.skipped++
	}
	c.showLocked(false)
}

func (c *copier) show(final bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.showLocked(final)
}

// showLocked prints a progress line at most once a second, and at the end.
func (c *copier) showLocked(final bool) {
	now := c.now()
	if !final && now.Sub(c.lastShow) < time.Second {
		return
	}
	c.lastShow = now
	fmt.Fprintf(c.out, "%d/%d files: %d copied (%s), %d already there, %d failed\n",
		c.done, c.total, c.copied, humanBytes(c.bytes), c.skipped, len(c.failed))
}

// copyOne copies one blob unless the destination has it already, and
// reports whether it copied. The bytes are staged at the destination and
// committed under the key only once their size and digests are the
// database's: a wrong or damaged source file is never published.
func (c *copier) copyOne(ctx context.Context, b project.StoredBlob) (bool, error) {
	if info, err := c.dst.Stat(ctx, b.Key); err == nil && info.Size == b.Size {
		return false, nil
	} else if err != nil && !errors.Is(err, blob.ErrNotFound) {
		return false, fmt.Errorf("looking at the destination: %w", err)
	}
	f, err := c.src.Open(ctx, b.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return false, errors.New("missing from the source store")
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := c.dst.Stage(ctx)
	if err != nil {
		return false, err
	}
	defer st.Discard()
	s256 := sha256.New()
	b2, _ := blake2b.New256(nil)
	n, err := io.Copy(io.MultiWriter(st, s256, b2), f)
	if err != nil {
		return false, err
	}
	hexOf := func(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
	switch {
	case n != b.Size:
		return false, fmt.Errorf("the source file has %d bytes, the database says %d: it is damaged, and was not copied", n, b.Size)
	case b.SHA256 != "" && hexOf(s256) != b.SHA256:
		return false, errors.New("the source file's sha256 digest is not the one the database records: it is damaged, and was not copied")
	case b.Blake2_256 != "" && hexOf(b2) != b.Blake2_256:
		return false, errors.New("the source file's blake2b-256 digest is not the one the database records: it is damaged, and was not copied")
	}
	if err := st.Commit(ctx, b.Key); err != nil {
		return false, err
	}
	return true, nil
}
