package project

// Fixture of the collaborator tests: a real Service over a dbtest database
// (SQLite and PostgreSQL), its emails rendered by the real templates into
// the outbox, a testclock, users and a project made with plain SQL.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/blob"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/testclock"
)

var collabT0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

const collabBase = "https://gatehouse.example"

type collabFixture struct {
	t       *testing.T
	d       *db.DB
	s       *Service
	clock   *testclock.Clock
	project *Project
	users   map[string]int64
}

func newCollabFixture(t *testing.T, d *db.DB) *collabFixture {
	t.Helper()
	clock := testclock.New(collabT0)
	r, err := mail.NewRenderer("Gatehouse", collabBase)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	f := &collabFixture{t: t, d: d, clock: clock, users: map[string]int64{}}
	f.s = NewService(d, blobs, Options{Now: clock.Now, Notifier: mail.NewNotifier(r, clock.Now),
		Links: account.Links{VerifyProjectRole: collabBase + "/account/verify-project-role/"}})
	for _, u := range []string{"alice", "bob", "carol"} {
		f.addUser(u, true)
	}
	f.project = f.addProject("Demo-Pkg", "alice")
	return f
}

// addUser makes a user with a primary address, verified or not.
func (f *collabFixture) addUser(name string, verified bool) int64 {
	f.t.Helper()
	var id int64
	if err := f.d.QueryRow(`INSERT INTO users (username, username_key, created_at) VALUES ($1, $2, $3) RETURNING id`,
		name, strings.ToLower(name), collabT0).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.d.Exec(`INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at) VALUES ($1, $2, $2, TRUE, $3, $4)`,
		id, strings.ToLower(name)+"@example.com", verified, collabT0); err != nil {
		f.t.Fatal(err)
	}
	f.users[name] = id
	return id
}

// addProject makes a project with owner as its one Owner.
func (f *collabFixture) addProject(name, owner string) *Project {
	f.t.Helper()
	var id int64
	if err := f.d.QueryRow(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ($1, $2, $2, $3) RETURNING id`,
		name, strings.ToLower(name), collabT0).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, id, f.users[owner])
	p, err := f.s.Get(context.Background(), strings.ToLower(name))
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *collabFixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.d.Exec(q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *collabFixture) actor(name string) Actor {
	return Actor{UserID: f.users[name], Username: name, Client: account.Client{IP: "192.0.2.1", UserAgent: "test browser"}}
}

// roles returns the project's roles as "user:Role", sorted.
func (f *collabFixture) roles(p *Project) []string {
	f.t.Helper()
	cs, err := listCollaborators(context.Background(), f.d, p.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Username+":"+c.Role)
	}
	sort.Strings(out)
	return out
}

// snapshot is every row of the tables a collaboration change may touch.
func (f *collabFixture) snapshot() string {
	f.t.Helper()
	var b strings.Builder
	for _, table := range []string{"roles", "role_invitations", "events", "outbox", "journal", "projects", "users", "user_emails"} {
		rows, err := f.d.Query(`SELECT * FROM ` + table)
		if err != nil {
			f.t.Fatal(err)
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
				f.t.Fatal(err)
			}
			lines = append(lines, fmt.Sprint(vals...))
		}
		rows.Close()
		sort.Strings(lines)
		fmt.Fprintf(&b, "%s:\n%s\n", table, strings.Join(lines, "\n"))
	}
	return b.String()
}

// sentMail is one queued email.
type sentMail struct {
	to, template, subject, text string
}

// mails returns the emails queued since the outbox id after, in order.
func (f *collabFixture) mails(after int64) []sentMail {
	f.t.Helper()
	rows, err := f.d.Query(`SELECT to_addr, template, subject, text_body FROM outbox WHERE id > $1 ORDER BY id`, after)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []sentMail
	for rows.Next() {
		var m sentMail
		if err := rows.Scan(&m.to, &m.template, &m.subject, &m.text); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *collabFixture) lastOutbox() int64 {
	f.t.Helper()
	var n int64
	if err := f.d.QueryRow(`SELECT coalesce(max(id), 0) FROM outbox`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// wantMails fails unless exactly these "to template" pairs were queued
// after the outbox id mark.
func (f *collabFixture) wantMails(mark int64, want ...string) []sentMail {
	f.t.Helper()
	ms := f.mails(mark)
	var got []string
	for _, m := range ms {
		got = append(got, m.to+" "+m.template)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		f.t.Errorf("emails queued:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return ms
}

// event is one audit event, as the tests compare them.
type event struct {
	user, project int64
	tag, actor    string
	add           string // the additional JSON
}

func (f *collabFixture) lastEvent() int64 {
	f.t.Helper()
	var n int64
	if err := f.d.QueryRow(`SELECT coalesce(max(id), 0) FROM events`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// events returns the events recorded after the id mark, in order.
func (f *collabFixture) events(mark int64) []event {
	f.t.Helper()
	rows, err := f.d.Query(`SELECT user_id, project_id, tag, actor, ip, additional FROM events WHERE id > $1 ORDER BY id`, mark)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var uid, pid sql.NullInt64
		var ip string
		if err := rows.Scan(&uid, &pid, &e.tag, &e.actor, &ip, &e.add); err != nil {
			f.t.Fatal(err)
		}
		if ip != "192.0.2.1" {
			f.t.Errorf("event %s: ip %q, want the actor's 192.0.2.1", e.tag, ip)
		}
		e.user, e.project = uid.Int64, pid.Int64
		out = append(out, e)
	}
	return out
}

// wantEvents fails unless the events after mark are exactly want (tag,
// whom, actor), in order; the additional JSON must contain each of the
// want's add fragments.
func (f *collabFixture) wantEvents(mark int64, want ...event) {
	f.t.Helper()
	got := f.events(mark)
	if len(got) != len(want) {
		f.t.Errorf("got %d events %+v, want %d %+v", len(got), got, len(want), want)
		return
	}
	for i, w := range want {
		g := got[i]
		if g.tag != w.tag || g.user != w.user || g.project != w.project || g.actor != w.actor {
			f.t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
		for _, frag := range strings.Split(w.add, ";") {
			if frag != "" && !strings.Contains(g.add, frag) {
				f.t.Errorf("event %d (%s): additional %s lacks %s", i, g.tag, g.add, frag)
			}
		}
	}
}

// journal returns the project's journal actions, in order.
func (f *collabFixture) journal(p *Project) []string {
	f.t.Helper()
	rows, err := f.d.Query(`SELECT action FROM journal WHERE project_id = $1 ORDER BY id`, p.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

var collabLinkRE = regexp.MustCompile(`https://gatehouse\.example/account/verify-project-role/\?token=[A-Za-z0-9_-]+(&decline=1)?`)

// inviteLinks returns the accept and decline links of an invitation email
// and the token they carry.
func (f *collabFixture) inviteLinks(m sentMail) (accept, decline, raw string) {
	f.t.Helper()
	links := collabLinkRE.FindAllString(m.text, -1)
	if len(links) != 2 || strings.HasSuffix(links[0], "&decline=1") || links[1] != links[0]+"&decline=1" {
		f.t.Fatalf("invitation email: got links %q, want an accept link and the same with &decline=1\n%s", links, m.text)
	}
	u, err := url.Parse(links[0])
	if err != nil {
		f.t.Fatal(err)
	}
	return links[0], links[1], u.Query().Get("token")
}

// invite has alice invite name to role and returns the emailed token.
func (f *collabFixture) invite(name, role string) (*Invitation, string) {
	f.t.Helper()
	mark := f.lastOutbox()
	inv, err := f.s.Invite(context.Background(), f.actor("alice"), f.project.ID, name, role)
	if err != nil {
		f.t.Fatalf("invite %s: %v", name, err)
	}
	ms := f.wantMails(mark, name+"@example.com verify-project-role")
	if len(ms) != 1 {
		f.t.FailNow()
	}
	_, _, raw := f.inviteLinks(ms[0])
	return inv, raw
}
