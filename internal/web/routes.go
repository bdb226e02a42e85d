package web

import "net/http"

// routes registers Gatehouse's entire HTTP surface.
//
// Every request first passes observe (observe.go), outside the mux: its
// request id, its metrics under the route's pattern, its log line.
//
// Tool routes (Simple API, JSON API, files, upload) carry no cookies and need
// no CSRF defence; every answer is marked nosniff, because JSON and metadata
// files hold text a package author wrote, "<script>" included. Browser pages
// get the page chain: security headers, cross-origin (CSRF) protection on
// every state-changing method, the session, and pageBody, which caps the
// body at maxPageBody, refuses multipart and reads the form before any
// handler runs. Uploads read their own body, held to a minimum transfer rate
// (minrate.go). Every handler returns an error, which errors.go turns into a
// response.
//
// Each page route names its guard (auth.go), so this list is the access
// policy: none (anyone), signedIn, sudo (password entered in the last 30
// minutes), manage (signed in, a verified primary email and a second factor:
// PyPI's gate for every management action), owner and maintainer (a role on
// the route's {project}, after manage), admin (manage and sudo,
// administrators only), handoff (the second-factor pages, for five minutes
// after the password), orgOwner, orgManager and orgMember (a role in the
// route's {organization}, after manage, with its security policies).
// Destructive management actions add sudo:
// manage(owner(sudo(h))). The JSON variants answer scripts and webauthn.js
// with a 403 body instead of redirecting.
func (s *Server) routes(mux router) {
	tool := func(h handlerFunc) http.Handler { return s.recoverer(noSniff(noBody(s.toolErrors(h)))) }
	page := s.page

	// Simple Repository API (PEP 503, 691, 658, 700, 714). With
	// --read-access authenticated, readTool wants a token or a session
	// (readaccess.go); with public it is not there at all.
	mux.Handle("GET /simple/{$}", tool(s.readTool(s.simpleIndex)))
	mux.Handle("GET /simple/{project}/{$}", tool(s.readTool(s.simpleDetail)))
	mux.Handle("GET /simple/{project}", tool(s.readTool(s.simpleRedirect)))

	// Files and their PEP 658 metadata, addressed by blake2b-256 digest.
	mux.Handle("GET /packages/{a}/{b}/{digest}/{filename}", tool(s.readTool(s.serveFile)))

	// Upstream files of the pull-through cache (upstream.go).
	mux.Handle("GET /upstream/{a}/{sha256}/{filename}", tool(s.readTool(s.serveUpstreamFile)))

	// JSON API.
	mux.Handle("GET /pypi/{project}/json", tool(s.readTool(s.jsonProject)))
	mux.Handle("GET /pypi/{project}/{version}/json", tool(s.readTool(s.jsonRelease)))

	// Integrity API (PEP 740): a file's verified attestations.
	mux.Handle("GET /integrity/{project}/{version}/{filename}/provenance", tool(s.readTool(s.provenance)))

	// Legacy upload API, as twine, uv, poetry and flit speak it.
	mux.Handle("POST /legacy/{$}", s.recoverer(noSniff(http.HandlerFunc(s.upload))))
	mux.Handle("POST /legacy", http.RedirectHandler("/legacy/", http.StatusPermanentRedirect))

	// Trusted publishing: the exchange CI jobs make (oidc.go). The mint
	// and burn endpoints read their own, bounded bodies.
	mux.Handle("GET /_/oidc/audience", tool(s.oidcAudience))
	mux.Handle("POST /_/oidc/mint-token", tool(s.mintToken))
	mux.Handle("POST /_/oidc/github/mint-token", tool(s.mintToken))
	// uv revokes its minted token when its uploads are done (oidc_burn.go).
	mux.Handle("POST /_/oidc/burn-token", tool(s.burnToken))
	// Leaked-token reports (spec §1.7): no guard, no cookies. Knowing a
	// token's value is the authority to have it revoked (leak.go).
	mux.Handle("POST /_/secrets/disclose-token", s.recoverer(noSniff(s.toolErrors(s.discloseToken))))

	// Browse pages.
	mux.Handle("GET /{$}", page(s.readPage(s.homePage)))
	mux.Handle("GET /project/{project}/{$}", page(s.readPage(s.projectPage)))
	mux.Handle("GET /project/{project}/{version}/{$}", page(s.readPage(s.projectPage)))
	mux.Handle("GET /help/{$}", page(s.helpPage))

	// Signing up, in and out.
	mux.Handle("GET /account/register/{$}", page(s.registerPage))
	mux.Handle("POST /account/register/{$}", page(s.register))
	mux.Handle("GET /account/login/{$}", page(s.loginPage))
	mux.Handle("POST /account/login/{$}", page(s.login))
	mux.Handle("POST /account/logout/{$}", page(s.logout))
	mux.Handle("GET /account/reauthenticate/{$}", page(s.signedIn(s.reauthPage)))
	mux.Handle("POST /account/reauthenticate/{$}", page(s.signedIn(s.reauth)))
	mux.Handle("GET /account/verify-email/{$}", page(s.signedIn(s.verifyEmail)))

	// The second step of a login, and new-device confirmation.
	mux.Handle("GET /account/two-factor/{$}", page(s.handoff(s.twoFactorPage)))
	mux.Handle("POST /account/two-factor/totp/{$}", page(s.handoff(s.twoFactorTOTP)))
	mux.Handle("POST /account/webauthn-authenticate/options/{$}", page(s.handoffJSON(s.webauthnLoginOptions)))
	mux.Handle("POST /account/webauthn-authenticate/validate/{$}", page(s.handoffJSON(s.webauthnLoginValidate)))
	mux.Handle("GET /account/recovery-code/{$}", page(s.handoff(s.recoveryCodePage)))
	mux.Handle("POST /account/recovery-code/{$}", page(s.handoff(s.recoveryCodeLogin)))
	mux.Handle("GET /account/confirm-login/{$}", page(s.confirmLogin))
	mux.Handle("POST /account/confirm-login/resend/{$}", page(s.resendConfirmation))
	mux.Handle("POST /account/passkey/options/{$}", page(s.passkeyOptions))
	mux.Handle("POST /account/passkey/login/{$}", page(s.passkeyLogin))
	mux.Handle("POST /account/reauthenticate/webauthn/options/{$}", page(s.signedInJSON(s.reauthWebAuthnOptions)))
	mux.Handle("POST /account/reauthenticate/webauthn/validate/{$}", page(s.signedInJSON(s.reauthWebAuthnValidate)))
	mux.Handle("GET /account/request-password-reset/{$}", page(s.requestResetPage))
	mux.Handle("POST /account/request-password-reset/{$}", page(s.requestReset))
	mux.Handle("GET /account/reset-password/{$}", page(s.resetPasswordPage))
	mux.Handle("POST /account/reset-password/{$}", page(s.resetPassword))

	// The account pages, split as PyPI's: account settings (emails,
	// password), two-factor and sessions, API tokens, security history.
	mux.Handle("GET /manage/account/{$}", page(s.signedIn(s.accountPage)))
	mux.Handle("GET /manage/account/history/{$}", page(s.signedIn(s.historyPage)))
	mux.Handle("GET /manage/account/token/{$}", page(s.manage(s.sudo(s.tokensPage))))
	mux.Handle("POST /manage/account/token/{$}", page(s.manage(s.sudo(s.createToken))))
	mux.Handle("POST /manage/account/token/delete/{$}", page(s.manage(s.sudo(s.deleteToken))))
	mux.Handle("POST /manage/account/emails/add/{$}", page(s.sudo(s.addEmail)))
	mux.Handle("POST /manage/account/emails/remove/{$}", page(s.sudo(s.removeEmail)))
	mux.Handle("POST /manage/account/emails/primary/{$}", page(s.sudo(s.setPrimaryEmail)))
	mux.Handle("POST /manage/account/emails/resend/{$}", page(s.signedIn(s.resendVerification)))
	mux.Handle("POST /manage/account/password/{$}", page(s.sudo(s.changePassword)))
	mux.Handle("POST /manage/account/sessions/end/{$}", page(s.signedIn(s.endSession)))
	mux.Handle("POST /manage/account/sessions/end-others/{$}", page(s.signedIn(s.endOtherSessions)))
	mux.Handle("GET /manage/account/delete/{$}", page(s.sudo(s.deleteAccountPage)))
	mux.Handle("POST /manage/account/delete/{$}", page(s.sudo(s.deleteAccount)))
	mux.Handle("GET /manage/account/two-factor/{$}", page(s.signedIn(s.twoFactorManage)))
	mux.Handle("POST /manage/account/recovery-codes/generate/{$}", page(s.sudo(s.generateRecoveryCodes)))
	mux.Handle("POST /manage/account/recovery-codes/confirm/{$}", page(s.signedIn(s.confirmRecoveryCodes)))
	mux.Handle("GET /manage/account/totp-provision/{$}", page(s.sudo(s.totpProvisionPage)))
	mux.Handle("POST /manage/account/totp-provision/{$}", page(s.sudo(s.totpProvision)))
	mux.Handle("POST /manage/account/totp/remove/{$}", page(s.sudo(s.totpRemove)))
	mux.Handle("GET /manage/account/webauthn-provision/{$}", page(s.sudo(s.webauthnProvisionPage)))
	mux.Handle("POST /manage/account/webauthn-provision/options/{$}", page(s.sudoJSON(s.webauthnProvisionOptions)))
	mux.Handle("POST /manage/account/webauthn-provision/validate/{$}", page(s.sudoJSON(s.webauthnProvisionValidate)))
	mux.Handle("POST /manage/account/webauthn/remove/{$}", page(s.sudo(s.webauthnRemove)))
	mux.Handle("POST /manage/account/devices/revoke/{$}", page(s.signedIn(s.deviceRevoke)))
	mux.Handle("GET /manage/unverified-account/{$}", page(s.signedIn(s.unverifiedAccountPage)))
	mux.Handle("POST /manage/unverified-account/{$}", page(s.signedIn(s.replaceUnverifiedEmail)))

	// Projects, at PyPI's addresses. The pages that hold destructive forms
	// (settings, one release) ask for the password again, as PyPI's do, and
	// every POST needs at least what its page needs: the owner and sudo.
	// Maintainers may look; only owners change anything.
	mux.Handle("GET /manage/projects/{$}", page(s.manage(s.yourProjects)))
	mux.Handle("GET /manage/project/{project}/{$}", page(s.manage(s.maintainer(s.projectRoot))))
	mux.Handle("GET /manage/project/{project}/settings/{$}", page(s.manage(s.maintainer(s.sudo(s.projectSettings)))))
	mux.Handle("POST /manage/project/{project}/archive/{$}", page(s.manage(s.owner(s.sudo(s.archiveProject)))))
	mux.Handle("POST /manage/project/{project}/unarchive/{$}", page(s.manage(s.owner(s.sudo(s.unarchiveProject)))))
	mux.Handle("POST /manage/project/{project}/delete/{$}", page(s.manage(s.owner(s.sudo(s.deleteProject)))))
	mux.Handle("GET /manage/project/{project}/releases/{$}", page(s.manage(s.maintainer(s.projectReleases))))
	mux.Handle("GET /manage/project/{project}/release/{version}/{$}", page(s.manage(s.maintainer(s.sudo(s.projectRelease)))))
	mux.Handle("POST /manage/project/{project}/release/{version}/yank/{$}", page(s.manage(s.owner(s.sudo(s.yankRelease)))))
	mux.Handle("POST /manage/project/{project}/release/{version}/unyank/{$}", page(s.manage(s.owner(s.sudo(s.unyankRelease)))))
	mux.Handle("POST /manage/project/{project}/release/{version}/delete/{$}", page(s.manage(s.owner(s.sudo(s.deleteRelease)))))
	mux.Handle("POST /manage/project/{project}/release/{version}/delete-file/{$}", page(s.manage(s.owner(s.sudo(s.deleteFile)))))
	mux.Handle("GET /manage/project/{project}/history/{$}", page(s.manage(s.maintainer(s.projectHistory))))
	// The pull-through cache: where installers find the project's name.
	mux.Handle("POST /manage/project/{project}/settings/origin/{$}", page(s.manage(s.owner(s.sudo(s.setProjectOrigin)))))
	// PEP 708: the other indexes' pages of this same project (upstream.go).
	mux.Handle("POST /manage/project/{project}/settings/alternate-locations/{$}", page(s.manage(s.owner(s.sudo(s.setAlternateLocations)))))

	// Collaborators (PyPI's paths). The collaboration page and its forms are
	// for owners, as on PyPI (ProjectsWrite, with re-authentication), and
	// every form is guarded as its page is; a maintainer manages only their
	// own role: leaving. Answering an invitation needs the gate but no role.
	mux.Handle("GET /manage/project/{project}/collaboration/{$}", page(s.manage(s.owner(s.sudo(s.collaboration)))))
	mux.Handle("POST /manage/project/{project}/collaboration/{$}", page(s.manage(s.owner(s.sudo(s.inviteCollaborator)))))
	mux.Handle("POST /manage/project/{project}/collaboration/change/{$}", page(s.manage(s.owner(s.sudo(s.changeRole)))))
	mux.Handle("POST /manage/project/{project}/collaboration/delete/{$}", page(s.manage(s.owner(s.sudo(s.removeCollaborator)))))
	mux.Handle("POST /manage/project/{project}/collaboration/revoke_invite/{$}", page(s.manage(s.owner(s.sudo(s.revokeInvitation)))))
	mux.Handle("GET /manage/project/{project}/collaboration/leave/{$}", page(s.manage(s.maintainer(s.sudo(s.leaveProjectPage)))))
	mux.Handle("POST /manage/project/{project}/collaboration/leave/{$}", page(s.manage(s.maintainer(s.sudo(s.leaveProject)))))
	mux.Handle("GET /account/verify-project-role/{$}", page(s.manage(s.verifyProjectRole)))
	mux.Handle("POST /account/verify-project-role/{$}", page(s.manage(s.answerProjectRole)))
	mux.Handle("GET /manage/account/invitations/{$}", page(s.manage(s.invitations)))
	mux.Handle("POST /manage/account/invitations/{$}", page(s.manage(s.answerInvitation)))
	// Trusted publishers (publishing.go): a project's, for its owners with
	// a recent password (a publisher can upload, so adding one is as
	// sensitive as removing one, as on PyPI), and the account's pending
	// publishers.
	mux.Handle("GET /manage/project/{project}/settings/publishing/{$}", page(s.manage(s.owner(s.sudo(s.projectPublishingPage)))))
	mux.Handle("POST /manage/project/{project}/settings/publishing/{$}", page(s.manage(s.owner(s.sudo(s.addProjectPublisher)))))
	mux.Handle("POST /manage/project/{project}/settings/publishing/remove/{$}", page(s.manage(s.owner(s.sudo(s.removeProjectPublisher)))))
	mux.Handle("POST /manage/project/{project}/settings/publishing/only/{$}", page(s.manage(s.owner(s.sudo(s.setTrustedPublishingOnly)))))
	mux.Handle("POST /manage/project/{project}/settings/publishing/attestations/{$}", page(s.manage(s.owner(s.sudo(s.setRequireAttestations)))))
	mux.Handle("POST /manage/project/{project}/settings/publishing/constrain/{$}", page(s.manage(s.owner(s.sudo(s.constrainPublisher)))))
	mux.Handle("GET /manage/account/publishing/{$}", page(s.manage(s.accountPublishingPage)))
	mux.Handle("POST /manage/account/publishing/{$}", page(s.manage(s.addPendingPublisher)))
	mux.Handle("POST /manage/account/publishing/remove/{$}", page(s.manage(s.removePendingPublisher)))

	// Organizations (organizations.go), at PyPI's paths. Every page of an
	// organization needs the gate and a role in it (auth_org.go), and its
	// policies; every form also needs a recent password, as PyPI's
	// organization and team management does. Members see the projects,
	// people and teams; managers manage teams and projects; owners manage
	// people, settings and policies. Answering an invitation needs the gate
	// but no role; the profile page is public.
	mux.Handle("GET /manage/organizations/{$}", page(s.manage(s.yourOrganizations)))
	mux.Handle("POST /manage/organizations/{$}", page(s.manage(s.requestOrganization)))
	mux.Handle("POST /manage/organizations/invitations/{$}", page(s.manage(s.answerOrgInvitation)))
	mux.Handle("GET /account/verify-organization-role/{$}", page(s.manage(s.verifyOrganizationRole)))
	mux.Handle("POST /account/verify-organization-role/{$}", page(s.manage(s.answerOrganizationRole)))
	mux.Handle("GET /org/{organization}/{$}", page(s.readPage(s.orgProfile)))
	mux.Handle("GET /manage/organization/{organization}/{$}", page(s.manage(s.orgMember(s.orgRoot))))
	mux.Handle("GET /manage/organization/{organization}/projects/{$}", page(s.manage(s.orgMember(s.orgProjects))))
	mux.Handle("POST /manage/organization/{organization}/projects/{$}", page(s.manage(s.orgManager(s.sudo(s.createOrgProject)))))
	mux.Handle("POST /manage/organization/{organization}/projects/move-in/{$}", page(s.manage(s.orgMember(s.sudo(s.moveProjectIn)))))
	mux.Handle("POST /manage/organization/{organization}/projects/answer/{$}", page(s.manage(s.orgManager(s.sudo(s.answerProjectMove)))))
	mux.Handle("POST /manage/organization/{organization}/projects/move-out/{$}", page(s.manage(s.orgOwner(s.sudo(s.moveProjectOut)))))
	mux.Handle("GET /manage/organization/{organization}/people/{$}", page(s.manage(s.orgMember(s.orgPeople))))
	mux.Handle("POST /manage/organization/{organization}/people/{$}", page(s.manage(s.orgOwner(s.sudo(s.inviteOrgMember)))))
	mux.Handle("POST /manage/organization/{organization}/people/change/{$}", page(s.manage(s.orgOwner(s.sudo(s.changeOrgRole)))))
	mux.Handle("POST /manage/organization/{organization}/people/remove/{$}", page(s.manage(s.orgOwner(s.sudo(s.removeOrgMember)))))
	mux.Handle("POST /manage/organization/{organization}/people/revoke_invite/{$}", page(s.manage(s.orgOwner(s.sudo(s.revokeOrgInvitation)))))
	mux.Handle("POST /manage/organization/{organization}/people/leave/{$}", page(s.manage(s.orgMember(s.sudo(s.leaveOrganization)))))
	mux.Handle("GET /manage/organization/{organization}/teams/{$}", page(s.manage(s.orgMember(s.orgTeams))))
	mux.Handle("POST /manage/organization/{organization}/teams/{$}", page(s.manage(s.orgManager(s.sudo(s.createTeam)))))
	mux.Handle("POST /manage/organization/{organization}/teams/delete/{$}", page(s.manage(s.orgManager(s.sudo(s.deleteTeam)))))
	mux.Handle("POST /manage/organization/{organization}/teams/members/{$}", page(s.manage(s.orgManager(s.sudo(s.addTeamMember)))))
	mux.Handle("POST /manage/organization/{organization}/teams/members/remove/{$}", page(s.manage(s.orgManager(s.sudo(s.removeTeamMember)))))
	mux.Handle("POST /manage/organization/{organization}/teams/projects/{$}", page(s.manage(s.orgManager(s.sudo(s.setTeamProjectRole)))))
	mux.Handle("POST /manage/organization/{organization}/teams/projects/remove/{$}", page(s.manage(s.orgManager(s.sudo(s.removeTeamProjectRole)))))
	mux.Handle("GET /manage/organization/{organization}/settings/{$}", page(s.manage(s.orgOwner(s.sudo(s.orgSettings)))))
	mux.Handle("POST /manage/organization/{organization}/settings/rename/{$}", page(s.manage(s.orgOwner(s.sudo(s.renameOrganization)))))
	mux.Handle("POST /manage/organization/{organization}/settings/policies/{$}", page(s.manage(s.orgOwner(s.sudo(s.setOrgPolicies)))))
	mux.Handle("POST /manage/organization/{organization}/settings/delete/{$}", page(s.manage(s.orgOwner(s.sudo(s.deleteOrganization)))))
	mux.Handle("POST /manage/organization/{organization}/settings/issuers/{$}", page(s.manage(s.orgOwner(s.sudo(s.addOrgIssuer)))))
	mux.Handle("POST /manage/organization/{organization}/settings/issuers/remove/{$}", page(s.manage(s.orgOwner(s.sudo(s.removeOrgIssuer)))))
	mux.Handle("GET /manage/organization/{organization}/history/{$}", page(s.manage(s.orgManager(s.orgHistory))))

	// Administration.
	mux.Handle("GET /admin/{$}", page(s.admin(s.adminHome)))
	mux.Handle("GET /admin/users/{id}/{$}", page(s.admin(s.adminUser)))
	mux.Handle("POST /admin/users/{id}/disable/{$}", page(s.admin(s.adminDisableUser)))
	mux.Handle("POST /admin/users/{id}/enable/{$}", page(s.admin(s.adminEnableUser)))
	mux.Handle("POST /admin/users/{id}/recover/{$}", page(s.admin(s.adminRecoverUser)))
	mux.Handle("POST /admin/settings/{$}", page(s.admin(s.adminSettings)))
	mux.Handle("GET /admin/oidc-issuers/{$}", page(s.admin(s.adminIssuersPage)))
	mux.Handle("POST /admin/oidc-issuers/{$}", page(s.admin(s.adminAddIssuer)))
	mux.Handle("POST /admin/oidc-issuers/remove/{$}", page(s.admin(s.adminRemoveIssuer)))
	mux.Handle("GET /admin/upstream/{$}", page(s.admin(s.adminUpstream)))
	mux.Handle("POST /admin/upstream/early/{$}", page(s.admin(s.adminAllowEarly)))
	mux.Handle("POST /admin/upstream/early/remove/{$}", page(s.admin(s.adminRemoveEarly)))
	mux.Handle("GET /admin/organizations/{$}", page(s.admin(s.adminOrganizations)))
	mux.Handle("POST /admin/organizations/{id}/approve/{$}", page(s.admin(s.adminApproveOrganization)))
	mux.Handle("POST /admin/organizations/{id}/decline/{$}", page(s.admin(s.adminDeclineOrganization)))
	mux.Handle("POST /admin/policies/{$}", page(s.admin(s.adminSitePolicies)))
	mux.Handle("GET /admin/projects/{$}", page(s.admin(s.adminProjects)))
	mux.Handle("GET /admin/projects/{project}/{$}", page(s.admin(s.adminProject)))
	mux.Handle("POST /admin/projects/{project}/quarantine/{$}", page(s.admin(s.adminQuarantine)))
	mux.Handle("POST /admin/projects/{project}/unquarantine/{$}", page(s.admin(s.adminClearQuarantine)))
	mux.Handle("POST /admin/projects/{project}/limits/{$}", page(s.admin(s.adminProjectLimits)))
	mux.Handle("POST /admin/projects/{project}/origin/{$}", page(s.admin(s.adminProjectOrigin)))

	mux.Handle("GET /static/{file}", tool(s.serveStatic))
	mux.Handle("GET /favicon.ico", tool(s.favicon))
	mux.Handle("GET /healthz", tool(s.healthz))
	mux.Handle("GET /readyz", tool(s.readyz))
	mux.Handle("/", page(s.notFound))
}

// router is where routes are registered: the mux, through routeRecorder.
type router interface {
	Handle(pattern string, h http.Handler)
}

// page is the chain every browser page runs in: security headers, CSRF
// protection, the session, the body cap, read-only mode, and the error page.
func (s *Server) page(h handlerFunc) http.Handler {
	return s.recoverer(s.securityHeaders(s.csrf.Handler(s.withSession(s.pageBody(s.readOnlyGuard(s.pageErrors(h)))))))
}
