package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 rows (issue 11): downloads and uploads with the files in an S3
// bucket, beside the same with the files in a directory, in the same run and
// interleaved round by round. The bucket is versitygw's posix backend on the
// disk the directory store uses, pinned to the server's CPU like Gatehouse,
// so the rows show what the S3 protocol costs (signing, an extra HTTP hop,
// multipart parts and the server-side copy of a large staged upload), not
// the difference between two disks. A second Gatehouse process, on the same
// database and base URL, serves from the bucket; the files get there with
// 'gatehouse storage copy', which is timed too.

const s3Bucket = "bench"

// s3Bench runs the S3 step with the versitygw that parseFlags found
// (-versitygw, or on PATH).
func (h *harness) s3Bench(ctx context.Context, targets []*target) error {
	bin := h.cfg.versitygw
	port, err := freePort()
	if err != nil {
		return err
	}
	root := filepath.Join(h.dataDir, "versitygw") // the blobs' filesystem
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(root)
	const access, secret = "benchsuite", "benchsuite-secret-key"
	vgw := &server{name: "versitygw", base: fmt.Sprintf("http://127.0.0.1:%d", port),
		cmd: h.pinned(context.Background(), cpuServer, bin, "--quiet", "--port", fmt.Sprintf("127.0.0.1:%d", port),
			"--access", access, "--secret", secret, "--health", "/health", "posix", root),
		log: filepath.Join(h.tmp, "versitygw.log")}
	vgw.cmd.Env = childEnv()
	if err := h.procs.start(vgw); err != nil {
		return err
	}
	defer h.procs.stop(vgw)
	if err := h.waitHTTP(ctx, vgw, vgw.base+"/health"); err != nil {
		return err
	}
	mc, err := minio.New(strings.TrimPrefix(vgw.base, "http://"), &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1"})
	if err != nil {
		return err
	}
	if err := mc.MakeBucket(ctx, s3Bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("create the benchmark bucket: %w", err)
	}
	s3Env := []string{"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=us-east-1",
		"GATEHOUSE_STORAGE_ENDPOINT=" + vgw.base, "GATEHOUSE_STORAGE_PATH_STYLE=on"}
	storageURL := "s3://" + s3Bucket + "/files"

	// The files the first server holds, moved with the operator's command.
	copyCmd := exec.CommandContext(ctx, h.bin, append([]string{"storage", "copy", "--from", filepath.Join(h.dataDir, "files"), "--to", storageURL}, h.commonFlags()...)...)
	copyCmd.Env = childEnv(s3Env...)
	t0 := time.Now()
	if out, err := copyCmd.CombinedOutput(); err != nil && !onlyFillerMissing(string(out), h.filler) {
		return fmt.Errorf("gatehouse storage copy: %v\n%s", err, out)
	}
	copyTook := time.Since(t0)
	var copied int64
	for o := range mc.ListObjectsIter(ctx, s3Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		copied += o.Size
	}
	h.logf("  storage copy: %.1f MiB in %s", float64(copied)/(1<<20), copyTook.Round(time.Millisecond))
	cr := result{Bench: "S3", Variant: "storage copy to S3", Server: "gatehouse storage copy", BytesPerS: float64(copied) / copyTook.Seconds(),
		WallS: copyTook.Seconds(), OtherCPU0: -1, OtherCPU1: -1}
	h.raw = append(h.raw, cr)
	h.add(line{ours: cr, value: cr.BytesPerS / 1e6, unit: "MB/s", oursCell: fmt.Sprintf("%.0f MB/s", cr.BytesPerS/1e6),
		goal: record("recorded"), note: "every file and metadata file of the seeded index, each digest verified"})

	// The second instance: same database and base URL, files in S3.
	s3Port, err := freePort()
	if err != nil {
		return err
	}
	args := append([]string{"serve"}, h.commonFlags()...)
	args = append(args, "--listen", fmt.Sprintf("127.0.0.1:%d", s3Port), "--base-url", fmt.Sprintf("http://localhost:%d", h.port), "--storage-url", storageURL)
	s3srv := &server{name: "gatehouse-s3", base: fmt.Sprintf("http://127.0.0.1:%d", s3Port),
		cmd: h.pinned(context.Background(), cpuServer, h.bin, args...), log: filepath.Join(h.tmp, "gatehouse-s3.log")}
	s3srv.cmd.Env = childEnv(append(s3Env, fmt.Sprintf("GOMAXPROCS=%d", h.cfg.gomaxprocs))...)
	if err := h.procs.start(s3srv); err != nil {
		return err
	}
	defer h.procs.stop(s3srv)
	if err := h.waitHTTP(ctx, s3srv, s3srv.base+"/healthz"); err != nil {
		return err
	}

	for _, t := range targets {
		if t.bench != "P5" {
			continue
		}
		if err := h.s3Downloads(ctx, t, s3srv); err != nil {
			return err
		}
	}
	return h.s3Uploads(ctx, s3srv)
}

// s3Downloads measures one P5 download from both instances, interleaved.
func (h *harness) s3Downloads(ctx context.Context, t *target, s3srv *server) error {
	h.logf("S3 %s", t.variant)
	s3URL := s3srv.base + strings.TrimPrefix(t.ours.url, h.ours.base)
	status, body, _, err := h.fetch(ctx, http.MethodGet, s3URL)
	if err != nil || status != http.StatusOK || len(body) != len(t.body) {
		return fmt.Errorf("GET %s from the S3 instance: status %d, %d bytes (want %d), %v", s3URL, status, len(body), len(t.body), err)
	}
	cs := []struct {
		name string
		s    *server
		e    endpoint
	}{{"gatehouse-s3", s3srv, endpoint{url: s3URL}}, {"gatehouse-fs", h.ours, t.ours}}
	var runs [2][]result
	var ratios []float64
	for round := 1; round <= h.cfg.rounds; round++ {
		for i, c := range cs {
			m, err := h.runWrkCPU(ctx, c.s, c.e)
			if err != nil {
				return err
			}
			r := t.result(c.name, m, h.cfg.conns)
			r.Bench, r.Variant, r.Round = "S3", t.variant, round
			runs[i] = append(runs[i], r)
			h.raw = append(h.raw, r)
		}
		ratios = append(ratios, ratio(runs[0][round-1].BytesPerS, runs[1][round-1].BytesPerS))
		h.logf("  round %d: S3 %.0f MB/s, directory %.0f MB/s, ratio %.2f", round, runs[0][round-1].BytesPerS/1e6, runs[1][round-1].BytesPerS/1e6, ratios[round-1])
	}
	ours, ref := medianResult(runs[0]), medianResult(runs[1])
	h.add(line{ours: ours, ref: &ref, refName: "files directory", value: median(ratios), lo: slices.Min(ratios), hi: slices.Max(ratios), unit: "×",
		oursCell: fmt.Sprintf("%.0f MB/s", ours.BytesPerS/1e6), refCell: fmt.Sprintf("directory %.0f MB/s", ref.BytesPerS/1e6),
		goal: record("recorded"), note: "streamed through Gatehouse (the default); --storage-redirect sends clients to the store instead"})
	return nil
}

// s3Uploads uploads distinct wheels with curl to both instances,
// interleaved, at each -upload-mib size.
func (h *harness) s3Uploads(ctx context.Context, s3srv *server) error {
	srcDir := filepath.Join(h.tmp, "s3-src")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(srcDir)
	curlCfg := filepath.Join(h.tmp, "curl-upload.cfg")
	if err := os.WriteFile(curlCfg, []byte(fmt.Sprintf("user = \"__token__:%s\"\n", h.token)), 0o600); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(5, 6))
	seq := 0
	fsSrv := h.ours
	defer func() { h.ours = fsSrv }()
	for _, mib := range h.cfg.uploadMiB {
		h.logf("S3 upload %d MiB", mib)
		n := max(min(2, h.cfg.uploads), min(h.cfg.uploads, h.cfg.uploads*10/mib))
		v := p6Variant{client: "curl", mib: mib, count: n}
		var runs [2][]result
		var ratios []float64
		for round := 1; round <= h.cfg.rounds; round++ {
			for i, s := range []*server{s3srv, fsSrv} {
				var files []string
				var total int64
				for range n {
					seq++
					w, err := buildWheel(uploadProject, fmt.Sprintf("9.%d", seq), "py3-none-any", mib<<20-4096, rng)
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
				h.ours = s // curlUpload posts to h.ours
				times, err := h.timeUploads(ctx, v, files, curlCfg)
				h.ours = fsSrv
				for _, f := range files {
					os.Remove(f)
				}
				if err != nil {
					return err
				}
				r := p6Result(v, s.name, round, times, total)
				r.Bench = "S3"
				runs[i] = append(runs[i], r)
				h.raw = append(h.raw, r)
			}
			ratios = append(ratios, ratio(runs[0][round-1].BytesPerS, runs[1][round-1].BytesPerS))
			h.logf("  round %d: S3 %.0f MB/s, directory %.0f MB/s, ratio %.2f", round, runs[0][round-1].BytesPerS/1e6, runs[1][round-1].BytesPerS/1e6, ratios[round-1])
		}
		ours, ref := medianResult(runs[0]), medianResult(runs[1])
		h.add(line{ours: ours, ref: &ref, refName: "files directory", value: median(ratios), lo: slices.Min(ratios), hi: slices.Max(ratios), unit: "×",
			oursCell: fmt.Sprintf("%.0f MB/s", ours.BytesPerS/1e6), refCell: fmt.Sprintf("directory %.0f MB/s", ref.BytesPerS/1e6),
			goal: record("recorded"), note: "curl, end to end: parts streamed to the bucket while the upload arrives, then checked and copied to the key server-side"})
	}
	return nil
}

// onlyFillerMissing reports whether a failed storage copy failed only on the
// filler projects' files: seeding inserts their rows directly, with no file
// behind them (seed.go), so the copy rightly calls each one missing.
func onlyFillerMissing(out string, filler int) bool {
	if filler == 0 || !strings.Contains(out, fmt.Sprintf("; %d failed.", filler)) {
		return false
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "  … and ") && !strings.HasSuffix(l, ": missing from the source store") {
			return false
		}
	}
	return true
}
