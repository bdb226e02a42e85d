package account

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// pwnedServer imitates the Pwned Passwords range API: it knows `breached`
// (count 42) and lists `padded` with count 0, as padding entries are.
type pwnedServer struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	padding  []string
	breached []string
}

func newPwnedServer(t *testing.T, breached, padded []string) *pwnedServer {
	p := &pwnedServer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.padding = append(p.padding, r.Header.Get("Add-Padding"))
		p.mu.Unlock()
		prefix := strings.TrimPrefix(r.URL.Path, "/range/")
		fmt.Fprintf(w, "0000000000000000000000000000000000A:3\r\n")
		for _, pw := range breached {
			if h := sha1hex(pw); h[:5] == prefix {
				fmt.Fprintf(w, "%s:42\r\n", h[5:])
			}
		}
		for _, pw := range padded {
			if h := sha1hex(pw); h[:5] == prefix {
				fmt.Fprintf(w, "%s:0\r\n", strings.ToLower(h[5:]))
			}
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func sha1hex(pw string) string {
	s := sha1.Sum([]byte(pw))
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func TestBreachChecker(t *testing.T) {
	const breached, padded, clean = "hunter2-but-longer", "padded-entry-pass", "never-seen-anywhere-91"
	srv := newPwnedServer(t, []string{breached}, []string{padded})
	b := NewBreachChecker(srv.URL+"/range/", nil)
	for _, tc := range []struct {
		pw   string
		want bool
	}{{breached, true}, {padded, false}, {clean, false}} {
		got, err := b.Check(context.Background(), tc.pw)
		if err != nil || got != tc.want {
			t.Errorf("Check(%q) = %v, %v; want %v", tc.pw, got, err, tc.want)
		}
	}
	// Only 5 hex characters of the hash leave the server.
	re := regexp.MustCompile(`^/range/[0-9A-F]{5}$`)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, p := range srv.paths {
		if !re.MatchString(p) {
			t.Errorf("request path %q carries more than a 5-character prefix", p)
		}
		if srv.padding[i] != "true" {
			t.Errorf("Add-Padding = %q", srv.padding[i])
		}
	}
	if len(srv.paths) != 3 {
		t.Errorf("%d requests, want 3", len(srv.paths))
	}

	// Failures are reported, never as "breached", and name no secret.
	srv.Close()
	got, err := b.Check(context.Background(), breached)
	if got || err == nil {
		t.Errorf("server down: %v, %v; want false and an error", got, err)
	}
	if err != nil && (strings.Contains(err.Error(), sha1hex(breached)[:5]) || strings.Contains(err.Error(), breached)) {
		t.Errorf("error names the password or its hash: %v", err)
	}
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusTooManyRequests) }))
	defer status.Close()
	if got, err := NewBreachChecker(status.URL+"/", nil).Check(context.Background(), breached); got || err == nil {
		t.Errorf("status 429: %v, %v; want false and an error", got, err)
	}
}

func TestRegisterBreachedPassword(t *testing.T) {
	const breached = "hunter2-but-longer"
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		srv := newPwnedServer(t, []string{breached}, nil)
		f := newFixture(t, d, func(o *Options) { o.Breach = NewBreachChecker(srv.URL+"/range/", srv.Client()) })
		r := Registration{Username: "alice", Email: "alice@example.com", Password: breached, Confirm: breached}
		_, err := f.s.Register(f.ctx, r, client("1"))
		wantErr(t, err, derrors.Invalid, "This password appears in a security breach or has been compromised and cannot be used. Choose a different password.")

		r.Password, r.Confirm = goodPassword, goodPassword
		u, err := f.s.Register(f.ctx, r, client("1"))
		must(t, err)
		err = f.s.ChangePassword(f.ctx, u.ID, goodPassword, breached, breached, client("1"))
		wantErr(t, err, derrors.Invalid, msgBreachedPassword)

		// The service is down: fail open, and say so in the log without
		// the password.
		srv.Close()
		must(t, f.s.ChangePassword(f.ctx, u.ID, goodPassword, breached, breached, client("1")))
		logs := f.logs.String()
		if !strings.Contains(logs, "breached-password check unavailable") {
			t.Errorf("no warning logged: %q", logs)
		}
		if strings.Contains(logs, breached) || strings.Contains(logs, sha1hex(breached)[:5]) {
			t.Errorf("log names the password or its hash: %q", logs)
		}
	})
}
