package account

// Links are the addresses of the pages that emailed links open. The pages
// belong to the web layer; cmd/gatehouse builds Links from its route paths
// (web.EmailLinks) and the configured base URL, so no domain package writes
// a web path, and a link is never built from a request's Host header
// (spec E4).
type Links struct {
	VerifyEmail   string // absolute URL; the token is added as ?token=
	ResetPassword string
	ConfirmLogin  string
	// VerifyProjectRole answers an invitation to collaborate on a project
	// (internal/project sends it).
	VerifyProjectRole string
	// VerifyOrganizationRole answers an invitation to join an organization
	// (internal/org sends it).
	VerifyOrganizationRole string
	Tokens                 string // the API tokens page, linked from leaked-token notices
}

// With returns the link to page carrying the one-time token raw.
func (Links) With(page, raw string) string { return page + "?token=" + raw }
