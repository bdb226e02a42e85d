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
		default:
			return "Logged in (" + m + ")"
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
		case "busy":
			return "Login refused: too many sign-ins were in progress to check the password"
		default:
			return "Failed login: " + str("reason")
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
		return "API token created: " + str("description")
	case APITokenRemoved:
		return "API token deleted: " + str("description")
	case LoginNewDevice:
		return "Login from an unrecognized browser held for email confirmation (" + str("two_factor_method") + ")"
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
		return "Logged in with a recovery code"
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
	}
	return e.Tag
}
