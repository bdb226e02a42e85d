package web

// Logins isolated from the index: with every password-hash worker taken,
// a login is answered at once with 429 and Retry-After, the same for any
// username, and counted; the Simple API and downloads never touch the
// hasher, so they are served as usual.

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// heldPool is a one-worker hash pool the test can fill with a job that
// blocks until released, and whose wait the test ends itself: waiting
// receives the wait each time a caller starts one, fire ends it.
type heldPool struct {
	*workpool.Pool
	waiting chan time.Duration
	fire    chan time.Time
	release chan struct{}
	held    chan error
}

func newHeldPool(wait time.Duration) *heldPool {
	hp := &heldPool{waiting: make(chan time.Duration, 16), fire: make(chan time.Time)}
	hp.Pool = workpool.New(workpool.Options{CPUs: 1, Wait: wait, After: func(d time.Duration) <-chan time.Time {
		hp.waiting <- d
		return hp.fire
	}})
	return hp
}

// hold takes the worker and keeps it until free.
func (hp *heldPool) hold() {
	started := make(chan struct{})
	hp.release, hp.held = make(chan struct{}), make(chan error, 1)
	go func() { hp.held <- hp.Do(context.Background(), func() { close(started); <-hp.release }) }()
	<-started
}

func (hp *heldPool) free(t *testing.T) {
	t.Helper()
	close(hp.release)
	if err := <-hp.held; err != nil {
		t.Fatal(err)
	}
}

// refused sends a request while the worker is held, waits until the
// request is waiting for the hasher, ends the wait, and returns the answer.
func (hp *heldPool) refused(t *testing.T, send func() response) response {
	t.Helper()
	answer := make(chan response, 1)
	go func() { answer <- send() }()
	select {
	case <-hp.waiting:
		hp.fire <- time.Time{}
	case r := <-answer:
		t.Fatalf("answered %d without waiting for the hasher: %.300s", r.code, r.body)
	}
	return <-answer
}

// untouched sends a request while the worker is held and fails if the
// request waits for the hasher at all.
func (hp *heldPool) untouched(t *testing.T, what string, send func() response) response {
	t.Helper()
	answer := make(chan response, 1)
	go func() { answer <- send() }()
	select {
	case r := <-answer:
		return r
	case <-hp.waiting:
		hp.fire <- time.Time{}
		t.Fatalf("%s waited for the password hasher", what)
		return response{}
	}
}

func (in *instance) postLogin(t *testing.T, username, password string) response {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}, "next": {"/manage/account/"}}
	return in.postPage(t, "/account/login/", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

func TestLoginWhileHasherBusy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		hp := newHeldPool(time.Second)
		f := newFixtureWith(t, d, fixtureConfig{hashPool: hp.Pool})
		const pw = "copper-meadow-lantern-93"
		if _, err := f.accounts.Create(context.Background(), account.NewUser{Username: "carol", Password: pw}); err != nil {
			t.Fatal(err)
		}
		w := wheel(t, meta{Name: "demo", Version: "1.0"})
		f.mustUpload(t, w)
		file := f.fileURL(w)
		ran := hp.Stats().Ran

		hp.hold()
		const msg = "Too many sign-ins are in progress; try again in 1 second."
		real := hp.refused(t, func() response { return f.postLogin(t, "carol", pw) })
		unknown := hp.refused(t, func() response { return f.postLogin(t, "nobody", pw) })
		for name, r := range map[string]response{"carol": real, "nobody": unknown} {
			if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
				t.Errorf("%s: got %d with Retry-After %q, want 429 with 1", name, r.code, r.header.Get("Retry-After"))
			}
			if got := text(parseHTML(t, r.body)); !strings.Contains(got, msg) {
				t.Errorf("%s: the page says %q, want %q", name, got, msg)
			}
			checkPageHeaders(t, r)
		}
		// The same answer for both, but for the name typed back into the form.
		if a, b := bytes.ReplaceAll(real.body, []byte("carol"), []byte("NAME")), bytes.ReplaceAll(unknown.body, []byte("nobody"), []byte("NAME")); !bytes.Equal(a, b) {
			t.Errorf("a real and an unknown name get different pages:\n%s\n---\n%s", a, b)
		}
		if a, b := headerKeys(real.header), headerKeys(unknown.header); a != b {
			t.Errorf("headers differ:\n%s\n---\n%s", a, b)
		}
		// Both counted against the address's login limit (the test
		// client's address, 127.0.0.1).
		var hits int
		if err := d.QueryRow(`SELECT COUNT(*) FROM throttle_hits WHERE key = 'ip.login:127.0.0.1'`).Scan(&hits); err != nil {
			t.Fatal(err)
		}
		if hits != 2 {
			t.Errorf("%d hits on the address's login limit, want 2 (one per refused login)", hits)
		}

		// The index, its JSON, the root and the file download: served as
		// usual, without a look at the hasher.
		for _, c := range []struct{ what, path, accept string }{
			{"the project page", "/simple/demo/", ""},
			{"the project page as JSON", "/simple/demo/", "application/vnd.pypi.simple.v1+json"},
			{"the root index", "/simple/", ""},
			{"the file download", file, ""},
		} {
			r := hp.untouched(t, c.what, func() response { return f.get(t, c.path, "Accept", c.accept) })
			if r.code != http.StatusOK {
				t.Errorf("%s: got %d while the hasher was full, want 200", c.what, r.code)
			}
		}
		if got := hp.Stats().Ran; got != ran+1 {
			t.Errorf("%d jobs ran on the hasher, want only the one holding it", got-ran)
		}

		hp.free(t)
		if r := f.postLogin(t, "carol", pw); r.code != http.StatusSeeOther {
			t.Errorf("with the hasher free again: got %d, want 303; %.300s", r.code, r.body)
		}
	})
}

// headerKeys lists a response's headers with their values, but only the
// names of those that differ from one request to the next.
func headerKeys(h http.Header) string {
	var out []string
	for k := range h {
		switch k {
		case "Date", "Set-Cookie", "X-Request-Id": // differ on every answer
			out = append(out, k)
		default:
			out = append(out, k+"="+h.Get(k))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
