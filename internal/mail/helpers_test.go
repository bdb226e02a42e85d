package mail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

// received is one message as the test SMTP server got it.
type received struct {
	From string
	To   []string
	Data []byte
	User string // who authenticated ("" for nobody)
	TLS  bool   // whether the session was encrypted
}

type serverOptions struct {
	Addr        string      // default 127.0.0.1:0
	User, Pass  string      // when set, AUTH PLAIN is required
	TLSConfig   *tls.Config // enables STARTTLS (or implicit TLS)
	ImplicitTLS bool
}

// testSMTP is an in-process SMTP server (emersion/go-smtp) that pushes each
// message it accepts to Msgs.
type testSMTP struct {
	Addr string
	Msgs chan received
	opts serverOptions
	srv  *smtp.Server
}

func startSMTP(t *testing.T, o serverOptions) *testSMTP {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ts := &testSMTP{Msgs: make(chan received, 1000), opts: o}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, tlsOn := c.TLSConnectionState()
		return &testSession{srv: ts, tls: tlsOn}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up are expected here
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = o.TLSConfig == nil
	if !o.ImplicitTLS {
		srv.TLSConfig = o.TLSConfig // offers STARTTLS
	}
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // a just-freed port may take a moment
		if l, err = net.Listen("tcp", o.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if o.ImplicitTLS {
		l = tls.NewListener(l, o.TLSConfig)
	}
	ts.Addr = l.Addr().String()
	ts.srv = srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ts
}

// Close stops the server now.
func (ts *testSMTP) Close() { ts.srv.Close() }

// Port is the server's port, as text.
func (ts *testSMTP) Port() string {
	_, p, _ := net.SplitHostPort(ts.Addr)
	return p
}

// next waits for the next message.
func (ts *testSMTP) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-ts.Msgs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the SMTP server")
	}
	return received{}
}

// none checks that no (further) message arrived. It does not wait: call it
// once the sends in question have returned (Send, RunOnce, or every worker
// goroutine done). The server puts a message on Msgs before it answers the
// client's DATA, and a send returns only after that answer, so anything
// sent is on Msgs by then.
func (ts *testSMTP) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-ts.Msgs:
		t.Fatalf("unexpected message to %v:\n%s", r.To, r.Data)
	default:
	}
}

type testSession struct {
	srv  *testSMTP
	tls  bool
	user string
	from string
	to   []string
}

func (s *testSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if s.srv.opts.User == "" || username != s.srv.opts.User || password != s.srv.opts.Pass {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.opts.User != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.Msgs <- received{From: s.from, To: s.to, Data: b, User: s.user, TLS: s.tls}
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", nil }
func (s *testSession) Logout() error { return nil }

// selfSigned returns a server certificate for 127.0.0.1 and localhost and
// a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// freeAddr returns a local address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// parsed is an email taken apart.
type parsed struct {
	Header  netmail.Header
	Subject string
	Type    string // top-level media type
	Text    string
	HTML    string
}

// parseEmail parses raw as RFC 5322 and its multipart/alternative body,
// decoding the parts' transfer encoding.
func parseEmail(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, raw)
	}
	var p parsed
	p.Header = msg.Header
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	p.Type = mt
	if !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %s, want multipart/alternative\n%s", mt, raw)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			p.Text = string(b)
		case "text/html":
			p.HTML = string(b)
		}
	}
	return p
}

// newClock returns the workers' settable clock at the tests' start time.
func newClock() *testclock.Clock { return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }
