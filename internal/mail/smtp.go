package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

const (
	// smtpTimeout bounds each step of an SMTP session (connect, every
	// command and reply).
	smtpTimeout = 30 * time.Second
	// smtpSessionLimit bounds a whole session, however slowly the server
	// trickles its replies, so a send always ends well inside the worker's
	// claim lease (claimLease).
	smtpSessionLimit = 60 * time.Second
)

// SMTPSender delivers messages to an SMTP server, one connection per
// message. It never logs, and its errors never contain a message body or
// the server password.
type SMTPSender struct {
	scheme   string // smtp, smtps or smtp+insecure
	host     string
	port     int
	user     string
	password string
	auth     bool

	// tlsConfig, when set, is used instead of the default (verify the
	// server's certificate against the system roots). Tests set it to
	// trust their self-signed certificate.
	tlsConfig *tls.Config
	// sessionLimit overrides smtpSessionLimit (tests).
	sessionLimit time.Duration
}

// NewSMTPSender configures delivery to rawURL:
//
//   - smtp://[user:password@]host[:587]: STARTTLS, mandatory; a server
//     that does not offer it gets nothing.
//   - smtps://[user:password@]host[:465]: implicit TLS.
//   - smtp+insecure://[user:password@]host[:25]: no TLS, for a relay on the
//     same machine and for tests. A user and password are accepted here only
//     when host is localhost, 127.0.0.1 or ::1: elsewhere they would cross
//     the network in clear.
//
// A user and password authenticate with SMTP AUTH PLAIN (percent-encode
// special characters in them). Server certificates are verified.
func NewSMTPSender(rawURL string) (*SMTPSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error repeats the URL, password included.
		return nil, errors.New("mail: SMTP URL does not parse; want smtp://[user:password@]host:port, smtps://… or smtp+insecure://…")
	}
	s := &SMTPSender{scheme: u.Scheme, host: u.Hostname()}
	var defaultPort int
	switch u.Scheme {
	case "smtp":
		defaultPort = 587
	case "smtps":
		defaultPort = 465
	case "smtp+insecure":
		defaultPort = 25
	default:
		return nil, fmt.Errorf("mail: SMTP URL %s: scheme must be smtp (STARTTLS), smtps (TLS) or smtp+insecure (no TLS)", u.Redacted())
	}
	if s.host == "" {
		return nil, fmt.Errorf("mail: SMTP URL %s has no host", u.Redacted())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("mail: SMTP URL %s: unexpected path or query; want scheme://[user:password@]host[:port]", u.Redacted())
	}
	s.port = defaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("mail: SMTP URL %s: bad port", u.Redacted())
		}
		s.port = n
	}
	if u.User != nil {
		s.auth = true
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
		if s.user == "" {
			return nil, fmt.Errorf("mail: SMTP URL %s: empty user name", u.Redacted())
		}
		if s.scheme == "smtp+insecure" && !isLoopbackName(s.host) {
			return nil, fmt.Errorf("mail: SMTP URL %s: a password over smtp+insecure:// is allowed only to localhost; use smtp:// (STARTTLS) or smtps://", u.Redacted())
		}
	}
	return s, nil
}

// isLoopbackName mirrors go-mail's rule for sending PLAIN credentials
// without TLS (smtp.isLocalhost).
func isLoopbackName(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// String describes the server, without the password.
func (s *SMTPSender) String() string {
	u := url.URL{Scheme: s.scheme, Host: net.JoinHostPort(s.host, strconv.Itoa(s.port))}
	if s.auth {
		u.User = url.User(s.user)
	}
	return u.String()
}

func (s *SMTPSender) tlsConf() *tls.Config {
	if s.tlsConfig != nil {
		c := s.tlsConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = s.host
		}
		return c
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}

// Send delivers m in a session of its own. The session ends when ctx does,
// and after at most a minute whatever the server does.
func (s *SMTPSender) Send(ctx context.Context, from string, m Message) error {
	msg, err := build(from, m, time.Now())
	if err != nil {
		return err
	}
	limit := s.sessionLimit
	if limit <= 0 {
		limit = smtpSessionLimit
	}
	deadline := time.Now().Add(limit)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	// Our own dialer, so that (1) every deadline go-mail sets on the
	// connection is clamped to the session deadline, and (2) cancelling
	// ctx closes the connection at once instead of waiting for a timeout.
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		var c net.Conn = &deadlineConn{Conn: raw, limit: deadline}
		if err := c.SetDeadline(deadline); err != nil {
			raw.Close()
			return nil, err
		}
		if s.scheme == "smtps" {
			tc := tls.Client(c, s.tlsConf())
			if err := tc.HandshakeContext(dctx); err != nil {
				raw.Close()
				return nil, err
			}
			c = tc // a *tls.Conn, so go-mail knows the session is encrypted
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		if ctx.Err() != nil {
			c.Close()
			return nil, ctx.Err()
		}
		return c, nil
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			conn.Close()
		}
	})
	defer stop()

	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(smtpTimeout),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(s.tlsConf()),
	}
	switch s.scheme {
	case "smtp":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "smtps":
		// The dialer above does the TLS handshake; WithSSL keeps go-mail
		// from trying STARTTLS on top.
		opts = append(opts, gomail.WithSSL())
	case "smtp+insecure":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.auth {
		// PLAIN needs TLS, or a server on localhost (NewSMTPSender checked).
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(s.user), gomail.WithPassword(s.password))
	}
	client, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s, err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("smtp %s: %w (%w)", s, ctx.Err(), err)
		}
		return fmt.Errorf("smtp %s: %w", s, err)
	}
	return nil
}

// deadlineConn never lets a deadline be later than limit (nor be cleared).
type deadlineConn struct {
	net.Conn
	limit time.Time
}

func (c *deadlineConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	return c.Conn.SetDeadline(c.clamp(t))
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}
