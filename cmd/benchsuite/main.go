// Command benchsuite measures Gatehouse side by side with nginx serving
// byte-identical pre-rendered responses, and dd writing the same bytes, and
// reports ratios (spec security-and-performance.md, Part 4: P1, P3, P5, P6
// and memory; method and results in docs/benchmarks.md). Absolute numbers on a shared VM are noise; ratios taken in
// the same run, interleaved A/B/A/B, are what can be compared over time.
//
// It is run by `make bench`, never by `go test`: a run takes minutes, needs
// nginx and wrk, and pins processes to CPUs.
//
//	go run ./cmd/benchsuite            # full run, ~8 minutes on 2 cores
//	go run ./cmd/benchsuite -quick     # smoke run, ~1 minute
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && ctx.Err() != nil {
		// The step that was running failed because of the signal; its
		// error ("signal: killed") would only confuse.
		err = errors.New("interrupted; every process it started has been stopped")
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsuite:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	duration   time.Duration // per measured wrk run
	warmup     time.Duration // per server and benchmark, before the rounds
	rounds     int           // A/B pairs per benchmark
	conns      int           // wrk connections
	smallFiles int           // files in the small project (P1 "n10")
	bigFiles   int           // files in the big project (P1 "n1000")
	uploads    int           // P6 uploads (and dd runs) per round
	uploadMiB  int           // P6 file size
	gomaxprocs int           // for our server
	pin        bool          // pin servers to CPU0 and load to CPU1 (needs taskset)
	outDir     string        // where the JSON lines and the markdown go
	keep       bool          // keep the temp dir (data dir, nginx docroot, logs)
	bin        string        // prebuilt gatehouse binary; "" builds ./cmd/gatehouse
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var quick bool
	fs := flag.NewFlagSet("benchsuite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: benchsuite [flags]\n\nMeasures Gatehouse beside nginx (same bytes) and dd (same writes) and\nreports the ratios; see docs/benchmarks.md. Run from the module root.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measured wrk run")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "warm-up per server and benchmark before the rounds")
	fs.IntVar(&c.rounds, "rounds", 3, "A/B rounds per benchmark; the median ratio is reported")
	fs.IntVar(&c.conns, "conns", 32, "wrk connections (keep-alive)")
	fs.IntVar(&c.smallFiles, "small-files", 10, "files in the small project")
	fs.IntVar(&c.bigFiles, "big-files", 1000, "files in the big project")
	fs.IntVar(&c.uploads, "uploads", 5, "P6: sequential uploads (and dd runs) per round")
	fs.IntVar(&c.uploadMiB, "upload-mib", 10, "P6: size of each uploaded wheel in MiB")
	fs.IntVar(&c.gomaxprocs, "gomaxprocs", 1, "GOMAXPROCS for the Gatehouse server")
	fs.BoolVar(&c.pin, "pin", true, "pin servers to CPU0 and wrk to CPU1 with taskset (when taskset exists)")
	fs.StringVar(&c.outDir, "out", "bench-out", "directory for the results (JSON lines and markdown)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir with data, docroot and logs")
	fs.StringVar(&c.bin, "bin", "", "benchmark this gatehouse binary instead of building ./cmd/gatehouse (e.g. to compare two builds)")
	fs.BoolVar(&quick, "quick", false, "smoke run: 2s runs, 1 round, 1s warm-up, 2 uploads")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if quick {
		// Explicit flags still win, so -quick -rounds 2 does what it says.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			c.duration = 2 * time.Second
		}
		if !set["rounds"] {
			c.rounds = 1
		}
		if !set["warmup"] {
			c.warmup = time.Second
		}
		if !set["uploads"] {
			c.uploads = 2
		}
	}
	if c.rounds < 1 || c.conns < 1 || c.duration < time.Second || c.smallFiles < 1 || c.bigFiles < 1 || c.uploads < 1 || c.uploadMiB < 1 {
		return c, errors.New("-rounds, -conns, -small-files, -big-files, -uploads, -upload-mib must be ≥ 1 and -duration ≥ 1s")
	}
	return c, nil
}

// CPUs: the servers under test share CPU0 (one at a time is measured), the
// load generator and this harness live on CPU1, so a server never competes
// with its own client for cycles.
const (
	cpuServer = 0
	cpuLoad   = 1
)

// harness is one benchmark run.
type harness struct {
	cfg    config
	stdout io.Writer
	stderr io.Writer
	start  time.Time
	tmp    string
	pin    bool // pinning asked for and taskset present
	procs  procs
	client *http.Client

	bin     string  // the gatehouse binary under test
	ours    *server // Gatehouse
	nginx   *server
	token   string // API token for uploads
	dataDir string
	seeded  seedInfo

	machine machineInfo
	lines   []line   // one per row of the report
	raw     []result // one per measured run
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	h := &harness{cfg: cfg, stdout: stdout, stderr: stderr, start: time.Now(),
		client: &http.Client{Timeout: 5 * time.Minute}}
	tools := []string{"nginx", "wrk", "dd"}
	if cfg.bin == "" {
		tools = append(tools, "go")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install it (Debian: apt-get install -y nginx-light wrk), or run `make bench`, which does", tool)
		}
	}
	// Pinning needs taskset and a second CPU for the load generator.
	_, tasksetErr := exec.LookPath("taskset")
	h.pin = cfg.pin && tasksetErr == nil && runtime.NumCPU() >= 2
	h.machine = probeMachine(ctx, h.pin)

	if h.tmp, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
		return err
	}
	// Every process is stopped whatever happens, Ctrl-C included (ctx is
	// cancelled by the signal, the current step fails, and we return here).
	defer func() {
		h.procs.stopAll()
		if cfg.keep {
			h.logf("kept %s", h.tmp)
		} else {
			os.RemoveAll(h.tmp)
		}
	}()

	h.logf("building gatehouse (or using -bin)")
	if err := h.build(ctx); err != nil {
		return err
	}
	if h.pin {
		// Pin ourselves only after the build, which wants every core. Later
		// children inherit CPU1 unless started through taskset.
		if err := pinSelf(cpuLoad); err != nil {
			return fmt.Errorf("pin harness to CPU%d: %w", cpuLoad, err)
		}
	}
	if err := h.startGatehouse(ctx); err != nil {
		return err
	}
	time.Sleep(time.Second)
	h.memory("idle-start", "after start, before seeding")

	h.logf("seeding")
	if err := h.seed(ctx); err != nil {
		return err
	}
	h.logf("seeded in %s (%d uploads)", h.seeded.took.Round(time.Millisecond), h.seeded.uploads)
	time.Sleep(2 * time.Second) // let the upload burst's garbage be collected
	h.memory("idle-seeded", "after seeding, idle")

	targets, err := h.targets(ctx)
	if err != nil {
		return err
	}
	if err := h.startNginx(ctx, targets); err != nil {
		return err
	}
	var peak float64
	for _, t := range targets {
		p, err := h.measure(ctx, t)
		if err != nil {
			return err
		}
		peak = max(peak, p)
	}
	h.memoryValue("under-load", "peak VmRSS while wrk ran (P1, P3, P5)", peak)
	time.Sleep(2 * time.Second)
	h.memory("idle-after-load", "idle again after the GET benchmarks")

	h.logf("P6 uploads")
	if err := h.uploadBench(ctx); err != nil {
		return err
	}
	h.memoryHWM()

	return h.report()
}

// build compiles the server under test from this module.
func (h *harness) build(ctx context.Context) error {
	if h.cfg.bin != "" {
		abs, err := filepath.Abs(h.cfg.bin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("-bin: %w", err)
		}
		h.bin = abs
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	h.bin = filepath.Join(h.tmp, "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", h.bin, "./cmd/gatehouse")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/gatehouse: %v\n%s", err, out)
	}
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run benchsuite inside the gatehouse module (go env GOMOD: %q, %v)", gomod, err)
	}
	return filepath.Dir(gomod), nil
}

// pinned is name+args run on cpu when pinning is on.
func (h *harness) pinned(ctx context.Context, cpu int, name string, args ...string) *exec.Cmd {
	if !h.pin {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "taskset", append([]string{"-c", fmt.Sprint(cpu), name}, args...)...)
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.stderr, "[%6.1fs] %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}
