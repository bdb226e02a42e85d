package web

import (
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/account"
)

// The pages emailed links open. EmailLinks hands these paths to the domain
// packages, and TestEmailLinksAreRoutes checks that routes.go answers each,
// so a link in an email and the route behind it cannot drift apart.
const (
	pathVerifyEmail   = "/account/verify-email/"
	pathResetPassword = "/account/reset-password/"
	pathConfirmLogin  = "/account/confirm-login/"
	// PyPI's accounts.verify-project-role.
	pathVerifyProjectRole = "/account/verify-project-role/"
	pathTokens            = "/manage/account/token/"
	// PyPI's accounts.verify-organization-role.
	pathVerifyOrganizationRole = "/account/verify-organization-role/"
)

// EmailLinks returns the absolute addresses of the emailed-link pages
// under the configured public base URL.
func EmailLinks(baseURL string) account.Links {
	base := strings.TrimRight(baseURL, "/")
	return account.Links{
		VerifyEmail:   base + pathVerifyEmail,
		ResetPassword: base + pathResetPassword,
		ConfirmLogin:  base + pathConfirmLogin,

		VerifyProjectRole: base + pathVerifyProjectRole,
		Tokens:            base + pathTokens,

		VerifyOrganizationRole: base + pathVerifyOrganizationRole,
	}
}
