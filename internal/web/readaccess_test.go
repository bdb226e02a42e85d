package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// TestReadAccess: with --read-access authenticated, every read needs a
// token or a signed-in browser; tools without one get a 401 Basic
// challenge; read tokens read and never upload; a token limited to one
// project gets, for any other project, exactly the answer of a project that
// does not exist; authenticated answers are not for shared caches.
func TestReadAccess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clock := testclock.New(t0)
		f := newFixtureWith(t, d, fixtureConfig{readAccess: ReadAuthenticated, clock: clock})
		f.mustUpload(t, wheel(t, meta{Name: "secret-a", Version: "1.0"}))
		f.mustUpload(t, wheel(t, meta{Name: "secret-b", Version: "1.0"}))
		ctx := context.Background()
		basic := func(tok string) []string { return []string{"Authorization", basicToken(tok)} }
		fileOf := func(project string, auth []string) string {
			t.Helper()
			r := f.getOK(t, "/simple/"+project+"/", append([]string{"Accept", "application/vnd.pypi.simple.v1+json"}, auth...)...)
			var page struct {
				Files []struct{ URL string } `json:"files"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil || len(page.Files) != 1 {
				t.Fatalf("files of %s: %v %s", project, err, r.body)
			}
			return page.Files[0].URL
		}
		fileA := fileOf("secret-a", basic(f.token))
		fileB := fileOf("secret-b", basic(f.token))

		// Nobody: 401 with the challenge, on every read route; nothing of
		// the index in the answer.
		for _, p := range []string{"/simple/", "/simple/secret-a/", "/simple/secret-a", "/pypi/secret-a/json", "/pypi/secret-a/1.0/json", fileA, fileA + ".metadata"} {
			r := f.get(t, p)
			if r.code != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Basic realm="Gatehouse"` ||
				bytes.Contains(r.body, []byte("secret")) {
				t.Errorf("GET %s without credentials: %d %q %q", p, r.code, r.header.Get("WWW-Authenticate"), r.body)
			}
		}
		// The browse pages send browsers to log in; logging in stays open.
		for _, p := range []string{"/", "/project/secret-a/"} {
			if r := f.get(t, p); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/account/login/?next=") {
				t.Errorf("GET %s without a session: %d to %q", p, r.code, r.header.Get("Location"))
			}
		}
		for _, p := range []string{"/account/login/", "/healthz", "/help/"} {
			if r := f.get(t, p); r.code != http.StatusOK {
				t.Errorf("GET %s: %d, want it open", p, r.code)
			}
		}

		// A wrong token, a deleted one, an expired one: the same 401.
		readTok, _, err := f.tokens.CreateReadOnly(ctx, f.alice, "ci reads", nil, nil, token.Origin{CommandLine: true})
		if err != nil {
			t.Fatal(err)
		}
		soon := clock.Now().Add(time.Hour)
		expiring, _, err := f.tokens.CreateReadOnly(ctx, f.alice, "short", nil, &soon, token.Origin{CommandLine: true})
		if err != nil {
			t.Fatal(err)
		}
		want401 := f.get(t, "/simple/secret-a/").body
		for name, tok := range map[string]string{"made up": "pypi-AgEIcHlwaS5vcmcCJGFhYWFhYWFhLWJiYmItY2NjYy1kZGRkLWVlZWVlZWVlZWVlZQAABiBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "garbage": "x"} {
			if r := f.get(t, "/simple/secret-a/", basic(tok)...); r.code != http.StatusUnauthorized || !bytes.Equal(r.body, want401) {
				t.Errorf("%s token: %d %q", name, r.code, r.body)
			}
		}
		f.getOK(t, "/simple/secret-a/", basic(expiring)...)
		clock.Advance(2 * time.Hour)
		if r := f.get(t, "/simple/secret-a/", basic(expiring)...); r.code != http.StatusUnauthorized || !bytes.Equal(r.body, want401) {
			t.Errorf("expired token: %d %q", r.code, r.body)
		}

		// Upload tokens and read tokens read everything; answers are private.
		for name, tok := range map[string]string{"upload": f.token, "read": readTok} {
			for _, p := range []string{"/simple/", "/simple/secret-b/", "/pypi/secret-b/json", fileB} {
				r := f.getOK(t, p, basic(tok)...)
				if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "private") || strings.Contains(cc, "public") {
					t.Errorf("%s token, GET %s: Cache-Control %q, want private", name, p, cc)
				}
			}
		}
		// A read token never uploads.
		w := wheel(t, meta{Name: "secret-a", Version: "2.0"})
		before := dbState(t, d)
		if r := f.uploadAs(t, readTok, w.form(), w); r.code != http.StatusForbidden || !strings.Contains(r.reason, "read-only") {
			t.Errorf("upload with a read token: %s", r)
		}
		if dbState(t, d) != before {
			t.Error("the refused upload changed the database")
		}

		// A read token limited to secret-a: secret-b, which exists, answers
		// exactly as a project that does not.
		scoped, _, err := f.tokens.CreateReadOnly(ctx, f.alice, "a only", []string{"secret-a"}, nil, token.Origin{CommandLine: true})
		if err != nil {
			t.Fatal(err)
		}
		f.getOK(t, "/simple/secret-a/", basic(scoped)...)
		f.getOK(t, fileA, basic(scoped)...)
		f.getOK(t, "/pypi/secret-a/json", basic(scoped)...)
		missingFile := strings.Replace(fileB, fileB[strings.Index(fileB, "/packages/")+10:strings.Index(fileB, "/packages/")+16], "00/00/", 1)
		for _, c := range [][2]string{
			{"/simple/secret-b/", "/simple/no-such-project/"},
			{"/pypi/secret-b/json", "/pypi/no-such-project/json"},
			{fileB, missingFile},
		} {
			got, want := f.get(t, c[0], basic(scoped)...), f.get(t, c[1], basic(scoped)...)
			if got.code != http.StatusNotFound || want.code != http.StatusNotFound ||
				!bytes.Equal(got.body, bytes.ReplaceAll(want.body, []byte("no-such-project"), []byte("secret-b"))) {
				t.Errorf("scoped token, GET %s: %d %q; a missing project: %d %q", c[0], got.code, got.body, want.code, want.body)
			}
		}
		// A name to normalize is redirected whether or not the token may
		// read it, exactly as a missing one, and the redirect carries no
		// credentials.
		for _, tok := range []string{readTok, scoped} {
			got, want := f.get(t, "/simple/Secret_B/", basic(tok)...), f.get(t, "/simple/No_Such_Project/", basic(tok)...)
			loc := got.header.Get("Location")
			if got.code != http.StatusMovedPermanently || got.code != want.code ||
				strings.ReplaceAll(want.header.Get("Location"), "no-such-project", "secret-b") != loc ||
				strings.Contains(loc, tok) || strings.Contains(loc, "__token__") || strings.Contains(loc, "@") {
				t.Errorf("GET /simple/Secret_B/: %d to %q; a missing project: %d to %q", got.code, loc, want.code, want.header.Get("Location"))
			}
		}
		// The JSON API answers an unnormalized name itself: to the limited
		// token, as a missing project.
		if got, want := f.get(t, "/pypi/Secret.B/json", basic(scoped)...), f.get(t, "/pypi/No.Such.Project/json", basic(scoped)...); got.code != http.StatusNotFound ||
			!bytes.Equal(got.body, bytes.ReplaceAll(want.body, []byte("No.Such.Project"), []byte("Secret.B"))) {
			t.Errorf("scoped token, GET /pypi/Secret.B/json: %d %q; a missing project: %d %q", got.code, got.body, want.code, want.body)
		}
		if r := f.get(t, "/simple/", basic(scoped)...); r.code != http.StatusNotFound || bytes.Contains(r.body, []byte("secret")) {
			t.Errorf("scoped token, the root index: %d %q", r.code, r.body)
		}

		// A signed-in browser reads without a token.
		b := f.projectBrowser(t, f.alice, false)
		if r := b.get(t, "/simple/secret-a/"); r.code != http.StatusOK {
			t.Errorf("signed-in browser, /simple/secret-a/: %d", r.code)
		}
		if r := b.get(t, "/project/secret-a/"); r.code != http.StatusOK {
			t.Errorf("signed-in browser, the project page: %d", r.code)
		}
		// The token never shows in a file URL.
		if r := f.getOK(t, "/simple/secret-a/", basic(readTok)...); bytes.Contains(r.body, []byte(readTok)) || bytes.Contains(r.body, []byte("__token__")) {
			t.Errorf("the page carries the token: %s", r.body)
		}
		if strings.Contains(f.logs.String(), readTok) {
			t.Error("the log holds the read token")
		}
	})
}
