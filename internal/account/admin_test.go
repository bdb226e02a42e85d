package account

import (
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

func (f *fixture) admin(name string) *User {
	f.t.Helper()
	u, err := f.s.Create(f.ctx, NewUser{Username: name, Email: name + "@example.com", Password: goodPassword, IsAdmin: true})
	must(f.t, err)
	return u
}

func (f *fixture) insertSession(hash string, userID int64) {
	f.t.Helper()
	now := time.Now().UTC()
	_, err := f.d.Exec(`INSERT INTO sessions (id_hash, user_id, auth_level, created_at, last_seen_at, expires_at) VALUES ($1, $2, 1, $3, $3, $4)`,
		hash, userID, now, now.Add(time.Hour))
	must(f.t, err)
}

func TestSetDisabled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		root := f.admin("root")
		u := f.registerVerified("alice")
		other := f.register("bob")
		f.insertSession("s1", u.ID)
		f.insertSession("s2", u.ID)
		f.insertSession("s3", other.ID)
		c := client("192.0.2.1")

		wantErr(t, f.s.SetDisabled(f.ctx, root.ID, root.ID, true, "", c), derrors.Invalid, "You can't disable your own account.")
		wantErr(t, f.s.SetDisabled(f.ctx, other.ID, u.ID, true, "", c), derrors.Forbidden, "Only administrators can do this.")
		wantErr(t, f.s.SetDisabled(f.ctx, root.ID, 999999, true, "", c), derrors.NotFound, "")

		must(t, f.s.SetDisabled(f.ctx, root.ID, u.ID, true, " spam ", c))
		got, _ := f.s.ByID(f.ctx, u.ID)
		if !got.Disabled || got.DisabledReason != "spam" {
			t.Errorf("user %+v", got)
		}
		if n := f.count(`SELECT COUNT(*) FROM sessions WHERE user_id = $1`, u.ID); n != 0 {
			t.Errorf("%d sessions left after disabling", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM sessions WHERE user_id = $1`, other.ID); n != 1 {
			t.Errorf("another user's sessions ended too (%d left)", n)
		}
		e := f.lastEvent(audit.AdminUserDisabled)
		if e.UserID != u.ID || e.ActorID != root.ID || e.Actor != "root" || e.Additional["reason"] != "spam" || e.IP != "192.0.2.1" {
			t.Errorf("event %+v", e)
		}
		_, err := f.s.CheckLogin(f.ctx, "alice", goodPassword, c)
		wantErr(t, err, derrors.Forbidden, "Your account has been disabled.")

		must(t, f.s.SetDisabled(f.ctx, root.ID, u.ID, false, "ignored", c))
		got, _ = f.s.ByID(f.ctx, u.ID)
		if got.Disabled || got.DisabledReason != "" {
			t.Errorf("user %+v", got)
		}
		if e := f.lastEvent(audit.AdminUserEnabled); e.UserID != u.ID || e.ActorID != root.ID {
			t.Errorf("event %+v", e)
		}
		if _, err := f.s.CheckLogin(f.ctx, "alice", goodPassword, c); err != nil {
			t.Errorf("login after enabling: %v", err)
		}
	})
}

func TestSiteSettings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		root := f.admin("root")
		user := f.register("alice")
		c := client("192.0.2.1")

		if !f.s.RegistrationOpen(f.ctx) || f.s.ReadOnly(f.ctx) {
			t.Fatal("defaults: want registration open (Options) and read-only off")
		}
		closedByDefault := NewService(Options{DB: d})
		if closedByDefault.RegistrationOpen(f.ctx) {
			t.Error("DefaultRegistrationOpen false: registration open")
		}

		wantErr(t, f.s.SetRegistrationOpen(f.ctx, user.ID, false, c), derrors.Forbidden, "Only administrators")
		wantErr(t, f.s.SetReadOnly(f.ctx, user.ID, true, c), derrors.Forbidden, "Only administrators")

		must(t, f.s.SetRegistrationOpen(f.ctx, root.ID, false, c))
		if f.s.RegistrationOpen(f.ctx) {
			t.Error("registration still open")
		}
		e := f.lastEvent(audit.AdminRegistrationChanged)
		if e.ActorID != root.ID || e.Actor != "root" || e.Additional["open"] != false {
			t.Errorf("event %+v", e)
		}
		// The stored switch wins over the default, both ways.
		if closedByDefault.RegistrationOpen(f.ctx) {
			t.Error("stored 'closed' not honoured")
		}
		must(t, f.s.SetRegistrationOpen(f.ctx, root.ID, true, c))
		if !f.s.RegistrationOpen(f.ctx) || !closedByDefault.RegistrationOpen(f.ctx) {
			t.Error("registration not reopened")
		}

		must(t, f.s.SetReadOnly(f.ctx, root.ID, true, c))
		if !f.s.ReadOnly(f.ctx) {
			t.Error("read-only not on")
		}
		if e := f.lastEvent(audit.AdminReadOnlyChanged); e.ActorID != root.ID || e.Additional["read_only"] != true {
			t.Errorf("event %+v", e)
		}
		must(t, f.s.SetReadOnly(f.ctx, root.ID, false, c))
		if f.s.ReadOnly(f.ctx) {
			t.Error("read-only still on")
		}
		if n := f.count(`SELECT COUNT(*) FROM events WHERE tag IN ($1, $2)`, audit.AdminRegistrationChanged, audit.AdminReadOnlyChanged); n != 4 {
			t.Errorf("%d setting events, want 4", n)
		}
	})
}

func TestDeleteAccount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		u := f.registerVerified("alice")
		bob := f.register("bob")
		f.insertSession("alice-session", u.ID)
		c := client("192.0.2.1")
		project := func(name string) int64 {
			var id int64
			must(t, d.QueryRow(`INSERT INTO projects (name, normalized_name, ultranormalized_name, created_at) VALUES ($1, $2, $2, $3) RETURNING id`,
				name, name, time.Now().UTC()).Scan(&id))
			return id
		}
		role := func(pid, uid int64, r string) {
			_, err := d.Exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, $3)`, pid, uid, r)
			must(t, err)
		}
		zeta, alpha, shared, maint := project("zeta"), project("alpha"), project("shared"), project("maint")
		role(zeta, u.ID, "Owner")
		role(alpha, u.ID, "Owner")
		role(shared, u.ID, "Owner")
		role(shared, bob.ID, "Owner")
		role(maint, u.ID, "Maintainer")

		wantErr(t, f.s.DeleteAccount(f.ctx, u.ID, "wrong-password", c), derrors.Invalid, "The password is invalid.")
		err := f.s.DeleteAccount(f.ctx, u.ID, goodPassword, c)
		wantErr(t, err, derrors.Conflict, "Cannot delete account with active project ownerships. Transfer or delete these projects first: alpha, zeta")

		_, err = d.Exec(`UPDATE roles SET user_id = $1 WHERE user_id = $2 AND project_id IN ($3, $4)`, bob.ID, u.ID, zeta, alpha)
		must(t, err)
		must(t, f.s.DeleteAccount(f.ctx, u.ID, goodPassword, c))

		if _, err := f.s.ByID(f.ctx, u.ID); err == nil {
			t.Error("user still exists")
		}
		for _, q := range []string{
			`SELECT COUNT(*) FROM user_emails WHERE user_id = $1`,
			`SELECT COUNT(*) FROM sessions WHERE user_id = $1`,
			`SELECT COUNT(*) FROM roles WHERE user_id = $1`,
			`SELECT COUNT(*) FROM one_time_tokens WHERE user_id = $1`,
		} {
			if n := f.count(q, u.ID); n != 0 {
				t.Errorf("%s: %d rows left", q, n)
			}
		}
		// The history outlives the account, the deletion included.
		e := f.lastEvent(audit.AccountDelete)
		if e.UserID != u.ID || e.Actor != "alice" {
			t.Errorf("event %+v", e)
		}
		if tags := f.tags(u.ID); len(tags) < 3 || tags[0] != audit.AccountCreate || tags[len(tags)-1] != audit.AccountDelete {
			t.Errorf("history after deletion: %v", tags)
		}
		if m := f.lastMail("alice@example.com", "account-deleted"); m.Data["Username"] != "alice" || len(m.Data) != 1 {
			t.Errorf("account-deleted %+v", m)
		}
		// The address and username are free again.
		f.register("alice")
	})
}

func TestDeleteLastAdmin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		root := f.admin("root")
		c := client("1")
		wantErr(t, f.s.DeleteAccount(f.ctx, root.ID, goodPassword, c), derrors.Conflict, "You are the only administrator.")
		f.admin("root2")
		must(t, f.s.DeleteAccount(f.ctx, root.ID, goodPassword, c))
	})
}
