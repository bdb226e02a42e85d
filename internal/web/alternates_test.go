package web

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// TestAlternateLocations: a project's owners set its PEP 708 alternate
// locations on the settings page (no upstream needed); the Simple API
// lists them, in the JSON as "alternate-locations" (always there) and in
// the HTML as one pypi:alternate-locations meta element each. A maintainer
// and bad input change nothing, with a message that says what to fix; each
// change is in the project's history in words.
func TestAlternateLocations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.mustUpload(t, wheel(t, meta{Name: "alt-demo", Version: "1.0"}))
		bob := addUser(t, d, "bob")
		addRole(t, d, "alt-demo", bob, "Maintainer")
		jsonAlts := func() []string {
			t.Helper()
			r := f.getOK(t, "/simple/alt-demo/", "Accept", "application/vnd.pypi.simple.v1+json")
			var page map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			raw, ok := page["alternate-locations"]
			if !ok {
				t.Fatalf("the JSON page has no alternate-locations:\n%s", r.body)
			}
			var alts []string
			if err := json.Unmarshal(raw, &alts); err != nil {
				t.Fatal(err)
			}
			return alts
		}
		if got := jsonAlts(); len(got) != 0 {
			t.Fatalf("alternate locations at start: %q", got)
		}

		path := "/manage/project/alt-demo/settings/alternate-locations/"
		before := dbState(t, d)
		if r := f.projectBrowser(t, bob, true).post(t, path, url.Values{"alternate_locations": {"https://pypi.org/simple/alt-demo/"}}); r.code != http.StatusForbidden {
			t.Errorf("a maintainer set alternate locations: %d, want 403", r.code)
		}
		alice := f.projectBrowser(t, f.alice, true)
		many := strings.Repeat("https://a.example/x/ ", 3) // duplicates count once
		for i := range 11 {
			many += "https://index" + string(rune('a'+i)) + ".example/simple/alt-demo/\n"
		}
		for _, bad := range []struct{ value, says string }{
			{"ftp://mirror.example/simple/alt-demo/", `"ftp://mirror.example/simple/alt-demo/" is not the address of a project's page on another index`},
			{"pypi.org/simple/alt-demo/", "Give absolute http or https URLs"},
			{"https://user:secret@pypi.example/simple/alt-demo/", "no user name, password"},
			{"https:///simple/alt-demo/", "is not the address"},
			{"https://pypi.org/simple/alt-demo/#x", "#fragment"},
			{"https://pypi.org/" + strings.Repeat("a", 500), "at most 500 characters"},
			{many, "Give at most 10 alternate locations; you gave 12."},
		} {
			r := alice.post(t, path, url.Values{"alternate_locations": {bad.value}})
			if r.code != http.StatusBadRequest {
				t.Errorf("%.60q: %d, want 400", bad.value, r.code)
				continue
			}
			if msg, marked := fieldError(t, r.body, "alternate_locations"); !strings.Contains(msg, bad.says) || !marked {
				t.Errorf("%.60q: field error %q (marked %v), want it to say %q", bad.value, msg, marked, bad.says)
			}
			if !strings.Contains(string(r.body), ">"+html.EscapeString(bad.value)+"</textarea>") {
				t.Errorf("%.60q: the refused form does not keep what was typed", bad.value)
			}
		}
		if dbState(t, d) != before {
			t.Error("refused alternate-locations forms changed the database")
		}

		want := []string{"https://pypi.org/simple/alt-demo/", "https://other.example/simple/alt-demo/"}
		alice.postOK(t, path, url.Values{"alternate_locations": {want[0] + "\r\n" + want[1] + " " + want[0] + "\n"}},
			"/manage/project/alt-demo/settings/", "Saved the alternate locations of alt-demo.")
		if got := jsonAlts(); !reflect.DeepEqual(got, want) {
			t.Errorf("JSON alternate-locations %q, want %q", got, want)
		}
		htmlPage := string(f.getOK(t, "/simple/alt-demo/").body)
		for _, u := range want {
			if !strings.Contains(htmlPage, `<meta name="pypi:alternate-locations" content="`+u+`">`) {
				t.Errorf("the HTML page lacks the meta element of %s:\n%s", u, htmlPage)
			}
		}
		if page := pageText(t, alice.get(t, "/manage/project/alt-demo/settings/")); !strings.Contains(page, want[0]) {
			t.Errorf("the settings page does not show the alternate locations:\n%s", page)
		}
		// The same again changes nothing and records nothing.
		alice.postOK(t, path, url.Values{"alternate_locations": {strings.Join(want, "\n")}}, "/manage/project/alt-demo/settings/", "Saved")
		alice.postOK(t, path, url.Values{"alternate_locations": {"  "}}, "/manage/project/alt-demo/settings/", "alt-demo lists no alternate locations.")
		if got := jsonAlts(); len(got) != 0 {
			t.Errorf("after removing them: %q", got)
		}
		if strings.Contains(string(f.getOK(t, "/simple/alt-demo/").body), "pypi:alternate-locations") {
			t.Error("the HTML page still has alternate locations")
		}
		var n int
		if err := d.QueryRow(`SELECT count(*) FROM events WHERE tag = 'project:alternate_locations:change'`).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d alternate-locations events (%v), want 2", n, err)
		}
		history := pageText(t, alice.get(t, "/manage/project/alt-demo/history/"))
		for _, w := range []string{"Alternate locations (PEP 708) set to " + want[0] + " " + want[1] + " by alice", "Alternate locations (PEP 708) removed by alice"} {
			if !strings.Contains(history, w) {
				t.Errorf("the history lacks %q:\n%s", w, history)
			}
		}
	})
}
