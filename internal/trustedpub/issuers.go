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
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Provider kinds.
const (
	KindGitHub      = "github"
	KindGitLab      = "gitlab"
	KindGoogle      = "google"
	KindActiveState = "activestate"
	KindCustom      = "custom"
)

// builtinKinds are the providers an operator can turn on and off.
var builtinKinds = []string{KindGitHub, KindGitLab, KindGoogle, KindActiveState}

// ProviderName is a kind as people write it.
func ProviderName(kind string) string {
	switch kind {
	case KindGitHub:
		return "GitHub"
	case KindGitLab:
		return "GitLab"
	case KindGoogle:
		return "Google"
	case KindActiveState:
		return "ActiveState"
	}
	return "Custom issuer"
}

// builtinIssuer is one issuer URL of a built-in provider.
type builtinIssuer struct {
	kind    string
	enabled bool
}

func builtinIssuers(o Options) (map[string]builtinIssuer, []string, error) {
	on := map[string]bool{}
	if o.Providers == nil {
		for _, k := range builtinKinds {
			on[k] = true
		}
	}
	for _, p := range o.Providers {
		if !slices.Contains(builtinKinds, p) {
			return nil, nil, fmt.Errorf("trusted publishing provider %q: want github, gitlab, google or activestate", p)
		}
		on[p] = true
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return strings.TrimRight(v, "/")
	}
	gitlab := o.GitLabIssuers
	if len(gitlab) == 0 {
		gitlab = []string{GitLabIssuer}
	}
	m := map[string]builtinIssuer{}
	add := func(url, kind string) error {
		if err := checkIssuerURL(url); err != nil {
			return fmt.Errorf("%s issuer: %w", ProviderName(kind), err)
		}
		if _, dup := m[url]; dup {
			return fmt.Errorf("issuer %s is given twice", url)
		}
		m[url] = builtinIssuer{kind: kind, enabled: on[kind]}
		return nil
	}
	if err := add(or(o.GitHubIssuer, GitHubIssuer), KindGitHub); err != nil {
		return nil, nil, err
	}
	if err := add(or(o.GoogleIssuer, GoogleIssuer), KindGoogle); err != nil {
		return nil, nil, err
	}
	if err := add(or(o.ActiveStateIssuer, ActiveStateIssuer), KindActiveState); err != nil {
		return nil, nil, err
	}
	var gl []string
	for _, g := range gitlab {
		g = strings.TrimRight(strings.TrimSpace(g), "/")
		if err := add(g, KindGitLab); err != nil {
			return nil, nil, err
		}
		gl = append(gl, g)
	}
	return m, gl, nil
}

// issuer is what a token's iss names: a built-in provider or a registered
// custom issuer.
type issuer struct {
	kind     string
	url      string
	audience string
	enabled  bool
	custom   *CustomIssuer // KindCustom only
}

// issuerFor routes a token by its (not yet verified) iss claim. ok is false
// for an issuer that is not trusted at all.
func (s *Service) issuerFor(ctx context.Context, iss string) (*issuer, bool, error) {
	if b, ok := s.builtins[iss]; ok {
		return &issuer{kind: b.kind, url: iss, audience: s.audience, enabled: b.enabled}, true, nil
	}
	ci, err := customIssuerByURL(ctx, s.db, iss)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &issuer{kind: KindCustom, url: ci.URL, audience: ci.Audience, enabled: true, custom: ci}, true, nil
}

// CustomIssuer is an OIDC issuer an administrator registered: Gitea or
// Forgejo Actions, or any CI that issues ID tokens. Its publishers give a
// value for each of Claims, and a token matches a publisher when every one
// of those claims equals the publisher's value.
type CustomIssuer struct {
	ID int64
	// OrganizationID is the organization whose owners registered it, whose
	// projects alone may use it (0: registered by an administrator, for
	// every project).
	OrganizationID int64
	Name           string // a short label, such as "codeberg"
	URL            string
	Audience       string
	Claims         []string
	CreatedBy      string
	CreatedAt      time.Time
}

var (
	issuerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	claimNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// reservedClaims are checked by the JWT layer and cannot be a rule.
var reservedClaims = []string{"iss", "aud", "exp", "iat", "nbf", "jti"}

// CustomIssuerInput is the form an administrator fills in.
type CustomIssuerInput struct {
	Name     string
	URL      string
	Audience string // default: the server's audience
	Claims   string // claim names, separated by commas or spaces
}

// AddCustomIssuer registers an issuer. Its tokens are then exchanged like
// the built-in providers', and only ever matched against its own
// publishers.
func (s *Service) AddCustomIssuer(ctx context.Context, actor Actor, in CustomIssuerInput) (_ *CustomIssuer, err error) {
	defer derrors.Wrap(&err, "trustedpub.AddCustomIssuer(%q)", in.Name)
	ci, err := s.checkIssuerInput(actor, in)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := insertIssuer(ctx, tx, ci); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{Tag: audit.OIDCIssuerAdded, ActorID: actor.UserID, Actor: actor.Username,
			IP: actor.Client.IP, UserAgent: actor.Client.UserAgent,
			Additional: map[string]any{"issuer": ci.URL, "name": ci.Name, "claims": ci.Claims}})
	})
	if err != nil {
		return nil, err
	}
	return ci, nil
}

// AddOrganizationIssuerTx registers an issuer for one organization's
// projects, in the caller's transaction (internal/org checks the actor is
// an owner, records the change and tells the owners).
func (s *Service) AddOrganizationIssuerTx(ctx context.Context, tx *sql.Tx, actor Actor, orgID int64, in CustomIssuerInput) (*CustomIssuer, error) {
	ci, err := s.checkIssuerInput(actor, in)
	if err != nil {
		return nil, err
	}
	ci.OrganizationID = orgID
	if err := insertIssuer(ctx, tx, ci); err != nil {
		return nil, err
	}
	return ci, nil
}

// RemoveOrganizationIssuerTx deletes one of an organization's issuers, with
// its publishers, in the caller's transaction.
func (s *Service) RemoveOrganizationIssuerTx(ctx context.Context, tx *sql.Tx, orgID, id int64) (*CustomIssuer, error) {
	ci, err := scanIssuer(tx.QueryRowContext(ctx, `SELECT `+issuerColumns+` FROM oidc_issuers WHERE id = $1 AND organization_id = $2`, id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, derrors.New(derrors.NotFound, "That issuer is not registered for this organization (any more). Reload the page.")
	}
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM oidc_issuers WHERE id = $1`, id)
	return ci, err
}

// OrganizationIssuers lists an organization's own issuers by name.
func (s *Service) OrganizationIssuers(ctx context.Context, orgID int64) ([]CustomIssuer, error) {
	return listIssuers(ctx, s.db, `organization_id = $1`, orgID)
}

func insertIssuer(ctx context.Context, tx *sql.Tx, ci *CustomIssuer) error {
	cj, _ := json.Marshal(ci.Claims)
	err := tx.QueryRowContext(ctx, `INSERT INTO oidc_issuers (name, issuer_url, audience, claims_json, created_by, created_at, organization_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, ci.Name, ci.URL, ci.Audience, string(cj), ci.CreatedBy, ci.CreatedAt,
		sql.NullInt64{Int64: ci.OrganizationID, Valid: ci.OrganizationID != 0}).Scan(&ci.ID)
	if db.IsUniqueViolation(err) {
		return derrors.New(derrors.Conflict, "An issuer with this name or URL is already registered (by an administrator, or for an organization). Choose another name; an issuer URL is registered once.")
	}
	return err
}

// checkIssuerInput validates the form of a new issuer.
func (s *Service) checkIssuerInput(actor Actor, in CustomIssuerInput) (*CustomIssuer, error) {
	ci := &CustomIssuer{
		Name:      strings.TrimSpace(in.Name),
		URL:       strings.TrimRight(strings.TrimSpace(in.URL), "/"),
		Audience:  strings.TrimSpace(in.Audience),
		CreatedBy: actor.Username,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond),
	}
	if !issuerNameRE.MatchString(ci.Name) {
		return nil, derrors.New(derrors.Invalid, "Name the issuer with lower-case letters, digits and dashes, such as codeberg (at most 40).")
	}
	if err := checkIssuerURL(ci.URL); err != nil {
		return nil, derrors.New(derrors.Invalid, "Issuer URL: %s. It is the iss claim of the tokens, and https://<it>/.well-known/openid-configuration must answer.", err)
	}
	if _, builtin := s.builtins[ci.URL]; builtin {
		return nil, derrors.New(derrors.Conflict, "%s is a built-in issuer; add its publishers on a project's publishing page instead.", ci.URL)
	}
	if ci.Audience == "" {
		ci.Audience = s.audience
	}
	if !utf8.ValidString(ci.Audience) || len(ci.Audience) > 255 || strings.ContainsAny(ci.Audience, "\x00\r\n") {
		return nil, derrors.New(derrors.Invalid, "The audience must be one line of at most 255 characters.")
	}
	for _, c := range strings.FieldsFunc(in.Claims, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		if !claimNameRE.MatchString(c) {
			return nil, derrors.New(derrors.Invalid, "%q is not a claim name (letters, digits and underscores).", c)
		}
		if slices.Contains(reservedClaims, c) {
			return nil, derrors.New(derrors.Invalid, "%s is checked for every token already; name the claims that identify the CI job, such as repository and workflow_ref.", c)
		}
		if !slices.Contains(ci.Claims, c) {
			ci.Claims = append(ci.Claims, c)
		}
	}
	if len(ci.Claims) == 0 {
		return nil, derrors.New(derrors.Invalid, "Name at least one claim that identifies the CI job, such as repository, or sub.")
	}
	if len(ci.Claims) > 10 {
		return nil, derrors.New(derrors.Invalid, "Name at most 10 claims.")
	}
	return ci, nil
}

// RemoveCustomIssuer deletes an issuer with its publishers (and so their
// pending publishers and tokens).
func (s *Service) RemoveCustomIssuer(ctx context.Context, actor Actor, id int64) (err error) {
	defer derrors.Wrap(&err, "trustedpub.RemoveCustomIssuer(%d)", id)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var url string
		err := tx.QueryRowContext(ctx, `SELECT issuer_url FROM oidc_issuers WHERE id = $1`, id).Scan(&url)
		if errors.Is(err, sql.ErrNoRows) {
			return derrors.New(derrors.NotFound, "That issuer is not registered (any more).")
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_issuers WHERE id = $1`, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.now(), audit.Event{Tag: audit.OIDCIssuerRemoved, ActorID: actor.UserID, Actor: actor.Username,
			IP: actor.Client.IP, UserAgent: actor.Client.UserAgent, Additional: map[string]any{"issuer": url}})
	})
}

// CustomIssuers lists the issuers an administrator registered, by name.
func (s *Service) CustomIssuers(ctx context.Context) ([]CustomIssuer, error) {
	return listIssuers(ctx, s.db, `organization_id IS NULL`)
}

// IssuersFor lists the issuers a project's publishers may use: the
// administrators' and those of the project's organization, by name.
func (s *Service) IssuersFor(ctx context.Context, projectID int64) ([]CustomIssuer, error) {
	return listIssuers(ctx, s.db, `organization_id IS NULL
		OR organization_id = (SELECT organization_id FROM organization_projects WHERE project_id = $1)`, projectID)
}

func listIssuers(ctx context.Context, q querier, where string, args ...any) ([]CustomIssuer, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+issuerColumns+` FROM oidc_issuers WHERE `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CustomIssuer
	for rows.Next() {
		ci, err := scanIssuer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *ci)
	}
	return out, rows.Err()
}

const issuerColumns = `id, name, issuer_url, audience, claims_json, created_by, created_at, organization_id`

func scanIssuer(row interface{ Scan(...any) error }) (*CustomIssuer, error) {
	var (
		ci  CustomIssuer
		cj  string
		org sql.NullInt64
	)
	if err := row.Scan(&ci.ID, &ci.Name, &ci.URL, &ci.Audience, &cj, &ci.CreatedBy, &ci.CreatedAt, &org); err != nil {
		return nil, err
	}
	ci.OrganizationID = org.Int64
	if err := json.Unmarshal([]byte(cj), &ci.Claims); err != nil {
		return nil, fmt.Errorf("issuer %d: claims: %w", ci.ID, err)
	}
	ci.CreatedAt = ci.CreatedAt.UTC()
	return &ci, nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func customIssuerByURL(ctx context.Context, q rowQuerier, url string) (*CustomIssuer, error) {
	return scanIssuer(q.QueryRowContext(ctx, `SELECT `+issuerColumns+` FROM oidc_issuers WHERE issuer_url = $1`, url))
}

func customIssuerByName(ctx context.Context, q rowQuerier, name string) (*CustomIssuer, error) {
	return scanIssuer(q.QueryRowContext(ctx, `SELECT `+issuerColumns+` FROM oidc_issuers WHERE name = $1`, name))
}
