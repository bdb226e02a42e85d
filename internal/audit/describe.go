package audit

import (
	"fmt"
	"strings"
)

// methodWords names a login method (the two_factor_method of login events)
// the way the pages do.
func methodWords(m string) string {
	switch m {
	case "totp":
		return "an authentication app"
	case "recovery-code":
		return "a recovery code"
	case "webauthn":
		return "a security key"
	case "passkey":
		return "a passkey"
	case "remembered-device":
		return "a remembered browser"
	case "email-confirmation":
		return "an emailed confirmation link"
	}
	return "a second factor"
}

// Describe says what an event means in plain words, for the security
// history on the account page. Every tag this package defines has its own
// words (TestDescribeKnowsEveryTag); what is stored in the event's details
// (a reason, a method) is translated, never shown as the raw value.
func Describe(e Stored) string {
	if d, ok := describeProject(e); ok {
		return d
	}
	str := func(k string) string {
		if v, ok := e.Additional[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	if d, ok := describeCollaboration(e, str); ok {
		return d
	}
	if d, ok := describeOrganization(e, str); ok {
		return d
	}
	if d, ok := describeUpstream(e, str); ok {
		return d
	}
	switch e.Tag {
	case AccountCreate:
		return "Account created"
	case LoginSuccess:
		switch m := str("two_factor_method"); m {
		case "", "none":
			return "Logged in with a password"
		case "registration":
			return "Logged in after registering"
		case "totp":
			return "Logged in with an authentication app"
		case "webauthn":
			return "Logged in with a security key"
		case "passkey":
			return "Signed in with a passkey"
		case "remembered-device":
			return "Logged in from a remembered browser"
		case "recovery-code":
			return "Logged in with a recovery code"
		case "email-confirmation":
			return "Logged in after confirming the login from the emailed link"
		default:
			return "Logged in with " + methodWords(m)
		}
	case LoginFailure:
		switch str("reason") {
		case "invalid_password":
			return "Failed login: wrong password"
		case "invalid_totp":
			return "Failed login: wrong authentication app code"
		case "replayed_totp":
			return "Failed login: an authentication app code was used twice"
		case "invalid_recovery_code":
			return "Failed login: wrong recovery code"
		case "burned_recovery_code":
			return "Failed login: recovery code already used"
		case "invalid_webauthn":
			return "Failed login: security key response refused"
		case "confirm_login_wrong_browser":
			return "Login confirmation link opened in a browser other than the one that logged in; nothing was confirmed"
		case "busy":
			return "Login refused: too many sign-ins were in progress to check the password"
		default:
			return "Failed login"
		}
	case ReauthFailure:
		if str("reason") == "busy" {
			return "Password confirmation refused: too many sign-ins were in progress to check it"
		}
		return "Password confirmation failed"
	case EmailAdd:
		return "Email address added: " + str("email")
	case EmailRemove:
		return "Email address removed: " + str("email")
	case EmailVerified:
		return "Email address verified: " + str("email")
	case EmailReverify:
		return "Verification email sent again to " + str("email")
	case EmailPrimaryChange:
		return "Primary email changed from " + str("old") + " to " + str("new")
	case EmailSent:
		return "Email sent to " + str("to") + ": " + str("subject")
	case PasswordChange:
		return "Password changed"
	case PasswordReset:
		return "Password reset"
	case PasswordResetRequest:
		return "Password reset requested"
	case PasswordResetAttempt:
		return "Password reset requested for an unverified address"
	case SessionRevoked:
		if str("scope") == "others" {
			return "Logged out every other session"
		}
		return "Ended a session"
	case APITokenAdded:
		return "API token created: " + str("description") + " (" + scopeWords(str("scope")) + ")"
	case APITokenRemoved:
		return "API token deleted: " + str("description")
	case APITokenRemovedLeak:
		if str("origin") == "command line" {
			return "API token revoked by an administrator because it leaked: " + str("description")
		}
		return "API token revoked because it was found in public: " + str("description")
	case ProjectAPITokenAdded:
		return "API token " + str("description") + " of " + str("owner") + " created for this project"
	case ProjectAPITokenRemoved:
		return "API token " + str("description") + " of " + str("owner") + " for this project deleted"
	case LoginNewDevice:
		return "Login with " + methodWords(str("two_factor_method")) + " from an unrecognized browser held until it is confirmed from the emailed link; not logged in yet"
	case LoginConfirmed:
		return "Login confirmed from the emailed link"
	case TwoFactorAdded, TwoFactorRemoved:
		verb := "added"
		if e.Tag == TwoFactorRemoved {
			verb = "removed"
		}
		switch str("method") {
		case "totp":
			return "Authentication app " + verb
		case "webauthn":
			kind := "Security key"
			if str("kind") == "passkey" {
				kind = "Passkey"
			}
			return kind + " “" + str("label") + "” " + verb
		}
		return "Second factor " + verb
	case DeviceRemembered:
		return "Browser remembered for 30 days"
	case DeviceRevoked:
		return "Recognized browser forgotten"
	case RecoveryCodesGenerated:
		return "Recovery codes generated"
	case RecoveryCodesRegenerated:
		return "Recovery codes regenerated"
	case RecoveryCodeUsed:
		if str("purpose") == "confirm_stored" {
			return "Recovery codes confirmed"
		}
		// Only the code: whether the login then went through or was held
		// for email confirmation is the next event's to say.
		return "Recovery code used to log in (it cannot be used again)"
	case WebAuthnSignCountError:
		return "Security key “" + str("label") + "” refused: its signature counter went backwards (possible clone)"
	case AdminAccountRecovery:
		return "Account recovered by administrator " + e.Actor + ": " + str("verified_how")
	case AdminUserDisabled:
		return "Account disabled by administrator " + e.Actor
	case AdminUserEnabled:
		return "Account enabled by administrator " + e.Actor
	case AdminRegistrationChanged:
		if str("open") == "true" {
			return "Registration opened by administrator " + e.Actor
		}
		return "Registration closed by administrator " + e.Actor
	case AdminReadOnlyChanged:
		if str("read_only") == "true" {
			return "Read-only mode turned on by administrator " + e.Actor
		}
		return "Read-only mode turned off by administrator " + e.Actor
	case Logout:
		return "Logged out"
	case PublisherAdded:
		if str("reified_from_pending_publisher") == "true" {
			return "Project created by pending trusted publisher " + str("specifier")
		}
		if str("constrained_from_existing_publisher") == "true" {
			return "Trusted publisher limited to an environment by " + e.Actor + ": " + str("specifier")
		}
		return "Trusted publisher added by " + e.Actor + ": " + str("specifier")
	case PublisherRemoved:
		if str("constrained_from_existing_publisher") == "true" {
			return "Trusted publisher replaced by one limited to an environment, by " + e.Actor + ": " + str("specifier")
		}
		return "Trusted publisher removed by " + e.Actor + ": " + str("specifier")
	case PendingPublisherAdded:
		return "Pending trusted publisher added for " + str("project") + ": " + str("specifier")
	case PendingPublisherRemoved:
		switch str("submitted_by") {
		case "system:ttl-expired":
			return "Pending trusted publisher for " + str("project") + " expired"
		case "":
			return "Pending trusted publisher for " + str("project") + " removed: " + str("reason")
		}
		return "Pending trusted publisher for " + str("project") + " removed"
	case ShortLivedTokenAdded:
		what := "Upload token minted for trusted publisher " + str("publisher")
		if r := str("ref"); r != "" {
			what += " at " + r
		}
		if sha := str("sha"); sha != "" {
			what += " (" + sha + ")"
		}
		return what
	case TrustedPublishingOnlyEnabled:
		return "Trusted publishing only: turned on by " + e.Actor + "; API tokens can no longer upload"
	case TrustedPublishingOnlyDisabled:
		return "Trusted publishing only: turned off by " + e.Actor
	case RequireAttestationsEnabled:
		return "Require attestations: turned on by " + e.Actor + "; files without verified attestations are refused"
	case RequireAttestationsDisabled:
		return "Require attestations: turned off by " + e.Actor
	case OIDCIssuerAdded:
		return "Trusted publishing issuer " + str("issuer") + " added by administrator " + e.Actor
	case OIDCIssuerRemoved:
		return "Trusted publishing issuer " + str("issuer") + " removed by administrator " + e.Actor
	case AccountDelete:
		return "Account deleted"
	}
	return fallbackWords(e.Tag)
}

// fallbackWords is what a tag without words of its own shows: its parts as
// words, never a blank line. The tags of this package all have their own.
func fallbackWords(tag string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tag, ":", " "), "_", " ")
}

// scopeWords is a token's permissions summary as the pages say it.
func scopeWords(scope string) string {
	if rest, ok := strings.CutPrefix(scope, "read: "); ok {
		return "read-only, " + scopeWords(rest)
	}
	if names, ok := strings.CutPrefix(scope, "projects: "); ok {
		return "projects " + names
	}
	return "whole account"
}

// describeCollaboration words the project-collaboration events: on the
// account ("you") and on the project (its history).
func describeCollaboration(e Stored, str func(string) string) (string, bool) {
	role, project, target := str("role_name"), str("project_name"), str("target_user")
	switch e.Tag {
	case AccountRoleInvite:
		return "Invited by " + e.Actor + " to join project " + project + " as " + role, true
	case AccountRoleAdd:
		return "Joined project " + project + " as " + role, true
	case AccountRoleChange:
		return "Role on project " + project + " changed to " + role + " by " + e.Actor, true
	case AccountRoleRemove:
		if e.ActorID == e.UserID {
			return "Left project " + project + " (was " + role + ")", true
		}
		return "Removed from project " + project + " (was " + role + ") by " + e.Actor, true
	case AccountRoleDeclineInvite:
		return "Declined the invitation to join project " + project + " as " + role, true
	case AccountRoleRevokeInvite:
		return "Invitation to join project " + project + " as " + role + " withdrawn by " + e.Actor, true
	case ProjectRoleInvite:
		return e.Actor + " invited " + target + " to be " + role, true
	case ProjectRoleAdd:
		return target + " joined as " + role, true
	case ProjectRoleChange:
		return e.Actor + " changed the role of " + target + " to " + role, true
	case ProjectRoleRemove:
		if e.Actor == target {
			return target + " left (was " + role + ")", true
		}
		return e.Actor + " removed " + target + " (was " + role + ")", true
	case ProjectRoleDeclineInvite:
		return target + " declined the invitation to be " + role, true
	case ProjectRoleRevokeInvite:
		return e.Actor + " withdrew the invitation of " + target + " to be " + role, true
	}
	return "", false
}
