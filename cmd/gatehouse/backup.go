package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/backup"
	"github.com/gatehouse-index/gatehouse/internal/db"
)

const backupUsage = `Usage: gatehouse backup [flags] DEST

Writes a consistent backup of the index to the directory DEST (new, or
empty) while the server runs: the database as of one moment (SQLite's VACUUM
INTO; PostgreSQL's pg_dump, which must be installed), every package file
that database lists, each checked against its sha256, and the server secret
when it is kept in a file. Give it the server's settings (--data-dir,
--database-url, ...), as for every command. Restore with 'gatehouse restore'.

DEST holds the server secret and the password hashes: keep it as private as
the index itself.`

func backupCmd(ctx context.Context, e env, args []string) error {
	cfg, dest, err := loadConfigArg(e, "backup", backupUsage, args, "backup directory (DEST)", nil)
	if err != nil {
		return helpOK(err)
	}
	if err := requireIndex(cfg); err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fail(err, fmt.Sprintf("Gatehouse could not open the database %s: %v", redactURL(cfg.DatabaseURL), err),
			"Check --database-url (or GATEHOUSE_DATABASE_URL) and --data-dir: they must be the server's.")
	}
	defer d.Close()
	// The store the server uses: the files directory, or the bucket of
	// --storage-url.
	store, err := openStore(ctx, cfg, storageLocation(cfg))
	if err != nil {
		return err
	}
	defer store.Close()
	secretFile := cfg.SecretKeyFile
	if cfg.SecretKey != "" {
		secretFile = ""
	}
	fmt.Fprintf(e.stderr, "Taking a snapshot of the %s database...\n", dialectName(d.Dialect))
	m, err := backup.Take(ctx, backup.Options{DB: d, DatabaseURL: cfg.DatabaseURL, Store: store, SecretFile: secretFile,
		Dest: dest, Progress: progress(e.stderr, "Copied"), Now: time.Now})
	if err != nil {
		if errors.Is(err, backup.ErrNotEmpty) {
			return fail(err, fmt.Sprintf("The backup directory %s is not empty", abs(dest)),
				"Give a new or empty directory: a backup never overwrites or mixes with another.")
		}
		return fail(err, "The backup did not finish: "+err.Error(),
			"Nothing in "+abs(dest)+" is a usable backup (it has no manifest.json); remove it and run the backup again.")
	}
	fmt.Fprintf(e.stdout, "Backed up the %s database and %d files (%s) to %s.\n", dialectName(d.Dialect), len(m.Files), humanBytes(m.Bytes), abs(dest))
	if m.Secret == "" {
		fmt.Fprintln(e.stdout, "The server secret is set with --secret-key (or GATEHOUSE_SECRET_KEY), so it is not in the backup: keep it with the configuration, or no API token works after a restore.")
	}
	return nil
}

const restoreUsage = `Usage: gatehouse restore [--force] [flags] SRC

Restores the backup in the directory SRC (made by 'gatehouse backup') into
the index the settings name (--data-dir, --database-url, --files-dir or
--storage-url and the other --storage-* settings, as for 'gatehouse serve').
Every file of the backup is checked against its sha256 first, and again once
stored. The server of the target index must not be running.

It refuses a data directory, database or file store that already holds
something, unless given --force.`

func restoreCmd(ctx context.Context, e env, args []string) error {
	var force bool
	cfg, src, err := loadConfigArg(e, "restore", restoreUsage, args, "backup directory (SRC)", func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace the database, package files and server secret already in the target")
	})
	if err != nil {
		return helpOK(err)
	}
	if !force {
		if ents, err := os.ReadDir(cfg.DataDir); err == nil && len(ents) > 0 {
			return fail(backup.ErrNotEmpty, fmt.Sprintf("The data directory %s (%s) is not empty", abs(cfg.DataDir), cfg.origin("data-dir", "GATEHOUSE_DATA_DIR")),
				"Restore into a new, empty directory with --data-dir DIR, or add --force to replace the index there (stop its server first).")
		}
	}
	dialect, sqliteFile := db.Postgres, ""
	if p, ok := sqlitePath(cfg.DatabaseURL); ok {
		dialect, sqliteFile = db.SQLite, p
	}
	if err := makeDataDir(cfg, newLogger(cfg, e)); err != nil {
		return err
	}
	// The store the server uses: the files directory, or the bucket of
	// --storage-url.
	store, err := openStore(ctx, cfg, storageLocation(cfg))
	if err != nil {
		return err
	}
	defer store.Close()
	secretFile := cfg.SecretKeyFile
	if cfg.SecretKey != "" {
		secretFile = ""
	}
	fmt.Fprintf(e.stderr, "Checking the backup in %s...\n", abs(src))
	// Restore reports the check of the backup, then the storing.
	checked, stored, verified := progress(e.stderr, "Checked"), progress(e.stderr, "Stored"), false
	res, err := backup.Restore(ctx, backup.RestoreOptions{Src: src, Dialect: dialect, SQLitePath: sqliteFile, DatabaseURL: cfg.DatabaseURL,
		Store: store, SecretFile: secretFile, Force: force,
		Progress: func(done, total int, bytes, totalBytes int64) {
			if verified {
				stored(done, total, bytes, totalBytes)
				return
			}
			checked(done, total, bytes, totalBytes)
			verified = done == total
		}})
	switch {
	case errors.Is(err, backup.ErrNotEmpty):
		return fail(err, "Nothing was restored: "+err.Error(),
			"Restore into a new, empty index (--data-dir, --database-url), or add --force to replace what is there (stop its server first).")
	case errors.Is(err, backup.ErrDamaged):
		return fail(err, "Nothing was restored: the backup is damaged: "+err.Error(), "Restore from another backup.")
	case err != nil:
		return fail(err, "The restore did not finish: "+err.Error(),
			"Fix the cause and run it again with --force (the target now holds part of the backup).")
	}
	m := res.Manifest
	fmt.Fprintf(e.stdout, "Restored the %s database and %d files (%s) from the backup of %s.\n", dialectName(dialect), len(m.Files), humanBytes(m.Bytes),
		m.Created.Format(time.RFC3339))
	if !res.Secret {
		fmt.Fprintln(e.stdout, "The backup holds no server secret: give the server the secret it had (--secret-key or --secret-key-file), or no API token works.")
	}
	fmt.Fprintln(e.stdout, "Start the server with these same settings: gatehouse serve"+locationArgs(cfg))
	return nil
}

// locationArgs repeats the settings that say where the index is, as they
// were given on the command line.
// The S3 keys are not repeated: they are secrets, and the message says to
// give them again.
func locationArgs(cfg *settings) string {
	var b strings.Builder
	values := map[string]string{"data-dir": cfg.DataDir, "database-url": redactURL(cfg.DatabaseURL), "files-dir": cfg.FilesDir,
		"secret-key-file": cfg.SecretKeyFile, "storage-url": cfg.Storage.URL, "storage-endpoint": cfg.Storage.Endpoint,
		"storage-region": cfg.Storage.Region, "storage-path-style": cfg.Storage.PathStyle}
	for _, name := range []string{"data-dir", "database-url", "files-dir", "secret-key-file", "storage-url", "storage-endpoint", "storage-region", "storage-path-style"} {
		if cfg.given[name] {
			fmt.Fprintf(&b, " --%s %s", name, values[name])
		}
	}
	if cfg.given["storage-access-key"] || cfg.given["storage-secret-key"] {
		b.WriteString(" (and the same storage keys)")
	}
	return b.String()
}

// progress writes "Copied 12 of 40 files (3.4 MiB of 10.0 MiB)" about ten
// times over a run, and at its end.
func progress(w io.Writer, verb string) backup.Progress {
	last := -1
	return func(done, total int, bytes, totalBytes int64) {
		step := done * 10 / max(total, 1)
		if step == last && done != total {
			return
		}
		last = step
		fmt.Fprintf(w, "%s %d of %d files (%s of %s)\n", verb, done, total, humanBytes(bytes), humanBytes(totalBytes))
	}
}

// humanBytes is a size as people read it.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
