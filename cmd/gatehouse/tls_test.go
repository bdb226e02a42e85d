package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCertReloaderKeepsTheOldPairOnFailure: a reload that finds a
// half-written certificate, or a key that is not the certificate's, is
// reported and changes nothing; a good pair is then taken.
func TestCertReloaderKeepsTheOldPairOnFailure(t *testing.T) {
	dir := t.TempDir()
	ca := newE2ECA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 7, certFile, keyFile)
	c, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		cert, err := c.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.Int64()
	}

	good, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.reload(); err == nil {
		t.Error("reload of a half-written certificate: no error")
	}
	if got := serial(); got != 7 {
		t.Errorf("after a failed reload the server offers serial %d, want the old 7", got)
	}

	// A new certificate whose key was not written yet: mismatched pair.
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	ca.issue(t, 8, certFile, filepath.Join(other, "key.pem"))
	if _, err := c.reload(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("reload of a certificate with another's key: %v, want a mismatch error", err)
	}
	if got := serial(); got != 7 {
		t.Errorf("after a mismatched pair the server offers serial %d, want the old 7", got)
	}

	ca.issue(t, 9, certFile, keyFile)
	if leaf, err := c.reload(); err != nil || leaf.SerialNumber.Int64() != 9 || serial() != 9 {
		t.Errorf("reload of a good pair: %v; serving %d, want 9", err, serial())
	}

	if _, err := newCertReloader(filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Error("newCertReloader with a missing certificate: no error, want serve to refuse to start")
	}
}

// TestServerErrorLog: a client's failed TLS handshake is logged at debug,
// anything else net/http reports at warn.
func TestServerErrorLog(t *testing.T) {
	var b strings.Builder
	l := serverErrorLog(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Print("http: TLS handshake error from 127.0.0.1:5000: remote error: tls: unknown certificate authority")
	l.Print("http: Accept error: too many open files; retrying in 5ms")
	out := b.String()
	if !strings.Contains(out, `level=DEBUG msg="http: TLS handshake error`) || !strings.Contains(out, `level=WARN msg="http: Accept error`) {
		t.Errorf("log:\n%s\nwant the handshake error at DEBUG and the accept error at WARN", out)
	}
}
