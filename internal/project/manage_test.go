package project

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// wantRefused checks err is a person-fixable error of kind about field
// ("" for none) and that the database is as it was.
func wantRefused(t *testing.T, d *db.DB, before string, err error, kind error, field string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want a %v error", err, kind)
	}
	if got := derrors.FieldOf(err); got != field {
		t.Errorf("field: got %q, want %q (message %q)", got, field, err)
	}
	if after := dbState(t, d); after != before {
		t.Errorf("a refused action changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestYankAndUnyank(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		serial := f.int(`SELECT last_serial FROM projects WHERE id = $1`, f.projID)

		before := dbState(t, d)
		for _, c := range []struct {
			name             string
			who              Actor
			version, confirm string
			kind             error
			field            string
		}{
			{"nothing typed", f.owner, "1.0", "", derrors.Invalid, "confirm_yank_version"},
			{"another version typed", f.owner, "1.0", "2.0", derrors.Invalid, "confirm_yank_version"},
			{"a maintainer", f.maint, "1.0", "1.0", derrors.Forbidden, ""},
			{"a stranger", f.other, "1.0", "1.0", derrors.Forbidden, ""},
			{"no such release", f.owner, "3.0", "3.0", derrors.NotFound, ""},
			{"not a version", f.owner, "bogus!", "bogus!", derrors.NotFound, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				wantRefused(t, d, before, f.s.Yank(f.ctx, c.who, "demo-pkg", c.version, c.confirm, "broken"), c.kind, c.field)
			})
		}
		wantRefused(t, d, before, f.s.Yank(f.ctx, f.owner, "demo-pkg", "1.0", "1.0", strings.Repeat("x", 501)), derrors.Invalid, "yanked_reason")

		if err := f.s.Yank(f.ctx, f.owner, "demo-pkg", "1.0", " 1.0 ", " broken on 3.13 "); err != nil {
			t.Fatal(err)
		}
		dt, err := f.s.Detail(f.ctx, "demo-pkg")
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := dt.Release("1.0")
		if !rel.Yanked || rel.YankedReason != "broken on 3.13" {
			t.Errorf("after yank: yanked %v, reason %q", rel.Yanked, rel.YankedReason)
		}
		if got := f.int(`SELECT last_serial FROM projects WHERE id = $1`, f.projID); got <= serial {
			t.Errorf("serial: got %d, want above %d (the journal moves it, so caches drop the page)", got, serial)
		}
		if got := f.strings(`SELECT action FROM journal WHERE project_id = $1`, f.projID); !slices.Equal(got, []string{"yank release"}) {
			t.Errorf("journal: got %q", got)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.ProjectReleaseYank}) {
			t.Errorf("events: got %q", got)
		}
		want := []string{"alice@example.com: [Gatehouse Test] A release for Demo-Pkg has been yanked.",
			"bob@example.com: [Gatehouse Test] A release for Demo-Pkg has been yanked."}
		if got := f.mail(); !slices.Equal(got, want) {
			t.Errorf("mail: got %q, want %q", got, want)
		}
		body := f.strings(`SELECT text_body FROM outbox WHERE to_addr = 'bob@example.com'`)[0]
		for _, s := range []string{"Reason: broken on 3.13", "Yanked by: alice with a role: owner", "you are a maintainer"} {
			if !strings.Contains(body, s) {
				t.Errorf("email to the maintainer lacks %q:\n%s", s, body)
			}
		}

		// Yanked twice is a conflict, and changes nothing.
		again := dbState(t, d)
		wantRefused(t, d, again, f.s.Yank(f.ctx, f.owner, "demo-pkg", "1.0", "1.0", ""), derrors.Conflict, "")
		wantRefused(t, d, again, f.s.Unyank(f.ctx, f.owner, "demo-pkg", "1.0", "1"), derrors.Invalid, "confirm_unyank_version")
		wantRefused(t, d, again, f.s.Unyank(f.ctx, f.owner, "demo-pkg", "2.0", "2.0"), derrors.Conflict, "")

		if err := f.s.Unyank(f.ctx, f.owner, "demo-pkg", "1.0", "1.0"); err != nil {
			t.Fatal(err)
		}
		dt, _ = f.s.Detail(f.ctx, "demo-pkg")
		if rel, _ := dt.Release("1.0"); rel.Yanked || rel.YankedReason != "" {
			t.Errorf("after un-yank: yanked %v, reason %q", rel.Yanked, rel.YankedReason)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.ProjectReleaseYank, audit.ProjectReleaseUnyank}) {
			t.Errorf("events: got %q", got)
		}
		if got := len(f.mail()); got != 4 {
			t.Errorf("mail after un-yank: got %d messages, want 4", got)
		}
	})
}

func TestRemoveFile(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		whl := f.files["demo_pkg-1.0-py3-none-any.whl"]
		sdist := f.files["demo_pkg-1.0.tar.gz"]
		total := f.int(`SELECT total_size FROM projects WHERE id = $1`, f.projID)
		// A file logged before the log kept digests.
		f.exec(`UPDATE filename_log SET blake2_256_digest = NULL WHERE filename = 'demo_pkg-1.0-py3-none-any.whl'`)

		before := dbState(t, d)
		wantRefused(t, d, before, f.s.RemoveFile(f.ctx, f.owner, "demo-pkg", "1.0", whl.id, "demo_pkg-1.0.tar.gz"), derrors.Invalid, "confirm_filename")
		wantRefused(t, d, before, f.s.RemoveFile(f.ctx, f.owner, "demo-pkg", "1.0", whl.id, ""), derrors.Invalid, "confirm_filename")
		// A file of another release, by id: not this release's.
		other := f.files["demo_pkg-2.0-py3-none-any.whl"]
		wantRefused(t, d, before, f.s.RemoveFile(f.ctx, f.owner, "demo-pkg", "1.0", other.id, "demo_pkg-2.0-py3-none-any.whl"), derrors.NotFound, "")
		wantRefused(t, d, before, f.s.RemoveFile(f.ctx, f.maint, "demo-pkg", "1.0", whl.id, "demo_pkg-1.0-py3-none-any.whl"), derrors.Forbidden, "")

		if err := f.s.RemoveFile(f.ctx, f.owner, "demo-pkg", "1.0", whl.id, "demo_pkg-1.0-py3-none-any.whl"); err != nil {
			t.Fatal(err)
		}
		if got := f.strings(`SELECT filename FROM files ORDER BY filename`); !slices.Equal(got, []string{"demo_pkg-1.0.tar.gz", "demo_pkg-2.0-py3-none-any.whl"}) {
			t.Errorf("files left: %q", got)
		}
		if got := f.strings(`SELECT blake2_256_digest FROM filename_log WHERE filename = 'demo_pkg-1.0-py3-none-any.whl'`); len(got) != 1 || !strings.HasSuffix(whl.key, got[0]) {
			t.Errorf("filename log keeps the name with the digest: got %q, want the digest of %s", got, whl.key)
		}
		if got := f.int(`SELECT total_size FROM projects WHERE id = $1`, f.projID); got != total-int64(len(whl.content)) {
			t.Errorf("total size: got %d, want %d", got, total-int64(len(whl.content)))
		}
		if f.hasBlob(whl.key) || f.hasBlob(whl.key+".metadata") {
			t.Error("the deleted file's bytes or metadata are still in the blob store")
		}
		if !f.hasBlob(sdist.key) {
			t.Error("the other file's bytes are gone")
		}
		if _, err := f.s.FileByDigest(f.ctx, whl.key[6:]); !errors.Is(err, derrors.NotFound) {
			t.Errorf("FileByDigest of the deleted file: got %v, want NotFound", err)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.FileRemove}) {
			t.Errorf("events: got %q", got)
		}
		if got := f.strings(`SELECT action FROM journal WHERE project_id = $1`, f.projID); !slices.Equal(got, []string{"remove file demo_pkg-1.0-py3-none-any.whl"}) {
			t.Errorf("journal: got %q", got)
		}
		if got := f.mail(); len(got) != 2 || !strings.Contains(got[0], "File deleted for Demo-Pkg 1.0") {
			t.Errorf("mail: got %q", got)
		}
	})
}

func TestRemoveRelease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		before := dbState(t, d)
		wantRefused(t, d, before, f.s.RemoveRelease(f.ctx, f.owner, "demo-pkg", "1.0", "1.0.0"), derrors.Invalid, "confirm_delete_version")
		wantRefused(t, d, before, f.s.RemoveRelease(f.ctx, f.other, "demo-pkg", "1.0", "1.0"), derrors.Forbidden, "")

		if err := f.s.RemoveRelease(f.ctx, f.owner, "demo-pkg", "1.0", "1.0"); err != nil {
			t.Fatal(err)
		}
		if got := f.strings(`SELECT version FROM releases`); !slices.Equal(got, []string{"2.0"}) {
			t.Errorf("releases left: %q", got)
		}
		if got := f.strings(`SELECT filename FROM files`); !slices.Equal(got, []string{"demo_pkg-2.0-py3-none-any.whl"}) {
			t.Errorf("files left: %q", got)
		}
		if got := f.int(`SELECT count(*) FROM filename_log`); got != 3 {
			t.Errorf("filename log: %d names, want all 3 kept", got)
		}
		for _, name := range []string{"demo_pkg-1.0.tar.gz", "demo_pkg-1.0-py3-none-any.whl"} {
			if f.hasBlob(f.files[name].key) {
				t.Errorf("%s: bytes still stored", name)
			}
		}
		if got := f.int(`SELECT total_size FROM projects WHERE id = $1`, f.projID); got != int64(len(f.files["demo_pkg-2.0-py3-none-any.whl"].content)) {
			t.Errorf("total size: got %d", got)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.ProjectReleaseRemove}) {
			t.Errorf("events: got %q", got)
		}
		if got := f.mail(); len(got) != 2 || !strings.Contains(got[0], "A release for Demo-Pkg has been deleted.") {
			t.Errorf("mail: got %q", got)
		}
	})
}

func TestRemoveProject(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		before := dbState(t, d)
		// The display name, exactly: the normalized name is not it.
		wantRefused(t, d, before, f.s.RemoveProject(f.ctx, f.owner, "demo-pkg", "demo-pkg"), derrors.Invalid, "confirm_project_name")
		wantRefused(t, d, before, f.s.RemoveProject(f.ctx, f.maint, "demo-pkg", "Demo-Pkg"), derrors.Forbidden, "")
		wantRefused(t, d, before, f.s.RemoveProject(f.ctx, f.owner, "nope", "nope"), derrors.NotFound, "")

		if err := f.s.RemoveProject(f.ctx, f.owner, "demo-pkg", "Demo-Pkg"); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"projects", "releases", "files", "roles"} {
			if n := f.int(`SELECT count(*) FROM ` + table); n != 0 {
				t.Errorf("%s: %d rows left", table, n)
			}
		}
		if n := f.int(`SELECT count(*) FROM filename_log WHERE blake2_256_digest IS NOT NULL`); n != 3 {
			t.Errorf("filename log: %d names with digests, want 3", n)
		}
		for name, sf := range f.files {
			if f.hasBlob(sf.key) {
				t.Errorf("%s: bytes still stored", name)
			}
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.ProjectRemove}) {
			t.Errorf("events (kept after the project): got %q", got)
		}
		if got := f.strings(`SELECT action FROM journal WHERE name = 'Demo-Pkg'`); !slices.Equal(got, []string{"remove project"}) {
			t.Errorf("journal: got %q", got)
		}
		want := []string{"alice@example.com: [Gatehouse Test] The project Demo-Pkg has been deleted.",
			"bob@example.com: [Gatehouse Test] The project Demo-Pkg has been deleted."}
		if got := f.mail(); !slices.Equal(got, want) {
			t.Errorf("mail: got %q, want %q", got, want)
		}
	})
}

func TestArchive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		before := dbState(t, d)
		wantRefused(t, d, before, f.s.Archive(f.ctx, f.maint, "demo-pkg"), derrors.Forbidden, "")
		wantRefused(t, d, before, f.s.Unarchive(f.ctx, f.owner, "demo-pkg"), derrors.Conflict, "")

		if err := f.s.Archive(f.ctx, f.owner, "demo-pkg"); err != nil {
			t.Fatal(err)
		}
		p, _ := f.s.Get(f.ctx, "demo-pkg")
		if p.Status != StatusArchived || !p.StatusChangedAt.Valid || !p.StatusChangedAt.Time.Equal(mt0) {
			t.Errorf("after archive: status %q, changed %v", p.Status, p.StatusChangedAt)
		}
		wantRefused(t, d, dbState(t, d), f.s.Archive(f.ctx, f.owner, "demo-pkg"), derrors.Conflict, "")
		// Still listed in the root index and still downloadable.
		if _, err := f.s.IndexEntry(f.ctx, "demo-pkg"); err != nil {
			t.Errorf("IndexEntry of an archived project: %v", err)
		}
		if _, err := f.s.FileByDigest(f.ctx, f.files["demo_pkg-2.0-py3-none-any.whl"].key[6:]); err != nil {
			t.Errorf("FileByDigest of an archived project's file: %v", err)
		}
		if err := f.s.Unarchive(f.ctx, f.owner, "demo-pkg"); err != nil {
			t.Fatal(err)
		}
		if p, _ := f.s.Get(f.ctx, "demo-pkg"); p.Status != StatusActive {
			t.Errorf("after unarchive: status %q", p.Status)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.ProjectArchiveEnter, audit.ProjectArchiveExit}) {
			t.Errorf("events: got %q", got)
		}
		if got := f.strings(`SELECT action FROM journal WHERE project_id = $1 ORDER BY id`, f.projID); !slices.Equal(got, []string{"archive project", "unarchive project"}) {
			t.Errorf("journal: got %q", got)
		}
		if got := f.mail(); len(got) != 0 {
			t.Errorf("mail: got %q, want none (PyPI sends none for archiving)", got)
		}
	})
}

func TestQuarantine(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		before := dbState(t, d)
		wantRefused(t, d, before, f.s.Quarantine(f.ctx, f.owner, "demo-pkg", "malware"), derrors.Forbidden, "")
		wantRefused(t, d, before, f.s.Quarantine(f.ctx, f.admin, "demo-pkg", "  "), derrors.Invalid, "reason")
		wantRefused(t, d, before, f.s.Quarantine(f.ctx, f.admin, "demo-pkg", strings.Repeat("r", 501)), derrors.Invalid, "reason")
		wantRefused(t, d, before, f.s.ClearQuarantine(f.ctx, f.admin, "demo-pkg"), derrors.Conflict, "")

		if err := f.s.Quarantine(f.ctx, f.admin, "demo-pkg", "reported as malware"); err != nil {
			t.Fatal(err)
		}
		if p, _ := f.s.Get(f.ctx, "demo-pkg"); p.Status != StatusQuarantined {
			t.Errorf("status %q, want quarantined", p.Status)
		}
		want := []string{"alice@example.com: [Gatehouse Test] The project Demo-Pkg has been quarantined.",
			"bob@example.com: [Gatehouse Test] The project Demo-Pkg has been quarantined."}
		if got := f.mail(); !slices.Equal(got, want) {
			t.Errorf("mail: got %q, want %q", got, want)
		}
		// Nothing is served: not in the root index, no download.
		if _, err := f.s.IndexEntry(f.ctx, "demo-pkg"); !errors.Is(err, derrors.NotFound) {
			t.Errorf("IndexEntry: got %v, want NotFound", err)
		}
		var listed []string
		f.s.EachIndexEntry(f.ctx, func(e IndexEntry) error { listed = append(listed, e.NormalizedName); return nil })
		if len(listed) != 0 {
			t.Errorf("EachIndexEntry lists %q, want none", listed)
		}
		if _, err := f.s.FileByDigest(f.ctx, f.files["demo_pkg-2.0-py3-none-any.whl"].key[6:]); !errors.Is(err, derrors.NotFound) {
			t.Errorf("FileByDigest: got %v, want NotFound", err)
		}
		// The owners see it, and cannot change it.
		if ps, err := f.s.ProjectsOf(f.ctx, f.owner.UserID); err != nil || len(ps) != 1 || ps[0].Status != StatusQuarantined {
			t.Errorf("ProjectsOf the owner: %+v, %v", ps, err)
		}
		frozen := dbState(t, d)
		for name, err := range map[string]error{
			"yank":           f.s.Yank(f.ctx, f.owner, "demo-pkg", "1.0", "1.0", ""),
			"archive":        f.s.Archive(f.ctx, f.owner, "demo-pkg"),
			"delete file":    f.s.RemoveFile(f.ctx, f.owner, "demo-pkg", "1.0", f.files["demo_pkg-1.0.tar.gz"].id, "demo_pkg-1.0.tar.gz"),
			"delete release": f.s.RemoveRelease(f.ctx, f.owner, "demo-pkg", "1.0", "1.0"),
			"delete project": f.s.RemoveProject(f.ctx, f.owner, "demo-pkg", "Demo-Pkg"),
			"change a role": func() error {
				_, err := f.s.ChangeRole(f.ctx, f.owner, f.projID, f.maint.UserID, RoleOwner)
				return err
			}(),
			"remove a role": func() error { _, err := f.s.RemoveCollaborator(f.ctx, f.owner, f.projID, f.maint.UserID); return err }(),
		} {
			t.Run(name, func(t *testing.T) { wantRefused(t, d, frozen, err, derrors.Forbidden, "") })
		}

		if err := f.s.ClearQuarantine(f.ctx, f.admin, "demo-pkg"); err != nil {
			t.Fatal(err)
		}
		if p, _ := f.s.Get(f.ctx, "demo-pkg"); p.Status != StatusActive {
			t.Errorf("after clearing: status %q", p.Status)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.ProjectQuarantineEnter, audit.ProjectQuarantineExit}) {
			t.Errorf("events: got %q", got)
		}
		if got := len(f.mail()); got != 4 {
			t.Errorf("mail: %d messages, want 4", got)
		}
		var reason string
		d.QueryRow(`SELECT additional FROM events WHERE tag = $1`, audit.ProjectQuarantineEnter).Scan(&reason)
		if !strings.Contains(reason, "reported as malware") {
			t.Errorf("the quarantine event lacks the reason: %s", reason)
		}
	})
}

func TestSetLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		before := dbState(t, d)
		for _, c := range []struct {
			form  LimitsForm
			field string
		}{
			{LimitsForm{UploadLimitMiB: "lots"}, "upload_limit"},
			{LimitsForm{UploadLimitMiB: "0"}, "upload_limit"},
			{LimitsForm{UploadLimitMiB: "-5"}, "upload_limit"},
			{LimitsForm{UploadLimitMiB: "1.5"}, "upload_limit"},
			{LimitsForm{TotalSizeLimitGiB: "99999999999"}, "total_size_limit"},
			{LimitsForm{UploadLimitMiB: "200", ReleaseAgeDays: "36501"}, "release_age_days"},
		} {
			wantRefused(t, d, before, f.s.SetLimits(f.ctx, f.admin, "demo-pkg", c.form), derrors.Invalid, c.field)
		}
		wantRefused(t, d, before, f.s.SetLimits(f.ctx, f.owner, "demo-pkg", LimitsForm{ReleaseAgeDays: "365"}), derrors.Forbidden, "")

		if err := f.s.SetLimits(f.ctx, f.admin, "demo-pkg", LimitsForm{UploadLimitMiB: " 200 ", ReleaseAgeDays: "30"}); err != nil {
			t.Fatal(err)
		}
		p, _ := f.s.Get(f.ctx, "demo-pkg")
		if p.UploadLimit.Int64 != 200<<20 || p.TotalSizeLimit.Valid || p.ReleaseAgeDays.Int64 != 30 {
			t.Errorf("limits: %+v %+v %+v", p.UploadLimit, p.TotalSizeLimit, p.ReleaseAgeDays)
		}
		if got := f.s.ReleaseAgeDays(p); got != 30 {
			t.Errorf("ReleaseAgeDays: got %d, want the override 30", got)
		}
		if got := f.s.FileLimit(f.ctx, "Demo_Pkg"); got != 200<<20 {
			t.Errorf("FileLimit: got %d", got)
		}
		if got := f.tags(); !slices.Equal(got, []string{audit.AdminProjectUploadLimit, audit.AdminProjectReleaseAge}) {
			t.Errorf("events: got %q (one per value that changed)", got)
		}
		// Saving the same values again records nothing; emptying one
		// goes back to the site default.
		if err := f.s.SetLimits(f.ctx, f.admin, "demo-pkg", LimitsForm{UploadLimitMiB: "200", ReleaseAgeDays: ""}); err != nil {
			t.Fatal(err)
		}
		p, _ = f.s.Get(f.ctx, "demo-pkg")
		if p.ReleaseAgeDays.Valid || f.s.ReleaseAgeDays(p) != DefaultReleaseAgeDays {
			t.Errorf("release age after emptying: %+v, effective %d", p.ReleaseAgeDays, f.s.ReleaseAgeDays(p))
		}
		if got := f.tags(); len(got) != 3 || got[2] != audit.AdminProjectReleaseAge {
			t.Errorf("events: got %q", got)
		}
		var descs []string
		evs, _ := audit.NewService(d, f.clock.Now).ForProject(f.ctx, f.projID, 0, 10)
		for _, e := range evs {
			descs = append(descs, audit.Describe(e))
		}
		want := []string{
			"Releases take new files for the site's default number of days again, set by administrator root",
			"Releases now take new files for 30 days, set by administrator root",
			"Largest file set to 200 MiB by administrator root",
		}
		if !slices.Equal(descs, want) {
			t.Errorf("history: got %q, want %q", descs, want)
		}
	})
}

// A role removed after the page's guard ran cannot act: the role is read
// again inside the transaction.
func TestChangesRecheckTheRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		f.exec(`DELETE FROM roles WHERE user_id = $1`, f.owner.UserID)
		before := dbState(t, d)
		wantRefused(t, d, before, f.s.Archive(f.ctx, f.owner, "demo-pkg"), derrors.Forbidden, "")
		wantRefused(t, d, before, f.s.Yank(f.ctx, f.owner, "demo-pkg", "1.0", "1.0", ""), derrors.Forbidden, "")
		// An administrator who lost the flag is no administrator.
		f.exec(`UPDATE users SET is_admin = FALSE WHERE id = $1`, f.admin.UserID)
		wantRefused(t, d, dbState(t, d), f.s.Quarantine(f.ctx, f.admin, "demo-pkg", "x"), derrors.Forbidden, "")
	})
}

func TestProjectsOfAndSearch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMfix(t, d)
		f.exec(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ('zeta', 'zeta', 'zeta', $1)`, mt0)
		f.exec(`INSERT INTO roles (project_id, user_id, role) SELECT id, $1, 'Owner' FROM projects WHERE normalized_name = 'zeta'`, f.maint.UserID)
		ps, err := f.s.ProjectsOf(f.ctx, f.maint.UserID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.Name+":"+p.Role+":"+string(rune('0'+p.Releases)))
		}
		if want := []string{"Demo-Pkg:Maintainer:2", "zeta:Owner:0"}; !slices.Equal(got, want) {
			t.Errorf("ProjectsOf: got %q, want %q", got, want)
		}
		if !ps[0].LastRelease.Equal(mt0.Add(-24*time.Hour)) || !ps[1].LastRelease.IsZero() {
			t.Errorf("last releases: %v, %v", ps[0].LastRelease, ps[1].LastRelease)
		}
		if ps, _ := f.s.ProjectsOf(f.ctx, f.other.UserID); len(ps) != 0 {
			t.Errorf("a stranger's projects: %+v", ps)
		}
		for q, want := range map[string][]string{"demo": {"demo-pkg"}, "Demo_PKG": {"demo-pkg"}, "%": {"demo-pkg", "zeta"}, "e": {"demo-pkg", "zeta"}, "x_": nil} {
			ps, err := f.s.Search(f.ctx, q, 10)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range ps {
				names = append(names, p.NormalizedName)
			}
			if !slices.Equal(names, want) {
				t.Errorf("Search(%q): got %q, want %q", q, names, want)
			}
		}
	})
}
