package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/config"
	"github.com/gatehouse-index/gatehouse/internal/upstream"
)

const upstreamUsage = `Usage: gatehouse upstream prune --unused-for AGE [--dry-run] [flags]
       gatehouse upstream prune --older-than AGE [--dry-run] [flags]

Removes from the package files store the copies of upstream files (and of
their PEP 658 metadata) that the pull-through cache (--upstream) stored.
The store keeps every upstream file downloaded once, so without pruning it
grows with everything ever installed through the index.

--unused-for AGE removes the copies nobody downloaded for AGE, such as
30d: the files your builds no longer install. (Downloads are noted to
within a day; a copy is never removed less than AGE after it was stored.)
--older-than AGE removes the copies stored more than AGE ago, downloaded
or not, so that every file is fetched and checked again now and then.

A pruned file is still listed: its next download fetches it from the
upstream again and checks its sha256 against the page again, as a first
download does. While the upstream is down, pruned files cannot be
downloaded, so prune with an age longer than any outage you plan for.
Local files are never touched. It is safe to run while servers are
running. --dry-run only counts what would be removed.`

func upstreamCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "prune" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			fmt.Fprintln(e.stdout, upstreamUsage)
			return nil
		}
		return usageErr("upstream prune", "The upstream command has one subcommand, prune: gatehouse upstream prune --older-than 30d")
	}
	var olderThan, unusedFor string
	var dryRun bool
	cfg, err := loadConfig(e, "upstream prune", upstreamUsage, args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&unusedFor, "unused-for", "", "remove the copies not downloaded for this long, e.g. 30d or 720h")
		fs.StringVar(&olderThan, "older-than", "", "remove the copies stored at least this long ago, e.g. 30d or 720h")
		fs.BoolVar(&dryRun, "dry-run", false, "only count what would be removed")
	})
	if err != nil {
		return helpOK(err)
	}
	by, flagName, given := upstream.UnusedSince, "--unused-for", unusedFor
	switch {
	case olderThan != "" && unusedFor != "":
		return usageErr("upstream prune", "Give --unused-for or --older-than, not both: --unused-for 30d removes what nobody installed for 30 days, --older-than 30d what was stored 30 days ago")
	case olderThan != "":
		by, flagName, given = upstream.StoredBefore, "--older-than", olderThan
	case unusedFor == "":
		return usageErr("upstream prune", "Say which stored copies to remove: --unused-for 30d (not downloaded for 30 days) or --older-than 30d (stored 30 days ago)")
	}
	age, err := config.ParseDuration(given)
	if err != nil || age < 0 {
		return usageErr("upstream prune", "%s %q is not an age: give one such as 30d, 12h or 0s (everything)", flagName, given)
	}
	log := newLogger(cfg, e)
	a, err := open(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	blobs, err := openStore(ctx, cfg, storageLocation(cfg))
	if err != nil {
		return err
	}
	defer blobs.Close()
	up := upstream.New(upstream.Options{DB: a.db, Blobs: blobs, Log: log})
	res, err := up.Prune(ctx, by, time.Now().Add(-age), dryRun)
	did := "Removed"
	if dryRun {
		did = "Would remove"
	}
	which := "stored more than " + given + " ago"
	if by == upstream.UnusedSince {
		which = "not downloaded for " + given
	}
	summary := fmt.Sprintf("%s %d stored upstream file(s) of %d project(s), %s, %s, from %s.",
		did, res.Files, res.Projects, humanBytes(res.Bytes), which, storageName(cfg))
	if err != nil {
		return fail(err, fmt.Sprintf("%s, then stopped: %v", summary, err),
			"Check that the database is reachable and this user may write to the files store, then run 'gatehouse upstream prune' again: it goes on where it stopped.")
	}
	fmt.Fprintln(e.stdout, summary)
	return nil
}
