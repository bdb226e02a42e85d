package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	stdlog "log"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// certReloader serves the certificate that --tls-cert and --tls-key name
// and loads them again on SIGHUP (see serve). The TLS handshake asks for
// the certificate each time (tls.Config.GetCertificate), so a reload
// changes what new connections get without touching open ones: no
// connection is dropped, none is refused while the files are read. A pair
// that does not load (a half-copied file, a key that does not match) is
// reported and the certificate in use stays.
type certReloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// newCertReloader loads the pair once; serve refuses to start without it.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again and returns the new leaf certificate.
func (c *certReloader) reload() (*x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, err
	}
	// LoadX509KeyPair fills Leaf since Go 1.23.
	if pair.Leaf == nil {
		return nil, fmt.Errorf("%s holds no certificate", c.certFile)
	}
	c.cur.Store(&pair)
	return pair.Leaf, nil
}

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// tlsConfig is the server's TLS: TLS 1.2 at least (pip's and twine's
// Python accepts nothing older either), Go's default cipher suites, and
// HTTP/2 offered first.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// reloadOnSignal reloads the pair at every value on hup until done closes,
// and logs the outcome either way.
func (c *certReloader) reloadOnSignal(hup <-chan os.Signal, done <-chan struct{}, log *slog.Logger) {
	for {
		select {
		case <-done:
			return
		case <-hup:
			leaf, err := c.reload()
			if err != nil {
				log.Error("TLS certificate not reloaded; still serving the previous one", "cert", c.certFile, "key", c.keyFile, "err", err)
				continue
			}
			log.Info("TLS certificate reloaded", "cert", c.certFile, "subject", leaf.Subject.String(),
				"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "serial", leaf.SerialNumber.Text(16))
		}
	}
}

// serverErrorLog is net/http's error log for the index's listener: its
// messages at warn, except a client's failed TLS handshake (a client that
// does not trust the certificate, a scanner, a connection cut during the
// handshake), which says nothing about the server and goes at debug.
func serverErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(handshakeFilter{log}, "", 0)
}

type handshakeFilter struct{ log *slog.Logger }

func (f handshakeFilter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	f.log.Log(context.Background(), level, msg)
	return len(p), nil
}
