package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"strings"
	texttemplate "text/template"
)

// The templates, named as in Warehouse (warehouse/templates/email/<name>/).
// Each takes its data as a struct or a map with the fields listed; every
// field is a string. Links are absolute URLs that the caller builds from the
// configured base URL (never from a request's Host header); templates only
// print them.
const (
	// Data: Username, Email (the address to verify), Link (the
	// verification URL), ExpiresIn (e.g. "6 hours").
	TemplateVerifyEmail = "verify-email"
	// Data: Username, NewEmail. Sent to every other address of the account.
	TemplateNewEmailAdded = "new-email-added"
	// Data: Username, OldEmail, NewEmail. Sent to the old address.
	TemplatePrimaryEmailChange = "primary-email-change"
	// Data: Username, Link (the reset URL), ExpiresIn.
	TemplatePasswordReset = "password-reset"
	// Data: Email (the unverified address the reset was asked for).
	TemplatePasswordResetUnverified = "password-reset-unverified"
	// Data: Username.
	TemplatePasswordChange = "password-change"
	// Data: Username.
	TemplateAccountDeleted = "account-deleted"
	// Data: Username, Method (e.g. "authentication app", "security key 'YubiKey'").
	TemplateTwoFactorAdded = "two-factor-added"
	// Data: Username, Method.
	TemplateTwoFactorRemoved = "two-factor-removed"
	// Data: Username.
	TemplateRecoveryCodesGenerated = "recovery-codes-generated"
	// Data: Username.
	TemplateRecoveryCodeUsed = "recovery-code-used"
	// Data: Username. After a 2FA login by a user with no unused codes.
	TemplateRecoveryCodeReminder = "recovery-code-reminder"
	// Data: Username, IP, Browser, Time, Link (the confirm-login URL),
	// ExpiresIn. Sent even to an unverified primary address.
	TemplateUnrecognizedLogin = "unrecognized-login"
	// Data: Username, Label (the security key's label).
	TemplateWebAuthnSignCount = "webauthn-sign-count"
	// Data: Username, Admin (the administrator's username). Sent even to an
	// unverified primary address.
	TemplateAccountRecovery = "account-recovery"

	// Project collaboration (spec §2.2). Project is the project's display
	// name, Role "Owner" or "Maintainer", Submitter the username of whoever
	// made the change.
	//
	// Data: Username (the invitee), Inviter, Project, Role, AcceptLink,
	// DeclineLink (the invitation page, each with the one-time token),
	// ExpiresIn. Sent to the invitee, who must have a verified address.
	TemplateVerifyProjectRole = "verify-project-role"
	// Data: Username (the owner told), Collaborator, Project, Role,
	// Submitter. Sent to each owner but the new collaborator.
	TemplateCollaboratorAdded = "collaborator-added"
	// Data: Username, Project, Role, Submitter. Sent to the new collaborator.
	TemplateAddedAsCollaborator = "added-as-collaborator"
	// Data: Username (the owner told), Collaborator, Project, Submitter.
	TemplateCollaboratorRemoved = "collaborator-removed"
	// Data: Username, Project, Submitter. Sent to whoever was removed (or left).
	TemplateRemovedAsCollaborator = "removed-as-collaborator"
	// Data: Username (the owner told), Collaborator, Project, Role (the new
	// one), Submitter.
	TemplateCollaboratorRoleChanged = "collaborator-role-changed"
	// Data: Username, Project, Role (the new one), Submitter.
	TemplateRoleChangedAsCollaborator = "role-changed-as-collaborator"
	// Data: Username (the owner told), Invitee, Project, Role.
	TemplateProjectInviteDeclined = "project-role-invite-declined"
	// Data: Username (the invitee), Project, Role, Submitter.
	TemplateProjectInviteRevoked = "project-role-invite-revoked"

	// Notices to each owner and maintainer of a project (sent one by one
	// through account.SendNotice). Every one takes Username (the
	// recipient), Project (its display name) and RecipientRole ("an owner"
	// or "a maintainer").
	//
	// Also Version, ReleaseDate (YYYY-MM-DD), Submitter, SubmitterRole
	// ("owner"), Reason ("None provided" when none was given).
	TemplateYankedRelease = "yanked-project-release"
	// Also Version, ReleaseDate, Submitter, SubmitterRole.
	TemplateUnyankedRelease = "unyanked-project-release"
	// Also Version, ReleaseDate, Submitter, SubmitterRole.
	TemplateRemovedRelease = "removed-project-release"
	// Also File (the filename), Version, Submitter, SubmitterRole.
	TemplateRemovedFile = "removed-project-release-file"
	// Also Submitter, SubmitterRole.
	TemplateRemovedProject = "removed-project"
	// Also Reason (the administrator's). Not a PyPI template: PyPI
	// quarantines on malware reports; here an administrator does, and the
	// owners are told.
	TemplateProjectQuarantined = "project-quarantined"
	// No more.
	TemplateQuarantineCleared = "project-quarantine-cleared"
)

// Trusted publishing. Data for each: Username (the recipient), Project
// (its display name), Publisher (the publisher as people read it), Link
// (the page to act on); trusted-publisher-added and -removed also By (who
// did it).
const (
	TemplateTrustedPublisherAdded       = "trusted-publisher-added"
	TemplateTrustedPublisherRemoved     = "trusted-publisher-removed"
	TemplatePendingPublisherReified     = "pending-trusted-publisher-reified"
	TemplatePendingPublisherInvalidated = "pending-trusted-publisher-invalidated"
	TemplatePendingPublisherExpired     = "pending-trusted-publisher-expired"
	// Also Expires (the date).
	TemplatePendingPublisherReminder = "pending-trusted-publisher-expiration-reminder"
	TemplateTokenUsedWithPublisher   = "api-token-used-in-trusted-publisher-project"
	// Also Environment (the one the job ran in); Link offers to limit the
	// publisher to it.
	TemplateEnvironmentIgnored = "environment-ignored-in-trusted-publisher"
	// Data: Username, Description (the token's), Scope (e.g. "whole
	// account"), URL (where it was found, may be ""), ByAdmin ("" for a
	// leak report, "yes" when an administrator revoked it), TokensLink (the
	// API tokens page). Sent even to an unverified primary address, as on
	// PyPI: the owner must hear that a credential leaked.
	TemplateTokenCompromisedLeak = "token-compromised-leak"

	// Organizations (internal/org): the answer to a request, an invitation
	// to join, and the notice of every change, to the owners and to the
	// person it concerns, worded as the organization's history words it.
	TemplateOrganizationDecided    = "organization-request-decided"
	TemplateVerifyOrganizationRole = "verify-organization-role"
	TemplateOrganizationChanged    = "organization-changed"
)

// Templates lists every template a Renderer knows.
var Templates = []string{
	TemplateVerifyEmail,
	TemplateNewEmailAdded,
	TemplatePrimaryEmailChange,
	TemplatePasswordReset,
	TemplatePasswordResetUnverified,
	TemplatePasswordChange,
	TemplateAccountDeleted,
	TemplateTwoFactorAdded,
	TemplateTwoFactorRemoved,
	TemplateRecoveryCodesGenerated,
	TemplateRecoveryCodeUsed,
	TemplateRecoveryCodeReminder,
	TemplateUnrecognizedLogin,
	TemplateWebAuthnSignCount,
	TemplateAccountRecovery,
	TemplateVerifyProjectRole,
	TemplateCollaboratorAdded,
	TemplateAddedAsCollaborator,
	TemplateCollaboratorRemoved,
	TemplateRemovedAsCollaborator,
	TemplateCollaboratorRoleChanged,
	TemplateRoleChangedAsCollaborator,
	TemplateProjectInviteDeclined,
	TemplateProjectInviteRevoked,
	TemplateTrustedPublisherAdded,
	TemplateTrustedPublisherRemoved,
	TemplatePendingPublisherReified,
	TemplatePendingPublisherInvalidated,
	TemplatePendingPublisherExpired,
	TemplatePendingPublisherReminder,
	TemplateTokenUsedWithPublisher,
	TemplateEnvironmentIgnored,
	TemplateYankedRelease,
	TemplateUnyankedRelease,
	TemplateRemovedRelease,
	TemplateRemovedFile,
	TemplateRemovedProject,
	TemplateProjectQuarantined,
	TemplateQuarantineCleared,
	TemplateTokenCompromisedLeak,
	TemplateOrganizationDecided,
	TemplateVerifyOrganizationRole,
	TemplateOrganizationChanged,
}

// AllowsUnverified reports whether template may go to an unverified
// address. Spec §1.4: an email goes to the user's primary address and is
// skipped when that address is unverified, except for these templates
// (verify-email, password-reset-unverified; unrecognized-login, without
// which the owner could not finish a login at all; account-recovery and
// token-compromised-leak, which the owner must hear of whatever the state
// of their address). Callers
// apply the policy; Enqueue does not know whether an address is verified.
func AllowsUnverified(template string) bool {
	switch template {
	case TemplateVerifyEmail, TemplatePasswordResetUnverified, TemplateUnrecognizedLogin, TemplateAccountRecovery, TemplateTokenCompromisedLeak:
		return true
	}
	return false
}

//go:embed templates
var templateFS embed.FS

type emailTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Renderer renders the named templates: embedded text/template and
// html/template files under internal/mail/templates/<name>/{subject.txt,
// body.txt,body.html}, with the shared layout in templates/base. Besides
// their data, templates can call {{site}} (the site name) and {{baseURL}}.
// A Renderer is safe for concurrent use.
type Renderer struct {
	siteName string
	baseURL  string
	tmpl     map[string]emailTemplates
}

// NewRenderer parses all templates once; it fails if any is missing or
// broken, so a bad template stops the server at start, not at the first
// password reset.
func NewRenderer(siteName, baseURL string) (*Renderer, error) {
	if strings.TrimSpace(siteName) == "" {
		return nil, errors.New("mail: empty site name")
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mail: base URL %q is not an absolute http(s) URL", baseURL)
	}
	r := &Renderer{siteName: siteName, baseURL: strings.TrimSuffix(baseURL, "/"), tmpl: map[string]emailTemplates{}}
	funcs := map[string]any{
		"site":    func() string { return r.siteName },
		"baseURL": func() string { return r.baseURL },
	}

	baseText, err := parseText(texttemplate.New("_base").Funcs(funcs), "templates/base/footer.txt")
	if err != nil {
		return nil, err
	}
	baseHTML, err := parseHTML(htmltemplate.New("_base").Funcs(funcs), "templates/base/layout.html")
	if err != nil {
		return nil, err
	}
	for _, name := range Templates {
		dir := "templates/" + name + "/"
		var t emailTemplates
		if t.subject, err = parseText(texttemplate.New("subject").Funcs(funcs), dir+"subject.txt"); err != nil {
			return nil, err
		}
		bt, err := baseText.Clone()
		if err != nil {
			return nil, err
		}
		if t.text, err = parseText(bt, dir+"body.txt"); err != nil {
			return nil, err
		}
		bh, err := baseHTML.Clone()
		if err != nil {
			return nil, err
		}
		if t.html, err = parseHTML(bh, dir+"body.html"); err != nil {
			return nil, err
		}
		if t.html.Lookup("content") == nil {
			return nil, fmt.Errorf("mail: %sbody.html does not define \"content\"", dir)
		}
		r.tmpl[name] = t
	}
	return r, nil
}

func readTemplate(path string) (string, error) {
	b, err := fs.ReadFile(templateFS, path)
	if err != nil {
		return "", fmt.Errorf("mail: template %s: %w", path, err)
	}
	return string(b), nil
}

func parseText(t *texttemplate.Template, path string) (*texttemplate.Template, error) {
	src, err := readTemplate(path)
	if err != nil {
		return nil, err
	}
	t, err = t.Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("mail: template %s: %w", path, err)
	}
	return t, nil
}

func parseHTML(t *htmltemplate.Template, path string) (*htmltemplate.Template, error) {
	src, err := readTemplate(path)
	if err != nil {
		return nil, err
	}
	t, err = t.Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("mail: template %s: %w", path, err)
	}
	return t, nil
}

// Render renders the named template for the address to (the account userID,
// 0 for none) with data; see the Template constants for each template's
// fields. The subject gets the "[<site name>] " prefix.
func (r *Renderer) Render(template string, userID int64, to string, data any) (Message, error) {
	t, ok := r.tmpl[template]
	if !ok {
		return Message{}, fmt.Errorf("mail: unknown template %q", template)
	}
	var subj, text, html bytes.Buffer
	if err := t.subject.Execute(&subj, data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s subject: %w", template, err)
	}
	if err := t.text.Execute(&text, data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s text: %w", template, err)
	}
	if err := t.html.ExecuteTemplate(&html, "layout", data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s html: %w", template, err)
	}
	// A subject is one line whatever the data holds.
	subject := "[" + r.siteName + "] " + strings.Join(strings.Fields(subj.String()), " ")
	m := Message{
		UserID:   userID,
		Template: template,
		To:       to,
		Subject:  subject,
		Text:     strings.TrimSpace(text.String()) + "\n",
		HTML:     html.String(),
	}
	return m, nil
}
