package project

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

var ctx = context.Background()

// wantErr fails unless err is of kind with a message containing msg.
func wantErr(t *testing.T, what string, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want kind %v", what, err, kind)
	}
	if m, _ := derrors.Message(err); !strings.Contains(m, msg) {
		t.Fatalf("%s: message %q, want it to contain %q", what, m, msg)
	}
}

func TestInviteAndAccept(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		ev, ob := f.lastEvent(), f.lastOutbox()
		inv, err := f.s.Invite(ctx, f.actor("alice"), f.project.ID, " Bob ", "Maintainer")
		if err != nil {
			t.Fatal(err)
		}
		if inv.Username != "bob" || inv.Role != RoleMaintainer || inv.Inviter != "alice" || !inv.ExpiresAt.Equal(collabT0.Add(72*time.Hour)) {
			t.Errorf("invitation %+v", inv)
		}
		ms := f.wantMails(ob, "bob@example.com verify-project-role")
		if ms[0].subject != "[Gatehouse] alice has invited you to join the Demo-Pkg project" {
			t.Errorf("subject %q", ms[0].subject)
		}
		_, _, raw := f.inviteLinks(ms[0])
		// Only the token's hash is stored.
		var stored string
		if err := d.QueryRow(`SELECT token_hash FROM role_invitations WHERE id = $1`, inv.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != HashInvitationToken(raw) {
			t.Errorf("stored %q for token %q: want its SHA-256", stored, raw)
		}
		f.exec(`UPDATE outbox SET text_body = '', html_body = ''`) // as the mail worker does once sent
		if strings.Contains(f.snapshot(), raw) {
			t.Errorf("the raw token is stored somewhere")
		}
		bob := f.users["bob"]
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:invite", actor: "alice", add: `"target_user":"bob";"role_name":"Maintainer";"submitted_by":"alice"`},
			event{user: bob, tag: "account:role:invite", actor: "alice", add: `"project_name":"Demo-Pkg";"role_name":"Maintainer"`})
		if got := f.journal(f.project); !reflect.DeepEqual(got, []string{"invite Maintainer bob"}) {
			t.Errorf("journal %q", got)
		}
		if p, _ := f.s.Get(ctx, "demo-pkg"); p.LastSerial == f.project.LastSerial {
			t.Errorf("last serial unchanged by the invitation's journal entry")
		}
		// Bob does not hold the role yet.
		if r, _ := f.s.Role(ctx, f.project.ID, bob); r != "" {
			t.Fatalf("bob's role before accepting: %q", r)
		}
		pending, err := f.s.PendingInvitations(ctx, bob)
		if err != nil || len(pending) != 1 || pending[0].ID != inv.ID || pending[0].Project != "Demo-Pkg" {
			t.Fatalf("pending invitations of bob: %+v, %v", pending, err)
		}

		shown, err := f.s.InvitationByToken(ctx, bob, raw)
		if err != nil || shown.ID != inv.ID {
			t.Fatalf("InvitationByToken: %+v, %v", shown, err)
		}
		ev, ob = f.lastEvent(), f.lastOutbox()
		if _, err := f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true); err != nil {
			t.Fatal(err)
		}
		if got := f.roles(f.project); !reflect.DeepEqual(got, []string{"alice:Owner", "bob:Maintainer"}) {
			t.Errorf("roles after accepting: %v", got)
		}
		f.wantMails(ob, "alice@example.com collaborator-added", "bob@example.com added-as-collaborator")
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:add", actor: "bob", add: `"target_user":"bob";"invited_by":"alice"`},
			event{user: bob, tag: "account:role:add", actor: "bob", add: `"project_name":"Demo-Pkg";"role_name":"Maintainer"`})
		if got := f.journal(f.project); !reflect.DeepEqual(got, []string{"invite Maintainer bob", "accepted Maintainer bob"}) {
			t.Errorf("journal %q", got)
		}
		if p, _ := f.s.PendingInvitations(ctx, bob); len(p) != 0 {
			t.Errorf("pending after accepting: %+v", p)
		}

		// The link works once.
		before := f.snapshot()
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true)
		wantErr(t, "second use of the link", err, derrors.Gone, "no longer valid")
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), raw, false)
		wantErr(t, "declining with the used link", err, derrors.Gone, "no longer valid")
		if after := f.snapshot(); after != before {
			t.Errorf("a used link changed the database:\nbefore %s\nafter %s", before, after)
		}
	})
}

func TestInviteBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		f.addUser("unverified", false)
		noEmail := f.addUser("noemail", true)
		f.exec(`DELETE FROM user_emails WHERE user_id = $1`, noEmail)
		f.addUser("dora", true)
		f.exec(`UPDATE users SET disabled = TRUE WHERE username = 'dora'`)
		f.invite("carol", "Owner")
		f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Maintainer')`, f.project.ID, f.users["bob"])
		f.addProject("Other", "bob")

		for _, tc := range []struct {
			name, username, role string
			project              int64
			kind                 error
			msg                  string
		}{
			{"empty username", "  ", "Maintainer", f.project.ID, derrors.Invalid, "Enter the username"},
			{"unknown user", "nobody", "Maintainer", f.project.ID, derrors.Invalid, `There is no user named "nobody"`},
			{"unverified invitee", "unverified", "Maintainer", f.project.ID, derrors.Invalid, "unverified does not have a verified primary email address"},
			{"invitee without an address", "noemail", "Maintainer", f.project.ID, derrors.Invalid, "noemail does not have a verified primary email address"},
			{"disabled account", "dora", "Maintainer", f.project.ID, derrors.Invalid, "The account dora is disabled"},
			{"yourself", "ALICE", "Owner", f.project.ID, derrors.Invalid, "You cannot invite yourself"},
			{"already a collaborator", "bob", "Owner", f.project.ID, derrors.Conflict, "bob is already Maintainer of Demo-Pkg"},
			{"already invited", "carol", "Maintainer", f.project.ID, derrors.Conflict, "carol already has a pending invitation to Demo-Pkg, which expires 2026-03-04 12:00 UTC"},
			{"bad role", "carol", "Admin", f.project.ID, derrors.Invalid, "Choose a role: Owner"},
			{"lower-case role", "carol", "owner", f.project.ID, derrors.Invalid, "Choose a role"},
			{"no such project", "carol", "Owner", 9999, derrors.NotFound, "no longer exists"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := f.snapshot()
				_, err := f.s.Invite(ctx, f.actor("alice"), tc.project, tc.username, tc.role)
				wantErr(t, tc.name, err, tc.kind, tc.msg)
				if after := f.snapshot(); after != before {
					t.Errorf("refused invitation changed the database:\nbefore %s\nafter %s", before, after)
				}
			})
		}
	})
}

func TestInvitationExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		bob := f.users["bob"]
		_, raw := f.invite("bob", "Maintainer")

		// Still good one microsecond before the end.
		f.clock.Set(collabT0.Add(InvitationLifetime - time.Microsecond))
		if _, err := f.s.InvitationByToken(ctx, bob, raw); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		f.clock.Set(collabT0.Add(InvitationLifetime))
		before := f.snapshot()
		_, err := f.s.InvitationByToken(ctx, bob, raw)
		wantErr(t, "expired link", err, derrors.Gone, "This invitation to Demo-Pkg expired on 2026-03-04 12:00 UTC")
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true)
		wantErr(t, "accepting an expired link", err, derrors.Gone, "expired")
		if p, _ := f.s.PendingInvitations(ctx, bob); len(p) != 0 {
			t.Errorf("an expired invitation is still pending: %+v", p)
		}
		pending, _ := listInvitations(ctx, d, `i.user_id = $1`, bob)
		_, err = f.s.AnswerInvitationByID(ctx, f.actor("bob"), pending[0].ID, true)
		wantErr(t, "accepting an expired invitation from the list", err, derrors.Gone, "expired")
		if after := f.snapshot(); after != before {
			t.Errorf("an expired link changed the database:\nbefore %s\nafter %s", before, after)
		}
		if r, _ := f.s.Role(ctx, f.project.ID, bob); r != "" {
			t.Errorf("bob got role %q from an expired link", r)
		}

		// A lapsed invitation can be sent again; the old link stays dead.
		_, raw2 := f.invite("bob", "Owner")
		if raw2 == raw {
			t.Fatal("the new invitation reuses the old token")
		}
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true)
		wantErr(t, "the replaced link", err, derrors.Gone, "no longer valid")
		if _, err := f.s.AnswerInvitation(ctx, f.actor("bob"), raw2, true); err != nil {
			t.Fatal(err)
		}
		if got := f.roles(f.project); !reflect.DeepEqual(got, []string{"alice:Owner", "bob:Owner"}) {
			t.Errorf("roles %v", got)
		}
	})
}

func TestForeignAndForgedLinks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		inv, raw := f.invite("bob", "Owner")
		carol := f.users["carol"]
		before := f.snapshot()
		_, err := f.s.InvitationByToken(ctx, carol, raw)
		wantErr(t, "someone else's link", err, derrors.Forbidden, "This invitation is for another account")
		_, err = f.s.AnswerInvitation(ctx, f.actor("carol"), raw, true)
		wantErr(t, "accepting someone else's link", err, derrors.Forbidden, "for another account")
		_, err = f.s.AnswerInvitation(ctx, f.actor("carol"), raw, false)
		wantErr(t, "declining someone else's link", err, derrors.Forbidden, "for another account")
		_, err = f.s.AnswerInvitationByID(ctx, f.actor("carol"), inv.ID, true)
		wantErr(t, "accepting someone else's invitation by id", err, derrors.NotFound, "You have no such invitation")
		// One character changed; chosen so it is never the real token
		// (a token ending in "A" once made this the real link, 1 run in 64).
		forged := raw[:len(raw)-1] + "A"
		if raw[len(raw)-1] == 'A' {
			forged = raw[:len(raw)-1] + "B"
		}
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), forged, true)
		wantErr(t, "a forged token", err, derrors.Gone, "no longer valid")
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), "", true)
		wantErr(t, "no token", err, derrors.Invalid, "lacks its invitation token")
		_, err = f.s.AnswerInvitation(ctx, f.actor("bob"), strings.Repeat("x", 500), true)
		wantErr(t, "a huge token", err, derrors.Gone, "no longer valid")
		if after := f.snapshot(); after != before {
			t.Errorf("foreign or forged links changed the database:\nbefore %s\nafter %s", before, after)
		}
	})
}

func TestDeclineAndRevoke(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		bob, carol := f.users["bob"], f.users["carol"]
		// A second owner, to see that every owner hears of a decline.
		f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, f.project.ID, carol)

		inv, _ := f.invite("bob", "Maintainer")
		ev, ob := f.lastEvent(), f.lastOutbox()
		if _, err := f.s.AnswerInvitationByID(ctx, f.actor("bob"), inv.ID, false); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.s.Role(ctx, f.project.ID, bob); r != "" {
			t.Errorf("bob has role %q after declining", r)
		}
		ms := f.wantMails(ob, "alice@example.com project-role-invite-declined", "carol@example.com project-role-invite-declined")
		for _, m := range ms {
			if m.subject != "[Gatehouse] bob declined the invitation to Demo-Pkg" {
				t.Errorf("subject %q", m.subject)
			}
		}
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:decline_invite", actor: "bob", add: `"target_user":"bob"`},
			event{user: bob, tag: "account:role:decline_invite", actor: "bob", add: `"project_name":"Demo-Pkg"`})

		// Revoking: the link dies and the invitee is told.
		_, raw := f.invite("bob", "Maintainer")
		inv2, _ := listInvitations(ctx, d, `i.user_id = $1`, bob)
		ev, ob = f.lastEvent(), f.lastOutbox()
		if _, err := f.s.RevokeInvitation(ctx, f.actor("carol"), f.project.ID, inv2[0].ID); err != nil {
			t.Fatal(err)
		}
		f.wantMails(ob, "bob@example.com project-role-invite-revoked")
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:revoke_invite", actor: "carol", add: `"target_user":"bob"`},
			event{user: bob, tag: "account:role:revoke_invite", actor: "carol", add: `"project_name":"Demo-Pkg"`})
		_, err := f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true)
		wantErr(t, "a revoked link", err, derrors.Gone, "no longer valid")
		before := f.snapshot()
		_, err = f.s.RevokeInvitation(ctx, f.actor("carol"), f.project.ID, inv2[0].ID)
		wantErr(t, "revoking twice", err, derrors.NotFound, "Could not find this invitation")
		if after := f.snapshot(); after != before {
			t.Errorf("revoking twice changed the database")
		}
		want := []string{"invite Maintainer bob", "invite Maintainer bob", "revoke_invite Maintainer bob"}
		if got := f.journal(f.project); !reflect.DeepEqual(got, want) {
			t.Errorf("journal %q, want %q", got, want)
		}

		// An invitation of another project cannot be revoked through this one.
		other := f.addProject("Other", "alice")
		f.project = other
		oinv, _ := f.invite("bob", "Owner")
		before = f.snapshot()
		_, err = f.s.RevokeInvitation(ctx, f.actor("carol"), inv.ProjectID, oinv.ID)
		wantErr(t, "revoking another project's invitation", err, derrors.NotFound, "Could not find this invitation")
		if after := f.snapshot(); after != before {
			t.Errorf("revoking another project's invitation changed the database")
		}

		// A lapsed invitation is revoked without an email.
		f.clock.Advance(InvitationLifetime)
		ob = f.lastOutbox()
		if _, err := f.s.RevokeInvitation(ctx, f.actor("alice"), other.ID, oinv.ID); err != nil {
			t.Fatal(err)
		}
		f.wantMails(ob)
	})
}

func TestChangeRoleRemoveAndLastOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		alice, bob := f.users["alice"], f.users["bob"]
		_, raw := f.invite("bob", "Maintainer")
		if _, err := f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true); err != nil {
			t.Fatal(err)
		}

		// The only owner can neither leave, nor be removed, nor be demoted.
		before := f.snapshot()
		_, err := f.s.Leave(ctx, f.actor("alice"), f.project.ID)
		wantErr(t, "the last owner leaving", err, derrors.Invalid, "You are the only owner of Demo-Pkg, so you cannot leave it")
		_, err = f.s.RemoveCollaborator(ctx, f.actor("alice"), f.project.ID, alice)
		wantErr(t, "the last owner removing herself", err, derrors.Invalid, "You are the only owner of Demo-Pkg, so you cannot leave it")
		_, err = f.s.ChangeRole(ctx, f.actor("alice"), f.project.ID, alice, "Maintainer")
		wantErr(t, "the last owner demoting herself", err, derrors.Invalid, "You are the only owner of Demo-Pkg, so you cannot give up the Owner role")
		_, err = f.s.RemoveCollaborator(ctx, f.actor("bob"), f.project.ID, alice)
		wantErr(t, "removing the last owner", err, derrors.Invalid, "alice is the only owner of Demo-Pkg.")
		_, err = f.s.ChangeRole(ctx, f.actor("alice"), f.project.ID, bob, "Maintainer")
		wantErr(t, "the same role", err, derrors.Invalid, "bob is already Maintainer of Demo-Pkg")
		_, err = f.s.ChangeRole(ctx, f.actor("alice"), f.project.ID, bob, "Superuser")
		wantErr(t, "a bad role", err, derrors.Invalid, "Choose a role")
		_, err = f.s.ChangeRole(ctx, f.actor("alice"), f.project.ID, f.users["carol"], "Owner")
		wantErr(t, "a non-collaborator", err, derrors.NotFound, "That user is not a collaborator on Demo-Pkg")
		_, err = f.s.RemoveCollaborator(ctx, f.actor("alice"), f.project.ID, 424242)
		wantErr(t, "an unknown user id", err, derrors.NotFound, "not a collaborator")
		_, err = f.s.Leave(ctx, f.actor("carol"), f.project.ID)
		wantErr(t, "a stranger leaving", err, derrors.NotFound, "You are not a collaborator on Demo-Pkg")
		other := f.addProject("Other", "carol")
		before = f.snapshot()
		_, err = f.s.RemoveCollaborator(ctx, f.actor("alice"), other.ID, bob)
		wantErr(t, "bob through another project", err, derrors.NotFound, "not a collaborator on Other")
		if after := f.snapshot(); after != before {
			t.Errorf("refused changes changed the database:\nbefore %s\nafter %s", before, after)
		}

		// Promote bob; then alice may step down, and bob is the last owner.
		ev, ob := f.lastEvent(), f.lastOutbox()
		if _, err := f.s.ChangeRole(ctx, f.actor("alice"), f.project.ID, bob, "Owner"); err != nil {
			t.Fatal(err)
		}
		f.wantMails(ob, "alice@example.com collaborator-role-changed", "bob@example.com role-changed-as-collaborator")
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:change", actor: "alice", add: `"target_user":"bob";"role_name":"Owner"`},
			event{user: bob, tag: "account:role:change", actor: "alice", add: `"role_name":"Owner"`})
		ob = f.lastOutbox()
		if _, err := f.s.ChangeRole(ctx, f.actor("alice"), f.project.ID, alice, "Maintainer"); err != nil {
			t.Fatalf("alice stepping down with another owner: %v", err)
		}
		f.wantMails(ob, "bob@example.com collaborator-role-changed", "alice@example.com role-changed-as-collaborator")
		_, err = f.s.ChangeRole(ctx, f.actor("bob"), f.project.ID, bob, "Maintainer")
		wantErr(t, "the new last owner", err, derrors.Invalid, "You are the only owner")

		// Bob removes alice: her role is gone, she and bob are told.
		ev, ob = f.lastEvent(), f.lastOutbox()
		c, err := f.s.RemoveCollaborator(ctx, f.actor("bob"), f.project.ID, alice)
		if err != nil || c.Username != "alice" || c.Role != RoleMaintainer {
			t.Fatalf("remove alice: %+v, %v", c, err)
		}
		if got := f.roles(f.project); !reflect.DeepEqual(got, []string{"bob:Owner"}) {
			t.Errorf("roles %v", got)
		}
		ms := f.wantMails(ob, "bob@example.com collaborator-removed", "alice@example.com removed-as-collaborator")
		for _, m := range ms {
			if m.template == "removed-as-collaborator" && !strings.Contains(m.text, "Removed by: bob") {
				t.Errorf("removal email:\n%s", m.text)
			}
		}
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:remove", actor: "bob", add: `"target_user":"alice";"role_name":"Maintainer"`},
			event{user: alice, tag: "account:role:remove", actor: "bob", add: `"project_name":"Demo-Pkg"`})
		want := []string{"invite Maintainer bob", "accepted Maintainer bob", "change Maintainer bob to Owner", "change Owner alice to Maintainer", "remove Maintainer alice"}
		if got := f.journal(f.project); !reflect.DeepEqual(got, want) {
			t.Errorf("journal %q\nwant %q", got, want)
		}
	})
}

func TestLeave(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		bob := f.users["bob"]
		_, raw := f.invite("bob", "Maintainer")
		if _, err := f.s.AnswerInvitation(ctx, f.actor("bob"), raw, true); err != nil {
			t.Fatal(err)
		}
		ev, ob := f.lastEvent(), f.lastOutbox()
		if _, err := f.s.Leave(ctx, f.actor("bob"), f.project.ID); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.s.Role(ctx, f.project.ID, bob); r != "" {
			t.Errorf("bob still %q after leaving", r)
		}
		f.wantMails(ob, "alice@example.com collaborator-removed", "bob@example.com removed-as-collaborator")
		f.wantEvents(ev,
			event{project: f.project.ID, tag: "project:role:remove", actor: "bob", add: `"target_user":"bob"`},
			event{user: bob, tag: "account:role:remove", actor: "bob"})
	})
}

// TestNoOwnerlessProjectUnderRace: two owners removing each other at once
// leave one of them; the project keeps an owner.
func TestNoOwnerlessProjectUnderRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newCollabFixture(t, d)
		alice, bob := f.users["alice"], f.users["bob"]
		f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Owner')`, f.project.ID, bob)
		errs := make(chan error, 2)
		go func() { _, err := f.s.RemoveCollaborator(ctx, f.actor("alice"), f.project.ID, bob); errs <- err }()
		go func() { _, err := f.s.RemoveCollaborator(ctx, f.actor("bob"), f.project.ID, alice); errs <- err }()
		var failed int
		for range 2 {
			if err := <-errs; err != nil {
				failed++
				if !errors.Is(err, derrors.Invalid) && !errors.Is(err, derrors.NotFound) {
					t.Errorf("the losing removal: %v, want a refusal", err)
				}
			}
		}
		if got := f.roles(f.project); len(got) != 1 || failed != 1 {
			t.Errorf("after two owners removed each other: roles %v, %d refused; want one owner left and one refusal", got, failed)
		}
	})
}
