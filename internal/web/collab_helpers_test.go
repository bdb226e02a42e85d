package web

// Helpers of the collaboration tests: a signed-in browser (a session made
// with the real session manager, its cookie sent with every request), the
// emails the project service queued, and a snapshot of every table a
// collaboration change may touch.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/session"
)

// collabBrowser is one signed-in person's browser.
type collabBrowser struct {
	in     *instance
	cookie string
}

// signIn opens a session for userID at the second-factor level, with the
// password confirmed at reauthAt (sudo lasts session.ReauthWindow).
func (in *instance) signIn(t *testing.T, userID int64, reauthAt time.Time) *collabBrowser {
	t.Helper()
	raw, err := in.sessions.New(context.Background(), nil, &session.Session{UserID: userID, Level: session.TwoFactor, ReauthAt: reauthAt})
	if err != nil {
		t.Fatal(err)
	}
	return &collabBrowser{in: in, cookie: raw}
}

// collabResp is an answer, read whole.
type collabResp struct {
	code int
	loc  string
	body string
}

func (r collabResp) String() string {
	b := r.body
	if len(b) > 2000 {
		b = b[:2000] + "…"
	}
	return fmt.Sprintf("%d Location %q\n%s", r.code, r.loc, b)
}

func (b *collabBrowser) do(t *testing.T, method, path string, form url.Values) collabResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = b.in.url + path
	}
	req, err := http.NewRequest(method, u, body)
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
	return collabResp{code: resp.StatusCode, loc: resp.Header.Get("Location"), body: string(rb)}
}

func (b *collabBrowser) get(t *testing.T, path string) collabResp {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil)
}

func (b *collabBrowser) post(t *testing.T, path string, form url.Values) collabResp {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(t, http.MethodPost, path, form)
}

// wantPage fails unless r has the status and shows every text (as HTML
// escapes it).
func wantCollabPage(t *testing.T, r collabResp, code int, texts ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("got %s\nwant status %d", r, code)
	}
	for _, s := range texts {
		if !strings.Contains(r.body, s) && !strings.Contains(r.body, htmlEscape(s)) {
			t.Fatalf("got %s\nthe page lacks %q", r, s)
		}
	}
}

// wantRedirect fails unless r is a 303 to path (its query ignored unless
// path has one).
func collabWantRedirect(t *testing.T, r collabResp, path string) {
	t.Helper()
	loc := r.loc
	if !strings.Contains(path, "?") {
		loc, _, _ = strings.Cut(loc, "?")
	}
	if r.code != http.StatusSeeOther || loc != path {
		t.Fatalf("got %s\nwant 303 to %s", r, path)
	}
}

// collabSnapshot is every row of the tables a collaboration change may
// touch, for "bad input changes nothing".
func (in *instance) collabSnapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"roles", "role_invitations", "events", "outbox", "journal", "projects", "users", "api_tokens"} {
		rows, err := in.db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
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
			lines = append(lines, fmt.Sprint(vals...))
		}
		rows.Close()
		sort.Strings(lines)
		fmt.Fprintf(&b, "%s:\n%s\n", table, strings.Join(lines, "\n"))
	}
	return b.String()
}

// outboxMail is one queued email.
type outboxMail struct{ to, template, subject, text string }

// mailsTo returns the emails queued for addr with the template.
func (in *instance) mailsTo(t *testing.T, addr, template string) []outboxMail {
	t.Helper()
	rows, err := in.db.Query(`SELECT to_addr, template, subject, text_body FROM outbox WHERE to_addr = $1 AND template = $2 ORDER BY id`, addr, template)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxMail
	for rows.Next() {
		var m outboxMail
		if err := rows.Scan(&m.to, &m.template, &m.subject, &m.text); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

var inviteLinkRE = regexp.MustCompile(`http://[^\s]+/account/verify-project-role/\?token=[A-Za-z0-9_-]+(&decline=1)?`)

// invitationLinks returns the accept and decline links of the newest
// invitation emailed to addr.
func (in *instance) invitationLinks(t *testing.T, addr string) (accept, decline string) {
	t.Helper()
	ms := in.mailsTo(t, addr, "verify-project-role")
	if len(ms) == 0 {
		t.Fatalf("no invitation emailed to %s", addr)
	}
	links := inviteLinkRE.FindAllString(ms[len(ms)-1].text, -1)
	if len(links) != 2 || !strings.HasPrefix(links[0], in.url+"/account/verify-project-role/?token=") || links[1] != links[0]+"&decline=1" {
		t.Fatalf("invitation email to %s: links %q, want accept and decline links at %s\n%s", addr, links, in.url, ms[len(ms)-1].text)
	}
	return links[0], links[1]
}

// userIDOf is a user's id.
func (in *instance) userIDOf(t *testing.T, name string) int64 {
	t.Helper()
	var id int64
	if err := in.db.QueryRow(`SELECT id FROM users WHERE username_key = $1`, strings.ToLower(name)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

var hiddenRE = regexp.MustCompile(`name="(invitation_id|user_id)" value="([0-9]+)"`)

// hiddenIDs returns the values of the hidden id inputs named name.
func hiddenIDs(page, name string) []string {
	var out []string
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		if m[1] == name {
			out = append(out, m[2])
		}
	}
	return out
}
