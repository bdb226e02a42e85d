package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On SIGTERM (here: the context serve runs under ends), an upload whose
// body is still arriving when --shutdown-grace runs out is answered
// "503 The server is shutting down …" before its connection closes, not
// cut off, and nothing of it is stored.
func TestE2EShutdownRefusesUploadStillArriving(t *testing.T) {
	dataDir := t.TempDir()
	s := &e2eServer{dataDir: dataDir, dbURL: "sqlite:" + filepath.Join(dataDir, "gatehouse.db"), log: newE2ELog()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--database-url", s.dbURL,
			"--shutdown-grace", "200ms"}, e2eNoEnv, strings.NewReader(""), io.Discard, s.log)
	}()
	select {
	case u := <-s.log.ready:
		s.URL = strings.TrimRight(u, "/")
	case err := <-done:
		t.Fatalf("server exited before it was ready: %v\n%s", err, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server not ready after 60s:\n%s", s.log.String())
	}
	s.createUser(t, "alice")
	tok := s.createToken(t, "alice", "shutdown")

	// Half an upload: the headers and the start of the body.
	data := e2eWheel(t, "slow-upload", "1.0", e2eMetadata("slow-upload", "1.0"))
	body, ct, err := e2eWheelForm("slow-upload", "1.0", e2eWheelName("slow-upload", "1.0"), data).encode()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.URL)
	conn, err := net.Dial("tcp", strings.Replace(u.Host, "localhost", "127.0.0.1", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /legacy/ HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nAuthorization: Basic %s\r\n\r\n",
		u.Host, ct, len(body), base64.StdEncoding.EncodeToString([]byte("__token__:"+tok)))
	conn.Write(body[:len(body)/2])
	// Another upload, start to end, while this one waits: the server is
	// serving both by the time the shutdown begins. (Whether this one's
	// handler has started reading by then does not matter: it is refused
	// either way once the grace is over.)
	if r := s.upload(t, tok, e2eWheelForm("other", "1.0", e2eWheelName("other", "1.0"), e2eWheel(t, "other", "1.0", e2eMetadata("other", "1.0")))); r.code != 200 {
		t.Fatalf("another upload: %s", r.status)
	}

	cancel() // SIGTERM
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("the upload in flight got no answer when the grace ran out: %v", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 503 The server is shutting down") {
		t.Errorf("the upload in flight: got %q, want 503 The server is shutting down …", strings.TrimSpace(status))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after the grace")
	}
	st := s.snapshot(t)
	for _, f := range st.Files {
		if strings.HasPrefix(f, "slow_upload") {
			t.Errorf("the refused upload was stored: %v", st.Files)
		}
	}
}
