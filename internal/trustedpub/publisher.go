package trustedpub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Publisher is one CI identity allowed to publish: a GitHub workflow, a
// GitLab CI file, a Google service account, an ActiveState project, or an
// identity at a custom issuer.
type Publisher struct {
	ID        int64
	Kind      string
	IssuerURL string
	IssuerID  int64 // KindCustom: the registered issuer
	// LookupKey is the identity in normalized form; Environment the
	// optional environment (GitHub, GitLab) or subject (Google) it is
	// limited to, normalized as the provider compares it.
	LookupKey   string
	Environment string
	// Config holds the fields as entered (see Input for the names).
	Config    map[string]string
	CreatedAt time.Time
	// claimNames are a custom issuer's claims, in its order.
	claimNames []string
	issuerName string
	// issuerOrg is the organization a custom issuer belongs to (0: the
	// administrators'): its publishers serve that organization's projects
	// only.
	issuerOrg int64
}

// Input is a publisher as a form gives it: the provider and its fields.
//
//	github:      owner, owner_id (optional: looked up), repository, workflow,
//	             environment, reusable_workflow (both optional)
//	gitlab:      namespace, project, workflow_filepath, environment
//	             (optional), issuer (optional: one of the trusted GitLab
//	             instances; default gitlab.com)
//	google:      email, sub (optional)
//	activestate: organization, project, actor, actor_id
//	custom:      issuer (the registered issuer's name), and claim_<name> for
//	             each of its claims
type Input struct {
	Provider string
	Fields   map[string]string
}

func (in Input) get(name string) string { return strings.TrimSpace(in.Fields[name]) }

// maxField bounds every field.
const maxField = 255

var (
	ghOwnerRE    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,38}$`)
	ghRepoRE     = regexp.MustCompile(`^[a-zA-Z0-9-_.]{1,100}$`)
	ghWorkflowRE = regexp.MustCompile(`^[^/\\]+\.ya?ml$`)
	ghReusableRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]*/[a-zA-Z0-9-_.]+/\.github/workflows/[^/@\\]+\.ya?ml(@[^\s@]+)?$`)
	digitsRE     = regexp.MustCompile(`^[0-9]{1,20}$`)
	glPathRE     = regexp.MustCompile(`^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*(/[a-zA-Z0-9_.][a-zA-Z0-9_.-]*)*$`)
	glProjectRE  = regexp.MustCompile(`^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*$`)
	glFileRE     = regexp.MustCompile(`^[^/\s][^\s]*\.ya?ml$`)
	emailRE      = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	asNameRE     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-_.]*$`)
	asActorIDRE  = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)
)

func invalid(format string, args ...any) error { return derrors.New(derrors.Invalid, format, args...) }

// checkText refuses what no field may hold: invalid UTF-8, control
// characters, more than maxField characters.
func checkText(label, v string) error {
	if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return invalid("%s must not contain control characters.", label)
	}
	if utf8.RuneCountInString(v) > maxField {
		return invalid("%s must be at most %d characters long.", label, maxField)
	}
	return nil
}

// checkEnvironment applies Warehouse's rules for an environment name.
func checkEnvironment(v string) error {
	if v == "" {
		return nil
	}
	if err := checkText("The environment", v); err != nil {
		return err
	}
	if strings.ContainsAny(v, "'\"`,;\\") {
		return invalid("The environment must not contain quotes, backquotes, commas, semicolons or backslashes.")
	}
	return nil
}

// parseInput validates a publisher form and returns the publisher it names
// (not yet stored). A GitHub publisher's owner id is looked up here, before
// any transaction, through the GitHub API.
func (s *Service) parseInput(ctx context.Context, in Input) (*Publisher, error) {
	for k, v := range in.Fields {
		if err := checkText("The field "+k, strings.TrimSpace(v)); err != nil {
			return nil, err
		}
	}
	p := &Publisher{Kind: in.Provider, Config: map[string]string{}}
	if b, ok := s.builtinFor(in.Provider); ok && !b.enabled {
		return nil, invalid("%s trusted publishing is not enabled on this index.", ProviderName(in.Provider))
	}
	switch in.Provider {
	case KindGitHub:
		return p, s.parseGitHub(ctx, p, in)
	case KindGitLab:
		return p, s.parseGitLab(p, in)
	case KindGoogle:
		return p, s.parseGoogle(p, in)
	case KindActiveState:
		return p, s.parseActiveState(p, in)
	case KindCustom:
		return p, s.parseCustom(ctx, p, in)
	}
	return nil, invalid("Choose a provider: GitHub, GitLab, Google, ActiveState or a registered issuer.")
}

// builtinFor returns the (first) issuer of a built-in provider.
func (s *Service) builtinFor(kind string) (builtinIssuer, bool) {
	for _, b := range s.builtins {
		if b.kind == kind {
			return b, true
		}
	}
	return builtinIssuer{}, false
}

// issuerURLOf returns the issuer URL of a built-in provider.
func (s *Service) issuerURLOf(kind string) string {
	var urls []string
	for u, b := range s.builtins {
		if b.kind == kind {
			urls = append(urls, u)
		}
	}
	slices.Sort(urls)
	if len(urls) == 0 {
		return ""
	}
	return urls[0]
}

func (s *Service) parseGitHub(ctx context.Context, p *Publisher, in Input) error {
	owner, ownerID, repo, workflow := in.get("owner"), in.get("owner_id"), in.get("repository"), in.get("workflow")
	env, reusable := in.get("environment"), in.get("reusable_workflow")
	if !ghOwnerRE.MatchString(owner) {
		return invalid("Owner: enter the GitHub user or organization that owns the repository (letters, digits and dashes).")
	}
	if !ghRepoRE.MatchString(repo) {
		return invalid("Repository: enter the repository's name without the owner, such as widget (letters, digits, '-', '_' and '.').")
	}
	if !ghWorkflowRE.MatchString(workflow) {
		return invalid("Workflow: enter the workflow's file name in .github/workflows, such as release.yml (it ends in .yml or .yaml and holds no '/').")
	}
	if ownerID != "" && !digitsRE.MatchString(ownerID) {
		return invalid("Owner ID: GitHub's numeric id of the owner, digits only (the \"id\" at %s/users/%s).", s.githubAPI, owner)
	}
	if err := checkEnvironment(env); err != nil {
		return err
	}
	if reusable != "" && !ghReusableRE.MatchString(reusable) {
		return invalid("Reusable workflow: enter it as owner/repository/.github/workflows/file.yml, optionally followed by @ and a ref such as @refs/heads/main.")
	}
	login, id, err := s.lookupGitHubOwner(ctx, owner)
	switch {
	case err == nil:
		if ownerID != "" && ownerID != id {
			return invalid("GitHub says the numeric ID of %s is %s, not %s. Leave the owner ID empty to use GitHub's.", login, id, ownerID)
		}
		owner, ownerID = login, id
	case errors.Is(err, errGitHubUnknownOwner):
		return invalid("Unknown GitHub user or organization: %s.", owner)
	case ownerID == "":
		return invalid("%s The owner's numeric ID protects the publisher from a renamed or deleted account being taken over; enter it by hand: it is the \"id\" at %s/users/%s.", err.Error(), s.githubAPI, owner)
	}
	p.IssuerURL = s.issuerURLOf(KindGitHub)
	p.Config = map[string]string{"owner": owner, "owner_id": ownerID, "repository": repo, "workflow": workflow}
	if env != "" {
		p.Config["environment"] = env
	}
	if reusable != "" {
		p.Config["reusable_workflow"] = reusable
	}
	p.LookupKey = githubKey(owner+"/"+repo, ownerID, workflow)
	if reusable != "" {
		// A publisher naming a reusable workflow is another identity than
		// the same workflow without one.
		path, _, _ := strings.Cut(reusable, "@")
		p.LookupKey = reusableKey(p.LookupKey, path)
	}
	p.Environment = strings.ToLower(env)
	return nil
}

// githubKey is a GitHub publisher's lookup key: the repository as GitHub
// compares it (case-insensitively), the owner's id, the workflow file.
func githubKey(repository, ownerID, workflow string) string {
	return strings.ToLower(repository) + "|" + ownerID + "|" + workflow
}

// reusableKey is the lookup key of a publisher whose workflow calls the
// reusable workflow at path (owner/repo/.github/workflows/file.yml).
func reusableKey(callerKey, path string) string {
	return callerKey + "|reusable:" + strings.ToLower(path)
}

func (s *Service) parseGitLab(p *Publisher, in Input) error {
	ns, proj, file, env, iss := in.get("namespace"), in.get("project"), in.get("workflow_filepath"), in.get("environment"), in.get("issuer")
	if !glPathRE.MatchString(ns) || len(ns) > maxField {
		return invalid("Namespace: enter the GitLab group or user, with subgroups separated by '/', such as acme/tools.")
	}
	if !glProjectRE.MatchString(proj) {
		return invalid("Project: enter the GitLab project's path name, such as widget.")
	}
	if !glFileRE.MatchString(file) || strings.HasSuffix(file, "/") || strings.Contains(file, "//") {
		return invalid("Top-level pipeline file path: enter the CI file's path in the repository, such as .gitlab-ci.yml (it ends in .yml or .yaml and does not start with '/').")
	}
	if err := checkEnvironment(env); err != nil {
		return err
	}
	if iss == "" {
		iss = s.gitlab[0]
	}
	iss = strings.TrimRight(iss, "/")
	if !slices.Contains(s.gitlab, iss) {
		return invalid("GitLab instance: choose one this index trusts (%s). An administrator can add a self-managed instance with --oidc-gitlab-issuers.", strings.Join(s.gitlab, ", "))
	}
	p.IssuerURL = iss
	p.Config = map[string]string{"namespace": ns, "project": proj, "workflow_filepath": file}
	if env != "" {
		p.Config["environment"] = env
	}
	if iss != GitLabIssuer {
		p.Config["issuer"] = iss
	}
	p.LookupKey = gitlabKey(ns+"/"+proj, file)
	p.Environment = env
	return nil
}

func gitlabKey(projectPath, file string) string { return strings.ToLower(projectPath) + "|" + file }

func (s *Service) parseGoogle(p *Publisher, in Input) error {
	email, sub := in.get("email"), in.get("sub")
	if !emailRE.MatchString(email) || len(email) > 254 {
		return invalid("Email: enter the service account's email address, such as publisher@project.iam.gserviceaccount.com.")
	}
	if sub != "" && !digitsRE.MatchString(sub) && !asActorIDRE.MatchString(sub) {
		return invalid("Subject: leave it empty, or enter the service account's unique ID (the token's sub claim).")
	}
	p.IssuerURL = s.issuerURLOf(KindGoogle)
	p.Config = map[string]string{"email": email}
	if sub != "" {
		p.Config["sub"] = sub
	}
	p.LookupKey = email
	p.Environment = sub
	return nil
}

func (s *Service) parseActiveState(p *Publisher, in Input) error {
	org, proj, actor, actorID := in.get("organization"), in.get("project"), in.get("actor"), in.get("actor_id")
	if !asNameRE.MatchString(org) {
		return invalid("Organization: enter the ActiveState organization's name.")
	}
	if !asNameRE.MatchString(proj) {
		return invalid("Project: enter the ActiveState project's name.")
	}
	if !asNameRE.MatchString(actor) {
		return invalid("Actor: enter the ActiveState user who runs the builds.")
	}
	if !asActorIDRE.MatchString(actorID) {
		return invalid("Actor ID: enter the actor's ActiveState ID (the token's actor_id claim), which stays the same if the user is renamed.")
	}
	p.IssuerURL = s.issuerURLOf(KindActiveState)
	p.Config = map[string]string{"organization": org, "project": proj, "actor": actor, "actor_id": actorID}
	p.LookupKey = activeStateKey(org, proj, actorID)
	return nil
}

func activeStateKey(org, proj, actorID string) string { return org + "|" + proj + "|" + actorID }

func (s *Service) parseCustom(ctx context.Context, p *Publisher, in Input) error {
	name := in.get("issuer")
	ci, err := customIssuerByName(ctx, s.db, name)
	if errors.Is(err, sql.ErrNoRows) {
		return invalid("Issuer: choose one of the issuers an administrator registered.")
	}
	if err != nil {
		return err
	}
	values := make([]string, len(ci.Claims))
	p.Config = map[string]string{"issuer": ci.Name}
	for i, c := range ci.Claims {
		v := in.get("claim_" + c)
		if v == "" {
			return invalid("%s: enter the value the %s claim of the CI job's token must have.", c, ci.Name)
		}
		values[i] = v
		p.Config["claim_"+c] = v
	}
	p.IssuerURL, p.IssuerID, p.claimNames, p.issuerName, p.issuerOrg = ci.URL, ci.ID, ci.Claims, ci.Name, ci.OrganizationID
	p.LookupKey = customKey(values)
	return nil
}

// customKey is a custom publisher's lookup key: its claim values, in the
// issuer's order, as a JSON array (so no value can run into the next).
func customKey(values []string) string {
	b, _ := json.Marshal(values)
	return string(b)
}

// Name describes the publisher for people: on pages, in emails, in the
// message that tells a long-lived token to use the publisher instead.
func (p *Publisher) Name() string {
	c := p.Config
	var b strings.Builder
	switch p.Kind {
	case KindGitHub:
		fmt.Fprintf(&b, "GitHub: %s/%s, workflow %s", c["owner"], c["repository"], c["workflow"])
		if c["environment"] != "" {
			fmt.Fprintf(&b, ", environment %s", c["environment"])
		}
		if c["reusable_workflow"] != "" {
			fmt.Fprintf(&b, ", reusable workflow %s", c["reusable_workflow"])
		}
	case KindGitLab:
		fmt.Fprintf(&b, "GitLab: %s/%s, CI file %s", c["namespace"], c["project"], c["workflow_filepath"])
		if c["environment"] != "" {
			fmt.Fprintf(&b, ", environment %s", c["environment"])
		}
		if c["issuer"] != "" {
			fmt.Fprintf(&b, ", on %s", c["issuer"])
		}
	case KindGoogle:
		fmt.Fprintf(&b, "Google: service account %s", c["email"])
		if c["sub"] != "" {
			fmt.Fprintf(&b, ", subject %s", c["sub"])
		}
	case KindActiveState:
		fmt.Fprintf(&b, "ActiveState: %s/%s, actor %s", c["organization"], c["project"], c["actor"])
	default:
		fmt.Fprintf(&b, "%s:", c["issuer"])
		var keys []string
		for k := range c {
			if strings.HasPrefix(k, "claim_") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, " %s=%s", strings.TrimPrefix(k, "claim_"), c[k])
		}
	}
	return b.String()
}

// URL is the publisher's repository or project page, where there is one.
func (p *Publisher) URL() string {
	c := p.Config
	switch p.Kind {
	case KindGitHub:
		return "https://github.com/" + c["owner"] + "/" + c["repository"]
	case KindGitLab:
		base := c["issuer"]
		if base == "" {
			base = GitLabIssuer
		}
		return base + "/" + c["namespace"] + "/" + c["project"]
	case KindActiveState:
		return "https://platform.activestate.com/" + c["organization"] + "/" + c["project"]
	}
	return ""
}

// ProviderName is the publisher's provider as people write it.
func (p *Publisher) ProviderName() string {
	if p.Kind == KindCustom {
		return p.Config["issuer"]
	}
	return ProviderName(p.Kind)
}

const publisherColumns = `id, kind, issuer_url, issuer_id, lookup_key, environment, config_json, created_at`

func scanPublisher(row interface{ Scan(...any) error }) (*Publisher, error) {
	var (
		p        Publisher
		issuerID sql.NullInt64
		cj       string
	)
	if err := row.Scan(&p.ID, &p.Kind, &p.IssuerURL, &issuerID, &p.LookupKey, &p.Environment, &cj, &p.CreatedAt); err != nil {
		return nil, err
	}
	p.IssuerID = issuerID.Int64
	p.CreatedAt = p.CreatedAt.UTC()
	if err := json.Unmarshal([]byte(cj), &p.Config); err != nil {
		return nil, fmt.Errorf("publisher %d: config: %w", p.ID, err)
	}
	return &p, nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// upsertPublisher stores p, or finds the identical row another project
// already uses, and sets p.ID.
func upsertPublisher(ctx context.Context, tx *sql.Tx, p *Publisher, now time.Time) error {
	cj, err := json.Marshal(p.Config)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO trusted_publishers (kind, issuer_url, issuer_id, lookup_key, environment, config_json, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, issuer_url, lookup_key, environment) DO NOTHING`,
		p.Kind, p.IssuerURL, nullID(p.IssuerID), p.LookupKey, p.Environment, string(cj), now)
	if err != nil {
		return err
	}
	// The row may be another project's, entered with other spellings
	// (the owner's case): it is the one that counts.
	stored, err := scanPublisher(tx.QueryRowContext(ctx, `SELECT `+publisherColumns+` FROM trusted_publishers
		WHERE kind = $1 AND issuer_url = $2 AND lookup_key = $3 AND environment = $4`,
		p.Kind, p.IssuerURL, p.LookupKey, p.Environment))
	if err != nil {
		return err
	}
	stored.claimNames, stored.issuerName = p.claimNames, p.issuerName
	*p = *stored
	return nil
}
