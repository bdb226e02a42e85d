// Command benchsuite measures Gatehouse side by side with nginx and a bare
// net/http server serving byte-identical pre-rendered responses, dd writing
// the same bytes, and pip installing from nginx's static files, and reports
// ratios (spec security-and-performance.md, Part 4: P1, P3, P4, P5, P6, P7,
// P10, P11, P12; issue 15's table; method in docs/benchmarks.md). Absolute
// numbers on a shared VM are noise; ratios taken in the same run,
// interleaved A/B/A/B, are what can be compared over time.
//
// It is run by `make bench`, never by `go test`: a run takes minutes, needs
// nginx and wrk, and pins processes to CPUs.
//
//	make bench                        # full run, ~30 minutes on 2 cores
//	make bench BENCHFLAGS=-quick      # smoke run, under two minutes
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bareCommand {
		// The harness starts this program again as the bare Go server.
		if err := serveBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "benchsuite bare server:", err)
			os.Exit(1)
		}
		return
	}
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
	duration    time.Duration // per measured wrk run
	warmup      time.Duration // per server and benchmark, before the rounds; 0 skips
	rounds      int           // A/B pairs per benchmark
	conns       int           // wrk connections
	smallFiles  int           // files in the small project (P1 "n7", the page)
	bigFiles    int           // files in the big project (P1 "n1000")
	dlMiB       []int         // P5 download sizes
	uploads     int           // P6 sequential uploads (and dd runs) per round at 10 MiB; fewer at larger sizes
	uploadMiB   []int         // P6 sizes, curl
	twineMiB    []int         // P6 sizes, twine
	parallel    int           // P6 concurrent curl uploads (largest size)
	logins      []int         // P7 concurrent logins besides 0
	scales      []int         // P4/P11 project counts
	seedFiles   int           // files per filler project
	pipPackages int           // P12 packages per graph
	gomaxprocs  int           // for our server
	pin         bool          // pin servers to CPU0 and load to CPU1 (needs taskset)
	profile     bool          // CPU and allocation profiles of the small-page path
	outDir      string        // where the JSON lines, CSV, markdown and charts go
	docsDir     string        // also write the charts here (docs/benchmarks-*.svg)
	keep        bool          // keep the temp dir (data dir, nginx docroot, logs)
	bin         string        // prebuilt gatehouse binary; "" builds ./cmd/gatehouse
	quick       bool
	versitygw   string          // the S3 step's server; "" looks on PATH
	only        map[string]bool // steps to run; nil: all
}

// stepNames are the parts of a run that -only can pick.
var stepNames = []string{"pages", "profile", "flood", "logins", "uploads", "s3", "upstream", "private", "pip", "growth"}

func (c config) runs(step string) bool { return c.only == nil || c.only[step] }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var dl, up, tw, logins, scales, only string
	fs := flag.NewFlagSet("benchsuite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: benchsuite [flags]\n\nMeasures Gatehouse beside nginx and a bare net/http server (same bytes), dd\n(same writes) and pip against static files, and reports the ratios; see\ndocs/benchmarks.md. Run from the module root.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measured wrk run")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "warm-up per server and benchmark before the rounds (0: none)")
	fs.IntVar(&c.rounds, "rounds", 3, "A/B rounds per benchmark; the median ratio is reported")
	fs.IntVar(&c.conns, "conns", 32, "wrk connections (keep-alive)")
	fs.IntVar(&c.smallFiles, "small-files", 7, "files in the small project")
	fs.IntVar(&c.bigFiles, "big-files", 1000, "files in the big project")
	fs.StringVar(&dl, "download-mib", "1,50", "P5: sizes of the downloaded wheels in MiB, comma-separated")
	fs.IntVar(&c.uploads, "uploads", 5, "P6: sequential uploads (and dd runs) per round of a 10 MiB file; larger files get proportionally fewer, at least 2")
	fs.StringVar(&up, "upload-mib", "10,100", "P6: sizes uploaded with curl, in MiB")
	fs.StringVar(&tw, "twine-mib", "10,100", "P6: sizes uploaded with twine, in MiB (empty: no twine)")
	fs.IntVar(&c.parallel, "parallel", 4, "P6: concurrent curl uploads of the largest size (0: none)")
	fs.StringVar(&logins, "logins", "8,16,32", "P7: concurrent real logins to measure /simple/ under, besides none")
	fs.StringVar(&scales, "scales", "1000,100000,1000000", "P4/P11: project counts for the growth curve, ascending; the first is also where everything else runs")
	fs.IntVar(&c.seedFiles, "seed-files", 1, "P11: files per filler project (inserted directly into the database)")
	fs.IntVar(&c.pipPackages, "pip-packages", 50, "P12: packages in each synthetic dependency graph")
	fs.IntVar(&c.gomaxprocs, "gomaxprocs", 1, "GOMAXPROCS for the Gatehouse server (and the bare Go server)")
	fs.BoolVar(&c.pin, "pin", true, "pin servers to CPU0 and the load generators to CPU1 with taskset (when taskset exists)")
	fs.BoolVar(&c.profile, "profile", true, "take CPU and allocation profiles of /simple/<p>/ and 304 under load (needs a benchdebug build)")
	fs.StringVar(&c.outDir, "out", "bench-out", "directory for the results (JSON lines, CSV, markdown, profiles, charts)")
	fs.StringVar(&c.docsDir, "docs-dir", "", "also write the charts here, e.g. docs (as docs/benchmarks-ratios.svg, docs/benchmarks-growth.svg)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir with data, docroot and logs")
	fs.StringVar(&c.bin, "bin", "", "benchmark this gatehouse binary instead of building ./cmd/gatehouse (e.g. to compare two builds); built without -tags benchdebug it gives no profiles, allocation or render counts")
	fs.StringVar(&only, "only", "", "run only these steps, comma-separated, from "+strings.Join(stepNames, ",")+" (seeding always runs); for working on one of them")
	fs.StringVar(&c.versitygw, "versitygw", "", "the versitygw binary of the S3 step (scripts/versitygw installs the pinned version and prints its path); default: versitygw on PATH")
	fs.BoolVar(&c.quick, "quick", false, "smoke run, under two minutes: 1s runs, 1 round, no warm-up, small sizes and scales 1000,10000")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.quick {
		// Explicit flags still win, so -quick -rounds 2 does what it says.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"duration":     func() { c.duration = time.Second },
			"rounds":       func() { c.rounds = 1 },
			"warmup":       func() { c.warmup = 0 },
			"uploads":      func() { c.uploads = 2 },
			"download-mib": func() { dl = "1,50" },
			"upload-mib":   func() { up = "10" },
			"twine-mib":    func() { tw = "10" },
			"logins":       func() { logins = "8,32" },
			"scales":       func() { scales = "1000,10000" },
			"big-files":    func() { c.bigFiles = 200 },
			"pip-packages": func() { c.pipPackages = 10 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	var err error
	parse := func(name, v string, allowEmpty bool) []int {
		if err != nil {
			return nil
		}
		var xs []int
		xs, err = intList(v)
		if err == nil && len(xs) == 0 && !allowEmpty {
			err = fmt.Errorf("-%s: give at least one number", name)
		}
		if err != nil {
			err = fmt.Errorf("-%s %q: %v", name, v, err)
		}
		return xs
	}
	c.dlMiB = parse("download-mib", dl, false)
	c.uploadMiB = parse("upload-mib", up, false)
	c.twineMiB = parse("twine-mib", tw, true)
	c.logins = parse("logins", logins, true)
	c.scales = parse("scales", scales, false)
	if err != nil {
		return c, err
	}
	if only != "" {
		c.only = map[string]bool{}
		for _, st := range strings.Split(only, ",") {
			st = strings.TrimSpace(st)
			if !slices.Contains(stepNames, st) {
				return c, fmt.Errorf("-only: no step %q; the steps are %s", st, strings.Join(stepNames, ", "))
			}
			c.only[st] = true
		}
	}
	// Found now, not when the S3 step comes, fifteen minutes into a run.
	if c.runs("s3") {
		if c.versitygw == "" {
			c.versitygw, _ = exec.LookPath("versitygw")
		}
		if c.versitygw == "" {
			return c, errors.New("the s3 step needs versitygw and it is not on PATH: pass -versitygw \"$(scripts/versitygw)\" (it installs the pinned version once and prints its path; make bench does this), or leave the step out with -only")
		}
	}
	if !slices.IsSorted(c.scales) || c.scales[0] < 1 {
		return c, errors.New("-scales must be ascending project counts, e.g. 1000,100000,1000000")
	}
	if c.rounds < 1 || c.conns < 1 || c.duration < time.Second || c.smallFiles < 1 || c.bigFiles < 1 || c.uploads < 1 ||
		c.seedFiles < 1 || c.pipPackages < 4 || c.parallel < 0 {
		return c, errors.New("-rounds, -conns, -small-files, -big-files, -uploads, -seed-files must be ≥ 1, -pip-packages ≥ 4, -duration ≥ 1s")
	}
	return c, nil
}

// intList parses "1,50" (spaces allowed, empty allowed).
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
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
	stamp  string // the run's name in bench-out
	tmp    string
	pin    bool // pinning asked for and taskset present
	procs  procs
	client *http.Client

	bin       string  // the gatehouse binary under test
	self      string  // this program, which is also the bare Go server
	ours      *server // Gatehouse
	nginx     *server
	bare      *server // bare net/http serving the same bytes
	rawSrv    *server // hand-written HTTP/1.1 serving the same bytes (small pages)
	port      int     // Gatehouse's port, kept across restarts
	debugAddr string  // Gatehouse's benchdebug listener, or ""
	token     string  // API token for uploads
	dataDir   string
	seeded    seedInfo
	projects  int // projects in the index
	filler    int // of which inserted directly (p0000000 …)
	starts    int // Gatehouse processes started

	machine   machineInfo
	lines     []line   // one per row of the report
	raw       []result // one per measured run
	growth    []growthPoint
	pipGraphs []*pipGraph
	profiles  []profileInfo
	stepTime  []stepTook
}

// stepTook is how long one part of the run took, for the report.
type stepTook struct {
	name string
	took time.Duration
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
		client: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	h.stamp = h.start.UTC().Format("20060102-150405")
	tools := []string{"nginx", "wrk", "dd", "curl"}
	if cfg.bin == "" || cfg.profile {
		tools = append(tools, "go")
	}
	if len(cfg.twineMiB) > 0 {
		tools = append(tools, "twine")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install it (Debian: apt-get install -y nginx-light wrk curl twine python3-pip), or run `make bench`, which does", tool)
		}
	}
	if _, err := os.Stat(debianPython); err != nil {
		return fmt.Errorf("P12 needs Debian's %s with pip 23.0.1: apt-get install -y python3-pip", debianPython)
	}
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	// Pinning needs taskset and a second CPU for the load generator.
	_, tasksetErr := exec.LookPath("taskset")
	h.pin = cfg.pin && tasksetErr == nil && runtime.NumCPU() >= 2
	h.machine = probeMachine(ctx, h.pin)
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}

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
	if err := h.step("build", func() error { return h.build(ctx) }); err != nil {
		return err
	}
	if h.pin {
		// Pin ourselves only after the build, which wants every core. Later
		// children inherit CPU1 unless started through taskset.
		if err := pinSelf(cpuLoad); err != nil {
			return fmt.Errorf("pin harness to CPU%d: %w", cpuLoad, err)
		}
	}
	if err := h.step("set up the index", func() error { return h.setupIndex(ctx) }); err != nil {
		return err
	}
	if err := h.startGatehouse(ctx); err != nil {
		return err
	}
	time.Sleep(time.Second)
	h.memory("idle-start", "after start, before seeding")

	h.logf("seeding")
	if err := h.step("seed through uploads", func() error { return h.seed(ctx) }); err != nil {
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
	if err := h.startBare(ctx, targets); err != nil {
		return err
	}
	var peak float64
	err = h.step("P1 P3 P5 beside nginx and bare Go", func() error {
		if !cfg.runs("pages") {
			return nil
		}
		for _, t := range targets {
			p, err := h.measure(ctx, t)
			if err != nil {
				return err
			}
			peak = max(peak, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cfg.runs("pages") {
		h.memoryValue("under-load", "peak VmRSS while wrk ran (P1, P3, P5)", peak)
		time.Sleep(2 * time.Second)
		h.memory("idle-after-load", "idle again after the GET benchmarks")
	}

	steps := []struct {
		id, name string
		fn       func(context.Context) error
	}{
		{"profile", "profile of the small-page path", func(ctx context.Context) error { return h.profileSmallPages(ctx, targets) }},
		{"flood", "page cache under a flood of unknown names", h.floodBench},
		{"logins", "P7 /simple/ under concurrent logins", h.loginBench},
		{"uploads", "P6 uploads", h.uploadBench},
		{"s3", "downloads and uploads with the files in S3", func(ctx context.Context) error { return h.s3Bench(ctx, targets) }},
		{"upstream", "pull-through cache beside local", func(ctx context.Context) error { return h.upstreamBench(ctx, targets) }},
		{"private", "private reads with a read token beside public", func(ctx context.Context) error { return h.privateBench(ctx, targets) }},
		{"pip", "P12 pip install", h.pipBench},
		{"growth", "P4 and P11 growth curve", h.growthBench},
	}
	for _, st := range steps {
		if !cfg.runs(st.id) || (st.id == "profile" && !cfg.profile) {
			continue
		}
		h.logf("%s", st.name)
		if err := h.step(st.name, func() error { return st.fn(ctx) }); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	h.memoryHWM()

	return h.report()
}

// step runs fn and records how long it took.
func (h *harness) step(name string, fn func() error) error {
	t0 := time.Now()
	err := fn()
	h.stepTime = append(h.stepTime, stepTook{name, time.Since(t0)})
	return err
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
	// benchdebug adds a second, loopback-only listener with pprof and
	// the page cache's counters (cmd/gatehouse/benchdebug.go); the
	// serving code is the same as in a normal build.
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "benchdebug", "-o", h.bin, "./cmd/gatehouse")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags benchdebug ./cmd/gatehouse: %v\n%s", err, out)
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
