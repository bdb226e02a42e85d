package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

// The link of the environment-ignored-in-trusted-publisher email: the
// publishing page offers to limit the publisher to the environment, the
// POST does it, bad input is refused next to the form and changes nothing,
// and the link once used says the publisher cannot be limited any more.
func TestConstrainPublisherToEnvironment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		tf := newTPFixture(t, d)
		tf.mustUpload(t, wheel(t, meta{Name: "widget", Version: "1.0"}))
		s := tf.session(t, tf.alice, false)
		const path = "/manage/project/widget/settings/publishing/"
		// A GitLab publisher: adding one needs no call to another site.
		rec := tf.page(t, "POST", path, url.Values{"provider": {"gitlab"}, "namespace": {"acme"}, "project": {"widget"}, "workflow_filepath": {".gitlab-ci.yml"}}, s)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("add: %d\n%s", rec.Code, rec.Body.String())
		}
		var id string
		if err := d.QueryRow(`SELECT publisher_id FROM project_publishers`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		link := path + "?" + url.Values{"constrain_publisher_id": {id}, "constrain_environment": {"pypi"}}.Encode()
		wantRecPage(t, tf.page(t, "GET", link, nil, s), http.StatusOK, "Limit a publisher to an environment",
			"GitLab: acme/widget, CI file .gitlab-ci.yml", `name="publisher_id" value="`+id+`"`, `value="pypi"`)
		// Without the link's query the page offers nothing.
		if body := tf.page(t, "GET", path, nil, s).Body.String(); strings.Contains(body, "Limit a publisher to an environment") {
			t.Error("the page offers the change without the link")
		}

		before := dbState(t, d)
		for _, c := range []struct {
			form url.Values
			code int
			want string
		}{
			{url.Values{"publisher_id": {id}, "environment": {" "}}, http.StatusBadRequest, "Environment: enter the environment"},
			{url.Values{"publisher_id": {id}, "environment": {`py"pi`}}, http.StatusBadRequest, "must not contain quotes"},
			{url.Values{"publisher_id": {"x"}, "environment": {"pypi"}}, http.StatusBadRequest, "missing which item"},
			{url.Values{"publisher_id": {"999999"}, "environment": {"pypi"}}, http.StatusNotFound, "not registered for widget"},
		} {
			rec := tf.page(t, "POST", path+"constrain/", c.form, s)
			wantRecPage(t, rec, c.code, c.want)
		}
		if after := dbState(t, d); after != before {
			t.Fatal("refused forms changed the database")
		}
		if n := tf.count(t, `SELECT count(*) FROM trusted_publishers WHERE environment = ''`); n != 1 {
			t.Fatalf("%d publishers without an environment, want the one", n)
		}

		rec = tf.page(t, "POST", path+"constrain/", url.Values{"publisher_id": {id}, "environment": {"pypi"}}, s)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != path {
			t.Fatalf("constrain: %d %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
		}
		wantRecPage(t, tf.page(t, "GET", path, nil, s), http.StatusOK, "GitLab: acme/widget, CI file .gitlab-ci.yml, environment pypi")
		if n := tf.count(t, `SELECT count(*) FROM trusted_publishers`); n != 1 {
			t.Fatalf("%d publishers stored, want the limited one only", n)
		}
		// The email's link, once more: nothing to offer.
		body := tf.page(t, "GET", link, nil, s).Body.String()
		if strings.Contains(body, "Limit a publisher to an environment") || !strings.Contains(body, "cannot be limited to an environment") {
			t.Errorf("the used link:\n%s", body)
		}
	})
}
