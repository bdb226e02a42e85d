package mail

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewSMTPSenderURLs(t *testing.T) {
	good := []struct {
		url    string
		scheme string
		host   string
		port   int
		user   string
		pass   string
	}{
		{"smtp://mail.example.org", "smtp", "mail.example.org", 587, "", ""},
		{"smtp://u%40x:p%3Ass@mail.example.org:2525", "smtp", "mail.example.org", 2525, "u@x", "p:ss"},
		{"smtps://u:pw-secret@mail.example.org", "smtps", "mail.example.org", 465, "u", "pw-secret"},
		{"smtps://mail.example.org:1465/", "smtps", "mail.example.org", 1465, "", ""},
		{"smtp+insecure://relay.internal", "smtp+insecure", "relay.internal", 25, "", ""},
		{"smtp+insecure://u:pw-secret@localhost:1025", "smtp+insecure", "localhost", 1025, "u", "pw-secret"},
		{"smtp+insecure://u:pw-secret@127.0.0.1", "smtp+insecure", "127.0.0.1", 25, "u", "pw-secret"},
		{"smtp+insecure://u:pw-secret@[::1]:25", "smtp+insecure", "::1", 25, "u", "pw-secret"},
	}
	for _, g := range good {
		s, err := NewSMTPSender(g.url)
		if err != nil {
			t.Errorf("%s: %v", g.url, err)
			continue
		}
		if s.scheme != g.scheme || s.host != g.host || s.port != g.port || s.user != g.user || s.password != g.pass || s.auth != (g.user != "") {
			t.Errorf("%s: got %+v", g.url, s)
		}
		if g.pass != "" && strings.Contains(s.String(), g.pass) {
			t.Errorf("%s: String() shows the password: %s", g.url, s)
		}
	}
	bad := []string{
		"",
		"mail.example.org:25",
		"http://mail.example.org",
		"smtp+tls://mail.example.org",
		"lmtp://mail.example.org",
		"smtp://",
		"smtp://:hunter2@mail.example.org",
		"smtp://u:hunter2@mail.example.org:0",
		"smtp://u:hunter2@mail.example.org:99999",
		"smtp://u:hunter2@mail.example.org:port",
		"smtp://u:hunter2@mail.example.org/path",
		"smtp://u:hunter2@mail.example.org?tls=no",
		"smtp+insecure://u:hunter2@mail.example.org", // a password in clear over the network
		"smtp://u:hunter2@mail.example.org:25\n",
		"smtp://u:hunter2@[::1",
	}
	for _, b := range bad {
		_, err := NewSMTPSender(b)
		if err == nil {
			t.Errorf("%q accepted", b)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error shows the password: %v", b, err)
		}
	}
}

func sendOne(t *testing.T, s *SMTPSender) error {
	t.Helper()
	return s.Send(context.Background(), testFrom, verifyMessage(t, 1, "alice@example.org"))
}

// smtp:// is STARTTLS, mandatory, with the certificate verified.
func TestSMTPSenderSTARTTLS(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	srv := startSMTP(t, serverOptions{User: "mailer", Pass: "pw", TLSConfig: serverTLS})

	s, err := NewSMTPSender("smtp://mailer:pw@127.0.0.1:" + srv.Port())
	if err != nil {
		t.Fatal(err)
	}
	s.tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if err := sendOne(t, s); err != nil {
		t.Fatal(err)
	}
	got := srv.next(t)
	if !got.TLS || got.User != "mailer" {
		t.Errorf("TLS %v, user %q", got.TLS, got.User)
	}
	if p := parseEmail(t, got.Data); !strings.Contains(p.Text, testLink) {
		t.Errorf("text part %q", p.Text)
	}

	// An untrusted certificate is refused: nothing is sent.
	s.tlsConfig = nil
	if err := sendOne(t, s); err == nil {
		t.Error("sent to a server with an untrusted certificate")
	}
	srv.none(t)

	// A server that does not offer STARTTLS gets nothing.
	plain := startSMTP(t, serverOptions{})
	s, err = NewSMTPSender("smtp://127.0.0.1:" + plain.Port())
	if err != nil {
		t.Fatal(err)
	}
	s.tlsConfig = &tls.Config{RootCAs: pool}
	if err := sendOne(t, s); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("sent without STARTTLS: %v", err)
	}
	plain.none(t)
}

// smtps:// is TLS from the first byte.
func TestSMTPSenderImplicitTLS(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	srv := startSMTP(t, serverOptions{User: "mailer", Pass: "pw", TLSConfig: serverTLS, ImplicitTLS: true})
	s, err := NewSMTPSender("smtps://mailer:pw@127.0.0.1:" + srv.Port())
	if err != nil {
		t.Fatal(err)
	}
	s.tlsConfig = &tls.Config{RootCAs: pool}
	if err := sendOne(t, s); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(t); !got.TLS || got.User != "mailer" {
		t.Errorf("TLS %v, user %q", got.TLS, got.User)
	}

	// Plain SMTP against a TLS port fails rather than hanging.
	s.tlsConfig = nil
	if err := sendOne(t, s); err == nil {
		t.Error("sent to a server with an untrusted certificate")
	}
}

func TestSMTPSenderWrongPassword(t *testing.T) {
	srv := startSMTP(t, serverOptions{User: "mailer", Pass: "right"})
	s, err := NewSMTPSender("smtp+insecure://mailer:wrong-pw@127.0.0.1:" + srv.Port())
	if err != nil {
		t.Fatal(err)
	}
	err = sendOne(t, s)
	if err == nil {
		t.Fatal("sent with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("error shows the password: %v", err)
	}
	srv.none(t)
}

// A server that accepts the connection and then says nothing cannot hold a
// send past its context, nor past the session limit.
func TestSMTPSenderSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, silent
		}
	}()
	s, err := NewSMTPSender("smtp+insecure://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if err := s.Send(ctx, testFrom, verifyMessage(t, 1, "a@example.org")); err == nil {
		t.Fatal("sent to a silent server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled send took %s", d)
	}

	s.sessionLimit = 300 * time.Millisecond
	start = time.Now()
	if err := sendOne(t, s); err == nil {
		t.Fatal("sent to a silent server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("session limit did not hold: %s", d)
	}
}
