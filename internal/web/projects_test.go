package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// projFix is Foo_Bar, owned by alice, with bob as a maintainer and carol
// a stranger:
//
//	1.0  sdist + wheel
//	2.0  wheel
type projFix struct {
	*fixture
	bob, carol           int64
	sdist10, wheel10, w2 *dist
}

func newProjFix(t *testing.T, d *db.DB, cfg fixtureConfig) *projFix {
	t.Helper()
	f := &projFix{fixture: newFixtureWith(t, d, cfg)}
	f.bob = addUser(t, d, "bob")
	f.carol = addUser(t, d, "carol")
	f.sdist10 = sdist(t, meta{Name: "Foo_Bar", Version: "1.0"})
	f.wheel10 = wheel(t, meta{Name: "Foo_Bar", Version: "1.0"})
	f.w2 = wheel(t, meta{Name: "Foo_Bar", Version: "2.0"})
	for _, d := range []*dist{f.sdist10, f.wheel10, f.w2} {
		f.mustUpload(t, d)
	}
	addRole(t, d, "foo-bar", f.bob, "Maintainer")
	return f
}

func TestYourProjects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		for _, c := range []struct {
			who  int64
			want string
		}{
			{f.alice, "Foo_Bar Owner 2"},
			{f.bob, "Foo_Bar Maintainer 2"},
		} {
			r := f.projectBrowser(t, c.who, false).get(t, "/manage/projects/")
			rows := findAll(parseHTML(t, r.body), byTag("tr"))
			if r.code != 200 || len(rows) != 2 || !strings.HasPrefix(text(rows[1]), c.want) {
				t.Errorf("user %d: got %d, rows %d, want one row %q…\n%.2000s", c.who, r.code, len(rows), c.want, r.body)
			}
		}
		r := f.projectBrowser(t, f.carol, false).get(t, "/manage/projects/")
		if r.code != 200 || !strings.Contains(pageText(t, r), "You have no projects yet.") {
			t.Errorf("a user without projects: got %d\n%.2000s", r.code, r.body)
		}
		// The management gate comes first.
		anon := &browser{in: f.instance}
		if r := anon.get(t, "/manage/projects/"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/account/login/") {
			t.Errorf("anonymous: got %d to %q, want a redirect to log in", r.code, r.header.Get("Location"))
		}
		if _, err := d.Exec(`DELETE FROM totp_secrets WHERE user_id = $1`, f.carol); err != nil {
			t.Fatal(err)
		}
		if r := f.projectBrowser(t, f.carol, true).get(t, "/manage/projects/"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/manage/account/two-factor/?next=") {
			t.Errorf("without a second factor: got %d to %q, want the two-factor page", r.code, r.header.Get("Location"))
		}
	})
}

// Who may see and do what on one project's pages.
func TestProjectPagesByRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		owner, maint, stranger := f.projectBrowser(t, f.alice, true), f.projectBrowser(t, f.bob, true), f.projectBrowser(t, f.carol, true)
		pages := []string{"/manage/project/foo-bar/settings/", "/manage/project/foo-bar/releases/",
			"/manage/project/foo-bar/release/1.0/", "/manage/project/foo-bar/history/"}
		for _, p := range pages {
			if r := owner.get(t, p); r.code != 200 {
				t.Errorf("owner GET %s: %d", p, r.code)
			}
			r := maint.get(t, p)
			if r.code != 200 {
				t.Errorf("maintainer GET %s: %d", p, r.code)
			}
			if forms := findAll(parseHTML(t, r.body), func(n *htmlNode) bool {
				return n.Data == "form" && attr(n, "method") == "post" && attr(n, "action") != "/account/logout/"
			}); len(forms) != 0 {
				t.Errorf("maintainer GET %s: the page offers %d forms, want none", p, len(forms))
			}
			if r := stranger.get(t, p); r.code != http.StatusForbidden || !strings.Contains(pageText(t, r), "You are not a collaborator on Foo_Bar.") {
				t.Errorf("stranger GET %s: got %d, want 403 with the reason", p, r.code)
			}
		}
		if r := owner.get(t, "/manage/project/no-such/settings/"); r.code != http.StatusNotFound {
			t.Errorf("an unknown project: got %d, want 404", r.code)
		}
		if r := owner.get(t, "/manage/project/Foo.Bar/"); r.code != http.StatusSeeOther || r.header.Get("Location") != "/manage/project/foo-bar/settings/" {
			t.Errorf("/manage/project/Foo.Bar/: got %d to %q", r.code, r.header.Get("Location"))
		}
		// A maintainer's POST is refused, whatever the form says.
		before := dbState(t, d)
		for _, p := range []string{"/manage/project/foo-bar/archive/", "/manage/project/foo-bar/delete/", "/manage/project/foo-bar/release/1.0/yank/",
			"/manage/project/foo-bar/release/1.0/delete/", "/manage/project/foo-bar/release/1.0/delete-file/"} {
			form := url.Values{"confirm_project_name": {"Foo_Bar"}, "confirm_yank_version": {"1.0"}, "confirm_delete_version": {"1.0"}}
			if r := maint.post(t, p, form); r.code != http.StatusForbidden || !strings.Contains(pageText(t, r), "Only an owner of Foo_Bar can do this.") {
				t.Errorf("maintainer POST %s: got %d, want 403", p, r.code)
			}
		}
		if after := dbState(t, d); after != before {
			t.Errorf("refused POSTs changed the database")
		}
		// Without a recent password the pages with destructive forms, and
		// every POST, ask for it first.
		stale := f.projectBrowser(t, f.alice, false)
		for _, p := range []string{"/manage/project/foo-bar/settings/", "/manage/project/foo-bar/release/1.0/"} {
			if r := stale.get(t, p); r.code != http.StatusSeeOther || r.header.Get("Location") != "/account/reauthenticate/?next="+url.QueryEscape(p) {
				t.Errorf("GET %s without sudo: got %d to %q", p, r.code, r.header.Get("Location"))
			}
		}
		if r := stale.post(t, "/manage/project/foo-bar/archive/", nil); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/account/reauthenticate/") {
			t.Errorf("POST archive without sudo: got %d to %q", r.code, r.header.Get("Location"))
		}
		if r := stale.get(t, "/manage/project/foo-bar/releases/"); r.code != 200 {
			t.Errorf("the releases list needs no sudo: got %d", r.code)
		}
		if after := dbState(t, d); after != before {
			t.Errorf("POSTs without sudo changed the database")
		}
	})
}

// simpleState is what the Simple API says of one file of foo-bar.
func simpleYanked(t *testing.T, f *projFix, filename string) (jsonYanked any, htmlYanked string, htmlHas bool) {
	t.Helper()
	doc := decodeJSON(t, f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON).body)
	for _, x := range doc["files"].([]any) {
		m := x.(map[string]any)
		if m["filename"] == filename {
			jsonYanked = m["yanked"]
		}
	}
	for _, a := range findAll(parseHTML(t, f.getOK(t, "/simple/foo-bar/").body), byTag("a")) {
		if text(a) == filename {
			htmlYanked, htmlHas = attrOK(a, "data-yanked")
		}
	}
	return
}

func TestYankShowsAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		owner := f.projectBrowser(t, f.alice, true)
		// Warm the page cache: the yank must not be served stale.
		if y, _, has := simpleYanked(t, f, f.wheel10.Filename); y != false || has {
			t.Fatalf("before: yanked %v, data-yanked present %v", y, has)
		}
		etag := f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON).header.Get("ETag")

		owner.postOK(t, "/manage/project/foo-bar/release/1.0/yank/", url.Values{"confirm_yank_version": {"1.0"}, "yanked_reason": {"broken on 3.13"}},
			"/manage/project/foo-bar/release/1.0/", "Yanked release 1.0")
		if y, h, has := simpleYanked(t, f, f.wheel10.Filename); y != "broken on 3.13" || h != "broken on 3.13" || !has {
			t.Errorf("after yank: JSON yanked %v, HTML data-yanked %q (%v)", y, h, has)
		}
		if y, _, has := simpleYanked(t, f, f.w2.Filename); y != false || has {
			t.Errorf("2.0 is yanked too: %v %v", y, has)
		}
		if r := f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON); r.header.Get("ETag") == etag {
			t.Errorf("the ETag did not change with the page")
		}
		var doc struct {
			Info struct {
				Version string `json:"version"`
			} `json:"info"`
			URLs []struct {
				Yanked       bool   `json:"yanked"`
				YankedReason string `json:"yanked_reason"`
			} `json:"urls"`
		}
		if err := jsonUnmarshal(f.getOK(t, "/pypi/foo-bar/1.0/json").body, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.URLs) != 2 || !doc.URLs[0].Yanked || doc.URLs[0].YankedReason != "broken on 3.13" {
			t.Errorf("JSON API of 1.0: %+v", doc.URLs)
		}
		page := owner.get(t, "/manage/project/foo-bar/release/1.0/")
		if !strings.Contains(pageText(t, page), "broken on 3.13") || len(findAll(parseHTML(t, page.body), func(n *htmlNode) bool { return attr(n, "name") == "confirm_unyank_version" })) != 1 {
			t.Errorf("the release page does not show the yank and the un-yank form:\n%.3000s", page.body)
		}
		want := []string{"alice@example.com: [Gatehouse Test] A release for Foo_Bar has been yanked.",
			"bob@example.com: [Gatehouse Test] A release for Foo_Bar has been yanked."}
		if got := outbox(t, d); !slices.Equal(got, want) {
			t.Errorf("emails: got %q, want %q", got, want)
		}

		owner.postOK(t, "/manage/project/foo-bar/release/1.0/unyank/", url.Values{"confirm_unyank_version": {"1.0"}},
			"/manage/project/foo-bar/release/1.0/", "Un-yanked release 1.0.")
		if y, _, has := simpleYanked(t, f, f.wheel10.Filename); y != false || has {
			t.Errorf("after un-yank: yanked %v, data-yanked present %v", y, has)
		}
		hist := pageText(t, owner.get(t, "/manage/project/foo-bar/history/"))
		for _, s := range []string{"Release 1.0 un-yanked by alice", "Release 1.0 yanked by alice: broken on 3.13",
			"File " + f.w2.Filename + " uploaded by alice", "Release 2.0 created by alice", "Project created by alice"} {
			if !strings.Contains(hist, s) {
				t.Errorf("the history lacks %q:\n%s", s, hist)
			}
		}
	})
}

func TestDeletedFilenameNeverAgain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		owner := f.projectBrowser(t, f.alice, true)
		page := owner.get(t, "/manage/project/foo-bar/release/1.0/")
		if !strings.Contains(pageText(t, page), "The filename can never be uploaded again") {
			t.Errorf("the release page does not say a deleted filename cannot come back")
		}
		var id string
		for _, n := range findAll(parseHTML(t, page.body), func(n *htmlNode) bool { return n.Data == "form" }) {
			if strings.Contains(text(n), f.wheel10.Filename) {
				for _, in := range findAll(n, byTag("input")) {
					if attr(in, "name") == "file_id" {
						id = attr(in, "value")
					}
				}
			}
		}
		if id == "" {
			t.Fatalf("no delete form for %s", f.wheel10.Filename)
		}
		owner.postOK(t, "/manage/project/foo-bar/release/1.0/delete-file/", url.Values{"file_id": {id}, "confirm_filename": {f.wheel10.Filename}},
			"/manage/project/foo-bar/release/1.0/", "Deleted the file "+f.wheel10.Filename+". Its filename can never be uploaded again.")
		if r := f.get(t, f.fileURL(f.wheel10)); r.code != http.StatusNotFound {
			t.Errorf("download of the deleted file: %d", r.code)
		}
		if _, _, has := simpleYanked(t, f, f.wheel10.Filename); has {
			t.Errorf("the Simple API still lists the deleted file")
		}
		res := f.upload(t, f.wheel10)
		checkUpload(t, "re-upload of the deleted file", res, 400,
			"This filename was previously used by a file that has since been deleted. Use a different version. See "+f.url+"/help/#file-name-reuse for more information.")
		// Nor may the same bytes come back under another name.
		renamed := *f.wheel10
		renamed.Filename = "foo_bar-1.0-py2.py3-none-any.whl"
		renamed.PyVersion = "py2.py3"
		res = f.upload(t, &renamed)
		checkUpload(t, "the deleted bytes under another name", res, 400,
			"This file was previously uploaded as '"+f.wheel10.Filename+"', which has since been deleted. Build a new version. See "+f.url+"/help/#file-name-reuse for more information.")

		// The whole release, then the project.
		owner.postOK(t, "/manage/project/foo-bar/release/1.0/delete/", url.Values{"confirm_delete_version": {"1.0"}},
			"/manage/project/foo-bar/releases/", "Deleted release 1.0 and its files.")
		checkUpload(t, "re-upload of the deleted release's sdist", f.upload(t, f.sdist10), 400,
			"This filename was previously used by a file that has since been deleted. Use a different version. See "+f.url+"/help/#file-name-reuse for more information.")
		owner.postOK(t, "/manage/project/foo-bar/delete/", url.Values{"confirm_project_name": {"Foo_Bar"}},
			"/manage/projects/", "Deleted the project Foo_Bar. Its filenames can never be uploaded again.")
		if r := f.get(t, "/simple/foo-bar/"); r.code != http.StatusNotFound {
			t.Errorf("Simple API of the deleted project: %d", r.code)
		}
		if strings.Contains(string(f.getOK(t, "/simple/").body), "foo-bar") {
			t.Errorf("the root index still lists the deleted project")
		}
		checkUpload(t, "re-upload into a re-created project", f.upload(t, f.w2), 400,
			"This filename was previously used by a file that has since been deleted. Use a different version. See "+f.url+"/help/#file-name-reuse for more information.")
		got := outbox(t, d)
		for _, want := range []string{"alice@example.com: [Gatehouse Test] File deleted for Foo_Bar 1.0", "bob@example.com: [Gatehouse Test] A release for Foo_Bar has been deleted.",
			"bob@example.com: [Gatehouse Test] The project Foo_Bar has been deleted."} {
			if !slices.Contains(got, want) {
				t.Errorf("emails %q lack %q", got, want)
			}
		}
	})
}

func TestArchivedProjectRefusesUploads(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		owner := f.projectBrowser(t, f.alice, true)
		before := f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON)
		if s := decodeJSON(t, before.body)["project-status"]; !jsonEqual(t, s, map[string]any{"status": "active"}) {
			t.Errorf("project-status before: %v", s)
		}
		if strings.Contains(string(f.getOK(t, "/simple/foo-bar/").body), "pypi:project-status") {
			t.Errorf("an active project's HTML page carries a status meta tag")
		}

		owner.postOK(t, "/manage/project/foo-bar/archive/", url.Values{}, "/manage/project/foo-bar/settings/", "Foo_Bar is archived")
		w3 := wheel(t, meta{Name: "Foo_Bar", Version: "3.0"})
		checkUpload(t, "upload to an archived project", f.upload(t, w3), 403,
			"Project 'Foo_Bar' is archived and accepts no uploads. An owner can unarchive it on its settings page. See "+f.url+"/help/#archived for more information.")

		after := f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON)
		doc := decodeJSON(t, after.body)
		if !jsonEqual(t, doc["project-status"], map[string]any{"status": "archived"}) || !jsonEqual(t, doc["meta"].(map[string]any)["api-version"], "1.4") {
			t.Errorf("JSON after archiving: project-status %v, meta %v", doc["project-status"], doc["meta"])
		}
		if after.header.Get("ETag") == before.header.Get("ETag") {
			t.Errorf("the ETag did not change")
		}
		if r := f.get(t, "/simple/foo-bar/", "Accept", mediaJSON, "If-None-Match", before.header.Get("ETag")); r.code != 200 {
			t.Errorf("revalidating with the old ETag: got %d, want 200 with the new page", r.code)
		}
		html := string(f.getOK(t, "/simple/foo-bar/").body)
		if !strings.Contains(html, `<meta name="pypi:repository-version" content="1.4">`+"\n"+`    <meta name="pypi:project-status" content="archived">`) {
			t.Errorf("HTML after archiving lacks the status meta tag:\n%s", html)
		}
		// Still installable: the files are listed and served.
		if files := doc["files"].([]any); len(files) != 3 {
			t.Errorf("files listed: %d, want 3", len(files))
		}
		f.getOK(t, f.fileURL(f.w2))
		if !strings.Contains(pageText(t, f.getOK(t, "/project/foo-bar/")), "This project has been archived.") {
			t.Errorf("the project page does not say it is archived")
		}
		if r := f.projectBrowser(t, f.alice, false).get(t, "/manage/projects/"); !strings.Contains(pageText(t, r), "Foo_Bar archived") {
			t.Errorf("Your projects does not mark it archived")
		}

		owner.postOK(t, "/manage/project/foo-bar/unarchive/", url.Values{}, "/manage/project/foo-bar/settings/", "Foo_Bar is no longer archived")
		f.mustUpload(t, w3)
		if got := outbox(t, d); len(got) != 0 {
			t.Errorf("archiving sent email: %q", got)
		}
	})
}

func TestQuarantineByAdministrator(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		root := addUser(t, d, "root")
		makeAdmin(t, d, root)
		admin, owner := f.projectBrowser(t, root, true), f.projectBrowser(t, f.alice, true)
		f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON) // cached
		f.getOK(t, "/simple/")
		if r := owner.get(t, "/admin/projects/foo-bar/"); r.code != http.StatusNotFound {
			t.Errorf("an owner on the admin page: %d, want 404", r.code)
		}
		if r := owner.post(t, "/admin/projects/foo-bar/quarantine/", url.Values{"reason": {"mine"}}); r.code != http.StatusNotFound {
			t.Errorf("an owner quarantining: %d, want 404", r.code)
		}
		if !strings.Contains(pageText(t, admin.get(t, "/admin/projects/?q=foo")), "Foo_Bar") {
			t.Errorf("the admin project search does not find Foo_Bar")
		}

		admin.postOK(t, "/admin/projects/foo-bar/quarantine/", url.Values{"reason": {"reported as malware"}}, "/admin/projects/foo-bar/", "Project quarantined")
		doc := decodeJSON(t, f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON).body)
		if !jsonEqual(t, doc["project-status"], map[string]any{"status": "quarantined"}) || len(doc["files"].([]any)) != 0 || len(doc["versions"].([]any)) != 0 {
			t.Errorf("JSON of a quarantined project: %v", doc)
		}
		html := f.getOK(t, "/simple/foo-bar/").body
		if !strings.Contains(string(html), `<meta name="pypi:project-status" content="quarantined">`) || len(findAll(parseHTML(t, html), byTag("a"))) != 0 {
			t.Errorf("HTML of a quarantined project:\n%s", html)
		}
		if strings.Contains(string(f.getOK(t, "/simple/").body), "foo-bar") {
			t.Errorf("the root index lists a quarantined project")
		}
		if r := f.get(t, f.fileURL(f.w2)); r.code != http.StatusNotFound {
			t.Errorf("download from a quarantined project: %d", r.code)
		}
		if r := f.get(t, "/pypi/foo-bar/json"); r.code != http.StatusNotFound {
			t.Errorf("JSON API of a quarantined project: %d", r.code)
		}
		page := pageText(t, f.getOK(t, "/project/foo-bar/"))
		if !strings.Contains(page, "This project has been quarantined.") || strings.Contains(page, f.w2.Filename) || strings.Contains(page, "pip install") {
			t.Errorf("the project page of a quarantined project:\n%s", page)
		}
		checkUpload(t, "upload to a quarantined project", f.upload(t, wheel(t, meta{Name: "Foo_Bar", Version: "3.0"})), 403,
			"Project 'Foo_Bar' is quarantined by the administrators and accepts no uploads. See "+f.url+"/help/#quarantined for more information.")
		want := []string{"alice@example.com: [Gatehouse Test] The project Foo_Bar has been quarantined.",
			"bob@example.com: [Gatehouse Test] The project Foo_Bar has been quarantined."}
		if got := outbox(t, d); !slices.Equal(got, want) {
			t.Errorf("emails: got %q, want %q", got, want)
		}

		// The owner sees it, and cannot change it.
		settings := owner.get(t, "/manage/project/foo-bar/settings/")
		if settings.code != 200 || !strings.Contains(pageText(t, settings), "Quarantined by the administrators") {
			t.Errorf("the owner's settings page: %d\n%.2000s", settings.code, settings.body)
		}
		before := dbState(t, d)
		r := owner.post(t, "/manage/project/foo-bar/release/1.0/yank/", url.Values{"confirm_yank_version": {"1.0"}})
		if r.code != http.StatusForbidden || !strings.Contains(pageText(t, r), "Foo_Bar is quarantined by the administrators") {
			t.Errorf("the owner yanking: %d\n%.2000s", r.code, r.body)
		}
		if dbState(t, d) != before {
			t.Errorf("a refused yank changed the database")
		}

		admin.postOK(t, "/admin/projects/foo-bar/unquarantine/", url.Values{}, "/admin/projects/foo-bar/", "Quarantine lifted")
		if files := decodeJSON(t, f.getOK(t, "/simple/foo-bar/", "Accept", mediaJSON).body)["files"].([]any); len(files) != 3 {
			t.Errorf("files after the quarantine: %d, want 3", len(files))
		}
		if !strings.Contains(string(f.getOK(t, "/simple/").body), "foo-bar") {
			t.Errorf("the root index does not list the project again")
		}
	})
}

func TestAdminLimitsAndReleaseAge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		root := addUser(t, d, "root")
		makeAdmin(t, d, root)
		admin := f.projectBrowser(t, root, true)
		admin.postOK(t, "/admin/projects/foo-bar/limits/", url.Values{"upload_limit": {"1"}, "total_size_limit": {""}, "release_age_days": {"1"}},
			"/admin/projects/foo-bar/", "Limits saved.")
		big := wheel(t, meta{Name: "Foo_Bar", Version: "3.0", Payload: randomText(2 << 20)})
		checkUpload(t, "a file over the project's limit", f.upload(t, big), 400,
			"File too large. Limit for project 'Foo_Bar' is 1 MB. See "+f.url+"/help/#file-size-limit for more information.")

		// Release 2.0 is a day old plus a minute: past the project's 1 day.
		f.clock.Advance(24*time.Hour + time.Minute)
		late := wheelTagged(t, meta{Name: "Foo_Bar", Version: "2.0"}, "py2.py3")
		checkUpload(t, "a file added to a release older than the project's policy", f.upload(t, late), 400,
			"Uploading new files to releases older than 1 day is not allowed.")
		// Back to the site's default: 14 days.
		admin = f.projectBrowser(t, root, true)
		admin.postOK(t, "/admin/projects/foo-bar/limits/", url.Values{"upload_limit": {"1"}, "release_age_days": {""}}, "/admin/projects/foo-bar/", "Limits saved.")
		f.mustUpload(t, late)
		f.clock.Advance(14 * 24 * time.Hour)
		checkUpload(t, "a file added to a release older than 14 days", f.upload(t, wheelTagged(t, meta{Name: "Foo_Bar", Version: "2.0"}, "py3.py2")), 400,
			"Uploading new files to releases older than 14 days is not allowed.")

		hist := pageText(t, f.projectBrowser(t, root, true).get(t, "/admin/projects/foo-bar/"))
		for _, s := range []string{"Largest file set to 1 MiB by administrator root", "Releases now take new files for 1 day, set by administrator root",
			"Releases take new files for the site's default number of days again, set by administrator root"} {
			if !strings.Contains(hist, s) {
				t.Errorf("the admin page's history lacks %q:\n%s", s, hist)
			}
		}
	})
}

func randomText(n int) string {
	var b strings.Builder
	x := uint32(2463534242)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		fmt.Fprintf(&b, "%08x", x)
	}
	return b.String()
}

// TestProjectFormsBadInput walks every project form with bad input: each is
// refused with a 4xx and a message next to the field it is about (or above
// the forms when it is about none), and nothing in the database changes.
func TestProjectFormsBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		root := addUser(t, d, "root")
		makeAdmin(t, d, root)
		owner, admin, stranger := f.projectBrowser(t, f.alice, true), f.projectBrowser(t, root, true), f.projectBrowser(t, f.carol, true)
		owner.postOK(t, "/manage/project/foo-bar/release/2.0/yank/", url.Values{"confirm_yank_version": {"2.0"}}, "/manage/project/foo-bar/release/2.0/", "Yanked release 2.0")
		var wheelID, otherID string
		d.QueryRow(`SELECT CAST(id AS TEXT) FROM files WHERE filename = $1`, f.wheel10.Filename).Scan(&wheelID)
		d.QueryRow(`SELECT CAST(id AS TEXT) FROM files WHERE filename = $1`, f.w2.Filename).Scan(&otherID)
		long := strings.Repeat("x", 501)

		for _, c := range []struct {
			name  string
			b     *browser
			path  string
			form  url.Values
			code  int
			field string // "" for a message above the forms
			want  string
		}{
			{"delete project, nothing typed", owner, "/manage/project/foo-bar/delete/", url.Values{}, 400, "confirm_project_name", "Type the project name Foo_Bar to confirm."},
			{"delete project, the normalized name", owner, "/manage/project/foo-bar/delete/", url.Values{"confirm_project_name": {"foo-bar"}}, 400, "confirm_project_name",
				`"foo-bar" is not the project name Foo_Bar. Type it exactly as shown to confirm.`},
			{"delete a project you don't own", stranger, "/manage/project/foo-bar/delete/", url.Values{"confirm_project_name": {"Foo_Bar"}}, 403, "", "Only an owner of Foo_Bar can do this."},
			{"delete a project that does not exist", owner, "/manage/project/nope/delete/", url.Values{"confirm_project_name": {"nope"}}, 404, "", `project "nope" not found`},
			{"unarchive an active project", owner, "/manage/project/foo-bar/unarchive/", url.Values{}, 409, "", "Foo_Bar is not archived."},
			{"yank, nothing typed", owner, "/manage/project/foo-bar/release/1.0/yank/", url.Values{"yanked_reason": {"broken"}}, 400, "confirm_yank_version", "Type the version 1.0 to confirm."},
			{"yank, another version typed", owner, "/manage/project/foo-bar/release/1.0/yank/", url.Values{"confirm_yank_version": {"2.0"}}, 400, "confirm_yank_version",
				`"2.0" is not the version 1.0. Type it exactly as shown to confirm.`},
			{"yank, a reason too long", owner, "/manage/project/foo-bar/release/1.0/yank/", url.Values{"confirm_yank_version": {"1.0"}, "yanked_reason": {long}}, 400, "yanked_reason",
				"The reason is too long: at most 500 characters."},
			{"yank a yanked release", owner, "/manage/project/foo-bar/release/2.0/yank/", url.Values{"confirm_yank_version": {"2.0"}}, 409, "", "Release 2.0 is already yanked."},
			{"yank a release that does not exist", owner, "/manage/project/foo-bar/release/9.9/yank/", url.Values{"confirm_yank_version": {"9.9"}}, 404, "", "Foo_Bar has no release 9.9."},
			{"un-yank, another version typed", owner, "/manage/project/foo-bar/release/2.0/unyank/", url.Values{"confirm_unyank_version": {"2"}}, 400, "confirm_unyank_version",
				`"2" is not the version 2.0. Type it exactly as shown to confirm.`},
			{"un-yank a release not yanked", owner, "/manage/project/foo-bar/release/1.0/unyank/", url.Values{"confirm_unyank_version": {"1.0"}}, 409, "", "Release 1.0 is not yanked."},
			{"delete release, nothing typed", owner, "/manage/project/foo-bar/release/1.0/delete/", url.Values{}, 400, "confirm_delete_version", "Type the version 1.0 to confirm."},
			{"delete file, another filename typed", owner, "/manage/project/foo-bar/release/1.0/delete-file/", url.Values{"file_id": {wheelID}, "confirm_filename": {f.sdist10.Filename}}, 400,
				"confirm_filename", fmt.Sprintf("%q is not the filename %s. Type it exactly as shown to confirm.", f.sdist10.Filename, f.wheel10.Filename)},
			{"delete file, no file named", owner, "/manage/project/foo-bar/release/1.0/delete-file/", url.Values{"confirm_filename": {f.wheel10.Filename}}, 400, "",
				"The form is missing which item to act on. Reload the page and try again."},
			{"delete file, another release's file", owner, "/manage/project/foo-bar/release/1.0/delete-file/", url.Values{"file_id": {otherID}, "confirm_filename": {f.w2.Filename}}, 404, "",
				"Release 1.0 of Foo_Bar has no such file. Reload the page and try again."},
			{"quarantine without a reason", admin, "/admin/projects/foo-bar/quarantine/", url.Values{"reason": {"  "}}, 400, "reason", "Say why the project is quarantined: its owners are told."},
			{"lift a quarantine that is not", admin, "/admin/projects/foo-bar/unquarantine/", url.Values{}, 409, "", "Foo_Bar is not quarantined."},
			{"limits: not a number", admin, "/admin/projects/foo-bar/limits/", url.Values{"upload_limit": {"lots"}}, 400, "upload_limit",
				`The largest file must be a whole number of MiB from 1 to 1048576, or empty for the site's default; got "lots".`},
			{"limits: zero GiB", admin, "/admin/projects/foo-bar/limits/", url.Values{"upload_limit": {"200"}, "total_size_limit": {"0"}}, 400, "total_size_limit",
				`The total size must be a whole number of GiB from 1 to 1048576, or empty for the site's default; got "0".`},
			{"limits: days", admin, "/admin/projects/foo-bar/limits/", url.Values{"release_age_days": {"-1"}}, 400, "release_age_days",
				`The number of days must be a whole number of days from 1 to 36500, or empty for the site's default; got "-1".`},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := dbState(t, d)
				r := c.b.post(t, c.path, c.form)
				if r.code != c.code {
					t.Fatalf("got %d, want %d\n%.3000s", r.code, c.code, r.body)
				}
				if c.field != "" {
					msg, marked := fieldError(t, r.body, c.field)
					if msg != c.want || !marked {
						t.Errorf("next to %s: got %q (marked invalid: %v), want %q\n%.4000s", c.field, msg, marked, c.want, r.body)
					}
				} else if got := pageText(t, r); !strings.Contains(got, c.want) {
					t.Errorf("the page lacks %q:\n%s", c.want, got)
				}
				if after := dbState(t, d); after != before {
					t.Errorf("the database changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
		// What was typed stays typed, where it is not a confirmation.
		r := owner.post(t, "/manage/project/foo-bar/release/1.0/yank/", url.Values{"yanked_reason": {"keep me"}})
		for _, in := range findAll(parseHTML(t, r.body), byTag("input")) {
			if attr(in, "name") == "yanked_reason" && attr(in, "value") != "keep me" {
				t.Errorf("the reason typed was lost: %q", attr(in, "value"))
			}
		}
	})
}

// TestSettingsPageListsUploadTokens: issue 7 item 4, "a project's settings
// page lists the tokens that can upload to it": every collaborator's
// whole-account tokens and the tokens limited to the project, for owners
// and maintainers alike, and none that cannot upload to it.
func TestSettingsPageListsUploadTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newProjFix(t, d, fixtureConfig{})
		f.mustUpload(t, wheel(t, meta{Name: "other", Version: "1.0"}))
		// alice's whole-account token is the fixture's.
		f.mintToken(t, f.alice, "foo-bar") // this project
		f.mintToken(t, f.alice, "other")   // another project only
		f.mintToken(t, f.bob, "foo-bar")   // the maintainer's
		f.mintToken(t, f.carol)            // a stranger's whole-account token
		rowsOf := func(r response) []string {
			var out []string
			for _, sec := range findAll(parseHTML(t, r.body), byTag("section")) {
				if attr(sec, "aria-labelledby") != "project-tokens-h" {
					continue
				}
				for _, tr := range findAll(sec, byTag("tr")) {
					if cells := findAll(tr, byTag("td")); len(cells) >= 3 {
						out = append(out, text(cells[0])+" | "+text(cells[1])+" | "+text(cells[2]))
					}
				}
			}
			slices.Sort(out) // the order of one owner's tokens made at the same instant is the ids'
			return out
		}
		want := []string{
			fmt.Sprintf("alice | test token %d [] | Whole account (all projects, and new ones)", f.alice),
			fmt.Sprintf("alice | test token %d [foo-bar] | Project foo-bar", f.alice),
			fmt.Sprintf("bob | test token %d [foo-bar] | Project foo-bar", f.bob),
		}
		for _, b := range []*browser{f.projectBrowser(t, f.alice, true), f.projectBrowser(t, f.bob, true)} {
			r := b.get(t, "/manage/project/foo-bar/settings/")
			if r.code != http.StatusOK {
				t.Fatalf("GET settings: %d", r.code)
			}
			if got := rowsOf(r); !slices.Equal(got, want) {
				t.Errorf("the settings page lists the upload tokens\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
		// Once bob is no longer a collaborator, his token cannot upload and
		// leaves the list.
		if _, err := d.Exec(`DELETE FROM roles WHERE user_id = $1`, f.bob); err != nil {
			t.Fatal(err)
		}
		if got := rowsOf(f.projectBrowser(t, f.alice, true).get(t, "/manage/project/foo-bar/settings/")); !slices.Equal(got, want[:2]) {
			t.Errorf("after bob left, the list is\n%s", strings.Join(got, "\n"))
		}
	})
}
