package web

// Request bodies: the page chain's cap, multipart refusal and form cleanup
// (bodies.go), and the minimum transfer rate of uploads (minrate.go).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// postPage sends a POST to a page with the given body and Content-Type.
// A body that is not a *bytes.Reader or *strings.Reader is sent chunked,
// with no Content-Length.
func (in *instance) postPage(t *testing.T, path, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, in.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// onlyReader hides a reader's type, so net/http sends it chunked.
type onlyReader struct{ io.Reader }

func TestBodyPageRefusesMultipart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("username", "alice")
		mw.WriteField("password", "not her password")
		fw, _ := mw.CreateFormFile("file", "big.bin")
		fw.Write(bytes.Repeat([]byte("x"), 64<<10))
		mw.Close()
		for _, ct := range []string{mw.FormDataContentType(), "Multipart/Form-Data; boundary=" + mw.Boundary(), "multipart/mixed; boundary=" + mw.Boundary()} {
			r := f.postPage(t, "/account/login/", ct, bytes.NewReader(b.Bytes()))
			if r.code != http.StatusUnsupportedMediaType {
				t.Errorf("login as %q: got %d, want 415; body:\n%s", ct, r.code, r.body)
			}
			checkPageHeaders(t, r)
			want := "This page does not take file uploads (multipart/form-data), so nothing was done. Send the form as a browser does (application/x-www-form-urlencoded). To upload a package, use twine with " + f.url + "/legacy/."
			if got := text(parseHTML(t, r.body)); !strings.Contains(got, want) {
				t.Errorf("login as %q: page says %q, want %q", ct, got, want)
			}
		}
	})
}

func TestBodyPageCapped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const form = "application/x-www-form-urlencoded"
		tooLarge := "The form you sent is larger than 256 KiB, the most a page accepts, so nothing was done. Go back, shorten what you entered and send it again."
		// A login form padded to n bytes.
		login := func(n int) string {
			s := "username=alice&password=wrong&pad="
			return s + strings.Repeat("a", n-len(s))
		}
		cases := []struct {
			name, contentType string
			body              io.Reader
			code              int
			want              string
		}{
			{"at the cap", form, strings.NewReader(login(maxPageBody)), http.StatusBadRequest, "The username or password is invalid. Try again."},
			{"at the cap, chunked", form, onlyReader{strings.NewReader(login(maxPageBody))}, http.StatusBadRequest, "The username or password is invalid. Try again."},
			{"one byte over, by Content-Length", form, strings.NewReader(login(maxPageBody + 1)), http.StatusRequestEntityTooLarge, tooLarge},
			{"one byte over, chunked", form, onlyReader{strings.NewReader(login(maxPageBody + 1))}, http.StatusRequestEntityTooLarge, tooLarge},
			{"a megabyte of text, chunked", "text/plain", onlyReader{strings.NewReader(strings.Repeat("a", 1<<20))}, http.StatusRequestEntityTooLarge, tooLarge},
			{"no Content-Type, chunked", "", onlyReader{strings.NewReader(strings.Repeat("a", 1<<20))}, http.StatusRequestEntityTooLarge, tooLarge},
			{"malformed form", form, strings.NewReader("username=%zz"), http.StatusBadRequest, "The form could not be read (invalid URL escape \"%zz\"). Reload the page and send it again."},
		}
		for _, c := range cases {
			r := f.postPage(t, "/account/login/", c.contentType, c.body)
			if r.code != c.code {
				t.Errorf("%s: got %d, want %d; body:\n%s", c.name, r.code, c.code, r.body)
				continue
			}
			if got := text(parseHTML(t, r.body)); !strings.Contains(got, c.want) {
				t.Errorf("%s: page says %q, want %q", c.name, got, c.want)
			}
		}
	})
}

// TestBodyMultipartFormRemoved: should a handler behind pageBody parse a
// multipart form itself, its temp files are removed when the request ends.
func TestBodyMultipartFormRemoved(t *testing.T) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", "x.bin")
	fw.Write([]byte("spooled to disk"))
	mw.Close()
	var spooled string
	h := (&Server{}).pageBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// maxMemory 0 sends every file part to disk.
		form, err := multipart.NewReader(bytes.NewReader(b.Bytes()), mw.Boundary()).ReadForm(0)
		if err != nil {
			t.Fatal(err)
		}
		r.MultipartForm = form
		f, err := form.File["file"][0].Open()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		of, ok := f.(*os.File)
		if !ok {
			t.Fatalf("the file part is held in memory (%T), want it on disk", f)
		}
		spooled = of.Name()
	}))
	// Like withSession, hand the middleware a copy of the request net/http made.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	h.ServeHTTP(httptest.NewRecorder(), req.WithContext(t.Context()))
	if spooled == "" {
		t.Fatal("the handler spooled no file")
	}
	if _, err := os.Stat(spooled); !os.IsNotExist(err) {
		os.Remove(spooled)
		t.Errorf("the multipart temp file %s is still there after the request (stat: %v), want it removed", spooled, err)
	}
}

// fakeConn is a minRateReader's view of a connection: a fake clock, the
// read deadlines set, and reads that arrive as the test feeds them.
type fakeConn struct {
	now       time.Time
	deadlines []time.Time
	next      func(p []byte) (int, error)
}

func (c *fakeConn) Read(p []byte) (int, error)    { return c.next(p) }
func (c *fakeConn) Close() error                  { return nil }
func (c *fakeConn) clock() time.Time              { return c.now }
func (c *fakeConn) setDeadline(d time.Time) error { c.deadlines = append(c.deadlines, d); return nil }
func (c *fakeConn) deadline() time.Time           { return c.deadlines[len(c.deadlines)-1] }
func (c *fakeConn) reader(rate int64, window time.Duration) *minRateReader {
	return newMinRateReader(c, rate, window, c.clock, c.setDeadline)
}

// bytesEvery makes each read return n bytes, dt after the previous one.
func (c *fakeConn) bytesEvery(n int, dt time.Duration) {
	c.next = func(p []byte) (int, error) {
		c.now = c.now.Add(dt)
		return n, nil
	}
}

func TestBodyMinRate(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const rate = 1 << 10 // bytes per second
	const window = 10 * time.Second
	buf := make([]byte, 64<<10)

	t.Run("a fast client is always a window ahead", func(t *testing.T) {
		c := &fakeConn{now: start}
		m := c.reader(rate, window)
		if got, want := c.deadline(), start.Add(window); !got.Equal(want) {
			t.Fatalf("first deadline: got %v, want one window after the start, %v", got, want)
		}
		c.bytesEvery(4096, time.Second) // 4 KiB/s against 1 KiB/s
		for i := 0; i < 1000; i++ {
			if _, err := m.Read(buf); err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
			if got, want := c.deadline(), c.now.Add(window); !got.Equal(want) {
				t.Fatalf("read %d at %v: deadline %v, want one window ahead, %v", i, c.now, got, want)
			}
		}
	})

	t.Run("exactly the minimum rate is never cut off", func(t *testing.T) {
		c := &fakeConn{now: start}
		m := c.reader(rate, window)
		c.bytesEvery(rate, time.Second)
		for i := 0; i < 10000; i++ {
			if _, err := m.Read(buf); err != nil {
				t.Fatal(err)
			}
			if !c.deadline().After(c.now) {
				t.Fatalf("read %d at %v: deadline %v is not ahead of the clock", i, c.now, c.deadline())
			}
		}
	})

	t.Run("a trickle falls behind its deadline", func(t *testing.T) {
		c := &fakeConn{now: start}
		m := c.reader(rate, window)
		// 16 bytes a second earn 1/64 s of credit each: the deadline
		// falls 63/64 s behind per read, so the 11th read comes after it
		// (window / (1 - 1/64) = 10.16 s).
		c.bytesEvery(16, time.Second)
		cut := 0
		for i := 1; i <= 100 && cut == 0; i++ {
			armed := c.deadline()
			if _, err := m.Read(buf); err != nil {
				t.Fatal(err)
			}
			if c.now.After(armed) {
				cut = i // a real connection's read would have timed out
			}
		}
		if cut != 11 {
			t.Errorf("the trickle outlived its deadline at read %d, want read 11", cut)
		}
	})

	t.Run("the kernel's timeout is final", func(t *testing.T) {
		c := &fakeConn{now: start}
		m := c.reader(rate, window)
		reads := 0
		c.next = func(p []byte) (int, error) {
			reads++
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
		}
		if _, err := m.Read(buf); err != errTooSlow {
			t.Fatalf("read at the deadline: got %v, want errTooSlow", err)
		}
		if _, err := m.Read(buf); err != errTooSlow || reads != 1 {
			t.Errorf("read after the cut-off: got %v after %d reads of the connection, want errTooSlow without reading again", err, reads)
		}
		if !m.tooSlow() {
			t.Error("tooSlow() = false after the cut-off")
		}
	})

	t.Run("time the server spends between reads is not the client's", func(t *testing.T) {
		c := &fakeConn{now: start}
		m := c.reader(rate, window)
		// The server was busy for three windows; the bytes waited in the
		// socket and arrive at once.
		c.bytesEvery(64, 3*window)
		if _, err := m.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got, want := c.deadline(), c.now.Add(time.Second/16); !got.Equal(want) {
			t.Errorf("deadline after the pause: got %v, want the 64 bytes' credit from now, %v", got, want)
		}
	})

	t.Run("the end of the body lifts the deadline", func(t *testing.T) {
		c := &fakeConn{now: start}
		m := c.reader(rate, window)
		body := strings.NewReader("the whole body")
		c.next = body.Read
		if _, err := io.ReadAll(m); err != nil {
			t.Fatal(err)
		}
		if got := c.deadline(); !got.IsZero() {
			t.Errorf("deadline after EOF: got %v, want none (the zero time)", got)
		}
	})
}

// TestBodyUploadTooSlow: an upload that stops sending is cut off with a 408
// whose reason phrase says why, and a refused one is not drained forever.
func TestBodyUploadTooSlow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixtureWith(t, d, fixtureConfig{uploadMinRate: 1 << 20, uploadRateWindow: 200 * time.Millisecond})
		dist := wheel(t, meta{Name: "slow", Version: "1.0"})
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, fl := range dist.form() {
			mw.WriteField(fl.name, fl.value)
		}
		mw.CreateFormFile("content", dist.Filename)
		head := b.String()

		cases := []struct {
			name, auth, status string
		}{
			{"with a token, stalled in the file", basicToken(f.token),
				"408 Upload too slow: less than 1.0 MB per second arrived on average, or nothing for 200ms, so the server stopped reading. Check the connection and upload again."},
			{"without a token, refused and then stalled", "", "403 Invalid or non-existent authentication information."},
		}
		for _, c := range cases {
			u, _ := url.Parse(f.url)
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /legacy/ HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", u.Host, mw.FormDataContentType(), 1<<30)
			if c.auth != "" {
				fmt.Fprintf(conn, "Authorization: %s\r\n", c.auth)
			}
			io.WriteString(conn, "\r\n"+head+"some bytes of the file, then nothing")
			// The server answers when it gives up; this deadline only
			// keeps a broken server from hanging the test.
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Errorf("%s: no answer from the server: %v", c.name, err)
				continue
			}
			resp.Body.Close()
			if !strings.HasPrefix(resp.Status, c.status) {
				t.Errorf("%s: got %q, want %q", c.name, resp.Status, c.status)
			}
		}
		var files int
		if err := d.QueryRow(`SELECT count(*) FROM files`).Scan(&files); err != nil {
			t.Fatal(err)
		}
		if files != 0 {
			t.Errorf("%d files stored after cut-off uploads, want none", files)
		}
	})
}

// TestBodyUploadEpilogue: an upload is read to the end of its body, so
// what follows the closing boundary is bounded too.
func TestBodyUploadEpilogue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for i, c := range []struct {
			epilogue string
			code     int
			reason   string
		}{
			{"\r\nan epilogue, which RFC 2046 allows\r\n", http.StatusOK, "OK"},
			// The multipart reader's buffer takes up to 4 KiB past the
			// boundary, so the cap is only that exact.
			{strings.Repeat("x", 128<<10), http.StatusBadRequest, "Invalid request: more than 64 KiB of data after the end of the multipart body."},
		} {
			dist := wheel(t, meta{Name: "epilogue", Version: fmt.Sprintf("1.%d", i)})
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			for _, fl := range dist.form() {
				mw.WriteField(fl.name, fl.value)
			}
			fw, _ := mw.CreateFormFile("content", dist.Filename)
			fw.Write(dist.Content)
			mw.Close()
			b.WriteString(c.epilogue)
			req, _ := http.NewRequest(http.MethodPost, f.url+"/legacy/", &b)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Authorization", basicToken(f.token))
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := fmt.Sprintf("%d %s", c.code, c.reason); resp.Status != want {
				t.Errorf("epilogue of %d bytes: got %q, want %q", len(c.epilogue), resp.Status, want)
			}
		}
	})
}
