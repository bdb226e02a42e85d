package web

// The collaboration pages: invite → accept from the emailed link → the
// maintainer uploads with a project token → removal → that token is
// refused with Warehouse's message; the guards of each route; and every
// form with bad input, which must change nothing.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/project"
)

// collabSetup is alice's project "demo" (made by an upload) and bob and
// carol, who hold no role yet.
func collabSetup(t *testing.T, d *db.DB) (f *fixture, alice, bob, carol *collabBrowser) {
	t.Helper()
	f = newFixture(t, d)
	f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "1.0"}))
	addUser(t, d, "bob")
	addUser(t, d, "carol")
	now := f.clock.Now()
	return f, f.signIn(t, f.alice, now), f.signIn(t, f.userIDOf(t, "bob"), now), f.signIn(t, f.userIDOf(t, "carol"), now)
}

const collabPage = "/manage/project/demo/collaboration/"

func TestCollaborationInviteAcceptUploadRemove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, alice, bob, _ := collabSetup(t, d)
		bobID := f.userIDOf(t, "bob")

		page := alice.get(t, collabPage)
		wantCollabPage(t, page, http.StatusOK, "<h1>Collaborators</h1>", "alice", "Owner", "No invitations waiting.", "expire in 72 hours")

		r := alice.post(t, collabPage, url.Values{"username": {"bob"}, "role_name": {"Maintainer"}})
		collabWantRedirect(t, r, collabPage)
		wantCollabPage(t, alice.get(t, collabPage), http.StatusOK, "Invitation sent to bob. It expires in 72 hours.", "pending, expires")
		accept, decline := f.invitationLinks(t, "bob@example.com")

		// The links show the invitation; opening them changes nothing.
		before := f.collabSnapshot(t)
		wantCollabPage(t, bob.get(t, decline), http.StatusOK, "Invitation to demo", "<strong>alice</strong> invites you", `value="decline" class="danger"`)
		p := bob.get(t, accept)
		wantCollabPage(t, p, http.StatusOK, "as <strong>Maintainer</strong>", `value="accept">Accept`)
		wantCollabPage(t, bob.get(t, "/manage/account/invitations/"), http.StatusOK, "demo", "alice", "Maintainer")
		if after := f.collabSnapshot(t); after != before {
			t.Fatalf("opening the links changed the database")
		}
		tok, _ := url.Parse(accept)
		r = bob.post(t, "/account/verify-project-role/", url.Values{"token": {tok.Query().Get("token")}, "action": {"accept"}})
		collabWantRedirect(t, r, "/project/demo/")
		wantCollabPage(t, bob.get(t, "/project/demo/"), http.StatusOK, "You are now Maintainer of demo.")
		if got := f.mailsTo(t, "alice@example.com", "collaborator-added"); len(got) != 1 {
			t.Errorf("owners told of the new collaborator: %d emails, want 1", len(got))
		}
		if got := f.mailsTo(t, "bob@example.com", "added-as-collaborator"); len(got) != 1 {
			t.Errorf("bob told: %d emails, want 1", len(got))
		}
		wantCollabPage(t, alice.get(t, collabPage), http.StatusOK, "bob", "Maintainer")

		// Bob uploads with a token for demo only.
		bobToken := f.mintToken(t, bobID, "demo")
		if res := f.uploadAs(t, bobToken, wheel(t, meta{Name: "demo", Version: "1.1"}).form(), wheel(t, meta{Name: "demo", Version: "1.1"})); res.code != http.StatusOK {
			t.Fatalf("bob's upload as maintainer: got %s, want 200", res)
		}
		// A maintainer may not manage collaborators.
		wantCollabPage(t, bob.get(t, collabPage), http.StatusForbidden, "Only an owner of demo can do this.")

		// Alice removes bob: his token is refused at once, with
		// Warehouse's message, and his browser loses the project.
		r = alice.post(t, collabPage+"delete/", url.Values{"user_id": {itoa(bobID)}})
		collabWantRedirect(t, r, collabPage)
		wantCollabPage(t, alice.get(t, collabPage), http.StatusOK, "bob is no longer a collaborator on demo.")
		w := wheel(t, meta{Name: "demo", Version: "1.2"})
		checkUpload(t, "bob's token after his removal", f.uploadAs(t, bobToken, w.form(), w), http.StatusForbidden,
			"The user 'bob' isn't allowed to upload to project 'demo'. See "+f.url+"/help/#project-name for more information.")
		wantCollabPage(t, bob.get(t, collabPage+"leave/"), http.StatusForbidden, "You are not a collaborator on demo.")
		if got := f.mailsTo(t, "bob@example.com", "removed-as-collaborator"); len(got) != 1 {
			t.Errorf("bob told of his removal: %d emails, want 1", len(got))
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCollaborationAcceptAsOwnerDeclineAndLeave(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, alice, bob, carol := collabSetup(t, d)
		collabWantRedirect(t, alice.post(t, collabPage, url.Values{"username": {"bob"}, "role_name": {"Owner"}}), collabPage)
		collabWantRedirect(t, alice.post(t, collabPage, url.Values{"username": {"carol"}, "role_name": {"Maintainer"}}), collabPage)

		// From the list of invitations: bob accepts (as Owner, he lands on
		// the collaboration page), carol declines.
		list := bob.get(t, "/manage/account/invitations/")
		ids := hiddenIDs(list.body, "invitation_id")
		if len(ids) != 1 {
			t.Fatalf("bob's invitations page: ids %v\n%s", ids, list)
		}
		r := bob.post(t, "/manage/account/invitations/", url.Values{"invitation_id": {ids[0]}, "action": {"accept"}})
		collabWantRedirect(t, r, collabPage)
		wantCollabPage(t, bob.get(t, collabPage), http.StatusOK, "You are now Owner of demo.")

		ids = hiddenIDs(carol.get(t, "/manage/account/invitations/").body, "invitation_id")
		r = carol.post(t, "/manage/account/invitations/", url.Values{"invitation_id": ids, "action": {"decline"}})
		collabWantRedirect(t, r, "/manage/account/invitations/")
		wantCollabPage(t, carol.get(t, "/manage/account/invitations/"), http.StatusOK, "Invitation to demo declined.", "None: you have answered every invitation.")
		for _, owner := range []string{"alice", "bob"} {
			if got := f.mailsTo(t, owner+"@example.com", "project-role-invite-declined"); len(got) != 1 {
				t.Errorf("%s told of carol's decline: %d emails, want 1", owner, len(got))
			}
		}

		// With two owners, alice can leave; then bob is the last owner.
		wantCollabPage(t, alice.get(t, collabPage+"leave/"), http.StatusOK, "Leave demo", "You are <strong>Owner</strong>")
		r = alice.post(t, collabPage+"leave/", url.Values{"confirm_project_name": {"demo"}})
		collabWantRedirect(t, r, "/project/demo/")
		wantCollabPage(t, alice.get(t, collabPage), http.StatusForbidden, "Only an owner of demo can do this.")
		before := f.collabSnapshot(t)
		r = bob.post(t, collabPage+"leave/", url.Values{"confirm_project_name": {"demo"}})
		wantCollabPage(t, r, http.StatusBadRequest, "You are the only owner of demo, so you cannot leave it.", `class="field-error"`)
		if after := f.collabSnapshot(t); after != before {
			t.Errorf("the last owner's refused leave changed the database")
		}
	})
}

// TestCollaborationGuards: who may open each page and send each form.
func TestCollaborationGuards(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, alice, bob, carol := collabSetup(t, d)
		bobID := f.userIDOf(t, "bob")
		d.Exec(`INSERT INTO roles (project_id, user_id, role) SELECT id, $1, 'Maintainer' FROM projects WHERE normalized_name = 'demo'`, bobID)
		// Carol owns another project.
		carolToken := f.mintToken(t, f.userIDOf(t, "carol"))
		w := wheel(t, meta{Name: "other", Version: "1.0"})
		if res := f.uploadAs(t, carolToken, w.form(), w); res.code != http.StatusOK {
			t.Fatalf("carol's project: %s", res)
		}
		anonymous := &collabBrowser{in: f.instance}
		stale := f.signIn(t, f.alice, f.clock.Now().Add(-time.Hour))

		before := f.collabSnapshot(t)
		routes := []struct{ method, path string }{
			{"GET", collabPage}, {"POST", collabPage}, {"POST", collabPage + "change/"}, {"POST", collabPage + "delete/"},
			{"POST", collabPage + "revoke_invite/"},
		}
		form := url.Values{"username": {"carol"}, "role_name": {"Owner"}, "user_id": {itoa(bobID)}, "invitation_id": {"1"}}
		for _, rt := range routes {
			var fv url.Values
			if rt.method == "POST" {
				fv = form
			}
			r := anonymous.do(t, rt.method, rt.path, fv)
			if rt.method == "GET" {
				collabWantRedirect(t, r, "/account/login/")
			} else if r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/account/login/") {
				t.Errorf("anonymous %s %s: got %s, want a redirect to log in", rt.method, rt.path, r)
			}
			wantCollabPage(t, bob.do(t, rt.method, rt.path, fv), http.StatusForbidden, "Only an owner of demo can do this.")
			wantCollabPage(t, carol.do(t, rt.method, rt.path, fv), http.StatusForbidden, "Only an owner of demo can do this.")
			if r := stale.do(t, rt.method, rt.path, fv); r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/account/reauthenticate/") {
				t.Errorf("owner without a recent password %s %s: got %s, want a redirect to confirm the password", rt.method, rt.path, r)
			}
		}
		// Leaving: any collaborator, but not a stranger.
		wantCollabPage(t, carol.get(t, collabPage+"leave/"), http.StatusForbidden, "You are not a collaborator on demo.")
		wantCollabPage(t, carol.post(t, collabPage+"leave/", url.Values{"confirm_project_name": {"demo"}}), http.StatusForbidden, "You are not a collaborator on demo.")
		// Alice's ownership of demo gives her nothing on carol's project.
		wantCollabPage(t, alice.get(t, "/manage/project/other/collaboration/"), http.StatusForbidden, "Only an owner of other can do this.")
		wantCollabPage(t, alice.post(t, "/manage/project/other/collaboration/delete/", url.Values{"user_id": {itoa(f.userIDOf(t, "carol"))}}),
			http.StatusForbidden, "Only an owner of other can do this.")
		wantCollabPage(t, alice.get(t, "/manage/project/nosuch/collaboration/"), http.StatusNotFound, `project "nosuch" not found`)
		if after := f.collabSnapshot(t); after != before {
			t.Errorf("refused requests changed the database:\nbefore %s\nafter %s", before, after)
		}

		// A user without a second factor is sent to set one up, even to
		// answer an invitation (PyPI's gate).
		d.Exec(`DELETE FROM totp_secrets WHERE user_id = $1`, bobID)
		r := bob.get(t, "/account/verify-project-role/?token=abc")
		collabWantRedirect(t, r, "/manage/account/two-factor/")
		if !strings.Contains(r.loc, "next="+url.QueryEscape("/account/verify-project-role/?token=abc")) {
			t.Errorf("the 2FA redirect lacks next back to the link: %q", r.loc)
		}
		collabWantRedirect(t, bob.get(t, "/manage/account/invitations/"), "/manage/account/two-factor/")
	})
}

// TestCollaborationBadInput walks every collaboration form with bad input:
// each gets a 4xx with its message next to the field (or on the form's
// list), and the database is unchanged.
func TestCollaborationBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, alice, bob, carol := collabSetup(t, d)
		addUser(t, d, "unverified")
		d.Exec(`UPDATE user_emails SET verified = FALSE WHERE email = 'unverified@example.com'`)
		bobID, carolID := f.userIDOf(t, "bob"), f.userIDOf(t, "carol")
		d.Exec(`INSERT INTO roles (project_id, user_id, role) SELECT id, $1, 'Maintainer' FROM projects WHERE normalized_name = 'demo'`, bobID)
		collabWantRedirect(t, alice.post(t, collabPage, url.Values{"username": {"carol"}, "role_name": {"Maintainer"}}), collabPage)
		accept, _ := f.invitationLinks(t, "carol@example.com")
		tu, _ := url.Parse(accept)
		carolToken := tu.Query().Get("token")
		carolInv := hiddenIDs(carol.get(t, "/manage/account/invitations/").body, "invitation_id")[0]

		// An expired invitation for dave.
		addUser(t, d, "dave")
		dave := f.signIn(t, f.userIDOf(t, "dave"), f.clock.Now())
		collabWantRedirect(t, alice.post(t, collabPage, url.Values{"username": {"dave"}, "role_name": {"Owner"}}), collabPage)
		daveLink, _ := f.invitationLinks(t, "dave@example.com")
		daveInv := hiddenIDs(dave.get(t, "/manage/account/invitations/").body, "invitation_id")[0]
		f.clock.Advance(project.InvitationLifetime)
		// Sessions are re-confirmed after the jump, so sudo still holds.
		alice = f.signIn(t, f.alice, f.clock.Now())
		bob = f.signIn(t, bobID, f.clock.Now())
		carol = f.signIn(t, carolID, f.clock.Now())
		dave = f.signIn(t, f.userIDOf(t, "dave"), f.clock.Now())
		// Carol's invitation was sent before the jump too: send it again.
		collabWantRedirect(t, alice.post(t, collabPage+"revoke_invite/", url.Values{"invitation_id": {carolInv}}), collabPage)
		collabWantRedirect(t, alice.post(t, collabPage, url.Values{"username": {"carol"}, "role_name": {"Maintainer"}}), collabPage)
		accept, _ = f.invitationLinks(t, "carol@example.com")
		tu, _ = url.Parse(accept)
		staleCarolToken := carolToken
		carolToken = tu.Query().Get("token")
		carolInv = hiddenIDs(carol.get(t, "/manage/account/invitations/").body, "invitation_id")[0]

		invite := func(user, role string) url.Values { return url.Values{"username": {user}, "role_name": {role}} }
		for _, tc := range []struct {
			name   string
			who    *collabBrowser
			method string
			path   string
			form   url.Values
			code   int
			msg    string
			near   string // the markup the message must sit in
		}{
			{"invite: empty username", alice, "POST", collabPage, invite("", "Maintainer"), 400, "Enter the username of the person to invite.", "field-error"},
			{"invite: unknown user", alice, "POST", collabPage, invite("nobody", "Maintainer"), 400, `There is no user named "nobody".`, "field-error"},
			{"invite: unverified invitee", alice, "POST", collabPage, invite("unverified", "Maintainer"), 400, "unverified does not have a verified primary email address", "field-error"},
			{"invite: already a collaborator", alice, "POST", collabPage, invite("bob", "Owner"), 409, "bob is already Maintainer of demo.", "field-error"},
			{"invite: already invited", alice, "POST", collabPage, invite("carol", "Owner"), 409, "carol already has a pending invitation to demo", "field-error"},
			{"invite: yourself", alice, "POST", collabPage, invite("alice", "Owner"), 400, "You cannot invite yourself", "field-error"},
			{"invite: bad role", alice, "POST", collabPage, invite("dave", "Root"), 400, "Choose a role: Owner", "field-error"},
			{"change: bad role", alice, "POST", collabPage + "change/", url.Values{"user_id": {itoa(bobID)}, "role_name": {"Root"}}, 400, "Choose a role", "form-error"},
			{"change: no user", alice, "POST", collabPage + "change/", url.Values{"role_name": {"Owner"}}, 400, "The form is missing which item to act on.", "form-error"},
			{"change: not a collaborator", alice, "POST", collabPage + "change/", url.Values{"user_id": {itoa(carolID)}, "role_name": {"Owner"}}, 404, "That user is not a collaborator on demo", "form-error"},
			{"change: the same role", alice, "POST", collabPage + "change/", url.Values{"user_id": {itoa(bobID)}, "role_name": {"Maintainer"}}, 400, "bob is already Maintainer of demo.", "form-error"},
			{"change: demote the last owner", alice, "POST", collabPage + "change/", url.Values{"user_id": {itoa(f.alice)}, "role_name": {"Maintainer"}}, 400, "You are the only owner of demo, so you cannot give up the Owner role.", "form-error"},
			{"remove: the last owner", alice, "POST", collabPage + "delete/", url.Values{"user_id": {itoa(f.alice)}}, 400, "You are the only owner of demo, so you cannot leave it.", "form-error"},
			{"remove: not a collaborator", alice, "POST", collabPage + "delete/", url.Values{"user_id": {"99999"}}, 404, "That user is not a collaborator on demo", "form-error"},
			{"revoke: unknown invitation", alice, "POST", collabPage + "revoke_invite/", url.Values{"invitation_id": {"99999"}}, 404, "Could not find this invitation to demo", "form-error"},
			{"revoke: bad id", alice, "POST", collabPage + "revoke_invite/", url.Values{"invitation_id": {"x"}}, 400, "The form is missing which item to act on.", "form-error"},
			{"leave: wrong name", bob, "POST", collabPage + "leave/", url.Values{"confirm_project_name": {"Demo"}}, 400, "Type the project's name, demo, exactly to confirm.", "field-error"},
			{"link: no token", carol, "GET", "/account/verify-project-role/", nil, 400, "This address lacks its invitation token.", "form-error"},
			{"link: forged token", carol, "GET", "/account/verify-project-role/?token=" + strings.Repeat("A", 43), nil, 410, "This invitation is no longer valid", "form-error"},
			{"link: someone else's", bob, "GET", accept, nil, 403, "This invitation is for another account.", "form-error"},
			{"link: expired", dave, "GET", daveLink, nil, 410, "This invitation to demo expired on", "form-error"},
			{"link: replaced", carol, "GET", "/account/verify-project-role/?token=" + staleCarolToken, nil, 410, "This invitation is no longer valid", "form-error"},
			{"answer: no action", carol, "POST", "/account/verify-project-role/", url.Values{"token": {carolToken}}, 400, "Choose Accept or Decline.", "form-error"},
			{"answer: someone else's", bob, "POST", "/account/verify-project-role/", url.Values{"token": {carolToken}, "action": {"accept"}}, 403, "This invitation is for another account.", "form-error"},
			{"answer: expired", dave, "POST", "/account/verify-project-role/", url.Values{"token": {mustToken(t, daveLink)}, "action": {"accept"}}, 410, "expired", "form-error"},
			{"list: someone else's", bob, "POST", "/manage/account/invitations/", url.Values{"invitation_id": {carolInv}, "action": {"accept"}}, 404, "You have no such invitation", "form-error"},
			{"list: expired", dave, "POST", "/manage/account/invitations/", url.Values{"invitation_id": {daveInv}, "action": {"accept"}}, 410, "expired", "form-error"},
			{"list: no action", carol, "POST", "/manage/account/invitations/", url.Values{"invitation_id": {carolInv}}, 400, "Choose Accept or Decline.", "form-error"},
			{"list: bad id", carol, "POST", "/manage/account/invitations/", url.Values{"invitation_id": {"-3"}, "action": {"accept"}}, 400, "The form is missing which item to act on.", "form-error"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := f.collabSnapshot(t)
				r := tc.who.do(t, tc.method, tc.path, tc.form)
				wantCollabPage(t, r, tc.code, tc.msg)
				// The message sits in its field's error or the form's.
				i := strings.Index(r.body, `class="`+tc.near+`"`)
				if i < 0 || !strings.Contains(r.body[i:min(len(r.body), i+600)], htmlEscape(tc.msg)) {
					t.Errorf("the message is not in the %s element:\n%s", tc.near, r.body)
				}
				if after := f.collabSnapshot(t); after != before {
					t.Errorf("bad input changed the database:\nbefore %s\nafter %s", before, after)
				}
			})
		}
		// What was typed into the invite form is kept.
		r := alice.post(t, collabPage, invite("nobody", "Owner"))
		wantCollabPage(t, r, http.StatusBadRequest, `value="nobody" aria-invalid="true"`, `<option selected>Owner</option>`)
	})
}

func mustToken(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}
