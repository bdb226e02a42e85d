package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestProjectOrigin: a local project is never merged with the upstream's
// page of its name unless an owner says so; "both" merges (local files
// first, PEP 708 tracks), "upstream" serves the upstream's, and each change
// is audited; maintainers and bad values change nothing.
func TestProjectOrigin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var asked atomic.Int64
		const upSHA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/simple/shared/" {
				http.NotFound(w, r)
				return
			}
			asked.Add(1)
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
			fmt.Fprintf(w, `{"meta":{"api-version":"1.1"},"name":"shared","versions":["9.0"],"files":[{"filename":"shared-9.0-py3-none-any.whl","url":"/f/shared-9.0-py3-none-any.whl","hashes":{"sha256":%q},"upload-time":"2026-01-01T00:00:00Z"}]}`, upSHA)
		}))
		defer up.Close()
		f := newFixtureWith(t, d, fixtureConfig{upstreams: []string{up.URL + "/simple/"}})
		f.mustUpload(t, wheel(t, meta{Name: "shared", Version: "1.0"}))
		bob := addUser(t, d, "bob")
		addRole(t, d, "shared", bob, "Maintainer")
		files := func() (names []string, tracks []any) {
			t.Helper()
			r := f.getOK(t, "/simple/shared/", "Accept", "application/vnd.pypi.simple.v1+json")
			var page struct {
				Tracks []any `json:"tracks"` // PEP 708: beside "files", not in "meta"
				Files  []struct {
					Filename, URL string
				} `json:"files"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			for _, f := range page.Files {
				names = append(names, f.Filename)
			}
			return names, page.Tracks
		}
		if names, _ := files(); strings.Join(names, " ") != "shared-1.0-py3-none-any.whl" || asked.Load() != 0 {
			t.Fatalf("local only: files %q, upstream asked %d times", names, asked.Load())
		}
		path := "/manage/project/shared/settings/origin/"
		before := dbState(t, d)
		if r := f.projectBrowser(t, bob, true).post(t, path, url.Values{"origin": {"both"}}); r.code != http.StatusForbidden {
			t.Errorf("a maintainer set the origin: %d", r.code)
		}
		alice := f.projectBrowser(t, f.alice, true)
		if r := alice.post(t, path, url.Values{"origin": {"everywhere"}}); r.code != http.StatusBadRequest {
			t.Errorf("a bad origin: %d", r.code)
		}
		if dbState(t, d) != before {
			t.Error("refused origin forms changed the database")
		}
		alice.postOK(t, path, url.Values{"origin": {"both"}}, "/manage/project/shared/settings/", "Installers now find shared from this index and upstream.")
		names, tracks := files()
		if strings.Join(names, " ") != "shared-1.0-py3-none-any.whl shared-9.0-py3-none-any.whl" || len(tracks) != 1 || tracks[0] != up.URL+"/simple/shared/" {
			t.Errorf("both: files %q, tracks %v", names, tracks)
		}
		if r := f.getOK(t, "/simple/shared/"); !strings.Contains(string(r.body), `<meta name="pypi:tracks" content="`+up.URL+`/simple/shared/">`) {
			t.Errorf("the HTML page lacks pypi:tracks:\n%s", r.body)
		}
		// The merged page carries the owners' PEP 708 alternate locations too.
		alice.postOK(t, "/manage/project/shared/settings/alternate-locations/", url.Values{"alternate_locations": {"https://pypi.org/simple/shared/"}},
			"/manage/project/shared/settings/", "Saved the alternate locations of shared.")
		var merged struct {
			Alternates []string `json:"alternate-locations"`
		}
		if err := json.Unmarshal(f.getOK(t, "/simple/shared/", "Accept", "application/vnd.pypi.simple.v1+json").body, &merged); err != nil ||
			len(merged.Alternates) != 1 || merged.Alternates[0] != "https://pypi.org/simple/shared/" {
			t.Errorf("the merged page's alternate-locations: %q (%v)", merged.Alternates, err)
		}
		if r := f.getOK(t, "/simple/shared/"); !strings.Contains(string(r.body), `<meta name="pypi:alternate-locations" content="https://pypi.org/simple/shared/">`) {
			t.Errorf("the merged HTML page lacks pypi:alternate-locations:\n%s", r.body)
		}
		alice.postOK(t, path, url.Values{"origin": {"upstream"}}, "/manage/project/shared/settings/", "Installers now find shared from upstream only.")
		if names, _ := files(); strings.Join(names, " ") != "shared-9.0-py3-none-any.whl" {
			t.Errorf("upstream only: files %q", names)
		}
		alice.postOK(t, path, url.Values{"origin": {"local"}}, "/manage/project/shared/settings/", "Installers now find shared from this index only.")
		if names, _ := files(); strings.Join(names, " ") != "shared-1.0-py3-none-any.whl" {
			t.Errorf("back to local: files %q", names)
		}
		var n int
		if err := d.QueryRow(`SELECT count(*) FROM events WHERE tag = 'project:origin:change'`).Scan(&n); err != nil || n != 3 {
			t.Errorf("%d origin events (%v), want 3", n, err)
		}
		// The administrators' page counts what the cache holds.
		root := addUser(t, d, "root")
		makeAdmin(t, d, root)
		admin := f.projectBrowser(t, root, true)
		page := pageText(t, admin.get(t, "/admin/upstream/"))
		for _, want := range []string{"Pull-through cache", up.URL + "/simple/", "Projects cached1", "Files known1", "Files stored0"} {
			if !strings.Contains(page, want) {
				t.Errorf("the admin page lacks %q:\n%s", want, page)
			}
		}

		// An administrator changes the origin on the project's admin page,
		// recorded as an administrator's change; a bad value changes nothing.
		before = dbState(t, d)
		if r := admin.post(t, "/admin/projects/shared/origin/", url.Values{"origin": {"anywhere"}}); r.code != http.StatusBadRequest ||
			!strings.Contains(pageText(t, r), "Choose where installers find shared") {
			t.Errorf("an administrator's bad origin: %d\n%s", r.code, pageText(t, r))
		}
		if dbState(t, d) != before {
			t.Error("a refused administrator's origin form changed the database")
		}
		if page := pageText(t, admin.get(t, "/admin/projects/shared/")); !strings.Contains(page, "Where installers find shared") {
			t.Errorf("the admin project page has no origin form:\n%s", page)
		}
		admin.postOK(t, "/admin/projects/shared/origin/", url.Values{"origin": {"both"}}, "/admin/projects/shared/", "Installers now find shared from this index and upstream.")
		if names, _ := files(); strings.Join(names, " ") != "shared-1.0-py3-none-any.whl shared-9.0-py3-none-any.whl" {
			t.Errorf("both, set by an administrator: files %q", names)
		}
		if history := pageText(t, alice.get(t, "/manage/project/shared/history/")); !strings.Contains(history,
			"Installers now find the project from this index and the upstream index by administrator root") {
			t.Errorf("the project's history lacks the administrator's change:\n%s", history)
		}
	})
}
