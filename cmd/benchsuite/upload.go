package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// p6Variant is one way of uploading: a client, a size, how many at once.
type p6Variant struct {
	client   string // "curl" or "twine"
	mib      int
	count    int // uploads per round
	parallel bool
	goal     goal
}

func (v p6Variant) name() string {
	if v.parallel {
		return fmt.Sprintf("%s %d MiB ×%d parallel", v.client, v.mib, v.count)
	}
	return fmt.Sprintf("%s %d MiB ×%d", v.client, v.mib, v.count)
}

// uploadBench is P6 and issue 15's upload row: distinct wheels through
// POST /legacy/ with curl and with twine (Debian's, as users run it), one
// after another and several at once, each beside dd writing the same file
// with fsync to the filesystem of the data dir. Uploads are timed end to
// end as the client sees them (send, spool and hash, inspect, store with
// fsync, commit, answer): curl by its own time_total, twine by its wall
// time (Python's start-up and twine's own hashing included, which is what
// a user waits for). A single dd is timed by its own report, so it is not
// charged for process start; parallel runs of either are timed by the wall
// clock from the first start to the last exit.
func (h *harness) uploadBench(ctx context.Context) error {
	srcDir := filepath.Join(h.tmp, "p6-src")
	ddDir := filepath.Join(h.dataDir, "dd-bench") // same filesystem as the blobs
	for _, d := range []string{srcDir, ddDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	defer os.RemoveAll(ddDir)
	defer os.RemoveAll(srcDir)
	// curl reads the token from a file rather than its command line, where
	// every process on the machine could read it.
	curlCfg := filepath.Join(h.tmp, "curl-upload.cfg")
	if err := os.WriteFile(curlCfg, []byte(fmt.Sprintf("user = \"__token__:%s\"\n", h.token)), 0o600); err != nil {
		return err
	}
	count := func(mib int) int { return max(min(2, h.cfg.uploads), min(h.cfg.uploads, h.cfg.uploads*10/mib)) }
	var vs []p6Variant
	largest := slices.Max(h.cfg.uploadMiB)
	for _, mib := range h.cfg.uploadMiB {
		g := record("recorded")
		if mib == largest {
			g = ratioGoal(0.5, "dd conv=fsync MB/s")
		}
		vs = append(vs, p6Variant{client: "curl", mib: mib, count: count(mib), goal: g})
	}
	for _, mib := range h.cfg.twineMiB {
		vs = append(vs, p6Variant{client: "twine", mib: mib, count: count(mib), goal: record("recorded")})
	}
	if h.cfg.parallel > 1 {
		vs = append(vs, p6Variant{client: "curl", mib: largest, count: h.cfg.parallel, parallel: true, goal: ratioGoal(0.5, "dd conv=fsync MB/s, as many at once")})
	}

	rng := rand.New(rand.NewPCG(3, 4))
	seq := 0
	// An untimed first upload creates the project (extra rows, journal
	// entries) and warms the path.
	w, err := buildWheel(uploadProject, "0.0", "py3-none-any", 1<<20, rng)
	if err != nil {
		return err
	}
	if err := h.uploadWheel(ctx, w); err != nil {
		return err
	}
	poll := pollRSS(h.ours.cmd.Process.Pid)
	defer poll.Stop()
	per := make([][]result, len(vs))
	refs := make([][]result, len(vs))
	ratios := make([][]float64, len(vs))
	for round := 1; round <= h.cfg.rounds; round++ {
		for i, v := range vs {
			var files []string
			var total int64
			for range v.count {
				seq++
				// The payload leaves room for the zip's own few hundred
				// bytes, so the wheel is just under the nominal size.
				w, err := buildWheel(uploadProject, fmt.Sprintf("%d.%d", round, seq), "py3-none-any", v.mib<<20-4096, rng)
				if err != nil {
					return err
				}
				src := filepath.Join(srcDir, w.filename)
				if err := os.WriteFile(src, w.data, 0o644); err != nil {
					return err
				}
				files = append(files, src)
				total += int64(len(w.data))
			}
			upTimes, err := h.timeUploads(ctx, v, files, curlCfg)
			if err != nil {
				return err
			}
			ddTimes, err := h.timeDDs(ctx, v.parallel, files, ddDir)
			if err != nil {
				return err
			}
			for _, f := range files {
				os.Remove(f)
			}
			ro, rd := p6Result(v, "gatehouse "+v.client, round, upTimes, total), p6Result(v, "dd", round, ddTimes, total)
			r := ratio(ro.BytesPerS, rd.BytesPerS)
			ro.Ratio = &r
			per[i], refs[i], ratios[i] = append(per[i], ro), append(refs[i], rd), append(ratios[i], r)
			h.raw = append(h.raw, ro, rd)
			h.logf("  round %d, %s: %.0f MB/s, dd %.0f MB/s, ratio %.2f", round, v.name(), ro.BytesPerS/1e6, rd.BytesPerS/1e6, r)
		}
	}
	for i, v := range vs {
		ours, ref := medianResult(per[i]), medianResult(refs[i])
		h.add(line{issue: 4, ours: ours, ref: &ref, refName: "dd", value: median(ratios[i]), lo: slices.Min(ratios[i]), hi: slices.Max(ratios[i]), unit: "×",
			oursCell: fmt.Sprintf("%.0f MB/s", ours.BytesPerS/1e6), refCell: fmt.Sprintf("dd %.0f MB/s", ref.BytesPerS/1e6),
			goal: v.goal, chart: true})
	}
	h.memoryValue("during-uploads", "peak VmRSS during P6", poll.Stop())
	return nil
}

// p6Result summarises one variant's round. With parallel uploads times has
// one entry, the wall time of all of them.
func p6Result(v p6Variant, srv string, round int, times []float64, total int64) result {
	sum := 0.0
	for _, t := range times {
		sum += t
	}
	r := result{Bench: "P6", Variant: v.name(), Server: srv, N: v.count, Conc: 1, Round: round,
		RPS: float64(v.count) / sum, P50: percentile(times, 50) * 1000, P99: percentile(times, 99) * 1000,
		BytesPerS: float64(total) / sum, OtherCPU0: -1, OtherCPU1: -1}
	if v.parallel {
		r.Conc = v.count
	}
	return r
}

// timeUploads uploads the files with the variant's client and returns the
// seconds each took (or, in parallel, the one wall time of all).
func (h *harness) timeUploads(ctx context.Context, v p6Variant, files []string, curlCfg string) ([]float64, error) {
	one := func(file string) (float64, error) {
		if v.client == "twine" {
			return h.twineUpload(ctx, file)
		}
		return h.curlUpload(ctx, file, curlCfg)
	}
	if !v.parallel {
		var times []float64
		for _, f := range files {
			t, err := one(f)
			if err != nil {
				return nil, err
			}
			times = append(times, t)
		}
		return times, nil
	}
	t0 := time.Now()
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { _, errs[i] = one(f) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return []float64{time.Since(t0).Seconds()}, nil
}

// curlUpload posts the wheel as twine's form would, with curl on the load
// CPU, and returns curl's own time_total.
func (h *harness) curlUpload(ctx context.Context, file, cfg string) (float64, error) {
	w, err := wheelFromFile(file)
	if err != nil {
		return 0, err
	}
	args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-K", cfg}
	for _, kv := range formFields(w) {
		args = append(args, "--form-string", kv[0]+"="+kv[1])
	}
	args = append(args, "-F", "content=@"+file+";type=application/octet-stream", h.ours.base+"/legacy/")
	out, err := h.pinned(ctx, cpuLoad, "curl", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("curl upload of %s: %v\n%s", filepath.Base(file), err, out)
	}
	code, secs, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if code != "200" {
		return 0, fmt.Errorf("curl upload of %s: HTTP %s", filepath.Base(file), code)
	}
	return strconv.ParseFloat(secs, 64)
}

// wheelFromFile reads a wheel written by uploadBench back, with the name
// and version its filename carries, for the form fields.
func wheelFromFile(file string) (*wheel, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(filepath.Base(file), ".whl")
	parts := strings.SplitN(base, "-", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a wheel name: %s", file)
	}
	return &wheel{project: strings.ReplaceAll(parts[0], "_", "-"), version: parts[1], tag: parts[2], filename: filepath.Base(file), data: data}, nil
}

// twineUpload runs Debian's twine on the load CPU and returns its wall time.
func (h *harness) twineUpload(ctx context.Context, file string) (float64, error) {
	cmd := h.pinned(ctx, cpuLoad, "twine", "upload", "--disable-progress-bar", "--non-interactive", file)
	cmd.Env = pythonEnv(h.tmp, "TWINE_USERNAME=__token__", "TWINE_PASSWORD="+h.token, "TWINE_REPOSITORY_URL="+h.ours.base+"/legacy/")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	secs := time.Since(t0).Seconds()
	if err != nil {
		return 0, fmt.Errorf("twine upload %s: %v\n%s", filepath.Base(file), err, out)
	}
	return secs, nil
}

// pythonEnv is the whole environment of pip and twine: Debian's tools, no
// user configuration, no keyring, no caches.
func pythonEnv(home string, extra ...string) []string {
	env := []string{
		"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1", "PYTHONNOUSERSITE=1", "NO_COLOR=1",
		"PIP_CONFIG_FILE=" + os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1",
		"PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring", "TWINE_NON_INTERACTIVE=1",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return append(env, extra...)
}

// timeDDs writes each file with dd conv=fsync on the server's CPU: one
// after another, timed by dd itself, or all at once, timed by the wall
// clock.
func (h *harness) timeDDs(ctx context.Context, parallel bool, files []string, ddDir string) ([]float64, error) {
	if !parallel {
		var times []float64
		for _, f := range files {
			dst := filepath.Join(ddDir, filepath.Base(f))
			secs, err := h.dd(ctx, f, dst)
			os.Remove(dst)
			if err != nil {
				return nil, err
			}
			times = append(times, secs)
		}
		return times, nil
	}
	t0 := time.Now()
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { _, errs[i] = h.dd(ctx, f, filepath.Join(ddDir, filepath.Base(f))) })
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	for _, f := range files {
		os.Remove(filepath.Join(ddDir, filepath.Base(f)))
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return []float64{wall}, nil
}

// dd copies src to dst as the reference writer, on the server's CPU, and
// returns the seconds dd itself reports.
func (h *harness) dd(ctx context.Context, src, dst string) (float64, error) {
	cmd := h.pinned(ctx, cpuServer, "dd", "if="+src, "of="+dst, "bs=1M", "conv=fsync")
	cmd.Env = append(os.Environ(), "LC_ALL=C") // a decimal point, English words
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dd: %v\n%s", err, out)
	}
	return parseDD(string(out))
}

// parseDD reads the seconds from GNU dd's last line:
// "10485760 bytes (10 MB, 10 MiB) copied, 0.0236 s, 444 MB/s".
func parseDD(out string) (float64, error) {
	for line := range strings.Lines(out) {
		_, rest, ok := strings.Cut(line, " copied, ")
		if !ok {
			continue
		}
		secs, _, _ := strings.Cut(rest, " s,")
		v, err := strconv.ParseFloat(strings.TrimSpace(secs), 64)
		if err == nil && v > 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("cannot read dd's time from %q", out)
}
