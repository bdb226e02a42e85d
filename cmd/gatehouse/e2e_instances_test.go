package main

// Several instances (issue 11 §2): two gatehouse processes on one
// PostgreSQL and one S3 server (versitygw), with one public base URL and no
// sticky sessions. The test alternates its requests between them.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/blob/s3test"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestE2ETwoInstances(t *testing.T) {
	vgw := s3test.Versitygw(t)
	dbURL := dbtest.PostgresURL(t)
	if dbURL == "" {
		e2eSkipOrFail(t, "no PostgreSQL (GATEHOUSE_TEST_POSTGRES_URL)")
	}
	bucket := vgw.NewBucket(t)
	mb := acctStartSMTP(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	secretFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The same settings for both, as a deployment gives them.
	opts := acctOpts{dbURL: dbURL, mail: mb, httpsBase: true, extra: []string{
		"--secret-key-file", secretFile,
		"--storage-url", "s3://" + bucket + "/index", "--storage-endpoint", vgw.Endpoint, "--storage-region", "us-east-1",
		"--storage-path-style", "on", "--storage-access-key", vgw.AccessKey, "--storage-secret-key", vgw.SecretKey,
	}}
	a := acctStart(t, "postgres", opts)
	b := acctStart(t, "postgres", opts)
	a.secrets.add("S3 secret key", vgw.SecretKey)
	b.secrets.add("S3 secret key", vgw.SecretKey)
	// Both are the one public URL; the test's load balancer is which
	// listener it sends each request to.
	if a.base != b.base {
		t.Fatalf("instances at %s and %s, want one base URL", a.base, b.base)
	}
	on := func(br *acctBrowser, env *acctEnv) *acctBrowser { c := *br; c.env = env; return &c }
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		full := append(args, "--data-dir", a.dataDir, "--database-url", dbURL, "--secret-key-file", secretFile)
		if err := run(context.Background(), full, e2eNoEnv, strings.NewReader(""), &out, &errb); err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}

	t.Run("a login on A is a session on B, and its email is sent once", func(t *testing.T) {
		onA := a.browser(acctFirefox)
		onA.mustRegister(t, "carol", "carol-long-password-1")
		onB := on(onA, b)
		if !onB.signedIn(t) {
			t.Fatal("signed in on A, not signed in on B")
		}
		// The verification email, queued by A, is sent by one of the two
		// workers, once; its link works on B.
		a.waitOutboxSent(t)
		onB.verify(t, "carol@example.com")
		if n := len(mailTo(mb, "carol@example.com")); n != 1 {
			t.Fatalf("carol got %d emails, want the one verification email", n)
		}
	})

	t.Run("every outbox email is sent exactly once", func(t *testing.T) {
		const n = 30
		for i := range n {
			a.exec(t, `INSERT INTO outbox (template, to_addr, subject, text_body, created_at, next_attempt_at) VALUES ('test', $1, 'Two instances', 'hello', now(), 0)`,
				fmt.Sprintf("many%02d@example.com", i))
		}
		a.waitOutboxSent(t)
		for i := range n {
			addr := fmt.Sprintf("many%02d@example.com", i)
			if got := len(mailTo(mb, addr)); got != 1 {
				t.Fatalf("%s got %d emails from two workers, want 1", addr, got)
			}
		}
	})

	t.Run("rate limits count across both", func(t *testing.T) {
		attacker := a.browser(acctChrome)
		for i := range 10 {
			env := a
			if i%2 == 1 {
				env = b
			}
			acctWant(t, on(attacker, env).login(t, acctName("nosuchuser", i), "password-from-a-dump"), 400, msgInvalidLogin)
		}
		for _, env := range []*acctEnv{a, b} {
			acctWant(t, on(attacker, env).login(t, "nosuchuser10", "password-from-a-dump"), http.StatusTooManyRequests, msgTooManyLogins)
		}
	})

	t.Run("an upload through A is served by B; a token revoked on A is refused by B", func(t *testing.T) {
		cli("user", "create", "--username", "alice", "--email", "alice@example.com", "--email-verified", "--no-password")
		a.giveSecondFactor(t, "alice")
		out := cli("token", "create", "--user", "alice", "--description", "ci")
		tok := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
		a.secrets.add("alice's token", tok)
		b.secrets.add("alice's token", tok)
		whl := e2eWheel(t, "twoinst", "1.0", e2eMetadata("twoinst", "1.0"))
		a.mustUpload(t, tok, e2eWheelForm("twoinst", "1.0", e2eWheelName("twoinst", "1.0"), whl))
		if objs := vgw.Objects(t, bucket); len(objs) != 2 { // the wheel and its .metadata
			t.Fatalf("objects in the shared bucket after an upload through A: %q, want the wheel and its metadata", objs)
		}
		files, _ := b.simpleJSON(t, "twoinst")
		if len(files) != 1 {
			t.Fatalf("B lists %d files of the project uploaded through A, want 1", len(files))
		}
		u := files[0].URL
		if i := strings.Index(u, "/packages/"); i >= 0 {
			u = b.URL + u[i:]
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, whl) {
			t.Fatalf("B serves the file uploaded through A: %d, %d bytes; want 200 and the %d uploaded", resp.StatusCode, len(got), len(whl))
		}
		// Through B too, while the token lives.
		b.mustUpload(t, tok, e2eWheelForm("twoinst", "1.1", e2eWheelName("twoinst", "1.1"), e2eWheel(t, "twoinst", "1.1", e2eMetadata("twoinst", "1.1"))))

		cli("token", "delete", "--user", "alice", "--description", "ci")
		for _, env := range []*acctEnv{a, b} {
			r := env.upload(t, tok, e2eWheelForm("twoinst", "1.2", e2eWheelName("twoinst", "1.2"), e2eWheel(t, "twoinst", "1.2", e2eMetadata("twoinst", "1.2"))))
			if r.code != http.StatusForbidden && r.code != http.StatusUnauthorized {
				t.Fatalf("an upload with the deleted token: %s, want 401 or 403", r.status)
			}
		}
	})
}

// mailTo is every message the mailbox received for addr.
func mailTo(mb *acctMailbox, addr string) []*acctMail {
	var out []*acctMail
	for _, m := range mb.all() {
		if m.sentTo(addr) {
			out = append(out, m)
		}
	}
	return out
}
