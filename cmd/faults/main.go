// Command faults is Gatehouse's fault harness: it drives the real gatehouse
// binary with real clients and real signals, breaks things on purpose, and
// checks that nothing acknowledged is ever lost and nothing unacknowledged
// is ever half-visible (spec security-and-performance.md I1–I8 and P13).
//
//	scripts/faults            # the short form, part of scripts/test (≈5 min, 3 min soak)
//	scripts/faults -long      # 200 kills on SQLite, 50 on PostgreSQL, 30 min soak
//	scripts/faults -cases kill,race
//
// The cases:
//
//	kill   kill -9 during uploads: mid-body, at failpoints between writing the
//	       blob and committing, right after the 200; restart and check
//	db     PostgreSQL stopped and started under load; SQLite write lock held
//	disk   the data directory (then the database alone) on a small, full tmpfs
//	slow   500 slow-header connections and 1 KB/s uploads; SIGTERM with uploads in flight
//	race   16 parallel uploads of one filename; two users creating one project
//	soak   the mixed read/upload/login load, sampled over time, with a plot
//
// It prints every check as it goes and a table at the end, writes
// report.txt, report.md, report.json, soak.svg and the servers' logs to -out,
// and exits 1 if any check failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type config struct {
	long         bool
	killSQLite   int
	killPostgres int
	soak         time.Duration
	pgDown       time.Duration
	lockHold     time.Duration
	cases        string
	out          string
	bin          string
	seed         uint64
	keep         bool
}

type harness struct {
	cfg  config
	bin  string // gatehouse built with -tags faultpoints
	out  string
	work string // data directories, PostgreSQL
	pg   *pgCluster
	rep  *report
	rng  *rand.Rand
}

var allCases = []struct {
	name string
	run  func(context.Context, *harness) error
}{
	{"kill", runKill},
	{"race", runRaces},
	{"db", runDBFaults},
	{"disk", runDiskFull},
	{"slow", runSlow},
	{"soak", runSoak},
}

func main() {
	var cfg config
	flag.BoolVar(&cfg.long, "long", false, "the long form: 200 kills on SQLite, 50 on PostgreSQL, a 30-minute soak (results go in docs/reliability.md)")
	flag.IntVar(&cfg.killSQLite, "kills-sqlite", 0, "kill -9 loops on SQLite (default 20, or 200 with -long)")
	flag.IntVar(&cfg.killPostgres, "kills-postgres", 0, "kill -9 loops on PostgreSQL (default 5, or 50 with -long)")
	flag.DurationVar(&cfg.soak, "soak", 0, "soak duration (default 3m, or 30m with -long)")
	flag.DurationVar(&cfg.pgDown, "pg-down", 0, "how long PostgreSQL stays stopped (default 3s, or 10s with -long)")
	flag.DurationVar(&cfg.lockHold, "lock-hold", 12*time.Second, "how long the SQLite write lock is held (longer than busy_timeout, 10s)")
	flag.StringVar(&cfg.cases, "cases", "", "comma-separated cases to run (kill, race, db, disk, slow, soak); default all")
	flag.StringVar(&cfg.out, "out", "faults-out", "directory for the report, the plot and the servers' logs")
	flag.StringVar(&cfg.bin, "bin", "", "gatehouse binary built with -tags faultpoints (default: build it)")
	flag.Uint64Var(&cfg.seed, "seed", 0, "random seed (default: from the clock; printed)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the data directories (in -out/work)")
	flag.Parse()
	if cfg.killSQLite == 0 {
		cfg.killSQLite = pick(cfg.long, 200, 20)
	}
	if cfg.killPostgres == 0 {
		cfg.killPostgres = pick(cfg.long, 50, 5)
	}
	if cfg.soak == 0 {
		cfg.soak = pick(cfg.long, 30*time.Minute, 3*time.Minute)
	}
	if cfg.pgDown == 0 {
		cfg.pgDown = pick(cfg.long, 10*time.Second, 3*time.Second)
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg))
}

func pick[T any](long bool, l, s T) T {
	if long {
		return l
	}
	return s
}

func run(ctx context.Context, cfg config) int {
	h := &harness{cfg: cfg, rep: &report{out: os.Stdout}, rng: rand.New(rand.NewPCG(cfg.seed, 16))}
	var err error
	if h.out, err = filepath.Abs(cfg.out); err != nil {
		return die(err)
	}
	os.RemoveAll(filepath.Join(h.out, "logs"))
	os.RemoveAll(filepath.Join(h.out, "work"))
	h.work = filepath.Join(h.out, "work")
	for _, d := range []string{h.work, filepath.Join(h.out, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return die(err)
		}
	}
	if !cfg.keep {
		defer os.RemoveAll(h.work)
	}
	form := "short"
	if cfg.long {
		form = "long"
	}
	fmt.Printf("faults: %s form, seed %d, %d CPUs; report in %s\n", form, cfg.seed, runtime.NumCPU(), h.out)
	started := time.Now()

	if h.bin, err = h.binary(ctx); err != nil {
		return die(err)
	}
	if bin := findPGBin(); bin != "" {
		h.pg, err = startPostgres(ctx, bin, h.work)
		if err != nil {
			return die(fmt.Errorf("start PostgreSQL: %w", err))
		}
		defer h.pg.close()
	} else {
		fmt.Println("faults: no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql); the PostgreSQL cases are skipped")
	}

	want := map[string]bool{}
	for c := range strings.SplitSeq(cfg.cases, ",") {
		if c = strings.TrimSpace(c); c != "" {
			want[c] = true
		}
	}
	for _, c := range allCases {
		if len(want) > 0 && !want[c.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t := time.Now()
		fmt.Printf("faults: --- %s\n", c.name)
		if err := c.run(ctx, h); err != nil {
			h.rep.fail(c.name, "-", err)
		}
		fmt.Printf("faults: --- %s took %s\n", c.name, time.Since(t).Round(100*time.Millisecond))
	}

	header := fmt.Sprintf("Fault harness, %s form: seed %d, %d CPUs, %s, took %s.", form, cfg.seed, runtime.NumCPU(),
		time.Now().UTC().Format("2006-01-02"), time.Since(started).Round(time.Second))
	fmt.Println()
	fmt.Println(header)
	fmt.Println()
	h.rep.table(os.Stdout)
	if err := h.rep.write(h.out, header); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
	}
	if ctx.Err() != nil {
		fmt.Println("faults: interrupted")
		return 1
	}
	if n := h.rep.failed(); n > 0 {
		fmt.Printf("\nfaults: %d check(s) FAILED; the servers' logs are in %s\n", n, filepath.Join(h.out, "logs"))
		return 1
	}
	fmt.Println("\nfaults: every check passed")
	return 0
}

func die(err error) int {
	fmt.Fprintln(os.Stderr, "faults:", err)
	return 2
}

// binary builds gatehouse with the failpoints compiled in, unless -bin
// gives one.
func (h *harness) binary(ctx context.Context) (string, error) {
	if h.cfg.bin != "" {
		return filepath.Abs(h.cfg.bin)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(h.out, "gatehouse-faultpoints")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "faultpoints", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags faultpoints ./cmd/gatehouse: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness inside the gatehouse module (scripts/faults does), or give -bin")
	}
	return filepath.Dir(mod), nil
}
