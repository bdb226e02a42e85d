package web

import (
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/account"
)

// The pages emailed links open. routes.go registers them from these
// constants, and EmailLinks hands the same paths to the domain packages, so
// a link in an email and the route that answers it cannot drift apart.
const (
	pathVerifyEmail   = "/account/verify-email/"
	pathResetPassword = "/account/reset-password/"
	pathConfirmLogin  = "/account/confirm-login/"
	pathTokens        = "/manage/account/token/"
)

// EmailLinks returns the absolute addresses of the emailed-link pages
// under the configured public base URL.
func EmailLinks(baseURL string) account.Links {
	base := strings.TrimRight(baseURL, "/")
	return account.Links{
		VerifyEmail:   base + pathVerifyEmail,
		ResetPassword: base + pathResetPassword,
		ConfirmLogin:  base + pathConfirmLogin,
		Tokens:        base + pathTokens,
	}
}
