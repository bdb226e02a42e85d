package org

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

func TestInviteAcceptDeclineRevoke(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		if _, err := f.s.Invite(f.ctx, f.actor("alice"), o.ID, "bob", RoleMember); err != nil {
			t.Fatal(err)
		}
		raw := f.inviteToken("bob")
		// Someone else's link does nothing.
		before := f.snapshot()
		_, err := f.s.AnswerInvitation(f.ctx, f.actor("carol"), raw, true)
		f.refused(err, derrors.Forbidden, "for another account", before)
		if _, err := f.s.AnswerInvitation(f.ctx, f.actor("bob"), raw, true); err != nil {
			t.Fatal(err)
		}
		if m, _ := f.s.MembershipOf(f.ctx, "acme", f.users["bob"]); m.Role != RoleMember {
			t.Fatalf("bob's role %q", m.Role)
		}
		// Single use.
		before = f.snapshot()
		_, err = f.s.AnswerInvitation(f.ctx, f.actor("bob"), raw, true)
		f.refused(err, derrors.Gone, "no longer valid", before)
		if !strings.Contains(f.lastMail("alice"), "bob joined as Member") {
			t.Errorf("owner not told: %s", f.lastMail("alice"))
		}

		// Expiry: after 72 hours the link is dead.
		if _, err := f.s.Invite(f.ctx, f.actor("alice"), o.ID, "carol", RoleManager); err != nil {
			t.Fatal(err)
		}
		raw = f.inviteToken("carol")
		f.clock.Advance(InvitationLifetime)
		before = f.snapshot()
		_, err = f.s.AnswerInvitation(f.ctx, f.actor("carol"), raw, true)
		f.refused(err, derrors.Gone, "expired", before)

		// Revoked: the link stops at once.
		if _, err := f.s.Invite(f.ctx, f.actor("alice"), o.ID, "dave", RoleMember); err != nil {
			t.Fatal(err)
		}
		raw = f.inviteToken("dave")
		invs, _ := f.s.Invitations(f.ctx, o.ID)
		if _, err := f.s.RevokeInvitation(f.ctx, f.actor("alice"), o.ID, invs[0].ID); err != nil {
			t.Fatal(err)
		}
		before = f.snapshot()
		_, err = f.s.AnswerInvitation(f.ctx, f.actor("dave"), raw, true)
		f.refused(err, derrors.Gone, "no longer valid", before)

		// Bad input changes nothing.
		before = f.snapshot()
		for _, c := range []struct {
			who, user, role string
			kind            error
			want            string
		}{
			{"alice", "", RoleMember, derrors.Invalid, "Enter the username"},
			{"alice", "nobody", RoleMember, derrors.Invalid, "no user named"},
			{"alice", "bob", RoleMember, derrors.Conflict, "already a member"},
			{"alice", "dave", "Emperor", derrors.Invalid, "Choose a role"},
		} {
			_, err := f.s.Invite(f.ctx, f.actor(c.who), o.ID, c.user, c.role)
			f.refused(err, c.kind, c.want, before)
		}
	})
}

// PyPI's 2026 audit: a Member or Manager inviting someone as Owner. The
// domain refuses whatever the page's guard did.
func TestOnlyOwnersInvite(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleManager)
		f.join(o, "carol", RoleMember)
		before := f.snapshot()
		for _, who := range []string{"bob", "carol", "dave"} {
			_, err := f.s.Invite(f.ctx, f.actor(who), o.ID, "root", RoleOwner)
			f.refused(err, derrors.Forbidden, "Only an owner", before)
		}
	})
}

// PyPI's 2026 audit: an invitation accepted after its inviter lost the
// right to send it.
func TestInvitationDiesWithInvitersRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleOwner)
		if _, err := f.s.Invite(f.ctx, f.actor("bob"), o.ID, "carol", RoleOwner); err != nil {
			t.Fatal(err)
		}
		raw := f.inviteToken("carol")
		if _, err := f.s.ChangeRole(f.ctx, f.actor("alice"), o.ID, f.users["bob"], RoleMember); err != nil {
			t.Fatal(err)
		}
		before := f.snapshot()
		_, err := f.s.AnswerInvitation(f.ctx, f.actor("carol"), raw, true)
		f.refused(err, derrors.Gone, "bob, who sent it, is no longer an owner", before)
		if m, _ := f.s.MembershipOf(f.ctx, "acme", f.users["carol"]); m.Role != "" {
			t.Fatalf("carol became %s", m.Role)
		}
	})
}

func TestLastOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleManager)
		before := f.snapshot()
		_, err := f.s.Leave(f.ctx, f.actor("alice"), o.ID)
		f.refused(err, derrors.Invalid, "only owner of Acme, so you cannot leave", before)
		_, err = f.s.ChangeRole(f.ctx, f.actor("alice"), o.ID, f.users["alice"], RoleManager)
		f.refused(err, derrors.Invalid, "cannot give up the Owner role", before)
		_, err = f.s.RemoveMember(f.ctx, f.actor("bob"), o.ID, f.users["alice"])
		f.refused(err, derrors.Forbidden, "Only an owner", before)
		// With a second owner, the first may leave.
		if _, err := f.s.ChangeRole(f.ctx, f.actor("alice"), o.ID, f.users["bob"], RoleOwner); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Leave(f.ctx, f.actor("alice"), o.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// Team roles reach the projects through effective_roles: at once on
// joining, gone at once on leaving the team, the organization, or when the
// project moves out (PyPI's 2026 audit: team roles that survived a move).
func TestTeamRolesFollowMembership(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleMember)
		f.join(o, "carol", RoleManager)
		p, err := f.s.CreateProject(f.ctx, f.actor("alice"), o.ID, "rocket")
		if err != nil {
			t.Fatal(err)
		}
		if r := f.role(p.ID, "alice"); r != project.RoleOwner {
			t.Fatalf("organization owner's role on its project: %q", r)
		}
		if r := f.role(p.ID, "carol"); r != project.RoleMaintainer {
			t.Fatalf("manager's role: %q", r)
		}
		if r := f.role(p.ID, "bob"); r != "" {
			t.Fatalf("member without a team: %q", r)
		}
		team, err := f.s.CreateTeam(f.ctx, f.actor("carol"), o.ID, "release")
		if err != nil {
			t.Fatal(err)
		}
		outside := f.addProject("elsewhere", "dave")
		before := f.snapshot()
		_, err = f.s.AddTeamMember(f.ctx, f.actor("carol"), o.ID, team.ID, "dave")
		f.refused(err, derrors.Invalid, "dave is not a member of Acme", before)
		_, err = f.s.CreateTeam(f.ctx, f.actor("carol"), o.ID, "Release")
		f.refused(err, derrors.Conflict, "already has a team named", before)
		_, err = f.s.CreateTeam(f.ctx, f.actor("bob"), o.ID, "mine")
		f.refused(err, derrors.Forbidden, "owner or manager", before)
		_, err = f.s.SetTeamProjectRole(f.ctx, f.actor("carol"), o.ID, team.ID, "elsewhere", project.RoleMaintainer)
		f.refused(err, derrors.Invalid, "no project named", before)
		if _, err := f.s.AddTeamMember(f.ctx, f.actor("carol"), o.ID, team.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.SetTeamProjectRole(f.ctx, f.actor("carol"), o.ID, team.ID, "rocket", project.RoleMaintainer); err != nil {
			t.Fatal(err)
		}
		if r := f.role(p.ID, "bob"); r != project.RoleMaintainer {
			t.Fatalf("team member's role: %q", r)
		}
		if r := f.role(outside, "bob"); r != "" {
			t.Fatalf("team member's role elsewhere: %q", r)
		}
		// Off the team: gone.
		if _, err := f.s.RemoveTeamMember(f.ctx, f.actor("carol"), o.ID, team.ID, f.users["bob"]); err != nil {
			t.Fatal(err)
		}
		if r := f.role(p.ID, "bob"); r != "" {
			t.Fatalf("after leaving the team: %q", r)
		}
		// Out of the organization: gone, team and all.
		if _, err := f.s.AddTeamMember(f.ctx, f.actor("carol"), o.ID, team.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.RemoveMember(f.ctx, f.actor("alice"), o.ID, f.users["bob"]); err != nil {
			t.Fatal(err)
		}
		if r := f.role(p.ID, "bob"); r != "" {
			t.Fatalf("after leaving the organization: %q", r)
		}
		if n := count(t, d, `SELECT count(*) FROM team_members WHERE user_id = $1`, f.users["bob"]); n != 0 {
			t.Fatalf("%d team memberships left", n)
		}
		// The project moves out: team roles end with it, rows included.
		f.join(o, "bob", RoleMember)
		if _, err := f.s.AddTeamMember(f.ctx, f.actor("carol"), o.ID, team.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.MoveOut(f.ctx, f.actor("alice"), o.ID, p.ID); err != nil {
			t.Fatal(err)
		}
		if r := f.role(p.ID, "bob"); r != "" {
			t.Fatalf("team role survived the move out: %q", r)
		}
		if n := count(t, d, `SELECT count(*) FROM team_project_roles WHERE project_id = $1`, p.ID); n != 0 {
			t.Fatalf("%d team role rows survived the move out", n)
		}
		if r := f.role(p.ID, "carol"); r != "" {
			t.Fatalf("manager's role survived the move out: %q", r)
		}
		// Moving it back in does not bring the team's role back.
		if _, _, err := f.s.MoveIn(f.ctx, f.actor("alice"), o.ID, "rocket"); err != nil {
			t.Fatal(err)
		}
		if r := f.role(p.ID, "bob"); r != "" {
			t.Fatalf("team role came back with the project: %q", r)
		}
	})
}

func TestMoveInRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		other := f.newOrg("Other", "dave")
		f.join(o, "bob", RoleMember)
		mine := f.addProject("alices", "alice")
		bobs := f.addProject("bobs", "bob")
		daves := f.addProject("daves", "dave")
		if _, _, err := f.s.MoveIn(f.ctx, f.actor("dave"), other.ID, "daves"); err != nil {
			t.Fatal(err)
		}
		before := f.snapshot()
		// Not your project.
		_, _, err := f.s.MoveIn(f.ctx, f.actor("alice"), o.ID, "bobs")
		f.refused(err, derrors.Forbidden, "only move a project you own", before)
		_, _, err = f.s.MoveIn(f.ctx, f.actor("alice"), o.ID, "no-such")
		f.refused(err, derrors.Invalid, "no project named", before)
		// Not a member of the organization.
		_, _, err = f.s.MoveIn(f.ctx, f.actor("carol"), o.ID, "alices")
		f.refused(err, derrors.Forbidden, "not a member", before)
		// Already in another organization.
		f.join(o, "dave", RoleOwner)
		before = f.snapshot()
		_, _, err = f.s.MoveIn(f.ctx, f.actor("dave"), o.ID, "daves")
		f.refused(err, derrors.Conflict, "belongs to the organization Other", before)
		_ = daves

		// An owner of both sides moves at once.
		if _, moved, err := f.s.MoveIn(f.ctx, f.actor("alice"), o.ID, "alices"); err != nil || !moved {
			t.Fatalf("moved=%v err=%v", moved, err)
		}
		if org, _ := f.s.OrganizationOf(f.ctx, mine); org == nil || org.ID != o.ID {
			t.Fatalf("alices is in %+v", org)
		}
		// A member who owns a project asks; an owner accepts.
		if _, moved, err := f.s.MoveIn(f.ctx, f.actor("bob"), o.ID, "bobs"); err != nil || moved {
			t.Fatalf("moved=%v err=%v", moved, err)
		}
		reqs, _ := f.s.MoveRequests(f.ctx, o.ID)
		if len(reqs) != 1 || reqs[0].Requester != "bob" {
			t.Fatalf("requests %+v", reqs)
		}
		before = f.snapshot()
		_, err = f.s.AnswerMove(f.ctx, f.actor("bob"), o.ID, bobs, true)
		f.refused(err, derrors.Forbidden, "owner or manager", before)
		if _, err := f.s.AnswerMove(f.ctx, f.actor("alice"), o.ID, bobs, true); err != nil {
			t.Fatal(err)
		}
		if r := f.role(bobs, "alice"); r != project.RoleOwner {
			t.Fatalf("organization owner's role on the moved project: %q", r)
		}
	})
}

func TestPolicies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		f.join(o, "bob", RoleManager)
		p, err := f.s.CreateProject(f.ctx, f.actor("alice"), o.ID, "rocket")
		if err != nil {
			t.Fatal(err)
		}
		plain := f.addProject("plain", "bob")
		before := f.snapshot()
		err = f.s.SetPolicies(f.ctx, f.actor("bob"), o.ID, Policies{PhishingResistant: true})
		f.refused(err, derrors.Forbidden, "Only an owner", before)

		// Off: nothing refused.
		if err := f.s.CheckProject(f.ctx, f.users["bob"], p.ID); err != nil {
			t.Fatal(err)
		}
		// An owner without a key of her own cannot require keys: she would
		// lock herself out.
		before = f.snapshot()
		err = f.s.SetPolicies(f.ctx, f.actor("alice"), o.ID, Policies{PhishingResistant: true})
		f.refused(err, derrors.Invalid, "Add a security key or passkey to your own account first", before)
		for _, u := range []string{"alice", "root"} {
			f.exec(`INSERT INTO webauthn_credentials (user_id, label, label_key, credential_id, credential_json, created_at) VALUES ($1, 'key', 'key', $2, '{}', $3)`,
				f.users[u], "cred-"+u, t0)
		}
		if err := f.s.SetPolicies(f.ctx, f.actor("alice"), o.ID, Policies{PhishingResistant: true, TrustedOnly: true, ConfirmLogins: true, RequireAttestations: true}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, d, `SELECT count(*) FROM events WHERE organization_id = $1 AND tag LIKE 'organization:policy:%:enabled'`, o.ID); n != 4 {
			t.Errorf("%d policy events, want 4", n)
		}
		// Require attestations reaches the organization's projects' uploads.
		if n := count(t, d, `SELECT count(*) FROM projects p WHERE p.id = $1 AND EXISTS (SELECT 1 FROM organization_projects op
			JOIN organizations o ON o.id = op.organization_id WHERE op.project_id = p.id AND o.require_attestations)`, p.ID); n != 1 {
			t.Errorf("the organization's project is not held to its attestation policy")
		}
		err = f.s.CheckProject(f.ctx, f.users["bob"], p.ID)
		if msg, _ := derrors.Message(err); !errors.Is(err, derrors.Forbidden) || !strings.Contains(msg, "organization Acme requires its members to use a security key") ||
			!strings.Contains(msg, base+"/manage/account/two-factor/") {
			t.Fatalf("TOTP-only member: %v", err)
		}
		// Elsewhere the organization's policy does not apply.
		if err := f.s.CheckProject(f.ctx, f.users["bob"], plain); err != nil {
			t.Fatalf("on a project outside the organization: %v", err)
		}
		f.exec(`INSERT INTO webauthn_credentials (user_id, label, label_key, credential_id, credential_json, created_at) VALUES ($1, 'key', 'key', 'cred-bob', '{}', $2)`,
			f.users["bob"], t0)
		if err := f.s.CheckProject(f.ctx, f.users["bob"], p.ID); err != nil {
			t.Fatalf("with a security key: %v", err)
		}
		err = f.s.RefuseLongLived(f.ctx, p.ID, "rocket")
		if msg, _ := derrors.Message(err); !strings.Contains(msg, "accepts uploads only from trusted publishers") ||
			!strings.Contains(msg, "Add a trusted publisher to the project") {
			t.Fatalf("long-lived token: %v", err)
		}
		// With a publisher, the refusal names it (issue 9: the message names
		// the publisher to use).
		f.s.publishers = func(_ context.Context, id int64) ([]string, error) {
			if id != p.ID {
				t.Errorf("publishers asked for project %d, want %d", id, p.ID)
			}
			return []string{"GitHub repository acme/rocket, workflow release.yml"}, nil
		}
		err = f.s.RefuseLongLived(f.ctx, p.ID, "rocket")
		if msg, _ := derrors.Message(err); !strings.Contains(msg, "Publish from GitHub repository acme/rocket, workflow release.yml.") {
			t.Fatalf("long-lived token with a publisher: %v", err)
		}
		f.s.publishers = nil
		if err := f.s.RefuseLongLived(f.ctx, plain, "plain"); err != nil {
			t.Fatalf("outside: %v", err)
		}
		for _, u := range []string{"alice", "bob"} {
			if on, err := f.s.ConfirmEveryLogin(f.ctx, f.users[u]); err != nil || !on {
				t.Errorf("%s: confirm every login = %v, %v", u, on, err)
			}
		}
		if on, _ := f.s.ConfirmEveryLogin(f.ctx, f.users["carol"]); on {
			t.Errorf("a non-member is held to the organization's login policy")
		}

		// Site-wide, by an administrator only.
		before = f.snapshot()
		err = f.s.SetSitePolicies(f.ctx, f.actor("alice"), Policies{TrustedOnly: true})
		f.refused(err, derrors.Forbidden, "Only administrators", before)
		if err := f.s.SetSitePolicies(f.ctx, f.actor("root"), Policies{PhishingResistant: true, TrustedOnly: true, ConfirmLogins: true}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.CheckManage(f.ctx, f.users["carol"]); err == nil {
			t.Fatal("site policy: TOTP-only user passed")
		}
		if err := f.s.RefuseLongLived(f.ctx, plain, "plain"); err == nil {
			t.Fatal("site policy: long-lived token passed")
		}
		if on, _ := f.s.ConfirmEveryLogin(f.ctx, f.users["carol"]); !on {
			t.Fatal("site policy: login not held")
		}
	})
}

// A user who holds several roles on one project (their own, the
// organization's, a team's) is listed once, with the strongest.
func TestSeveralRolesOneProject(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, false)
		o := f.newOrg("Acme", "alice")
		p, err := f.s.CreateProject(f.ctx, f.actor("alice"), o.ID, "rocket")
		if err != nil {
			t.Fatal(err)
		}
		f.exec(`INSERT INTO roles (project_id, user_id, role) VALUES ($1, $2, 'Maintainer')`, p.ID, f.users["alice"])
		team, err := f.s.CreateTeam(f.ctx, f.actor("alice"), o.ID, "release")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.AddTeamMember(f.ctx, f.actor("alice"), o.ID, team.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.SetTeamProjectRole(f.ctx, f.actor("alice"), o.ID, team.ID, "rocket", project.RoleMaintainer); err != nil {
			t.Fatal(err)
		}
		ps, err := f.projects.ProjectsOf(f.ctx, f.users["alice"])
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].Role != project.RoleOwner {
			t.Fatalf("alice's projects: %+v, want rocket once, as Owner", ps)
		}
		if r := f.role(p.ID, "alice"); r != project.RoleOwner {
			t.Fatalf("role %q", r)
		}
	})
}

// The role lookup every guard and upload makes must use the indexes of
// each path, not scan every role of the index: on SQLite the query plan
// names no full scan of roles (a GROUP BY in the view once caused one).
func TestRoleLookupUsesIndexes(t *testing.T) {
	d := dbtest.NewSQLite(t)
	rows, err := d.Query(`EXPLAIN QUERY PLAN SELECT role FROM effective_roles WHERE project_id = 5 AND user_id = 7
		ORDER BY CASE role WHEN 'Owner' THEN 0 ELSE 1 END LIMIT 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	for _, step := range plan {
		for _, tbl := range []string{"roles", "organization_roles", "team_project_roles", "team_members", "organization_projects"} {
			if step == "SCAN "+tbl || strings.HasPrefix(step, "SCAN "+tbl+" ") {
				t.Errorf("the role lookup scans %s:\n%s", tbl, strings.Join(plan, "\n"))
			}
		}
	}
}
