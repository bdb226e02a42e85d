package main

// Helpers of the account end-to-end tests (e2e_accounts_test.go,
// e2e_security_test.go, e2e_browser_test.go). They start the real server
// through run() with --smtp-url pointing at an in-test SMTP server
// (emersion/go-smtp) that receives real SMTP, and drive it over HTTP as a
// person with a browser would: one net/http/cookiejar per browser, forms
// sent as application/x-www-form-urlencoded with Sec-Fetch-Site:
// same-origin, and every emailed link followed with the same jar.
//
// Every browser gets its own client IP (X-Forwarded-For from 127.0.0.1,
// which the server is told to trust), so the per-IP rate limits of one
// person do not spill into another's, as on a real site.
//
// Every password typed, every cookie value received and every emailed token
// is recorded as a secret; acctNoSecretsLeaked (spec J1) then searches the
// server's log and the database for them.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	netmail "net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// ---------------------------------------------------------------------------
// The SMTP server

// acctMail is one email as the SMTP server received it, taken apart.
type acctMail struct {
	From    string
	To      []string
	Subject string
	Header  netmail.Header
	Text    string // the text/plain part, transfer encoding undone
	HTML    string // the text/html part
	Raw     []byte
	err     error // why it could not be parsed
	taken   bool
}

// acctMailbox is an in-test SMTP server that keeps every message.
type acctMailbox struct {
	Addr    string
	srv     *smtp.Server
	mu      sync.Mutex
	msgs    []*acctMail
	changed chan struct{} // closed (and replaced) when a message arrives
}

func acctStartSMTP(t *testing.T) *acctMailbox {
	t.Helper()
	mb := &acctMailbox{changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &acctSMTPSession{mb: mb}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.Addr = l.Addr().String()
	mb.srv = srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return mb
}

type acctSMTPSession struct {
	mb   *acctMailbox
	from string
	to   []string
}

func (s *acctSMTPSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *acctSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, strings.ToLower(to))
	return nil
}
func (s *acctSMTPSession) Reset()        { s.from, s.to = "", nil }
func (s *acctSMTPSession) Logout() error { return nil }
func (s *acctSMTPSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := acctParseMail(raw)
	m.From, m.To = s.from, s.to
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, m)
	close(s.mb.changed)
	s.mb.changed = make(chan struct{})
	s.mb.mu.Unlock()
	return nil
}

// acctParseMail parses an RFC 5322 message and its MIME parts with net/mail
// and mime/multipart, as a mail client would.
func acctParseMail(raw []byte) *acctMail {
	m := &acctMail{Raw: raw}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.err = fmt.Errorf("not an RFC 5322 message: %v", err)
		return m
	}
	m.Header = msg.Header
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.err = fmt.Errorf("Subject: %v", err)
		return m
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		m.err = fmt.Errorf("Content-Type: %v", err)
		return m
	}
	if !strings.HasPrefix(mt, "multipart/") {
		m.err = fmt.Errorf("Content-Type %s, want multipart/alternative", mt)
		return m
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // undoes quoted-printable itself
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			m.err = fmt.Errorf("multipart: %v", err)
			return m
		}
		var body io.Reader = part
		if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
			body = base64.NewDecoder(base64.StdEncoding, part)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			m.err = fmt.Errorf("part: %v", err)
			return m
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			m.Text = string(b)
		case "text/html":
			m.HTML = string(b)
		}
	}
	if m.Text == "" {
		m.err = errors.New("no text/plain part")
	}
	return m
}

func (m *acctMail) sentTo(addr string) bool {
	for _, to := range m.To {
		if to == strings.ToLower(addr) {
			return true
		}
	}
	return false
}

// take waits for the first message to addr, not taken before, whose subject
// contains subject, and marks it taken.
func (mb *acctMailbox) take(t *testing.T, addr, subject string) *acctMail {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		mb.mu.Lock()
		for _, m := range mb.msgs {
			if !m.taken && m.sentTo(addr) && strings.Contains(m.Subject, subject) {
				m.taken = true
				mb.mu.Unlock()
				if m.err != nil {
					t.Fatalf("email to %s %q: %v\n%s", addr, m.Subject, m.err, m.Raw)
				}
				return m
			}
		}
		ch := mb.changed
		mb.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no email to %s with subject containing %q arrived within 15s; received: %s", addr, subject, mb.summary())
		}
	}
}

// untaken returns the messages to addr that no take has claimed.
func (mb *acctMailbox) untaken(addr string) []*acctMail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []*acctMail
	for _, m := range mb.msgs {
		if !m.taken && m.sentTo(addr) {
			out = append(out, m)
		}
	}
	return out
}

// all returns every message received so far.
func (mb *acctMailbox) all() []*acctMail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]*acctMail(nil), mb.msgs...)
}

func (mb *acctMailbox) summary() string {
	var b strings.Builder
	for _, m := range mb.all() {
		fmt.Fprintf(&b, "\n  to %v: %q (taken %v)", m.To, m.Subject, m.taken)
	}
	return b.String()
}

var acctURLRE = regexp.MustCompile(`https?://[^\s"<>]+`)

// links returns the URLs in the text part.
func (m *acctMail) links() []string { return acctURLRE.FindAllString(m.Text, -1) }

// ---------------------------------------------------------------------------
// Secrets: what must never be found in the log or the database (spec J1).

type acctSecrets struct {
	mu   sync.Mutex
	vals map[string]string // value → what it is
}

func (s *acctSecrets) add(what, v string) {
	if len(v) < 6 {
		panic("secret too short to search for: " + what)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string]string{}
	}
	if _, ok := s.vals[v]; !ok {
		s.vals[v] = what
	}
}

func (s *acctSecrets) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.vals))
	for k, v := range s.vals {
		out[k] = v
	}
	return out
}

// ---------------------------------------------------------------------------
// The server

// acctEnv is a real server started through run(), its SMTP server, and a
// connection to its database.
type acctEnv struct {
	*e2eServer
	dialect string
	base    string // the configured public base URL (links are built from it)
	cookie  string // the session cookie's name
	mail    *acctMailbox
	secrets *acctSecrets
	ipSeq   atomic.Uint32
	// tlsPool, with Gatehouse's own TLS listener (acctOpts.tlsCert), is
	// what the browsers trust; env.URL is then https too.
	tlsPool *x509.CertPool

	dbOnce sync.Once
	sqlDB  *db.DB
	sqlErr error
}

type acctOpts struct {
	extra []string
	// tlsCert and tlsKey, when set, make Gatehouse serve HTTPS itself
	// (--tls-cert, --tls-key) at https://localhost:PORT, the public base
	// URL, and the test speaks HTTPS to it, trusting tlsPool.
	tlsCert, tlsKey string
	tlsPool         *x509.CertPool
	// httpsBase makes the configured base URL https://gatehouse.test (as
	// behind a TLS-terminating proxy); the test still talks plain HTTP to
	// the listener.
	httpsBase bool
	// publicBase, if set, is the configured base URL (an https URL the
	// test serves through its own TLS terminator); the test still talks
	// plain HTTP to the listener.
	publicBase string
	// allowWarn are substrings of WARN log lines the scenario provokes on
	// purpose (a refused cross-origin request); any other WARN, any ERROR
	// and any panic fail the test.
	allowWarn []string
	// dbURL and mail, when set, are the database and SMTP server to use
	// instead of new ones: several instances share them.
	dbURL string
	mail  *acctMailbox
}

const acctHTTPSBase = "https://gatehouse.test"

// acctStart starts a server with its own SMTP server and data dir on a new
// database of the dialect, trusting X-Forwarded-For from 127.0.0.1.
func acctStart(t *testing.T, dialect string, o acctOpts) *acctEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	mb := o.mail
	if mb == nil {
		mb = acctStartSMTP(t)
	}
	dataDir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dataDir, "gatehouse.db")
	switch {
	case o.dbURL != "":
		dbURL = o.dbURL
	case dialect == "postgres":
		dbURL = dbtest.PostgresURL(t)
	}
	env := &acctEnv{
		e2eServer: &e2eServer{dataDir: dataDir, dbURL: dbURL, log: newE2ELog()},
		dialect:   dialect, mail: mb, secrets: &acctSecrets{},
		cookie: "gatehouse_session",
	}
	// The listener's port is chosen here, so that the public base URL can
	// name it: http://localhost:PORT (a domain, as WebAuthn's relying-party
	// id needs), or https://gatehouse.test as behind a TLS proxy. The test
	// talks plain HTTP to 127.0.0.1:PORT.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(listen)
	public := "http://localhost:" + port
	if o.httpsBase {
		public = acctHTTPSBase
		env.cookie = "__Host-gatehouse_session"
	}
	if o.publicBase != "" {
		public = o.publicBase
		env.cookie = "__Host-gatehouse_session"
	}
	if o.tlsCert != "" {
		if o.publicBase == "" {
			public = "https://localhost:" + port
		}
		env.cookie = "__Host-gatehouse_session"
		env.tlsPool = o.tlsPool
		o.extra = append([]string{"--tls-cert", o.tlsCert, "--tls-key", o.tlsKey}, o.extra...)
	}
	// The scenarios sign in from many parallel subtests at once, on a
	// machine often loaded by other work: with the default hash budget and
	// wait, that crowd would get "too many sign-ins" 429s that no scenario
	// is about. The budget and its 429 are tested with a held pool in
	// internal/web and internal/account, and TestE2EHashDoS sets a small
	// server's defaults again (a later flag wins).
	args := []string{"serve", "--data-dir", dataDir, "--database-url", dbURL, "--base-url", public,
		"--shutdown-grace", "5s", "--cache-poll", "200ms", "--log-level", "debug",
		"--smtp-url", "smtp+insecure://" + mb.Addr, "--trusted-proxies", "127.0.0.1/32",
		"--hash-cpus", "2", "--hash-wait", "2m"}
	args = append(append(args, "--listen", listen), o.extra...)

	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = run(ctx, args, e2eNoEnv, strings.NewReader(""), io.Discard, env.log)
	}()
	t.Cleanup(func() {
		if env.sqlDB != nil {
			env.sqlDB.Close()
		}
		cancel()
		select {
		case <-done:
			if runErr != nil {
				t.Errorf("server: run returned %v, want nil after cancel", runErr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s of its context being cancelled")
		}
		logText := env.log.String()
		for _, line := range strings.Split(logText, "\n") {
			switch {
			case strings.Contains(line, "level=ERROR"), strings.Contains(line, "panic"):
				t.Errorf("server log: %s", line)
			case strings.Contains(line, "level=WARN"):
				allowed := false
				for _, a := range o.allowWarn {
					allowed = allowed || strings.Contains(line, a)
				}
				if !allowed {
					t.Errorf("server log: unexpected warning: %s", line)
				}
			}
		}
		if t.Failed() && testing.Verbose() {
			t.Logf("server log:\n%s", logText)
		}
	})
	select {
	case u := <-env.log.ready:
		env.base = strings.TrimRight(u, "/")
	case <-done:
		t.Fatalf("server exited before it was ready: %v\n%s", runErr, env.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server not ready after 60s; log:\n%s", env.log.String())
	}
	if env.base != public {
		t.Fatalf("server runs at %s, want the configured %s", env.base, public)
	}
	env.URL = "http://" + listen
	if o.tlsCert != "" {
		// The listener itself, over TLS (the certificate names 127.0.0.1).
		env.URL = "https://" + listen
		env.client = &http.Client{Timeout: 2 * time.Minute,
			Transport: &http.Transport{Proxy: nil, DisableCompression: true, TLSClientConfig: &tls.Config{RootCAs: o.tlsPool}}}
	}
	return env
}

// sql is a second connection to the server's database.
func (e *acctEnv) sql(t *testing.T) *db.DB {
	t.Helper()
	e.dbOnce.Do(func() { e.sqlDB, e.sqlErr = db.Open(context.Background(), e.dbURL) })
	if e.sqlErr != nil {
		t.Fatalf("open database: %v", e.sqlErr)
	}
	return e.sqlDB
}

func (e *acctEnv) exec(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	r, err := e.sql(t).ExecContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n, _ := r.RowsAffected()
	return n
}

func (e *acctEnv) queryInt(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.sql(t).QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (e *acctEnv) queryString(t *testing.T, q string, args ...any) string {
	t.Helper()
	var s string
	if err := e.sql(t).QueryRowContext(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

// rows returns every row of a query as text, one string per row.
func (e *acctEnv) rows(t *testing.T, q string, args ...any) []string {
	t.Helper()
	rows, err := e.sql(t).QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(&b, "%s=%v", cols[i], v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *acctEnv) userID(t *testing.T, username string) int64 {
	t.Helper()
	return e.queryInt(t, `SELECT id FROM users WHERE username_key = $1`, strings.ToLower(username))
}

// events counts a user's audit events by tag.
func (e *acctEnv) events(t *testing.T, userID int64) map[string]int {
	t.Helper()
	rows, err := e.sql(t).QueryContext(context.Background(), `SELECT tag FROM events WHERE user_id = $1`, userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			t.Fatal(err)
		}
		out[tag]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantEvents checks the counts of the given tags among a user's events
// (spec J1: each action is recorded exactly once).
func (e *acctEnv) wantEvents(t *testing.T, userID int64, want map[string]int) {
	t.Helper()
	got := e.events(t, userID)
	var bad []string
	for tag, n := range want {
		if got[tag] != n {
			bad = append(bad, fmt.Sprintf("%s: got %d, want %d", tag, got[tag], n))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("audit events of user %d:\n  %s\nall: %v", userID, strings.Join(bad, "\n  "), got)
	}
}

// outboxTo counts the emails queued for addr with a template.
func (e *acctEnv) outboxTo(t *testing.T, addr, template string) int64 {
	t.Helper()
	return e.queryInt(t, `SELECT count(*) FROM outbox WHERE to_addr = $1 AND template = $2`, addr, template)
}

// waitOutboxSent waits until the mail worker has sent every queued email.
func (e *acctEnv) waitOutboxSent(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := e.queryInt(t, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d emails still unsent after 20s: %v", n, e.rows(t, `SELECT id, to_addr, subject, attempts, last_error FROM outbox WHERE sent_at IS NULL`))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMailDrained waits until the mail worker has dealt with every email
// queued so far, and returns the id of the newest of them. An email is
// queued in the transaction of the change that causes it, and that commits
// before the server answers, so every email the requests made up to now
// could have caused has an id up to the one returned. Dealt with is sent
// (sent_at is recorded after the SMTP server accepted the message, and the
// test's server keeps a message before it accepts it, so a sent email is in
// e.mail by then) or failed at least once (attempts > 0). Emails queued
// later, by parallel scenarios sharing the server, are not waited for.
//
// This is the signal a "no email arrives" check waits on: with the outbox
// drained up to now, an email that was wrongly queued has arrived, however
// slow the mail worker is.
func (e *acctEnv) waitMailDrained(t *testing.T) int64 {
	t.Helper()
	mark := e.queryInt(t, `SELECT coalesce(max(id), 0) FROM outbox`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := e.queryInt(t, `SELECT count(*) FROM outbox WHERE id <= $1 AND sent_at IS NULL AND attempts = 0`, mark)
		if n == 0 {
			return mark
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mail worker has not tried %d queued emails after 20s: %v", n,
				e.rows(t, `SELECT id, to_addr, subject, claimed_until FROM outbox WHERE id <= $1 AND sent_at IS NULL AND attempts = 0`, mark))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the condition is the outbox, not the time
	}
}

// noMail checks that no email to addr other than those already taken was
// queued by anything done so far: it waits for the outbox to be drained
// (waitMailDrained), then looks in the mailbox and, for emails whose
// delivery failed, in the outbox.
func (e *acctEnv) noMail(t *testing.T, addr string) {
	t.Helper()
	mark := e.waitMailDrained(t)
	for _, m := range e.mail.untaken(addr) {
		t.Errorf("unexpected email to %s: %q\n%s", addr, m.Subject, m.Text)
	}
	for _, r := range e.rows(t, `SELECT id, template, subject, attempts, last_error FROM outbox
		WHERE id <= $1 AND sent_at IS NULL AND lower(to_addr) = lower($2)`, mark, addr) {
		t.Errorf("unexpected email to %s queued (its delivery failed): %s", addr, r)
	}
}

// createAdmin makes an administrator with `gatehouse user create --admin
// --password-stdin --email-verified`, the password given on standard input.
// Admin pages also need a second factor: see enrolTOTP.
func (e *acctEnv) createAdmin(t *testing.T, name, password string) {
	t.Helper()
	e.secrets.add("password of "+name, password)
	var stdout, stderr bytes.Buffer
	args := []string{"user", "create", "--username", name, "--email", name + "@example.com", "--admin", "--password-stdin",
		"--email-verified", "--data-dir", e.dataDir, "--database-url", e.dbURL}
	if err := run(context.Background(), args, e2eNoEnv, strings.NewReader(password+"\n"), &stdout, &stderr); err != nil {
		t.Fatalf("gatehouse user create --admin: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), `Created administrator "`+name+`"`) {
		t.Fatalf("user create --admin: got %q", stdout.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), password) {
		t.Errorf("user create printed the password")
	}
}

// token makes an API token with `gatehouse token create` and records it
// as a secret.
func (e *acctEnv) token(t *testing.T, user, description string) string {
	t.Helper()
	raw := e.createToken(t, user, description)
	e.secrets.add("API token "+description, raw)
	return raw
}

// ---------------------------------------------------------------------------
// Browsers

// acctBrowser is one person's browser: a cookie jar, a user agent and a
// client IP.
type acctBrowser struct {
	env *acctEnv
	ip  string
	ua  string
	jar http.CookieJar
	c   *http.Client
}

// User agents, so the sessions list can tell browsers apart.
const (
	acctFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	acctChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	acctSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// browser returns a new browser with an empty jar and a client IP of its own.
func (e *acctEnv) browser(ua string) *acctBrowser {
	n := e.ipSeq.Add(1)
	b := &acctBrowser{env: e, ip: fmt.Sprintf("10.%d.%d.%d", 1+n>>16&0xff, n>>8&0xff, n&0xff), ua: ua}
	if strings.HasPrefix(e.base, "https://") {
		// The public URL is https but the test speaks HTTP to the
		// listener (the TLS proxy is left out): keep Secure cookies as
		// a browser on https would.
		b.jar = &acctPlainJar{}
	} else {
		b.jar, _ = cookiejar.New(nil)
	}
	b.c = &http.Client{
		Jar:       b.jar,
		Timeout:   time.Minute,
		Transport: &http.Transport{Proxy: nil, DisableCompression: true, TLSClientConfig: &tls.Config{RootCAs: e.tlsPool}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return b
}

// acctPlainJar keeps cookies by name, ignoring Secure and Path, for the
// server whose base URL is https.
type acctPlainJar struct {
	mu sync.Mutex
	c  map[string]*http.Cookie
}

func (j *acctPlainJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.c == nil {
		j.c = map[string]*http.Cookie{}
	}
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.c, c.Name)
		} else {
			j.c[c.Name] = c
		}
	}
}

func (j *acctPlainJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.c {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

// acctResp is an answer, read whole.
type acctResp struct {
	Method string
	Path   string
	Code   int
	Header http.Header
	Body   string
	Cookie []*http.Cookie // Set-Cookie
}

func (r *acctResp) String() string {
	body := r.Body
	if len(body) > 3000 {
		body = body[:3000] + "…"
	}
	return fmt.Sprintf("%s %s: %d, Location %q\n%s", r.Method, r.Path, r.Code, r.Header.Get("Location"), body)
}

// loc is the Location header as a path (the server may send absolute or
// relative locations).
func (r *acctResp) loc() string { return r.Header.Get("Location") }

// url maps a path or an absolute URL at the public base URL to the
// listener's address.
func (b *acctBrowser) url(t *testing.T, p string) string {
	t.Helper()
	switch {
	case strings.HasPrefix(p, b.env.base+"/"):
		return b.env.URL + strings.TrimPrefix(p, b.env.base)
	case strings.HasPrefix(p, "/"):
		return b.env.URL + p
	}
	t.Fatalf("not a URL of this server: %q", p)
	return ""
}

// do sends a request. hdr holds extra headers; "Host" sets the Host header.
func (b *acctBrowser) do(t *testing.T, method, p string, form url.Values, hdr map[string]string) *acctResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url(t, p), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", b.ua)
	req.Header.Set("X-Forwarded-For", b.ip)
	req.Header.Set("Accept", "text/html")
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// What a browser sends with a form posted from the site's own page.
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", b.env.base)
	}
	for k, v := range hdr {
		switch {
		case k == "Host":
			req.Host = v
		case v == "":
			req.Header.Del(k)
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, p, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, p, err)
	}
	r := &acctResp{Method: method, Path: p, Code: resp.StatusCode, Header: resp.Header, Body: string(rb), Cookie: resp.Cookies()}
	for _, c := range r.Cookie {
		// The session cookie, and any other (a remembered-device cookie).
		if len(c.Value) >= 16 {
			b.env.secrets.add("cookie "+c.Name, c.Value)
		}
	}
	if r.Code >= 500 && r.Code != http.StatusServiceUnavailable {
		t.Errorf("%s %s: got %d, want no 5xx\n%s", method, p, r.Code, r.Body)
	}
	return r
}

func (b *acctBrowser) get(t *testing.T, p string) *acctResp {
	t.Helper()
	return b.do(t, http.MethodGet, p, nil, nil)
}

func (b *acctBrowser) post(t *testing.T, p string, form url.Values) *acctResp {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(t, http.MethodPost, p, form, nil)
}

// follow follows redirects with GET, as a browser does after a 303.
func (b *acctBrowser) follow(t *testing.T, r *acctResp) *acctResp {
	t.Helper()
	for i := 0; r.Code >= 300 && r.Code < 400; i++ {
		if i == 10 {
			t.Fatalf("more than 10 redirects, last %s", r)
		}
		r = b.get(t, r.loc())
	}
	return r
}

// want fails t unless r has the status and every text (HTML-escaped as the
// pages print it).
func acctWant(t *testing.T, r *acctResp, code int, texts ...string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s\ngot status %d, want %d", r, r.Code, code)
	}
	for _, s := range texts {
		if !strings.Contains(r.Body, s) && !strings.Contains(r.Body, acctEscape(s)) {
			t.Fatalf("%s\nthe page lacks %q", r, s)
		}
	}
}

// acctWantRedirect fails t unless r is a 303 to the path (query ignored
// when path has none).
func acctWantRedirect(t *testing.T, r *acctResp, path string) {
	t.Helper()
	loc := r.loc()
	if !strings.Contains(path, "?") {
		loc, _, _ = strings.Cut(loc, "?")
	}
	if r.Code != http.StatusSeeOther || loc != path {
		t.Fatalf("%s\ngot %d to %q, want 303 to %q", r, r.Code, r.loc(), path)
	}
}

func acctEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// session returns the browser's session cookie value ("" if none).
func (b *acctBrowser) session() string {
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(b.env.URL, "http://"), Path: "/"}) {
		if c.Name == b.env.cookie {
			return c.Value
		}
	}
	return ""
}

// setSession plants a session cookie value in the jar.
func (b *acctBrowser) setSession(v string) {
	u, _ := url.Parse(b.env.URL + "/")
	b.jar.SetCookies(u, []*http.Cookie{{Name: b.env.cookie, Value: v, Path: "/"}})
}

// signedIn reports whether the account page shows (rather than sending
// to the login page).
func (b *acctBrowser) signedIn(t *testing.T) bool {
	t.Helper()
	r := b.get(t, "/manage/account/")
	switch {
	case r.Code == http.StatusOK && strings.Contains(r.Body, "<h1>Your account</h1>"):
		return true
	case r.Code == http.StatusSeeOther && strings.HasPrefix(r.loc(), "/account/login/"):
		return false
	}
	t.Fatalf("GET /manage/account/: neither the page nor a redirect to log in:\n%s", r)
	return false
}

// register submits the registration form.
func (b *acctBrowser) register(t *testing.T, username, password string) *acctResp {
	t.Helper()
	b.env.secrets.add("password of "+username, password)
	return b.post(t, "/account/register/", url.Values{
		"username": {username}, "full_name": {"User " + username}, "email": {username + "@example.com"},
		"password": {password}, "password_confirm": {password}, "confirm_form": {""},
	})
}

// mustRegister registers username (email username@example.com), which the
// server signs in at once, and checks the unverified-address banner.
func (b *acctBrowser) mustRegister(t *testing.T, username, password string) int64 {
	t.Helper()
	r := b.register(t, username, password)
	acctWantRedirect(t, r, "/manage/account/")
	page := b.follow(t, r)
	acctWant(t, page, 200, "Welcome, "+username+".", "Your primary email address ("+username+"@example.com) is unverified.")
	return b.env.userID(t, username)
}

// verify follows the verification link emailed to addr.
func (b *acctBrowser) verify(t *testing.T, addr string) {
	t.Helper()
	m := b.env.mail.take(t, addr, "Email verification")
	link := acctLink(t, b.env, m, "/account/verify-email/")
	r := b.get(t, link)
	acctWantRedirect(t, r, "/manage/account/")
	acctWant(t, b.follow(t, r), 200, "Email address "+addr+" verified.")
}

// mustRegisterVerified registers and verifies the address.
func (b *acctBrowser) mustRegisterVerified(t *testing.T, username, password string) int64 {
	t.Helper()
	id := b.mustRegister(t, username, password)
	b.verify(t, username+"@example.com")
	return id
}

// login submits the login form.
func (b *acctBrowser) login(t *testing.T, username, password string) *acctResp {
	t.Helper()
	b.env.secrets.add("password tried for "+username, password)
	return b.post(t, "/account/login/", url.Values{"username": {username}, "password": {password}})
}

func (b *acctBrowser) mustLogin(t *testing.T, username, password string) {
	t.Helper()
	acctWantRedirect(t, b.login(t, username, password), "/manage/account/")
	if !b.signedIn(t) {
		t.Fatalf("%s: not signed in after logging in", username)
	}
}

var (
	acctRecoveryCodeRE = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)
	acctTOTPSecretRE   = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
)

// enrolTOTP sets up an authentication app in the signed-in browser, as a
// person does on the two-factor page: generate recovery codes, enter one
// back, scan the secret, enter a code. The session is kept (a second login
// would need a code of a later 30-second step).
func (b *acctBrowser) enrolTOTP(t *testing.T) {
	t.Helper()
	b.enrolTOTPBackTo(t, "/manage/account/two-factor/")
}

// enrolTOTPBackTo is enrolTOTP for a browser the management gate sent to
// the two-factor page from back: where it lands once the app is added.
func (b *acctBrowser) enrolTOTPBackTo(t *testing.T, back string) {
	t.Helper()
	r := b.post(t, "/manage/account/recovery-codes/generate/", nil)
	acctWant(t, r, 200, "Your recovery codes")
	codes := acctRecoveryCodeRE.FindAllStringSubmatch(r.Body, -1)
	if len(codes) != 8 {
		t.Fatalf("got %d recovery codes, want 8:\n%s", len(codes), r.Body)
	}
	for _, c := range codes {
		b.env.secrets.add("recovery code", c[1])
	}
	r = b.post(t, "/manage/account/recovery-codes/confirm/", url.Values{"recovery_code_value": {codes[0][1]}})
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	page := b.get(t, "/manage/account/totp-provision/")
	acctWant(t, page, 200, "Set up an authentication app")
	m := acctTOTPSecretRE.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no TOTP secret on the page:\n%s", page.Body)
	}
	b.env.secrets.add("TOTP secret", m[1])
	code, err := totp.GenerateCode(m[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = b.post(t, "/manage/account/totp-provision/", url.Values{"totp_value": {code}})
	acctWantRedirect(t, r, back)
	acctWant(t, b.follow(t, r), 200, "Authentication app added.")
}

// acctLink returns the one link of an email that goes to path, checking
// it is built from the configured base URL and appears in the HTML part
// too, and records its token as a secret.
func acctLink(t *testing.T, env *acctEnv, m *acctMail, path string) string {
	t.Helper()
	var found []string
	for _, l := range m.links() {
		if strings.Contains(l, path) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("email %q: got links %v to %s, want exactly one\n%s", m.Subject, found, path, m.Text)
	}
	l := found[0]
	if !strings.HasPrefix(l, env.base+path+"?token=") {
		t.Fatalf("email %q: link %q is not %s%s?token=… (the configured base URL)", m.Subject, l, env.base, path)
	}
	if !strings.Contains(m.HTML, l) {
		t.Errorf("email %q: the HTML part lacks the link %s", m.Subject, l)
	}
	u, err := url.Parse(l)
	if err != nil {
		t.Fatal(err)
	}
	tok := u.Query().Get("token")
	if len(tok) < 43 {
		t.Fatalf("email %q: token %q is shorter than 43 characters (256 bits)", m.Subject, tok)
	}
	env.secrets.add("emailed token", tok)
	return l
}

// acctFormValue returns the value of the first hidden input named name that
// follows marker in the page.
func acctFormValue(t *testing.T, page, marker, name string) string {
	t.Helper()
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("the page lacks %q", marker)
	}
	re := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`)
	m := re.FindStringSubmatch(page[i:])
	if m == nil {
		t.Fatalf("no input %q after %q", name, marker)
	}
	return m[1]
}

// acctNoSecretsLeaked is spec J1's search: after every flow, none of the
// passwords typed, cookie values received, tokens emailed or API tokens
// made appears in the server's log, in any column of events, sessions,
// one_time_tokens, outbox, api_tokens, role_invitations or the other
// account tables; and every sent email's body has been blanked in the
// outbox.
func acctNoSecretsLeaked(t *testing.T, env *acctEnv) {
	t.Helper()
	env.waitOutboxSent(t)
	secrets := env.secrets.snapshot()
	if len(secrets) < 5 {
		t.Fatalf("only %d secrets were recorded; the flows did not run", len(secrets))
	}
	if n := env.queryInt(t, `SELECT count(*) FROM outbox WHERE text_body <> '' OR html_body <> ''`); n != 0 {
		t.Errorf("%d sent emails still hold their bodies (and links) in the outbox", n)
	}
	sources := map[string]string{"the server log": env.log.String()}
	for _, table := range []string{"events", "sessions", "one_time_tokens", "outbox", "api_tokens", "users", "user_emails", "throttle_hits", "site_settings", "role_invitations"} {
		sources["table "+table] = strings.Join(env.rows(t, `SELECT * FROM `+table), "\n")
	}
	for where, text := range sources {
		for v, what := range secrets {
			if strings.Contains(text, v) {
				i := strings.Index(text, v)
				ctx := text[max(0, i-120):min(len(text), i+len(v)+40)]
				t.Errorf("%s contains a %s: …%s…", where, what, ctx)
			}
		}
	}
}
