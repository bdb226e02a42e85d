package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
)

// Project names used by the suite.
const (
	smallProject  = "bench-small"  // P1/P3 at N = -small-files
	bigProject    = "bench-big"    // P1/P3 at N = -big-files
	uploadProject = "bench-upload" // P6
	growProject   = "bench-grow"   // P11's uploads
	benchUser     = "bench"        // owns every project, uploads with a token
	loginUser     = "loginbench"   // P7's logins
)

// loginPassword is P7's user's password: long and random enough for the
// password policy, and known to be a benchmark fixture.
const loginPassword = "benchsuite-login-Quartz-7f3a9c-Meadow"

// wheelTags are the platform variants each release of the seeded projects
// gets, so that pages look like a real project's: several wheels per
// version, long filenames.
var wheelTags = []string{
	"py3-none-any",
	"cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
	"cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
	"cp312-cp312-win_amd64",
}

// wheel is a built distribution ready to upload.
type wheel struct {
	project, version, tag string
	filename              string
	data                  []byte
	metadata              []byte // the METADATA file, which is also the PEP 658 file
}

// buildWheel makes a small but real wheel: a package, METADATA, WHEEL and
// RECORD, which is what the server's archive inspection requires. payload
// random bytes are stored uncompressed, so the file's size is what we ask
// for and inflating it costs what a real binary wheel's would.
//
// extraMeta lines (e.g. "Requires-Dist: x >=1.0") go into METADATA.
func buildWheel(project, version, tag string, payload int, rng *rand.Rand, extraMeta ...string) (*wheel, error) {
	dist := strings.ReplaceAll(project, "-", "_")
	distInfo := dist + "-" + version + ".dist-info"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, method uint16, body []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			return err
		}
		_, err = w.Write(body)
		return err
	}
	files := []struct {
		name string
		body []byte
	}{
		{dist + "/__init__.py", []byte("__version__ = \"" + version + "\"\n")},
		{distInfo + "/METADATA", []byte("Metadata-Version: 2.1\nName: " + project + "\nVersion: " + version +
			"\nSummary: Gatehouse benchmark fixture\nRequires-Python: >=3.8\n" + metaLines(extraMeta) + "\nA wheel made by cmd/benchsuite.\n")},
		{distInfo + "/WHEEL", []byte("Wheel-Version: 1.0\nGenerator: benchsuite\nRoot-Is-Purelib: true\nTag: " + tag + "\n")},
	}
	record := ""
	for _, f := range files {
		if err := add(f.name, zip.Deflate, f.body); err != nil {
			return nil, err
		}
		record += f.name + ",,\n"
	}
	if payload > 0 {
		b := make([]byte, payload)
		for i := 0; i+8 <= len(b); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		if err := add(dist+"/payload.bin", zip.Store, b); err != nil {
			return nil, err
		}
		record += dist + "/payload.bin,,\n"
	}
	if err := add(distInfo+"/RECORD", zip.Deflate, []byte(record+distInfo+"/RECORD,,\n")); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &wheel{project: project, version: version, tag: tag, metadata: []byte(files[1].body),
		filename: dist + "-" + version + "-" + tag + ".whl", data: buf.Bytes()}, nil
}

func metaLines(ls []string) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// formFields are the upload form's fields besides the file, as twine sends
// them for w.
func formFields(w *wheel) [][2]string {
	sum := sha256.Sum256(w.data)
	pyver := "py3"
	if !strings.HasPrefix(w.tag, "py3") {
		pyver, _, _ = strings.Cut(w.tag, "-")
	}
	return [][2]string{
		{":action", "file_upload"}, {"protocol_version", "1"},
		{"name", w.project}, {"version", w.version},
		{"filetype", "bdist_wheel"}, {"pyversion", pyver},
		{"metadata_version", "2.1"}, {"summary", "Gatehouse benchmark fixture"},
		{"requires_python", ">=3.8"}, {"sha256_digest", hex.EncodeToString(sum[:])},
	}
}

// uploadBody is the multipart form twine would send for w.
func uploadBody(w *wheel) (body []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, kv := range formFields(w) {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return nil, "", err
		}
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="content"; filename="`+w.filename+`"`)
	hdr.Set("Content-Type", "application/octet-stream")
	pw, err := mw.CreatePart(hdr)
	if err != nil {
		return nil, "", err
	}
	if _, err := pw.Write(w.data); err != nil {
		return nil, "", err
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// upload posts a prepared form to /legacy/ with the API token, as twine does.
func (h *harness) upload(ctx context.Context, body []byte, contentType string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.ours.base+"/legacy/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("__token__:"+h.token)))
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload: %s", resp.Status) // Warehouse puts the reason in the status line
	}
	return nil
}

func (h *harness) uploadWheel(ctx context.Context, w *wheel) error {
	body, ct, err := uploadBody(w)
	if err != nil {
		return err
	}
	if err := h.upload(ctx, body, ct); err != nil {
		return fmt.Errorf("%s: %w", w.filename, err)
	}
	return nil
}

// setupIndex creates the index, a user and a token with the CLI, exactly
// as an operator would, and the login user of P7 with a password; then
// inserts the first scale's filler projects directly.
func (h *harness) setupIndex(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	h.port = port
	h.dataDir = filepath.Join(h.tmp, "data")
	cli := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, h.bin, append(args, h.commonFlags()...)...)
		cmd.Env = childEnv()
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out), nil
	}
	// Uploading needs a verified email address and a second factor, as on
	// PyPI. The CLI vouches for the address; see addSecondFactor for the
	// second factor.
	// The index is new: migrate --create sets it up, as serve would.
	if _, err := cli("", "migrate", "--create"); err != nil {
		return err
	}
	if _, err := cli("", "user", "create", "--username", benchUser, "--email", "bench@example.com", "--email-verified", "--no-password"); err != nil {
		return err
	}
	// P7's user signs in with a password and nothing else, so every login
	// is one real argon2 hash and a new session.
	if _, err := cli(loginPassword+"\n", "user", "create", "--username", loginUser, "--email", "login@example.com", "--email-verified", "--password-stdin"); err != nil {
		return err
	}
	if err := addSecondFactor(ctx, h.dataDir, benchUser); err != nil {
		return err
	}
	out, err := cli("", "token", "create", "--user", benchUser, "--description", "benchsuite")
	if err != nil {
		return err
	}
	h.token = strings.TrimSpace(out)
	n, took, err := bulkSeed(ctx, h.dataDir, 0, h.cfg.scales[0], h.cfg.seedFiles)
	if err != nil {
		return err
	}
	h.filler, h.projects = n, n
	h.logf("inserted %d filler projects in %s", n, took.Round(time.Millisecond))
	return nil
}

// commonFlags are given to every gatehouse command. The CLI gets the same
// listen address as the server: the token's location is derived from the
// base URL.
func (h *harness) commonFlags() []string {
	return []string{"--data-dir", h.dataDir, "--listen", fmt.Sprintf("127.0.0.1:%d", h.port)}
}

// startGatehouse starts the server, pinned, and waits until it answers
// /healthz; h.ours.boot is the time from exec to that first 200.
func (h *harness) startGatehouse(ctx context.Context) error {
	return h.launchGatehouse(ctx, "/healthz")
}

// launchGatehouse starts the server and waits for a 200 on path.
func (h *harness) launchGatehouse(ctx context.Context, path string) error {
	debugPort, err := freePort()
	if err != nil {
		return err
	}
	cmd := h.pinned(context.Background(), cpuServer, h.bin, append([]string{"serve"}, h.commonFlags()...)...)
	cmd.Env = childEnv(fmt.Sprintf("GOMAXPROCS=%d", h.cfg.gomaxprocs), fmt.Sprintf("BENCHSUITE_DEBUG_ADDR=127.0.0.1:%d", debugPort))
	h.ours = &server{name: "gatehouse", base: fmt.Sprintf("http://127.0.0.1:%d", h.port), cmd: cmd,
		log: filepath.Join(h.tmp, fmt.Sprintf("gatehouse-%d.log", h.starts))}
	h.starts++
	t0 := time.Now()
	if err := h.procs.start(h.ours); err != nil {
		return err
	}
	if err := h.waitHTTP(ctx, h.ours, h.ours.base+path); err != nil {
		return err
	}
	h.ours.boot = time.Since(t0)
	h.debugAddr = ""
	addr := fmt.Sprintf("http://127.0.0.1:%d", debugPort)
	if _, err := h.memStats(ctx, addr+"/debug/memstats"); err == nil {
		h.debugAddr = addr
	} else if h.starts == 1 {
		h.logf("no benchdebug listener (a -bin built without -tags benchdebug?): no profiles, allocation or render counts")
	}
	return nil
}

// stopGatehouse stops the server and waits for it to exit.
func (h *harness) stopGatehouse() { h.procs.stop(h.ours) }

// addSecondFactor gives the benchmark user a placeholder authenticator-app
// row, written straight into the SQLite database before the server starts
// (seeding by direct insertion, as spec §4.4 allows). Enrolling through the
// browser pages would need a login, a TOTP library and page scraping; the
// upload check only asks whether a second factor exists, and the suite
// never signs in with it. Databases without the table (builds from before
// two-factor authentication) need nothing.
func addSecondFactor(ctx context.Context, dataDir, username string) error {
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(dataDir, "gatehouse.db"))
	if err != nil {
		return err
	}
	defer d.Close()
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'totp_secrets'`).Scan(&n); err != nil || n == 0 {
		return err
	}
	r, err := d.ExecContext(ctx, `INSERT INTO totp_secrets (user_id, secret_enc, created_at)
		SELECT id, 'benchsuite placeholder, never used to sign in', $1 FROM users WHERE username = $2`, time.Now().UTC(), username)
	if err != nil {
		return fmt.Errorf("add a second factor for %s: %w", username, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("add a second factor: no user %q", username)
	}
	return nil
}

// seedInfo records how seeding went; it is a proxy for import speed.
type seedInfo struct {
	uploads int
	took    time.Duration
}

// seed uploads the fixture projects through POST /legacy/, the real path:
// each upload is hashed, inspected, fsynced and committed. A release's
// wheels go up one after another (they share the release row); different
// releases go up four at a time. P12's two dependency graphs go up too.
func (h *harness) seed(ctx context.Context) error {
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for _, mib := range h.cfg.dlMiB {
		dl, err := buildWheel(dlProjectName(mib), "1.0", "py3-none-any", mib<<20-2048, rng)
		if err != nil {
			return err
		}
		if err := h.uploadWheel(ctx, dl); err != nil {
			return err
		}
		n++
	}
	for _, p := range []struct {
		name  string
		files int
	}{{smallProject, h.cfg.smallFiles}, {bigProject, h.cfg.bigFiles}, {growProject, 1}} {
		var releases [][]*wheel
		for i := 0; i < p.files; i++ {
			v := i / len(wheelTags)
			if v == len(releases) {
				releases = append(releases, nil)
			}
			w, err := buildWheel(p.name, fmt.Sprintf("1.%d.%d", v/10, v%10), wheelTags[i%len(wheelTags)], 0, rng)
			if err != nil {
				return err
			}
			releases[v] = append(releases[v], w)
		}
		// The first upload creates the project; it must not race others.
		if err := h.uploadWheel(ctx, releases[0][0]); err != nil {
			return err
		}
		releases[0] = releases[0][1:]
		if err := h.uploadAll(ctx, releases, 4); err != nil {
			return err
		}
		n += p.files
	}
	h.projects += len(h.cfg.dlMiB) + 3
	up, err := h.seedPip(ctx, rng)
	if err != nil {
		return err
	}
	n += up
	h.seeded = seedInfo{uploads: n, took: time.Since(start)}
	return nil
}

func dlProjectName(mib int) string { return fmt.Sprintf("bench-dl%d", mib) }

// uploadAll uploads groups concurrently, the wheels of a group in order.
func (h *harness) uploadAll(ctx context.Context, groups [][]*wheel, workers int) error {
	ch := make(chan []*wheel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Go(func() {
			for g := range ch {
				for _, w := range g {
					if err := h.uploadWheel(ctx, w); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						cancel()
						return
					}
				}
			}
		})
	}
feed:
	for _, g := range groups {
		select {
		case ch <- g:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// fetch GETs url with headers and returns status, body and response headers.
func (h *harness) fetch(ctx context.Context, method, url string, headers ...string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for _, hd := range headers {
		k, v, _ := strings.Cut(hd, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// writeFile writes b under root at the URL path p, creating directories.
func writeFile(root, p string, b []byte) error {
	full := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(p, "/")))
	if !strings.HasPrefix(full, root+string(filepath.Separator)) {
		return errors.New("path escapes the docroot: " + p)
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, b, 0o644)
}
