package main

// End to end, on SQLite and PostgreSQL: an owner invites a collaborator in
// the browser, the invitee accepts through the link in the email the
// in-test SMTP server received, uploads with Debian's twine and a token
// scoped to the project, is removed, and that same token is refused with
// Warehouse's message.

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestE2ECollaborators(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	tools := e2eTools(t)
	mfaOathtool(t)
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := acctStart(t, dialect, acctOpts{})
			collabScenario(t, env, tools)
			acctNoSecretsLeaked(t, env)
		})
	}
}

var collabUserIDRE = regexp.MustCompile(`name="user_id" value="([0-9]+)"`)

func collabScenario(t *testing.T, env *acctEnv, tools e2eToolSet) {
	const project = "team-pkg"
	page := "/manage/project/" + project + "/collaboration/"
	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// twine uploads the wheel of version v with the token, from disk.
	twine := func(tok, v string) (string, error) {
		path := filepath.Join(work, e2eWheelName(project, v))
		if err := os.WriteFile(path, e2eWheel(t, project, v, e2eMetadata(project, v)), 0o644); err != nil {
			t.Fatal(err)
		}
		return e2eExec(home, e2eEnv(home), tools.twine, "upload", "--repository-url", env.URL+"/legacy/",
			"-u", "__token__", "-p", tok, "--non-interactive", "--disable-progress-bar", path)
	}

	// Alice, with an authentication app, makes the project.
	alice := mfaNewUser(t, env, "alice", true, false)
	ab := env.browser(acctFirefox)
	ab.mustLogin(t, alice.name, alice.pw)
	alice.enrol(t, ab)
	if out, err := twine(env.token(t, "alice", "alice's laptop"), "1.0"); err != nil {
		t.Fatalf("alice's twine upload: %v\n%s", err, out)
	}

	// She invites bob as a maintainer.
	bob := mfaNewUser(t, env, "bob", true, false)
	acctWant(t, ab.get(t, page), 200, "<h1>Collaborators</h1>")
	r := ab.post(t, page, url.Values{"username": {"bob"}, "role_name": {"Maintainer"}})
	acctWantRedirect(t, r, page)
	acctWant(t, ab.follow(t, r), 200, "Invitation sent to bob.")
	m := env.mail.take(t, bob.email, "alice has invited you to join the "+project+" project")
	var accept, decline string
	for _, l := range m.links() {
		switch {
		case strings.HasPrefix(l, env.base+"/account/verify-project-role/?token=") && strings.HasSuffix(l, "&decline=1"):
			decline = l
		case strings.HasPrefix(l, env.base+"/account/verify-project-role/?token="):
			accept = l
		}
	}
	if accept == "" || decline != accept+"&decline=1" {
		t.Fatalf("invitation email: links %q, want an accept and a decline link at %s\n%s", m.links(), env.base, m.Text)
	}
	if !strings.Contains(m.HTML, strings.ReplaceAll(accept, "&", "&amp;")) {
		t.Errorf("the HTML part lacks the accept link")
	}
	tok, _ := url.Parse(accept)
	env.secrets.add("invitation token", tok.Query().Get("token"))

	// Bob logs in; the link first sends him to set up a second factor
	// (PyPI's gate), then back; he accepts.
	bb := env.browser(acctChrome)
	bb.mustLogin(t, bob.name, bob.pw)
	r = bb.get(t, accept)
	acctWantRedirect(t, r, "/manage/account/two-factor/")
	if want := "next=" + url.QueryEscape(strings.TrimPrefix(accept, env.base)); !strings.Contains(r.loc(), want) {
		t.Errorf("the second-factor redirect %q lacks %s", r.loc(), want)
	}
	bob.enrol(t, bb)
	acctWant(t, bb.get(t, accept), 200, "Invitation to "+project, "as <strong>Maintainer</strong>")
	r = bb.post(t, "/account/verify-project-role/", url.Values{"token": {tok.Query().Get("token")}, "action": {"accept"}})
	acctWantRedirect(t, r, "/project/"+project+"/")
	acctWant(t, bb.follow(t, r), 200, "You are now Maintainer of "+project+".")
	env.mail.take(t, alice.email, "Collaborator added notification")
	env.mail.take(t, bob.email, "You have joined the "+project+" project")
	// The link worked once.
	acctWant(t, bb.get(t, accept), 410, "This invitation is no longer valid")

	// Bob uploads with Debian's twine and a token for this project only.
	bobToken := env.createToken(t, "bob", "bob's CI", project)
	env.secrets.add("API token bob's CI", bobToken)
	if out, err := twine(bobToken, "1.1"); err != nil {
		t.Fatalf("bob's twine upload as maintainer: %v\n%s", err, out)
	}

	// Alice removes him.
	collab := ab.get(t, page)
	acctWant(t, collab, 200, "bob", "Maintainer")
	var bobID string
	for _, mm := range collabUserIDRE.FindAllStringSubmatch(collab.Body, -1) {
		if mm[1] == strconv.FormatInt(bob.id, 10) {
			bobID = mm[1]
		}
	}
	if bobID == "" {
		t.Fatalf("no form for bob on the collaboration page:\n%s", collab.Body)
	}
	r = ab.post(t, page+"delete/", url.Values{"user_id": {bobID}})
	acctWantRedirect(t, r, page)
	acctWant(t, ab.follow(t, r), 200, "bob is no longer a collaborator on "+project+".")
	env.mail.take(t, bob.email, "You are no longer a collaborator on the "+project+" project")
	env.mail.take(t, alice.email, "Collaborator removed notification")

	// The same token is refused at once, with Warehouse's message.
	before := env.queryInt(t, `SELECT count(*) FROM files`)
	out, err := twine(bobToken, "1.2")
	if err == nil {
		t.Fatalf("bob's twine upload after his removal: exit 0, want a refusal\n%s", out)
	}
	// twine wraps the message; compare with runs of white space as one.
	if want := "The user 'bob' isn't allowed to upload to project '" + project + "'. See " + env.base + "/help/#project-name for more information."; !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
		t.Errorf("twine output after the removal:\n%s\nwant it to contain %q", out, want)
	}
	if after := env.queryInt(t, `SELECT count(*) FROM files`); after != before {
		t.Errorf("files: %d after the refused upload, want %d", after, before)
	}

	// Each change is recorded once on bob's account and on the project.
	env.wantEvents(t, bob.id, map[string]int{"account:role:invite": 1, "account:role:add": 1, "account:role:remove": 1})
	pid := env.queryInt(t, `SELECT id FROM projects WHERE normalized_name = $1`, project)
	for _, tag := range []string{"project:role:invite", "project:role:add", "project:role:remove"} {
		if n := env.queryInt(t, `SELECT count(*) FROM events WHERE project_id = $1 AND tag = $2`, pid, tag); n != 1 {
			t.Errorf("project events %s: %d, want 1", tag, n)
		}
	}
	if n := env.queryInt(t, `SELECT count(*) FROM role_invitations`); n != 0 {
		t.Errorf("%d invitations left, want none", n)
	}
	env.noMail(t, bob.email)
}
