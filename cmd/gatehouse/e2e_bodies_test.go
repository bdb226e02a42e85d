package main

// End-to-end: hostile request bodies against the real server, on SQLite and
// on PostgreSQL (issue 12, section 2).
//
//   - A 200 MiB multipart POST /account/login/ (and 200 MiB urlencoded ones,
//     with and without Content-Length) is refused with a 4xx without the
//     body being read, and leaves nothing in $TMPDIR: Go's multipart parser
//     used to spool the file part there and nothing removed it.
//   - 200 uploads that trickle their body are cut off (and 20 login forms
//     that trickle theirs), and /simple/ answers while they are connected.
//     Afterwards $TMPDIR is empty, no upload is left staged in the files
//     directory, and no file in either is still open.
//   - An idle keep-alive connection is closed after --idle-timeout.
//
// The server runs in this process, so the test is not parallel: it points
// the process's TMPDIR (os.TempDir, where Go's multipart parser spools) at a
// directory of its own, and reads /proc/self/fd to see which files the
// server still holds open.

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// e2eCutOffBound only keeps a broken server from hanging the test: every
// answer awaited here comes within seconds when the server works.
const e2eCutOffBound = time.Minute

func TestE2EBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) { e2eBodiesScenario(t, dialect) })
	}
}

func e2eBodiesScenario(t *testing.T, dialect string) {
	// Small limits, so that tricklers are cut off in seconds: an upload
	// must average 1 KiB/s over 2 s, a page request must be in within 3 s.
	srv := e2eStartServer(t, dialect, "--upload-min-rate", "1KiB", "--upload-rate-window", "2s",
		"--read-timeout", "3s", "--idle-timeout", "1s")
	srv.createUser(t, "bob")
	tok := srv.createToken(t, "bob", "uploads")
	osTemp := t.TempDir()
	t.Setenv("TMPDIR", osTemp)
	filesDir := filepath.Join(srv.dataDir, "files") // where uploads are staged
	before := srv.snapshot(t)

	t.Run("200 MiB login bodies", func(t *testing.T) {
		e2eHugeLogins(t, srv)
		e2eTempDirsClean(t, osTemp)
		e2eNoStagedUploads(t, filesDir)
	})
	t.Run("trickling uploads and forms", func(t *testing.T) {
		e2eTricklers(t, srv, tok)
		e2eTempDirsClean(t, osTemp)
		e2eNoStagedUploads(t, filesDir)
	})
	t.Run("idle connection", func(t *testing.T) { e2eIdleClosed(t, srv) })
	e2eSameState(t, before, srv.snapshot(t))
}

// e2eHugeLogins posts 200 MiB bodies to the login form, streamed from a
// generator, and expects each to be refused before it is read.
func e2eHugeLogins(t *testing.T, srv *e2eServer) {
	const size = 200 << 20
	u, _ := url.Parse(srv.URL)
	mw := multipart.NewWriter(io.Discard)
	prefix := fmt.Sprintf("--%[1]s\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n"+
		"--%[1]s\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nnot-his-password\r\n"+
		"--%[1]s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n", mw.Boundary())
	suffix := "\r\n--" + mw.Boundary() + "--\r\n"
	pad := "username=bob&password=not-his-password&pad="
	cases := []struct {
		name    string
		headers string
		body    func() io.Reader
		status  string
		want    string
	}{
		{
			name:    "multipart with a 200 MiB file part",
			headers: fmt.Sprintf("Content-Type: %s\r\nContent-Length: %d\r\n", mw.FormDataContentType(), len(prefix)+size+len(suffix)),
			body: func() io.Reader {
				return io.MultiReader(strings.NewReader(prefix), io.LimitReader(e2eZeros{}, size), strings.NewReader(suffix))
			},
			status: "415 Unsupported Media Type",
			want:   "This page does not take file uploads (multipart/form-data), so nothing was done.",
		},
		{
			name:    "urlencoded, 200 MiB by Content-Length",
			headers: fmt.Sprintf("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(pad)+size),
			body:    func() io.Reader { return io.MultiReader(strings.NewReader(pad), io.LimitReader(e2eAs{}, size)) },
			status:  "413 Request Entity Too Large",
			want:    "The form you sent is larger than 256 KiB, the most a page accepts, so nothing was done.",
		},
		{
			name:    "urlencoded, 200 MiB chunked",
			headers: "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
			body: func() io.Reader {
				return e2eChunked(io.MultiReader(strings.NewReader(pad), io.LimitReader(e2eAs{}, size)))
			},
			status: "413 Request Entity Too Large",
			want:   "The form you sent is larger than 256 KiB, the most a page accepts, so nothing was done.",
		},
	}
	for _, c := range cases {
		head := fmt.Sprintf("POST /account/login/ HTTP/1.1\r\nHost: %s\r\n%s", u.Host, c.headers)
		a := e2eRawRequest(t, srv, head, c.body())
		t.Logf("%s: %q after %v, with %.1f MiB of %d MiB sent", c.name, a.status, a.took.Round(time.Millisecond), float64(a.sent)/(1<<20), size>>20)
		if a.err != nil {
			t.Errorf("%s: no answer: %v", c.name, a.err)
			continue
		}
		if a.status != c.status || !strings.Contains(a.body, c.want) {
			t.Errorf("%s: got %q with body\n%s\nwant %q saying %q", c.name, a.status, a.body, c.status, c.want)
		}
		if a.sent >= size {
			t.Errorf("%s: the whole 200 MiB was sent before the answer, want the body refused unread", c.name)
		}
	}
}

// e2eTricklers holds 200 upload connections open, half with a token (the
// server spools their file) and half without (it drains the body of the
// refusal), plus 20 login forms. The uploads first send faster than the
// minimum rate; once /simple/ has answered with all of them connected they
// slow to a trickle and must be cut off. The forms trickle from the start
// and must be cut off by --read-timeout.
func e2eTricklers(t *testing.T, srv *e2eServer, tok string) {
	const uploads, forms = 200, 20
	const maxProbes = 2000 // of /simple/, one after another
	u, _ := url.Parse(srv.URL)
	mw := multipart.NewWriter(io.Discard)
	var fields strings.Builder
	for _, kv := range [][2]string{{":action", "file_upload"}, {"protocol_version", "1"}, {"metadata_version", "2.1"},
		{"name", "trickle"}, {"version", "1.0"}, {"filetype", "bdist_wheel"}, {"pyversion", "py3"}} {
		fmt.Fprintf(&fields, "--%s\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", mw.Boundary(), kv[0], kv[1])
	}
	fmt.Fprintf(&fields, "--%s\r\nContent-Disposition: form-data; name=\"content\"; filename=\"trickle-1.0-py3-none-any.whl\"\r\nContent-Type: application/octet-stream\r\n\r\n", mw.Boundary())

	slow := make(chan struct{}) // closed: uploads drop to a trickle
	var (
		connected sync.WaitGroup // every upload has sent its headers
		finished  sync.WaitGroup // every trickler has its answer
		mu        sync.Mutex
		answers   = map[string]int{}
		early     int // uploads answered before they slowed down
		failures  []string
	)
	record := func(kind string, a e2eAnswer, wasSlow bool) {
		mu.Lock()
		defer mu.Unlock()
		if a.err != nil {
			failures = append(failures, fmt.Sprintf("%s: not cut off: %v", kind, a.err))
			return
		}
		answers[kind+": "+a.status]++
		if !wasSlow {
			early++
		}
	}
	slowed := func() bool {
		select {
		case <-slow:
			return true
		default:
			return false
		}
	}
	for i := range uploads {
		auth := ""
		kind := "upload without a token"
		if i%2 == 0 {
			auth = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("__token__:"+tok)) + "\r\n"
			kind = "upload with a token"
		}
		head := fmt.Sprintf("POST /legacy/ HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s", u.Host, mw.FormDataContentType(), 2<<30, auth)
		connected.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			// 512 bytes every 100 ms (5 KiB/s) until told to slow down,
			// then 16 bytes every 200 ms (80 bytes/s).
			a := e2eTrickle(srv, head+"\r\n"+fields.String(), connected.Done, func() (int, time.Duration) {
				if slowed() {
					return 16, 200 * time.Millisecond
				}
				return 512, 100 * time.Millisecond
			})
			record(kind, a, slowed())
		}()
	}
	connected.Wait()

	// /simple/ while every upload is connected, then while they are cut off.
	var (
		latencies []time.Duration
		probeErrs []string
		allDone   = make(chan struct{})
		probed    = make(chan struct{})
		probeDone = make(chan struct{})
	)
	go func() {
		defer close(probeDone)
		for n := 1; ; n++ {
			start := time.Now()
			resp, err := e2eClient.Get(srv.URL + "/simple/")
			took := time.Since(start)
			if err != nil {
				probeErrs = append(probeErrs, err.Error())
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					probeErrs = append(probeErrs, resp.Status)
				}
			}
			latencies = append(latencies, took)
			if n == 20 {
				close(probed)
			}
			if n == maxProbes {
				<-allDone
				return
			}
			select {
			case <-allDone: // closed only after probed
				return
			default:
			}
		}
	}()
	<-probed
	slowAt := time.Now()
	close(slow)
	for range forms {
		finished.Add(1)
		go func() {
			defer finished.Done()
			head := fmt.Sprintf("POST /account/login/ HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nusername=bob&password=", u.Host)
			a := e2eTrickle(srv, head, func() {}, func() (int, time.Duration) { return 16, 200 * time.Millisecond })
			record("login form", a, true)
		}()
	}
	finished.Wait()
	cutOff := time.Since(slowAt)
	close(allDone)
	<-probeDone

	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	t.Logf("%d tricklers cut off %v after the uploads slowed down; answers: %v; %d answered before slowing down",
		uploads+forms, cutOff.Round(time.Millisecond), answers, early)
	t.Logf("/simple/ during the tricklers: %d requests, min %v, median %v, max %v",
		len(sorted), sorted[0].Round(time.Microsecond), sorted[len(sorted)/2].Round(time.Microsecond), sorted[len(sorted)-1].Round(time.Microsecond))
	for _, f := range failures {
		t.Error(f)
	}
	if len(probeErrs) > 0 {
		t.Errorf("/simple/ failed %d of %d times while the tricklers were connected: %v", len(probeErrs), len(latencies), probeErrs)
	}
	want := map[string]int{
		"upload with a token: 408 Upload too slow: less than 1.0 kB per second arrived on average, or nothing for 2 seconds, so the server stopped reading. Check the connection and upload again.": uploads / 2,
		"upload without a token: 403 Invalid or non-existent authentication information. See " + srv.URL + "/help/#invalid-auth for more information.":                                              uploads / 2,
		"login form: 408 Request Timeout": forms,
	}
	if len(failures) == 0 && !maps.Equal(answers, want) {
		t.Errorf("answers to the tricklers:\ngot  %v\nwant %v", answers, want)
	}
}

// e2eIdleClosed: a keep-alive connection left idle is closed by the server.
func e2eIdleClosed(t *testing.T, srv *e2eServer) {
	u, _ := url.Parse(srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host)
	conn.SetReadDeadline(time.Now().Add(e2eCutOffBound))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idle := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle keep-alive connection: read got %v, want EOF (closed by the server after --idle-timeout 1s)", err)
	}
	t.Logf("idle keep-alive connection closed after %v", time.Since(idle).Round(time.Millisecond))
}

// e2eAnswer is the server's answer on a raw connection.
type e2eAnswer struct {
	status string // "413 Request Entity Too Large"
	body   string
	sent   int64 // body bytes written before the answer was read
	took   time.Duration
	err    error
}

// e2eRawRequest sends head (request line and headers, without the blank
// line) and then streams body on a new connection, and returns the answer
// as soon as it arrives, without waiting for the body to be sent.
func e2eRawRequest(t *testing.T, srv *e2eServer, head string, body io.Reader) e2eAnswer {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	start := time.Now()
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(conn, io.MultiReader(strings.NewReader(head+"\r\n"), body))
		sent <- n - int64(len(head)+2)
	}()
	a := e2eReadAnswer(conn, start)
	conn.Close() // ends the copy if the server stopped reading
	a.sent = <-sent
	return a
}

func e2eReadAnswer(conn net.Conn, start time.Time) e2eAnswer {
	conn.SetReadDeadline(time.Now().Add(e2eCutOffBound))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return e2eAnswer{took: time.Since(start), err: err}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return e2eAnswer{status: resp.Status, body: string(b), took: time.Since(start)}
}

// e2eTrickle opens a connection, sends head (headers, blank line and the
// start of the body) and then keeps sending zeros as pace says, until the
// server answers; connected is called once head is sent.
func e2eTrickle(srv *e2eServer, head string, connected func(), pace func() (int, time.Duration)) e2eAnswer {
	u, _ := url.Parse(srv.URL)
	start := time.Now()
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		connected()
		return e2eAnswer{err: err}
	}
	defer conn.Close()
	_, err = io.WriteString(conn, head)
	connected()
	if err != nil {
		return e2eAnswer{err: err}
	}
	answered := make(chan struct{})
	go func() {
		// The trickle itself: a client that sends slowly, on purpose.
		for {
			n, every := pace()
			select {
			case <-answered:
				return
			case <-time.After(every):
			}
			if _, err := conn.Write(make([]byte, n)); err != nil {
				return
			}
		}
	}()
	a := e2eReadAnswer(conn, start)
	close(answered)
	return a
}

// e2eTempDirsClean fails t unless every directory is empty and no file
// below one is still open in this process (only /proc/self/fd shows an
// unlinked file still held).
func e2eTempDirsClean(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) > 0 {
			t.Errorf("temp directory %s holds %v, want it empty", d, names)
		}
	}
	e2eNoOpenFilesBelow(t, dirs...)
}

// e2eNoStagedUploads fails t if an upload is still staged in the blob store
// at dir (a ".tmp-" file anywhere below it) or any file below dir is still
// open in this process: a refused or cut-off upload must remove its staged
// file and close it before it is answered.
func e2eNoStagedUploads(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("staged upload %s left in the files directory", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e2eNoOpenFilesBelow(t, dir)
}

// e2eNoOpenFilesBelow fails t if this process holds a file below one of
// dirs open.
func e2eNoOpenFilesBelow(t *testing.T, dirs ...string) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Logf("cannot list open files (%v); checked only the directories' entries", err)
		return
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue // closed since the listing
		}
		for _, d := range dirs {
			if real, err := filepath.EvalSymlinks(d); err == nil && strings.HasPrefix(target, real+string(filepath.Separator)) {
				t.Errorf("file %s is still open, want every temp file closed", target)
			}
		}
	}
}

// e2eAs reads the letter a forever: a urlencoded value that never ends.
type e2eAs struct{}

func (e2eAs) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// e2eChunked encodes r with HTTP/1.1 chunked transfer coding.
func e2eChunked(r io.Reader) io.Reader { return &e2eChunkedReader{src: r, buf: make([]byte, 32<<10)} }

type e2eChunkedReader struct {
	src     io.Reader
	buf     []byte
	pending []byte
	done    bool
}

func (c *e2eChunkedReader) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.done {
			return 0, io.EOF
		}
		n, err := c.src.Read(c.buf)
		if n > 0 {
			c.pending = fmt.Appendf(c.pending, "%x\r\n%s\r\n", n, c.buf[:n])
		}
		switch {
		case err == io.EOF:
			c.pending = append(c.pending, "0\r\n\r\n"...)
			c.done = true
		case err != nil:
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
