package audit

import "fmt"

// Describe says what an event means in plain words, for the security
// history on the account page.
func Describe(e Stored) string {
	str := func(k string) string {
		if v, ok := e.Additional[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
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
		default:
			return "Logged in (" + m + ")"
		}
	case LoginFailure:
		switch str("reason") {
		case "invalid_password":
			return "Failed login: wrong password"
		default:
			return "Failed login: " + str("reason")
		}
	case ReauthFailure:
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
		return "API token created: " + str("description")
	case APITokenRemoved:
		return "API token deleted: " + str("description")
	case AdminUserDisabled:
		return "Account disabled by administrator " + e.Actor
	case AdminUserEnabled:
		return "Account enabled by administrator " + e.Actor
	case AdminRegistrationChanged:
		return "Registration switched " + str("state")
	case AdminReadOnlyChanged:
		return "Read-only mode switched " + str("state")
	}
	return e.Tag
}
