package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestUpstreamEarlyVersions: under --upstream-min-age an upstream file
// younger than the cooldown is not listed, until an administrator allows
// its version early on /admin/upstream/ (matched as PEP 440 versions, so
// 2.0.0 allows 2.0); removing it hides the files again. Bad input is a 400
// next to its field and changes nothing; both changes are in the
// administrator's history.
func TestUpstreamEarlyVersions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		young := t0.Add(-time.Hour).Format(time.RFC3339)
		sha := func(c byte) string { return strings.Repeat(string(c), 64) }
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/simple/fresh/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
			fmt.Fprintf(w, `{"meta":{"api-version":"1.1"},"name":"fresh","versions":["1.0","2.0"],"files":[`+
				`{"filename":"fresh-1.0-py3-none-any.whl","url":"/f/1","hashes":{"sha256":%q},"upload-time":"2026-01-01T00:00:00Z"},`+
				`{"filename":"fresh-2.0-py3-none-any.whl","url":"/f/2","hashes":{"sha256":%q},"upload-time":%q},`+
				`{"filename":"fresh-2.0.tar.gz","url":"/f/3","hashes":{"sha256":%q}}]}`, sha('a'), sha('b'), young, sha('c'))
		}))
		defer up.Close()
		f := newFixtureWith(t, d, fixtureConfig{upstreams: []string{up.URL + "/simple/"}, upstreamMinAge: 72 * time.Hour})
		listed := func() string {
			t.Helper()
			var page struct {
				Files []struct{ Filename string } `json:"files"`
			}
			r := f.getOK(t, "/simple/fresh/", "Accept", "application/vnd.pypi.simple.v1+json")
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range page.Files {
				names = append(names, f.Filename)
			}
			return strings.Join(names, " ")
		}
		if got := listed(); got != "fresh-1.0-py3-none-any.whl" {
			t.Fatalf("under the cooldown: %q, want only the old file", got)
		}

		root := addUser(t, d, "root")
		makeAdmin(t, d, root)
		admin := f.projectBrowser(t, root, true)
		page := pageText(t, admin.get(t, "/admin/upstream/"))
		for _, want := range []string{"younger than 3 days", "No version is allowed early."} {
			if !strings.Contains(page, want) {
				t.Errorf("the admin page lacks %q:\n%s", want, page)
			}
		}
		before := dbState(t, d)
		for _, bad := range []struct{ project, version, field, says string }{
			{"", "2.0", "project", `"" is not a project name.`},
			{"not a name!", "2.0", "project", `"not a name!" is not a project name.`},
			{"fresh", "two", "version", `"two" is not a version (PEP 440).`},
		} {
			r := admin.post(t, "/admin/upstream/early/", url.Values{"project": {bad.project}, "version": {bad.version}})
			if r.code != http.StatusBadRequest {
				t.Errorf("%q %q: %d, want 400", bad.project, bad.version, r.code)
				continue
			}
			if msg, marked := fieldError(t, r.body, bad.field); !strings.Contains(msg, bad.says) || !marked {
				t.Errorf("%q %q: %s error %q (marked %v), want %q", bad.project, bad.version, bad.field, msg, marked, bad.says)
			}
		}
		if r := admin.post(t, "/admin/upstream/early/remove/", url.Values{"project": {"fresh"}, "version": {"2.0"}}); r.code != http.StatusNotFound {
			t.Errorf("removing a version not allowed: %d, want 404", r.code)
		}
		if dbState(t, d) != before {
			t.Error("refused early-version forms changed the database")
		}

		admin.postOK(t, "/admin/upstream/early/", url.Values{"project": {"Fresh"}, "version": {"2.0.0"}}, "/admin/upstream/",
			"fresh 2 is allowed before its cooldown")
		if got := listed(); got != "fresh-1.0-py3-none-any.whl fresh-2.0-py3-none-any.whl fresh-2.0.tar.gz" {
			t.Errorf("allowed early: %q, want every file (the sdist has no upload-time)", got)
		}
		if r := admin.post(t, "/admin/upstream/early/", url.Values{"project": {"fresh"}, "version": {"2.0"}}); r.code != http.StatusConflict {
			t.Errorf("allowing it twice: %d, want 409", r.code)
		}
		if page := pageText(t, admin.get(t, "/admin/upstream/")); !strings.Contains(page, "fresh2root") {
			t.Errorf("the admin page does not list the early version:\n%s", page)
		}
		admin.postOK(t, "/admin/upstream/early/remove/", url.Values{"project": {"fresh"}, "version": {"2"}}, "/admin/upstream/",
			"fresh 2 is no longer allowed before its cooldown.")
		if got := listed(); got != "fresh-1.0-py3-none-any.whl" {
			t.Errorf("removed: %q, want only the old file again", got)
		}

		rows, err := d.Query(`SELECT tag, user_id FROM events WHERE tag LIKE 'admin:upstream:%' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var tag string
			var user int64
			if err := rows.Scan(&tag, &user); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprint(tag, " ", user == root))
		}
		rows.Close()
		if want := "admin:upstream:early_version:allowed true admin:upstream:early_version:removed true"; strings.Join(got, " ") != want {
			t.Errorf("events %q, want %q", got, want)
		}
		history := pageText(t, admin.get(t, "/manage/account/history/"))
		for _, want := range []string{"Upstream fresh 2 allowed before its cooldown by administrator root",
			"Upstream fresh 2 no longer allowed before its cooldown, by administrator root"} {
			if !strings.Contains(history, want) {
				t.Errorf("the administrator's history lacks %q:\n%s", want, history)
			}
		}
	})
}
