// Package s3test starts S3 servers for tests: a real versitygw (the S3
// gateway scripts/test installs at a pinned version) for conformance and
// end-to-end tests, and gofakes3 in process for fast unit tests.
//
// versitygw is found at $GATEHOUSE_TEST_VERSITYGW or as "versitygw" on
// PATH. Without it the tests that need it skip, unless
// GATEHOUSE_TEST_REQUIRE_VERSITYGW=1 (scripts/test, CI), where they fail.
package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/gatehouse-index/gatehouse/internal/blob"
)

// Server is a running S3 server.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // versitygw's posix root (objects are files below it); "" for gofakes3
}

// Options returns the blob.S3Options for bucket (and prefix) on s.
func (s *Server) Options(bucket, prefix string) blob.S3Options {
	return blob.S3Options{Bucket: bucket, Prefix: prefix, Endpoint: s.Endpoint, Region: "us-east-1",
		PathStyle: "on", AccessKey: s.AccessKey, SecretKey: s.SecretKey, PartSize: 5 << 20}
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "gh-" + strings.ToLower(rand.Text()[:12])
	if err := s.Client(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("create bucket %s at %s: %v", name, s.Endpoint, err)
	}
	return name
}

// Store opens a new S3 store on a fresh bucket of s, under prefix.
func (s *Server) Store(t testing.TB, prefix string) *blob.S3 {
	t.Helper()
	st, err := blob.NewS3(context.Background(), s.Options(s.NewBucket(t), prefix))
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return st
}

// Client is a plain S3 client of s, to look at what a store left.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Objects lists every object name in bucket, temporary ones included.
func (s *Server) Objects(t testing.TB, bucket string) []string {
	t.Helper()
	var out []string
	for o := range s.Client(t).ListObjectsIter(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

// Uploads lists the names of the unfinished multipart uploads in bucket.
func (s *Server) Uploads(t testing.TB, bucket string) []string {
	t.Helper()
	var out []string
	for u := range s.Client(t).ListIncompleteUploads(context.Background(), bucket, "", true) {
		// gofakes3 answers NoSuchUpload for a bucket that never had a
		// multipart upload, where S3 lists none.
		if minio.ToErrorResponse(u.Err).Code == "NoSuchUpload" && s.Dir == "" {
			return nil
		}
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		out = append(out, u.Key)
	}
	return out
}

// Fake starts gofakes3 (in memory, in process) for t.
func Fake(t testing.TB) *Server {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false))
	ts := httptest.NewServer(decodeChunkedParts(faker.Server()))
	t.Cleanup(ts.Close)
	return &Server{Endpoint: ts.URL, AccessKey: "fake", SecretKey: "fakefakefake"}
}

// The versitygw process is shared by every test of a test binary (it takes
// a second to start, and each test uses a bucket of its own).
var (
	vgwOnce sync.Once
	vgw     *Server
	vgwErr  error
	vgwStop func()
)

// Versitygw returns the shared versitygw server, starting it on first use
// (stopped by Stop, from TestMain). It skips t, or fails it when
// GATEHOUSE_TEST_REQUIRE_VERSITYGW=1, if versitygw is not installed.
func Versitygw(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("GATEHOUSE_TEST_VERSITYGW")
	if bin == "" {
		bin, _ = exec.LookPath("versitygw")
	}
	if bin == "" {
		msg := "versitygw is not installed (scripts/test installs it; or set GATEHOUSE_TEST_VERSITYGW)"
		if os.Getenv("GATEHOUSE_TEST_REQUIRE_VERSITYGW") == "1" {
			t.Fatal(msg + " and GATEHOUSE_TEST_REQUIRE_VERSITYGW=1")
		}
		t.Skip(msg)
	}
	vgwOnce.Do(func() { vgw, vgwStop, vgwErr = startVersitygw(bin) })
	if vgwErr != nil {
		t.Fatalf("starting versitygw: %v", vgwErr)
	}
	return vgw
}

// Stop stops the shared versitygw, if it was started, and removes its
// files. Call it from TestMain after m.Run.
func Stop() {
	if vgwStop != nil {
		vgwStop()
	}
}

func startVersitygw(bin string) (*Server, func(), error) {
	dir, err := os.MkdirTemp("", "gatehouse-versitygw")
	if err != nil {
		return nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	s := &Server{Endpoint: "http://" + port, AccessKey: "gatehouse-test", SecretKey: rand.Text(), Dir: dir}
	cmd := exec.Command(bin, "--port", port, "--access", s.AccessKey, "--secret", s.SecretKey, "posix", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan struct{})
	banner := make(chan struct{})
	go func() {
		// The banner's last line comes just before the listener is bound;
		// the per-request lines after it are dropped.
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && strings.HasPrefix(sc.Text(), "└") {
				seen = true
				close(banner)
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	}
	select {
	case <-banner:
	case <-exited:
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("versitygw exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		stop()
		return nil, nil, errors.New("versitygw printed no start-up banner within 30s")
	}
	if err := waitListening(port, exited); err != nil {
		stop()
		return nil, nil, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return s, stop, nil
}

// waitListening waits for the listener versitygw binds right after its
// banner. It gives no signal once bound, so the connection is retried,
// briefly, until it is accepted.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw does not answer on %s: %w", addr, err)
		}
		select {
		case <-exited:
			return errors.New("versitygw exited")
		case <-time.After(delay):
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// decodeChunkedParts decodes the aws-chunked bodies of part uploads, which
// gofakes3 decodes only for whole-object PUTs: minio-go sends them so over
// plain HTTP, and gofakes3 would otherwise store the chunk framing as the
// part's bytes.
func decodeChunkedParts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Query().Get("partNumber") == "" ||
			!strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			h.ServeHTTP(w, r)
			return
		}
		body, err := decodeAWSChunked(bufio.NewReader(r.Body))
		if err != nil {
			http.Error(w, "s3test: bad aws-chunked body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		r.Header.Del("Content-Encoding")
		h.ServeHTTP(w, r)
	})
}

// decodeAWSChunked reads "<hex size>;chunk-signature=…\r\n<bytes>\r\n"
// chunks up to the empty one (and any trailer after it).
func decodeAWSChunked(r *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		sizeHex, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		n, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("chunk size %q: %w", sizeHex, err)
		}
		if n == 0 {
			return out, nil
		}
		chunk := make([]byte, n+2) // and its CRLF
		if _, err := io.ReadFull(r, chunk); err != nil {
			return nil, err
		}
		out = append(out, chunk[:n]...)
	}
}
