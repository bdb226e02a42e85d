package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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

	"golang.org/x/crypto/blake2b"
)

// wheel is a distribution to upload, with what the index must serve back.
type wheel struct {
	project, version string
	filename         string
	data             []byte
	sha256           string
	metadata         []byte
	extra            [][2]string // more form fields (a long description, say)
}

// buildWheel makes a small real wheel (package, METADATA, WHEEL, RECORD)
// with payload random bytes stored uncompressed, so its size is what is
// asked for and every wheel is different.
func buildWheel(project, version string, payload int, rng *rand.Rand) *wheel {
	dist := strings.ReplaceAll(project, "-", "_")
	distInfo := dist + "-" + version + ".dist-info"
	meta := []byte("Metadata-Version: 2.1\nName: " + project + "\nVersion: " + version +
		"\nSummary: fault harness fixture\n\nA wheel made by cmd/faults.\n")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	add := func(name string, method uint16, body []byte) {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
		w.Write(body)
		sum := sha256.Sum256(body)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", name, base64.RawURLEncoding.EncodeToString(sum[:]), len(body))
	}
	add(dist+"/__init__.py", zip.Deflate, []byte("__version__ = \""+version+"\"\n"))
	add(distInfo+"/METADATA", zip.Deflate, meta)
	add(distInfo+"/WHEEL", zip.Deflate, []byte("Wheel-Version: 1.0\nGenerator: faults\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
	b := make([]byte, payload)
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	add(dist+"/payload.bin", zip.Store, b)
	record.WriteString(distInfo + "/RECORD,,\n")
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: distInfo + "/RECORD", Method: zip.Deflate})
	w.Write([]byte(record.String()))
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	return &wheel{project: project, version: version, filename: dist + "-" + version + "-py3-none-any.whl",
		data: buf.Bytes(), sha256: hex.EncodeToString(sum[:]), metadata: meta}
}

// form is the multipart body twine sends for w.
func (w *wheel) form() (body []byte, contentType string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, kv := range [][2]string{
		{":action", "file_upload"}, {"protocol_version", "1"},
		{"name", w.project}, {"version", w.version},
		{"filetype", "bdist_wheel"}, {"pyversion", "py3"},
		{"metadata_version", "2.1"}, {"summary", "fault harness fixture"},
		{"sha256_digest", w.sha256},
	} {
		mw.WriteField(kv[0], kv[1])
	}
	for _, kv := range w.extra {
		mw.WriteField(kv[0], kv[1])
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="content"; filename="`+w.filename+`"`)
	hdr.Set("Content-Type", "application/octet-stream")
	pw, _ := mw.CreatePart(hdr)
	pw.Write(w.data)
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// reply is the outcome of one request.
type reply struct {
	code   int    // 0 when no response came
	status string // the status line after the protocol ("400 File already exists …")
	body   string
	err    error
	took   time.Duration
}

func (r reply) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return r.status
}

// client has no timeouts of its own: the cases bound their requests with
// contexts, and a fault must be seen, not hidden by a client giving up.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// pacedBody sends a body at a limited rate, or stops at a byte offset
// until released, so that a server can be killed with part of a body in.
type pacedBody struct {
	r       io.Reader
	sent    int64
	rate    int64 // bytes per second; 0: as fast as possible
	start   time.Time
	pauseAt int64         // >0: stop before sending byte pauseAt
	reached chan struct{} // closed when pauseAt is reached
	release chan struct{} // the body continues (or fails) once closed
	once    sync.Once
}

func (p *pacedBody) Read(b []byte) (int, error) {
	if p.pauseAt > 0 && p.sent >= p.pauseAt {
		p.once.Do(func() { close(p.reached) })
		<-p.release
		return 0, errors.New("body stopped by the harness")
	}
	if p.pauseAt > 0 && int64(len(b)) > p.pauseAt-p.sent {
		b = b[:p.pauseAt-p.sent]
	}
	if p.rate > 0 {
		if p.start.IsZero() {
			p.start = time.Now()
		}
		// Never ahead of rate: wait until the bytes sent so far are due.
		due := p.start.Add(time.Duration(float64(p.sent) / float64(p.rate) * float64(time.Second)))
		time.Sleep(time.Until(due))
		chunk := max(p.rate/10, 1)
		if int64(len(b)) > chunk {
			b = b[:chunk]
		}
	}
	n, err := p.r.Read(b)
	p.sent += int64(n)
	return n, err
}

// upload posts a form to /legacy/ as twine does. body may be a *pacedBody.
func upload(ctx context.Context, c *http.Client, base, token string, body io.Reader, size int64, contentType string) reply {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/legacy/", body)
	if err != nil {
		return reply{err: err}
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	req.SetBasicAuth("__token__", token)
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return reply{code: resp.StatusCode, status: resp.Status, body: string(b), took: time.Since(start)}
}

func uploadWheel(ctx context.Context, c *http.Client, base, token string, w *wheel) reply {
	body, ct := w.form()
	return upload(ctx, c, base, token, bytes.NewReader(body), int64(len(body)), ct)
}

// get fetches a URL with headers ("Name: value").
func get(ctx context.Context, c *http.Client, url string, headers ...string) (reply, http.Header, []byte) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return reply{err: err}, nil, nil
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err, took: time.Since(start)}, nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, status: resp.Status, took: time.Since(start), err: err}
	return r, resp.Header, b
}

// simpleFile is one file of a PEP 691 project page.
type simpleFile struct {
	Filename string            `json:"filename"`
	URL      string            `json:"url"`
	Hashes   map[string]string `json:"hashes"`
	Metadata any               `json:"core-metadata"`
}

// simplePage fetches /simple/<project>/ as PEP 691 JSON: files by name, or
// nil for a 404.
func simplePage(ctx context.Context, c *http.Client, base, project string) (map[string]simpleFile, error) {
	r, _, b := get(ctx, c, base+"/simple/"+project+"/", "Accept: application/vnd.pypi.simple.v1+json")
	if r.err != nil {
		return nil, r.err
	}
	if r.code == http.StatusNotFound {
		return nil, nil
	}
	if r.code != http.StatusOK {
		return nil, fmt.Errorf("GET /simple/%s/: %s", project, r.status)
	}
	var page struct {
		Files []simpleFile `json:"files"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return nil, fmt.Errorf("GET /simple/%s/: %w", project, err)
	}
	m := map[string]simpleFile{}
	for _, f := range page.Files {
		m[f.Filename] = f
	}
	return m, nil
}

// jsonFiles fetches /pypi/<project>/json: sha256 by filename over every
// release, or nil for a 404.
func jsonFiles(ctx context.Context, c *http.Client, base, project string) (map[string]string, error) {
	r, _, b := get(ctx, c, base+"/pypi/"+project+"/json")
	if r.err != nil {
		return nil, r.err
	}
	if r.code == http.StatusNotFound {
		return nil, nil
	}
	if r.code != http.StatusOK {
		return nil, fmt.Errorf("GET /pypi/%s/json: %s", project, r.status)
	}
	var doc struct {
		Releases map[string][]struct {
			Filename string            `json:"filename"`
			Digests  map[string]string `json:"digests"`
		} `json:"releases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, files := range doc.Releases {
		for _, f := range files {
			m[f.Filename] = f.Digests["sha256"]
		}
	}
	return m, nil
}

// visibility is how much of an upload a client can see.
type visibility int

const (
	absent   visibility = iota // nowhere
	complete                   // listed in both APIs, bytes and metadata served and correct
	half                       // anything in between: the defect the harness hunts
)

func (v visibility) String() string { return [...]string{"absent", "complete", "HALF-VISIBLE"}[v] }

// view is what the APIs show, fetched once per check round.
type view struct {
	simple map[string]map[string]simpleFile // project → filename → file
	json   map[string]map[string]string     // project → filename → sha256
}

func fetchView(ctx context.Context, c *http.Client, base string, projects []string) (*view, error) {
	v := &view{simple: map[string]map[string]simpleFile{}, json: map[string]map[string]string{}}
	for _, p := range projects {
		s, err := simplePage(ctx, c, base, p)
		if err != nil {
			return nil, err
		}
		j, err := jsonFiles(ctx, c, base, p)
		if err != nil {
			return nil, err
		}
		v.simple[p], v.json[p] = s, j
	}
	return v, nil
}

// classify says how visible w is, downloading its file and metadata when
// download is set or when the APIs list it.
func visibilityOf(ctx context.Context, c *http.Client, base string, v *view, w *wheel) (visibility, string) {
	sf, inSimple := v.simple[w.project][w.filename]
	jsha, inJSON := v.json[w.project][w.filename]
	if !inSimple && !inJSON {
		// Not listed; its URL must not serve it either.
		digestURL := fileURLGuess(base, w)
		if digestURL != "" {
			if r, _, _ := get(ctx, c, digestURL); r.code == http.StatusOK {
				return half, "not listed, but its URL serves it"
			}
		}
		return absent, ""
	}
	if !inSimple || !inJSON {
		return half, fmt.Sprintf("in Simple API: %v, in JSON API: %v", inSimple, inJSON)
	}
	if sf.Hashes["sha256"] != w.sha256 || jsha != w.sha256 {
		return half, "listed with a wrong sha256"
	}
	url := strings.SplitN(sf.URL, "#", 2)[0]
	r, _, b := get(ctx, c, url)
	if r.code != http.StatusOK || r.err != nil {
		return half, "listed but the download fails: " + r.String()
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != w.sha256 {
		return half, "listed but the downloaded bytes do not match the sha256"
	}
	r, _, mb := get(ctx, c, url+".metadata")
	if r.code != http.StatusOK || !bytes.Equal(mb, w.metadata) {
		return half, "listed but its .metadata is not served intact: " + r.String()
	}
	return complete, ""
}

// fileURLGuess is where the index would serve w: /packages/ plus the
// blake2b-256 digest, which the harness computes itself.
func fileURLGuess(base string, w *wheel) string {
	d := blake2Hex(w.data)
	return base + "/packages/" + d[:2] + "/" + d[2:4] + "/" + d + "/" + w.filename
}

// python is the python3 whose pip downloads: GATEHOUSE_TEST_PYTHON (which
// scripts/test sets), else Debian's own, else the first on PATH.
func python() string {
	if p := os.Getenv("GATEHOUSE_TEST_PYTHON"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

// pipDownload fetches wheels with pip from the index alone and checks that
// each downloaded file has the expected sha256. pip itself also checks the
// hash the Simple API gives.
func pipDownload(ctx context.Context, base, dir string, wheels []*wheel) error {
	// pip resolves its requirements together, and two versions of one
	// project conflict: one version of each project per run.
	var rounds [][]*wheel
	n := map[string]int{}
	for _, w := range wheels {
		i := n[w.project]
		n[w.project]++
		if i == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[i] = append(rounds[i], w)
	}
	for _, r := range rounds {
		if err := pipDownloadOnce(ctx, base, dir, r); err != nil {
			return err
		}
	}
	return nil
}

func pipDownloadOnce(ctx context.Context, base, dir string, wheels []*wheel) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	args := []string{"-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
		"--isolated", "--only-binary", ":all:", "--index-url", base + "/simple/", "--dest", dir}
	for _, w := range wheels {
		args = append(args, w.project+"=="+w.version)
	}
	cmd := exec.CommandContext(ctx, python(), args...)
	cmd.Env = append(childEnv(), "PIP_NO_INPUT=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pip download: %v\n%s", err, lastLines(string(out), 20))
	}
	for _, w := range wheels {
		sum, err := sha256File(filepath.Join(dir, w.filename))
		if err != nil {
			return fmt.Errorf("pip download did not fetch %s: %w", w.filename, err)
		}
		if sum != w.sha256 {
			return fmt.Errorf("pip downloaded %s with sha256 %s, want %s", w.filename, sum, w.sha256)
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func blake2Hex(b []byte) string {
	sum := blake2b.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// randFor is a random source of its own for a goroutine (a *rand.Rand is
// not safe for concurrent use).
func randFor(seed int) *rand.Rand { return rand.New(rand.NewPCG(uint64(seed), 7)) }
