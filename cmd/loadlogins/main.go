// Command loadlogins measures whether sign-ins starve the index (spec P7):
// /simple/<project>/ throughput and p99 while 0, 8, 16 and 32 clients log
// in with real passwords (a real argon2id hash per attempt), against a
// running server. See internal/loginload for the method.
//
//	gatehouse serve --trusted-proxies 127.0.0.1/32 &   # registration open
//	loadlogins -base http://127.0.0.1:8080 -project demo
//
// With -reads=false it only logs in, for -duration, so that another tool
// (wrk in cmd/benchsuite) can read the page meanwhile:
//
//	loadlogins -base … -levels 16 -reads=false -duration 30s & wrk …
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/loginload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadlogins:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o loginload.Options
	var levels string
	var reads, prepare, asJSON bool
	fs := flag.NewFlagSet("loadlogins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Base, "base", "http://127.0.0.1:8080", "the running server (started with --trusted-proxies 127.0.0.1/32)")
	fs.StringVar(&o.Project, "project", "", "project whose /simple/<project>/ page is read (must exist)")
	fs.StringVar(&levels, "levels", "0,8,16,32", "concurrent login clients, one measurement each")
	fs.IntVar(&o.Conns, "conns", 32, "keep-alive connections reading the page")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per level")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before each level's measurement")
	fs.StringVar(&o.Password, "password", loginload.DefaultPassword, "password of the loadlogin<N> accounts")
	fs.IntVar(&o.Accounts, "accounts", 0, "accounts the logins rotate over (default 4 × the largest level)")
	fs.BoolVar(&prepare, "prepare", true, "register the loadlogin<N> accounts that do not exist yet")
	fs.BoolVar(&reads, "reads", true, "read the page and report; false only logs in (one level) for -duration")
	fs.BoolVar(&asJSON, "json", false, "print the levels as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return fmt.Errorf("-levels %q: want counts such as 0,8,16,32", levels)
		}
		o.Levels = append(o.Levels, n)
	}
	if reads && o.Project == "" {
		return errors.New("-project: give a project that exists on the server, e.g. -project demo")
	}
	maxLevel := 0
	for _, n := range o.Levels {
		maxLevel = max(maxLevel, n)
	}
	if o.Accounts <= 0 {
		o.Accounts = 4 * max(1, maxLevel)
	}
	if prepare && maxLevel > 0 {
		fmt.Fprintf(stderr, "loadlogins: making sure %d accounts exist\n", o.Accounts)
		if err := loginload.Prepare(ctx, o.Base, o.Accounts, o.Password); err != nil {
			return err
		}
	}
	if !reads {
		if len(o.Levels) != 1 {
			return errors.New("-reads=false runs one level: give -levels N")
		}
		l := loginload.StartLogins(ctx, o.Base, o.Levels[0], o.Accounts, o.Password)
		select {
		case <-time.After(o.Duration):
		case <-ctx.Done():
		}
		s := l.Stop()
		if asJSON {
			return json.NewEncoder(stdout).Encode(s)
		}
		fmt.Fprintf(stdout, "%d logins for %v: %d attempts, %d signed in, %d busy (429), %d limited, %d other; p50 %v, p99 %v\n",
			o.Levels[0], o.Duration, s.Attempts, s.OK, s.Busy, s.Limited, s.Other, s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond))
		return nil
	}
	out, err := loginload.Run(ctx, o)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "logins\treads/s\t× idle\tp50\tp99\tp99 × idle\tread errors\tsigned in/s\tbusy 429/s\tlimited\tlogin p50\tlogin p99\t")
	for _, l := range out {
		tput, p99 := loginload.Ratios(out[0], l)
		secs := l.Took.Seconds()
		fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%s\t%s\t%.2f\t%d\t%.1f\t%.1f\t%d\t%s\t%s\t\n", l.Logins, l.Reads.RPS, tput,
			ms(l.Reads.P50), ms(l.Reads.P99), p99, l.Reads.Errors, float64(l.Login.OK)/secs, float64(l.Login.Busy)/secs,
			l.Login.Limited, ms(l.Login.P50), ms(l.Login.P99))
	}
	return tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
