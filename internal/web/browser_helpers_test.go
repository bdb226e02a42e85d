package web

// A signed-in browser for the web tests of the account and token pages: a
// real server-side session made through session.Manager (as the login flow
// makes one), its cookie sent with every request, and the answers read
// whole.

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/session"
)

// pageBrowser is one signed-in browser.
type pageBrowser struct {
	in     *instance
	userID int64
	cookie string
	sess   *session.Session
}

// pageResp is a page's answer.
type pageResp struct {
	code int
	loc  string
	body string
}

// signInAs gives the user a session at two-factor level, freshly
// authenticated (so sudo pages open), as a login with a second factor
// leaves it.
func (in *instance) signInAs(t *testing.T, userID int64) *pageBrowser {
	t.Helper()
	ctx := context.Background()
	u, err := in.accounts.ByID(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	now := in.srv.now().UTC()
	sess := &session.Session{UserID: userID, Level: session.TwoFactor, PasswordDate: u.PasswordDate, ReauthAt: now,
		IP: "192.0.2.50", UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	raw, err := in.sessions.New(ctx, nil, sess)
	if err != nil {
		t.Fatal(err)
	}
	return &pageBrowser{in: in, userID: userID, cookie: raw, sess: sess}
}

func (b *pageBrowser) do(t *testing.T, method, path string, form url.Values) pageResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.in.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	req.Header.Set("User-Agent", b.sess.UserAgent)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: b.cookie})
	resp, err := b.in.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" {
			b.cookie = c.Value // the session was rotated (a factor added)
		}
	}
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s: got %d, want no 5xx\n%s", method, path, resp.StatusCode, rb)
	}
	return pageResp{code: resp.StatusCode, loc: resp.Header.Get("Location"), body: string(rb)}
}

func (b *pageBrowser) get(t *testing.T, path string) pageResp {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil)
}

func (b *pageBrowser) post(t *testing.T, path string, form url.Values) pageResp {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(t, http.MethodPost, path, form)
}

// forgetReauth makes the session's last authentication older than sudo
// allows.
func (b *pageBrowser) forgetReauth(t *testing.T) {
	t.Helper()
	if _, err := b.in.db.Exec(`UPDATE sessions SET reauth_at = NULL WHERE id_hash = $1`, session.Hash(b.cookie)); err != nil {
		t.Fatal(err)
	}
}

// wantPage fails unless r has the status and contains every text as it is
// written in the page's HTML.
func wantPage(t *testing.T, what string, r pageResp, code int, texts ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: got %d (Location %q), want %d\n%.3000s", what, r.code, r.loc, code, r.body)
	}
	for _, s := range texts {
		if !strings.Contains(r.body, s) {
			t.Fatalf("%s: the page lacks %q\n%.6000s", what, s, r.body)
		}
	}
}

// wantRedirect fails unless r is a 303 to loc.
func wantRedirect(t *testing.T, what string, r pageResp, loc string) {
	t.Helper()
	if r.code != http.StatusSeeOther || r.loc != loc {
		t.Fatalf("%s: got %d to %q, want 303 to %q\n%.2000s", what, r.code, r.loc, loc, r.body)
	}
}

// count runs a COUNT query against the instance's database.
func (in *instance) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := in.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
