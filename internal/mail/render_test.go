package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testLink = "https://pypi.example.org/account/verify-email/?token=tok_Secret123"

// samples holds data for every template, with the subject each must give.
var samples = map[string]struct {
	data    map[string]string
	subject string
	link    bool
}{
	TemplateVerifyEmail: {
		data:    map[string]string{"Username": "alice", "Email": "alice@example.org", "Link": testLink, "ExpiresIn": "6 hours"},
		subject: "Email verification", link: true,
	},
	TemplateNewEmailAdded: {
		data:    map[string]string{"Username": "alice", "NewEmail": "new@example.org"},
		subject: "A new email 'new@example.org' has been added to your account 'alice'",
	},
	TemplatePrimaryEmailChange: {
		data:    map[string]string{"Username": "alice", "OldEmail": "old@example.org", "NewEmail": "new@example.org"},
		subject: "Primary email change notification",
	},
	TemplatePasswordReset: {
		data:    map[string]string{"Username": "alice", "Link": testLink, "ExpiresIn": "6 hours"},
		subject: "Password reset request", link: true,
	},
	TemplatePasswordResetUnverified: {
		data:    map[string]string{"Email": "alice@example.org"},
		subject: "Password reset requested for unverified email",
	},
	TemplatePasswordChange: {
		data:    map[string]string{"Username": "alice"},
		subject: "Password change notification",
	},
	TemplateAccountDeleted: {
		data:    map[string]string{"Username": "alice"},
		subject: "Account deletion notification",
	},
	TemplateTwoFactorAdded: {
		data:    map[string]string{"Username": "alice", "Method": "authentication app"},
		subject: "Two-factor method added",
	},
	TemplateTwoFactorRemoved: {
		data:    map[string]string{"Username": "alice", "Method": "security key 'YubiKey'"},
		subject: "Two-factor method removed",
	},
	TemplateRecoveryCodesGenerated: {
		data:    map[string]string{"Username": "alice"},
		subject: "Recovery codes generation notification",
	},
	TemplateRecoveryCodeUsed: {
		data:    map[string]string{"Username": "alice"},
		subject: "Recovery code use notification",
	},
	TemplateRecoveryCodeReminder: {
		data:    map[string]string{"Username": "alice"},
		subject: "Two-factor recovery codes are available",
	},
	TemplateUnrecognizedLogin: {
		data: map[string]string{"Username": "alice", "IP": "192.0.2.7", "Browser": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
			"Time": "Sun, 01 Mar 2026 12:00:00 UTC", "Link": testLink, "ExpiresIn": "6 hours"},
		subject: "Unrecognized login to your Gatehouse account", link: true,
	},
	TemplateWebAuthnSignCount: {
		data:    map[string]string{"Username": "alice", "Label": "YubiKey 5"},
		subject: "Possible cloned security key",
	},
	TemplateAccountRecovery: {
		data:    map[string]string{"Username": "alice", "Admin": "root"},
		subject: "Your account has been recovered by an administrator",
	},
	TemplateYankedRelease: {
		data: map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Version": "1.0", "ReleaseDate": "2026-02-01",
			"Submitter": "alice", "SubmitterRole": "owner", "RecipientRole": "a maintainer", "Reason": "broken on Python 3.13"},
		subject: "A release for Demo-Pkg has been yanked.",
	},
	TemplateUnyankedRelease: {
		data: map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Version": "1.0", "ReleaseDate": "2026-02-01",
			"Submitter": "alice", "SubmitterRole": "owner", "RecipientRole": "an owner"},
		subject: "The Demo-Pkg release 1.0 has been un-yanked.",
	},
	TemplateRemovedRelease: {
		data: map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Version": "1.0", "ReleaseDate": "2026-02-01",
			"Submitter": "alice", "SubmitterRole": "owner", "RecipientRole": "an owner"},
		subject: "A release for Demo-Pkg has been deleted.",
	},
	TemplateRemovedFile: {
		data: map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Version": "1.0", "File": "demo_pkg-1.0-py3-none-any.whl",
			"Submitter": "alice", "SubmitterRole": "owner", "RecipientRole": "an owner"},
		subject: "File deleted for Demo-Pkg 1.0",
	},
	TemplateRemovedProject: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Submitter": "alice", "SubmitterRole": "owner", "RecipientRole": "an owner"},
		subject: "The project Demo-Pkg has been deleted.",
	},
	TemplateProjectQuarantined: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "RecipientRole": "an owner", "Reason": "reported as malware"},
		subject: "The project Demo-Pkg has been quarantined.",
	},
	TemplateQuarantineCleared: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "RecipientRole": "an owner"},
		subject: "The quarantine of Demo-Pkg has been lifted.",
	},
	// Its two links are checked by TestVerifyProjectRoleLinks.
	TemplateOrganizationDecided: {
		data:    map[string]string{"Username": "alice", "Organization": "Acme", "Decision": "approved", "Link": "https://pypi.example.org/manage/organization/acme/settings/"},
		subject: "Your request for the organization Acme was approved",
	},
	TemplateVerifyOrganizationRole: {
		data: map[string]string{"Username": "bob", "Inviter": "alice", "Organization": "Acme", "Role": "Manager",
			"AcceptLink": testInviteLink, "DeclineLink": testInviteLink + "&decline=1", "ExpiresIn": "72 hours"},
		subject: "alice has invited you to join the Acme organization",
	},
	TemplateOrganizationChanged: {
		data: map[string]string{"Username": "alice", "Organization": "Acme", "What": "bob added to team release by carol",
			"Link": "https://pypi.example.org/manage/organization/acme/history/"},
		subject: "A change in the organization Acme",
	},
	TemplateVerifyProjectRole: {
		data: map[string]string{"Username": "bob", "Inviter": "alice", "Project": "Demo-Pkg", "Role": "Maintainer",
			"AcceptLink": testInviteLink, "DeclineLink": testInviteLink + "&decline=1", "ExpiresIn": "72 hours"},
		subject: "alice has invited you to join the Demo-Pkg project",
	},
	TemplateCollaboratorAdded: {
		data:    map[string]string{"Username": "alice", "Collaborator": "bob", "Project": "Demo-Pkg", "Role": "Maintainer", "Submitter": "carol"},
		subject: "Collaborator added notification",
	},
	TemplateAddedAsCollaborator: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Role": "Maintainer", "Submitter": "alice"},
		subject: "You have joined the Demo-Pkg project",
	},
	TemplateCollaboratorRemoved: {
		data:    map[string]string{"Username": "alice", "Collaborator": "bob", "Project": "Demo-Pkg", "Submitter": "carol"},
		subject: "Collaborator removed notification",
	},
	TemplateRemovedAsCollaborator: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Submitter": "alice"},
		subject: "You are no longer a collaborator on the Demo-Pkg project",
	},
	TemplateCollaboratorRoleChanged: {
		data:    map[string]string{"Username": "alice", "Collaborator": "bob", "Project": "Demo-Pkg", "Role": "Owner", "Submitter": "carol"},
		subject: "Collaborator role change notification",
	},
	TemplateRoleChangedAsCollaborator: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Role": "Owner", "Submitter": "alice"},
		subject: "Your role on the Demo-Pkg project has changed",
	},
	TemplateProjectInviteDeclined: {
		data:    map[string]string{"Username": "alice", "Invitee": "bob", "Project": "Demo-Pkg", "Role": "Maintainer"},
		subject: "bob declined the invitation to Demo-Pkg",
	},
	TemplateProjectInviteRevoked: {
		data:    map[string]string{"Username": "bob", "Project": "Demo-Pkg", "Role": "Maintainer", "Submitter": "alice"},
		subject: "Your invitation to the Demo-Pkg project was withdrawn",
	},
	TemplateTrustedPublisherAdded: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "GitHub: octo/widget, workflow release.yml", "By": "bob", "Link": "https://pypi.example.org/manage/project/widget/settings/publishing/"},
		subject: "Trusted publisher added to Widget",
	},
	TemplateTrustedPublisherRemoved: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "GitHub: octo/widget, workflow release.yml", "By": "bob", "Link": "https://pypi.example.org/manage/project/widget/settings/publishing/"},
		subject: "Trusted publisher removed from Widget",
	},
	TemplatePendingPublisherReified: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "GitLab: acme/widget, CI file .gitlab-ci.yml", "Link": "https://pypi.example.org/manage/project/widget/settings/publishing/"},
		subject: "Trusted publisher created project Widget",
	},
	TemplatePendingPublisherInvalidated: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "Google: service account a@b.iam.gserviceaccount.com", "Link": "https://pypi.example.org/manage/account/publishing/"},
		subject: "Pending trusted publisher invalidated for Widget",
	},
	TemplatePendingPublisherExpired: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "ActiveState: acme/widget, actor bob", "Link": "https://pypi.example.org/manage/account/publishing/"},
		subject: "Pending trusted publisher expired for Widget",
	},
	TemplatePendingPublisherReminder: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "ActiveState: acme/widget, actor bob", "Expires": "2026-06-01", "Link": "https://pypi.example.org/manage/account/publishing/"},
		subject: "Pending trusted publisher for Widget expiring soon",
	},
	TemplateTokenUsedWithPublisher: {
		data:    map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "GitHub: octo/widget, workflow release.yml", "Link": "https://pypi.example.org/manage/project/widget/settings/publishing/"},
		subject: "API token used to upload to project Widget despite Trusted Publishing enabled",
	},
	TemplateEnvironmentIgnored: {
		data: map[string]string{"Username": "alice", "Project": "Widget", "Publisher": "GitHub: octo/widget, workflow release.yml", "Environment": "pypi",
			"Link": "https://pypi.example.org/manage/project/widget/settings/publishing/?constrain_environment=pypi&constrain_publisher_id=3"},
		subject: "Trusted Publisher for project Widget can be made more secure",
	},
	TemplateTokenCompromisedLeak: {
		data: map[string]string{"Username": "alice", "Description": "laptop", "Scope": "whole account",
			"URL": "https://gist.example/alice/123", "ByAdmin": "", "TokensLink": "https://pypi.example.org/manage/account/token/"},
		subject: "Your API credentials from Gatehouse were found on a public webpage",
	},
}

const testInviteLink = "https://pypi.example.org/account/verify-project-role/?token=tok_Invite456"

// TestVerifyProjectRoleLinks: the invitation carries an accept and a
// decline link, in that order, in the text and as hrefs in the HTML.
func TestVerifyProjectRoleLinks(t *testing.T) {
	s := samples[TemplateVerifyProjectRole]
	m, err := newTestRenderer(t).Render(TemplateVerifyProjectRole, 7, "bob@example.org", s.data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{s.data["AcceptLink"], s.data["DeclineLink"], "https://pypi.example.org"}
	if got := Links(m.Text); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("text links: got %q, want %q", got, want)
	}
	for _, l := range want[:2] {
		if !strings.Contains(m.HTML, `href="`+strings.ReplaceAll(l, "&", "&amp;")+`"`) {
			t.Errorf("html lacks the link %s as href:\n%s", l, m.HTML)
		}
	}
}

func newTestRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := NewRenderer("Gatehouse", "https://pypi.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderEveryTemplate(t *testing.T) {
	r := newTestRenderer(t)
	if len(samples) != len(Templates) {
		t.Fatalf("samples cover %d templates, Templates lists %d", len(samples), len(Templates))
	}
	for _, name := range Templates {
		s, ok := samples[name]
		if !ok {
			t.Fatalf("no sample data for %s", name)
		}
		m, err := r.Render(name, 7, "alice@example.org", s.data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := "[Gatehouse] " + s.subject; m.Subject != want {
			t.Errorf("%s: subject %q, want %q", name, m.Subject, want)
		}
		if m.UserID != 7 || m.To != "alice@example.org" || m.Template != name {
			t.Errorf("%s: message %+v", name, m)
		}
		for part, body := range map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML} {
			if body == "" || strings.Contains(body, "<no value>") || strings.Contains(body, "ZgotmplZ") {
				t.Errorf("%s %s: empty or unfilled:\n%s", name, part, body)
			}
		}
		for _, v := range s.data {
			if !strings.Contains(m.Text, v) {
				t.Errorf("%s: text lacks %q:\n%s", name, v, m.Text)
			}
		}
		if s.link {
			if got := Links(m.Text); len(got) != 2 || got[0] != testLink { // the link, then the footer's base URL
				t.Errorf("%s: text links %q", name, got)
			}
			if !strings.Contains(m.HTML, `href="`+testLink+`"`) {
				t.Errorf("%s: html lacks the link as href:\n%s", name, m.HTML)
			}
		}
		if !strings.Contains(m.Text, "Gatehouse (https://pypi.example.org)") || !strings.Contains(m.HTML, `href="https://pypi.example.org"`) {
			t.Errorf("%s: footer lacks site or base URL:\ntext: %s\nhtml: %s", name, m.Text, m.HTML)
		}
		if !strings.HasPrefix(m.HTML, "<!DOCTYPE html>") {
			t.Errorf("%s: html does not start with the doctype:\n%.80s", name, m.HTML)
		}
	}
}

func TestRenderStructDataAndEscaping(t *testing.T) {
	r := newTestRenderer(t)
	data := struct{ Username, Email, Link, ExpiresIn string }{
		Username: `<script>alert(1)</script>`, Email: "a@example.org", Link: testLink, ExpiresIn: "6 hours",
	}
	m, err := r.Render(TemplateVerifyEmail, 1, "a@example.org", data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Errorf("html not escaped:\n%s", m.HTML)
	}
	if !strings.Contains(m.Text, "<script>") {
		t.Errorf("text should be verbatim:\n%s", m.Text)
	}
	// A javascript: link never becomes a clickable href.
	data.Link = "javascript:alert(1)"
	m, err = r.Render(TemplateVerifyEmail, 1, "a@example.org", data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Errorf("javascript: link in href:\n%s", m.HTML)
	}
	// A subject stays one line whatever the data.
	m, err = r.Render(TemplateNewEmailAdded, 1, "a@example.org", map[string]string{"Username": "bob\r\nBcc: x@evil", "NewEmail": "n@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", m.Subject)
	}
}

func TestRenderErrors(t *testing.T) {
	r := newTestRenderer(t)
	if _, err := r.Render("no-such-template", 0, "a@example.org", nil); err == nil {
		t.Error("unknown template rendered")
	}
	if _, err := r.Render(TemplatePasswordReset, 0, "a@example.org", map[string]string{"Username": "a"}); err == nil {
		t.Error("missing fields rendered")
	}
	if _, err := r.Render(TemplatePasswordChange, 0, "a@example.org", struct{ Name string }{"a"}); err == nil {
		t.Error("wrong struct rendered")
	}
	for _, base := range []string{"", "pypi.example.org", "ftp://x", "/relative"} {
		if _, err := NewRenderer("Gatehouse", base); err == nil {
			t.Errorf("NewRenderer accepted base URL %q", base)
		}
	}
	if _, err := NewRenderer(" ", "https://x.example"); err == nil {
		t.Error("NewRenderer accepted an empty site name")
	}
}

// Every template directory holds exactly the three files, and every
// directory is a known template (so none is silently unused).
func TestTemplateFilesComplete(t *testing.T) {
	dirs, err := os.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"base": true}
	for _, n := range Templates {
		known[n] = true
	}
	for _, d := range dirs {
		if !known[d.Name()] {
			t.Errorf("templates/%s is not in Templates", d.Name())
			continue
		}
		if d.Name() == "base" {
			continue
		}
		for _, f := range []string{"subject.txt", "body.txt", "body.html"} {
			if _, err := os.Stat(filepath.Join("templates", d.Name(), f)); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestAllowsUnverified(t *testing.T) {
	for _, n := range Templates {
		// spec §2.2 "To unverified?" (token-compromised-leak among them); plus
		// account-recovery, our admin recovery notice.
		want := n == "verify-email" || n == "password-reset-unverified" || n == "unrecognized-login" || n == "account-recovery" ||
			n == "token-compromised-leak"
		if AllowsUnverified(n) != want {
			t.Errorf("AllowsUnverified(%s) = %v", n, !want)
		}
	}
}

func TestLinks(t *testing.T) {
	got := Links("Open https://a.example/x?t=1. Or (http://b.example/y), not ftp://c.\n<https://d.example/z>")
	want := []string{"https://a.example/x?t=1", "http://b.example/y", "https://d.example/z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Links = %q, want %q", got, want)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []string{"30s", "1m0s", "2m0s", "4m0s", "8m0s", "16m0s", "32m0s", "1h0m0s", "1h0m0s"}
	for i, w := range want {
		if got := DefaultBackoff(i + 1).String(); got != w {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if DefaultBackoff(1000) != DefaultBackoff(9) {
		t.Error("backoff not capped")
	}
}
