package web

// Browsers for the project management tests: a real session row and its
// cookie, as the login flow leaves them (second factor done, password
// entered just now), so these tests are about the project pages and not
// about logging in, which has its own tests.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/session"
)

type browser struct {
	in     *instance
	cookie string
}

// projectBrowser returns a browser signed in as user, with the second factor done
// and, when sudo is set, the password entered just now.
func (in *instance) projectBrowser(t *testing.T, user int64, sudo bool) *browser {
	t.Helper()
	u, err := in.accounts.ByID(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	s := &session.Session{UserID: user, Level: session.TwoFactor, PasswordDate: u.PasswordDate, UserAgent: "test browser"}
	if sudo {
		s.ReauthAt = in.srv.now()
	}
	raw, err := in.sessions.New(context.Background(), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{in: in, cookie: raw}
}

func (b *browser) do(t *testing.T, method, path string, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.in.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: b.cookie})
	}
	resp, err := b.in.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s: got %d, want no 5xx:\n%s", method, path, resp.StatusCode, rb)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: rb}
}

func (b *browser) get(t *testing.T, path string) response {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil)
}

func (b *browser) post(t *testing.T, path string, form url.Values) response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(t, http.MethodPost, path, form)
}

// postOK posts a form that must succeed: a 303 to next, whose page shows
// the flash message.
func (b *browser) postOK(t *testing.T, path string, form url.Values, next, flash string) {
	t.Helper()
	r := b.post(t, path, form)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != next {
		t.Fatalf("POST %s: got %d to %q, want 303 to %s\n%.2000s", path, r.code, r.header.Get("Location"), next, r.body)
	}
	page := b.get(t, next)
	if page.code != http.StatusOK || !strings.Contains(text(parseHTML(t, page.body)), flash) {
		t.Fatalf("GET %s after POST %s: got %d, want 200 with %q\n%.3000s", next, path, page.code, flash, page.body)
	}
}

// fieldError returns the message shown next to the form field named name,
// and whether the field is marked invalid and described by it.
func fieldError(t *testing.T, body []byte, name string) (msg string, marked bool) {
	t.Helper()
	doc := parseHTML(t, body)
	for _, in := range findAll(doc, func(n *htmlNode) bool { return (n.Data == "input" || n.Data == "textarea") && attr(n, "name") == name }) {
		id := attr(in, "aria-describedby")
		if id == "" {
			continue
		}
		for _, p := range findAll(doc, func(n *htmlNode) bool { return attr(n, "id") == id }) {
			// Next to the field: in the same form.
			if sameForm(p, in) {
				return text(p), attr(in, "aria-invalid") == "true"
			}
		}
	}
	return "", false
}

func sameForm(a, b *htmlNode) bool {
	form := func(n *htmlNode) *htmlNode {
		for ; n != nil; n = n.Parent {
			if n.Type == htmlElement && n.Data == "form" {
				return n
			}
		}
		return nil
	}
	fa := form(a)
	return fa != nil && fa == form(b)
}

// pageText is a page's text, white space collapsed.
func pageText(t *testing.T, r response) string {
	t.Helper()
	return text(parseHTML(t, r.body))
}

// dbState is every row of the tables a management action can touch, as
// text, so a test can prove that a refused form changed nothing.
func dbState(t *testing.T, d *db.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"projects", "releases", "files", "filename_log", "roles", "journal", "events", "outbox", "site_settings",
		"organizations", "organization_old_names", "organization_roles", "organization_invitations", "teams", "team_members",
		"team_project_roles", "organization_projects", "organization_project_requests",
		"project_origins", "project_alternate_locations", "upstream_early_versions"} {
		rows, err := d.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				cells[i] = fmt.Sprint(v)
			}
			lines = append(lines, strings.Join(cells, "|"))
		}
		rows.Close()
		sort.Strings(lines)
		fmt.Fprintf(&b, "%s:\n%s\n", table, strings.Join(lines, "\n"))
	}
	return b.String()
}

// outbox is every queued email as "to: subject", in order.
func outbox(t *testing.T, d *db.DB) []string {
	t.Helper()
	rows, err := d.Query(`SELECT to_addr, subject FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var to, subj string
		if err := rows.Scan(&to, &subj); err != nil {
			t.Fatal(err)
		}
		out = append(out, to+": "+subj)
	}
	return out
}

// addRole gives user a role on the project directly.
func addRole(t *testing.T, d *db.DB, norm string, user int64, role string) {
	t.Helper()
	if _, err := d.Exec(`INSERT INTO roles (project_id, user_id, role) SELECT id, $1, $2 FROM projects WHERE normalized_name = $3`, user, role, norm); err != nil {
		t.Fatal(err)
	}
}

// makeAdmin turns user into an administrator.
func makeAdmin(t *testing.T, d *db.DB, user int64) {
	t.Helper()
	if _, err := d.Exec(`UPDATE users SET is_admin = TRUE WHERE id = $1`, user); err != nil {
		t.Fatal(err)
	}
}

// jsonEqual compares a decoded JSON value with a Go literal.
func jsonEqual(t *testing.T, got, want any) bool {
	t.Helper()
	return reflect.DeepEqual(got, jsonOf(t, want))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
