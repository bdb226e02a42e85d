package main

// End-to-end project management: an owner with a second factor yanks a
// release in the browser and Debian's pip skips it unless it is pinned
// exactly; the owner deletes a file and Debian's twine cannot upload it
// again, and prints why. On SQLite and on PostgreSQL, with real SMTP.

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestE2EProjects(t *testing.T) {
	tools := e2eTools(t)
	mfaOathtool(t)
	t.Parallel()
	for _, dialect := range e2eDialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			e2eProjectScenario(t, dialect, tools)
		})
	}
}

var e2eFileIDRE = regexp.MustCompile(`name="file_id" value="([0-9]+)"`)

func e2eProjectScenario(t *testing.T, dialect string, tools e2eToolSet) {
	work := t.TempDir()
	venvc := make(chan e2eVenvResult, 1)
	go func() {
		d, err := e2eVenv(tools, work)
		venvc <- e2eVenvResult{d, err}
	}()
	env := acctStart(t, dialect, acctOpts{})
	venv := <-venvc
	if venv.err != nil {
		t.Fatalf("creating the venv: %v", venv.err)
	}
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	pip := filepath.Join(venv.dir, "bin", "pip")
	py := filepath.Join(venv.dir, "bin", "python")

	alice := mfaNewUser(t, env, "alice", true, false)
	b := env.browser(acctFirefox)
	b.mustLogin(t, alice.name, alice.pw)
	alice.enrol(t, b)
	tok := env.token(t, "alice", "e2e projects")

	dist := t.TempDir()
	var files []string
	for _, v := range []string{"1.0", "2.0"} {
		p := filepath.Join(dist, e2eWheelName("yankdemo", v))
		if err := os.WriteFile(p, e2eWheel(t, "yankdemo", v, e2eMetadata("yankdemo", v)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	twine := func(files ...string) (string, error) {
		args := append([]string{"upload", "--repository-url", env.URL + "/legacy/", "-u", "__token__", "-p", tok,
			"--non-interactive", "--disable-progress-bar"}, files...)
		return e2eExec(home, e2eEnv(home), tools.twine, args...)
	}
	if out, err := twine(files...); err != nil {
		t.Fatalf("twine upload: %v\n%s", err, out)
	}
	bob := mfaNewUser(t, env, "bob", true, false)
	env.exec(t, `INSERT INTO roles (project_id, user_id, role) SELECT id, $1, 'Maintainer' FROM projects WHERE normalized_name = 'yankdemo'`, bob.id)

	installed := func(t *testing.T) string {
		t.Helper()
		return strings.TrimSpace(e2eMustExec(t, work, e2eEnv(home), py, "-c", "import yankdemo; print(yankdemo.VERSION)"))
	}
	install := func(t *testing.T, req string) string {
		t.Helper()
		return e2eMustExec(t, work, e2eEnv(home), pip, "install", "--index-url", env.base+"/simple/", "--force-reinstall", req)
	}

	t.Run("yank: pip skips the release unless pinned exactly", func(t *testing.T) {
		install(t, "yankdemo")
		if got := installed(t); got != "2.0" {
			t.Fatalf("before the yank pip installed %s, want 2.0", got)
		}
		page := b.get(t, "/manage/project/yankdemo/release/2.0/")
		acctWant(t, page, 200, "Yank release", "Type the version <strong>2.0</strong> to confirm")
		r := b.post(t, "/manage/project/yankdemo/release/2.0/yank/", url.Values{"confirm_yank_version": {"2.0"}, "yanked_reason": {"crashes on import"}})
		acctWantRedirect(t, r, "/manage/project/yankdemo/release/2.0/")
		acctWant(t, b.follow(t, r), 200, "Yanked release 2.0", "crashes on import")

		// At once: no wait for a cache to expire.
		out := install(t, "yankdemo")
		if got := installed(t); got != "1.0" {
			t.Errorf("after the yank pip installed %s, want 1.0 (2.0 is yanked)\n%s", got, out)
		}
		out = install(t, "yankdemo==2.0")
		if got := installed(t); got != "2.0" {
			t.Errorf("pinned to the yanked 2.0, pip installed %s\n%s", got, out)
		}
		if !strings.Contains(out, "yanked") || !strings.Contains(out, "crashes on import") {
			t.Errorf("pip did not warn that 2.0 is yanked, with the reason:\n%s", out)
		}
		for _, u := range []*mfaUser{alice, bob} {
			m := env.mail.take(t, u.email, "A release for yankdemo has been yanked.")
			if !strings.Contains(m.Text, "Reason: crashes on import") {
				t.Errorf("the yank email to %s lacks the reason:\n%s", u.name, m.Text)
			}
		}
	})

	t.Run("delete: twine cannot upload the filename again", func(t *testing.T) {
		page := b.get(t, "/manage/project/yankdemo/release/1.0/")
		acctWant(t, page, 200, "The filename can never be uploaded again")
		m := e2eFileIDRE.FindStringSubmatch(page.Body)
		if m == nil {
			t.Fatalf("no file to delete on the release page:\n%s", page.Body)
		}
		name := filepath.Base(files[0])
		before := env.snapshot(t)
		// A wrong confirmation first: refused next to the field, nothing changes.
		r := b.post(t, "/manage/project/yankdemo/release/1.0/delete-file/", url.Values{"file_id": {m[1]}, "confirm_filename": {"yankdemo"}})
		acctWant(t, r, 400, `"yankdemo" is not the filename `+name+`. Type it exactly as shown to confirm.`)
		e2eSameState(t, before, env.snapshot(t))

		r = b.post(t, "/manage/project/yankdemo/release/1.0/delete-file/", url.Values{"file_id": {m[1]}, "confirm_filename": {name}})
		acctWantRedirect(t, r, "/manage/project/yankdemo/release/1.0/")
		acctWant(t, b.follow(t, r), 200, "Deleted the file "+name+". Its filename can never be uploaded again.")
		env.mail.take(t, alice.email, "File deleted for yankdemo 1.0")

		out, err := twine(files[0])
		if err == nil {
			t.Errorf("twine re-upload of the deleted %s succeeded:\n%s", name, out)
		}
		// twine wraps its message to the terminal's width.
		if flat := strings.Join(strings.Fields(out), " "); !strings.Contains(flat, "400 Bad Request") ||
			!strings.Contains(flat, "This filename was previously used by a file that has since been deleted. Use a different version.") {
			t.Errorf("twine does not show why the upload is refused:\n%s", out)
		}
		if st := env.snapshot(t); len(st.Files) != 1 || st.Files[0] != filepath.Base(files[1]) {
			t.Errorf("files after the refused re-upload: %v", st.Files)
		}
	})

	t.Run("history", func(t *testing.T) {
		acctWant(t, b.get(t, "/manage/project/yankdemo/history/"), 200,
			"File "+filepath.Base(files[0])+" deleted by alice", "Release 2.0 yanked by alice: crashes on import",
			"Release 1.0 created by alice", "Project created by alice")
	})

	// Issue 7: a user without 2FA is sent to set it up by every management
	// action (each route routes.go guards with manage, read from its
	// source), changes nothing, and can still browse and pip install.
	t.Run("no 2FA: every management action sends to setup, browsing and pip work", func(t *testing.T) {
		nina := mfaNewUser(t, env, "nina", true, false)
		env.exec(t, `INSERT INTO roles (project_id, user_id, role) SELECT id, $1, 'Owner' FROM projects WHERE normalized_name = 'yankdemo'`, nina.id)
		nb := env.browser(acctSafari)
		nb.mustLogin(t, nina.name, nina.pw)
		before, beforeUsers := env.snapshot(t), secState(t, env, nina.id, alice.id)
		src, err := os.ReadFile("../../internal/web/routes.go")
		if err != nil {
			t.Fatal(err)
		}
		walked := 0
		for _, line := range strings.Split(string(src), "\n") {
			m := acctRouteRE.FindStringSubmatch(line)
			if m == nil || !strings.Contains(line, "s.manage(") {
				continue
			}
			p := strings.NewReplacer("{$}", "", "{project}", "yankdemo", "{version}", "1.0").Replace(m[2])
			form := url.Values{"confirm_project_name": {"yankdemo"}, "confirm_yank_version": {"1.0"}, "description": {"x"}, "scope": {"user"},
				"username": {"alice"}, "role_name": {"Owner"}, "provider": {"google"}, "email": {"ci@p.iam.gserviceaccount.com"}, "project_name": {"nina-new"}}
			var r *acctResp
			if m[1] == "POST" {
				r = nb.post(t, p, form)
			} else {
				r = nb.get(t, p)
			}
			if r.Code != 303 || !strings.HasPrefix(r.loc(), "/manage/account/two-factor/") {
				t.Errorf("%s %s without 2FA: got %d to %q, want the two-factor setup page", m[1], p, r.Code, r.loc())
			}
			walked++
		}
		if walked < 30 {
			t.Fatalf("walked %d management routes; the route reader no longer finds them", walked)
		}
		acctWant(t, nb.follow(t, nb.get(t, "/manage/projects/")), 200, "Two-factor authentication must be enabled on your account to perform this action.")
		e2eSameState(t, before, env.snapshot(t))
		if after := secState(t, env, nina.id, alice.id); after != beforeUsers {
			t.Errorf("management requests without 2FA changed the database:\nbefore:\n%s\nafter:\n%s", beforeUsers, after)
		}
		acctWant(t, nb.get(t, "/"), 200)
		acctWant(t, nb.get(t, "/project/yankdemo/"), 200, "yankdemo")
		install(t, "yankdemo==2.0")
		if got := installed(t); got != "2.0" {
			t.Errorf("pip installed %s, want 2.0", got)
		}
	})
	acctNoSecretsLeaked(t, env)
}
