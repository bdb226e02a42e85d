package org

// The fixture of the organization tests: a real Service over a dbtest
// database (SQLite and PostgreSQL), a real project Service, emails rendered
// by the real templates into the outbox, a testclock, users made with SQL.

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/project"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

const base = "https://gatehouse.example"

type fixture struct {
	t        *testing.T
	d        *db.DB
	s        *Service
	projects *project.Service
	clock    *testclock.Clock
	users    map[string]int64
	ctx      context.Context
}

func newFixture(t *testing.T, d *db.DB, needApproval bool) *fixture {
	t.Helper()
	clock := testclock.New(t0)
	r, err := mail.NewRenderer("Gatehouse", base)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	notifier := mail.NewNotifier(r, clock.Now)
	links := account.Links{VerifyOrganizationRole: base + "/account/verify-organization-role/"}
	ps := project.NewService(d, blobs, project.Options{Now: clock.Now, Notifier: notifier, Links: links})
	f := &fixture{t: t, d: d, clock: clock, users: map[string]int64{}, projects: ps, ctx: context.Background()}
	f.s = New(Options{DB: d, Projects: ps, Notifier: notifier, Links: links, BaseURL: base, NeedApproval: needApproval, Now: clock.Now})
	for _, u := range []string{"alice", "bob", "carol", "dave", "root"} {
		f.addUser(u)
	}
	f.exec(`UPDATE users SET is_admin = TRUE WHERE username = 'root'`)
	return f
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.d.Exec(q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) addUser(name string) int64 {
	f.t.Helper()
	var id int64
	if err := f.d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ($1, $2, $3) RETURNING id`,
		name, strings.ToLower(name), t0).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	f.exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES ($1, $2, $2, TRUE, TRUE, $3)`,
		id, name+"@example.com", t0)
	f.users[name] = id
	return id
}

func (f *fixture) actor(name string) Actor {
	return Actor{UserID: f.users[name], Username: name, Client: account.Client{IP: "192.0.2.1", UserAgent: "test"}}
}

// newOrg makes an approved organization owned by owner.
func (f *fixture) newOrg(name, owner string) *Organization {
	f.t.Helper()
	o, err := New(Options{DB: f.d, Projects: f.projects, BaseURL: base, Links: f.s.links, Now: f.clock.Now}).Request(f.ctx, f.actor(owner), name, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

// addProject makes a project owned by owner alone.
func (f *fixture) addProject(name, owner string) int64 {
	f.t.Helper()
	var id int64
	if err := f.d.QueryRow(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ($1, $2, $2, $3) RETURNING id`,
		name, strings.ToLower(name), t0).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, id, f.users[owner])
	return id
}

// join makes user a member with role directly.
func (f *fixture) join(o *Organization, user, role string) {
	f.exec(`INSERT INTO organization_roles (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`, o.ID, f.users[user], role, t0)
}

// role is user's effective role on the project.
func (f *fixture) role(projectID int64, user string) string {
	f.t.Helper()
	r, err := f.projects.Role(f.ctx, projectID, f.users[user])
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// mails returns the bodies of the emails queued for user.
func (f *fixture) mails(user string) []string {
	f.t.Helper()
	rows, err := f.d.Query(`SELECT subject || ' ' || text_body FROM outbox WHERE user_id = $1 ORDER BY id`, f.users[user])
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func (f *fixture) lastMail(user string) string {
	m := f.mails(user)
	if len(m) == 0 {
		f.t.Fatalf("no email for %s", user)
	}
	return m[len(m)-1]
}

var tokenRE = regexp.MustCompile(`\?token=([A-Za-z0-9_-]+)`)

// inviteToken is the token of the last invitation emailed to user.
func (f *fixture) inviteToken(user string) string {
	f.t.Helper()
	m := tokenRE.FindStringSubmatch(f.lastMail(user))
	if m == nil {
		f.t.Fatalf("no invitation link in %s's last email", user)
	}
	raw, _ := url.QueryUnescape(m[1])
	return raw
}

// snapshot counts the rows of every organization table, to show that a
// refused change changed nothing.
func (f *fixture) snapshot() map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, tbl := range []string{"organizations", "organization_old_names", "organization_roles", "organization_invitations", "teams",
		"team_members", "team_project_roles", "organization_projects", "organization_project_requests", "roles", "projects", "events", "outbox"} {
		var n int
		if err := f.d.QueryRow(`SELECT count(*) FROM ` + tbl).Scan(&n); err != nil {
			f.t.Fatal(err)
		}
		out[tbl] = n
	}
	return out
}

// refused checks that err is of kind and its message contains want, and
// that nothing changed since before.
func (f *fixture) refused(err error, kind error, want string, before map[string]int) {
	f.t.Helper()
	if err == nil {
		f.t.Fatalf("got no error, want %q", want)
	}
	msg, ok := derrors.Message(err)
	if !errors.Is(err, kind) || !ok || !strings.Contains(msg, want) {
		f.t.Fatalf("got %v (%q), want a %v error containing %q", err, msg, kind, want)
	}
	after := f.snapshot()
	for k, v := range before {
		if after[k] != v {
			f.t.Errorf("refused change altered %s: %d rows, were %d", k, after[k], v)
		}
	}
}

func count(t *testing.T, d *db.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRow(q, args...).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return n
}
