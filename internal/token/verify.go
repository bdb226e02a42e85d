package token

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// lastUsedEvery is how stale last_used_at may get. Writing it on every
// upload would turn each request into a write; once a minute is plenty for
// "last used" in the token list.
const lastUsedEvery = time.Minute

// Identity is who a verified token acts for: a user, or for a token minted
// by a trusted-publishing exchange, a publisher (UserID 0).
type Identity struct {
	TokenID  string
	UserID   int64
	Username string
	// PublisherID and Publisher name the trusted publisher a short-lived
	// token was minted for; 0 and "" for a user's token.
	PublisherID int64
	Publisher   string
}

// Verified is a token whose signature and request-wide caveats (expiry,
// user) have been checked. Project caveats are checked per request with
// PermitsProject.
type Verified struct {
	Identity
	caveats []caveat
	// publisherProjects are the ids of the projects the publisher is bound
	// to now, for a publisher's token.
	publisherProjects []int64
}

// InvalidAuth returns the error for a request without usable credentials
// (none, malformed, unknown or deleted token, disabled owner): Warehouse's
// "Invalid or non-existent authentication information" 403, kind
// derrors.Unauthenticated. The upload route sends it when FromRequest finds
// no token, too.
func (s *Service) InvalidAuth() error {
	return derrors.New(derrors.Unauthenticated,
		"Invalid or non-existent authentication information. See %s#invalid-auth for more information.", s.helpURL)
}

// PasswordAuthError returns Warehouse's refusal of username/password basic
// auth (what to send when FromRequest returns ErrPasswordAuth), kind
// derrors.Forbidden.
func (s *Service) PasswordAuthError() error {
	return derrors.New(derrors.Forbidden,
		"Username/Password authentication is no longer supported. Migrate to API Tokens or Trusted Publishers instead. See %s#apitoken and %s#trusted-publishers",
		s.helpURL, s.helpURL)
}

// invalidToken is a denial for a token that exists: Warehouse's
// "Invalid API Token: <reasons>", kind derrors.Forbidden.
func invalidToken(reasons []string) error {
	return derrors.New(derrors.Forbidden, "Invalid API Token: %s", strings.Join(dedupe(reasons), ", "))
}

// tokenRow is what verification needs from api_tokens and users.
type tokenRow struct {
	userID      int64
	username    string
	disabled    bool
	caveatsJSON string
	expiresAt   sql.NullTime
	lastUsedAt  sql.NullTime
}

// Authenticate verifies a raw token and returns whom it acts for.
//
// A malformed, unknown or deleted token, or one whose owner is disabled,
// yields derrors.Unauthenticated (see InvalidAuth): no identity. A known
// token whose signature does not match, or whose caveats fail (expired,
// wrong user, a caveat we cannot parse), yields derrors.Forbidden
// "Invalid API Token: …". Project caveats are left to PermitsProject.
//
// The signature is checked before any caveat, unlike pymacaroons (which
// evaluates caveats first and so reports them even for forged tokens): the
// contents of a forged token do not deserve an answer.
func (s *Service) Authenticate(ctx context.Context, raw string) (_ *Verified, err error) {
	m, err := parse(raw)
	if err != nil {
		return nil, s.InvalidAuth()
	}
	id := string(m.Id())
	var r tokenRow
	err = s.db.QueryRowPrepared(ctx, `
		SELECT t.user_id, u.username, u.disabled, t.caveats_json, t.expires_at, t.last_used_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.id = $1`, id).Scan(&r.userID, &r.username, &r.disabled, &r.caveatsJSON, &r.expiresAt, &r.lastUsedAt)
	if errors.Is(err, sql.ErrNoRows) {
		// Not a user's token: perhaps one minted for a trusted publisher.
		return s.authenticatePublisher(ctx, m, id)
	}
	if err != nil {
		// The id is not secret; the token is never put in an error.
		return nil, fmt.Errorf("token.Authenticate: load token %s: %w", id, err)
	}
	if r.disabled {
		return nil, s.InvalidAuth()
	}

	presented, err := m.VerifySignature(rootKey(s.secret, id), nil)
	if err != nil {
		return nil, invalidToken([]string{reasonSignatures})
	}
	var issued []string
	if err := json.Unmarshal([]byte(r.caveatsJSON), &issued); err != nil {
		return nil, fmt.Errorf("token.Authenticate: token %s: stored caveats: %w", id, err)
	}

	// Presented caveats first (the client's, including copies of the issued
	// ones), then the issued caveats again from the database: the database
	// is the source of truth for what the server granted.
	now := s.now()
	var (
		caveats []caveat
		reasons []string
	)
	for i, text := range append(presented, issued...) {
		// The presented caveats repeat the issued ones: a text seen once
		// is checked once (the outcome of a text is fixed, and reasons
		// are deduplicated anyway), which halves the parsing on every
		// read from a private index.
		if slices.Contains(presented[:min(i, len(presented))], text) {
			continue
		}
		c, err := parseCaveat([]byte(text))
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		if reason := c.checkRequest(r.userID, 0, now); reason != "" {
			reasons = append(reasons, reason)
		}
		caveats = append(caveats, c)
	}
	if r.expiresAt.Valid && !now.Before(r.expiresAt.Time) {
		reasons = append(reasons, reasonExpired)
	}
	if len(reasons) > 0 {
		return nil, invalidToken(reasons)
	}

	s.touch(ctx, id, r.lastUsedAt, now)
	return &Verified{
		Identity: Identity{TokenID: id, UserID: r.userID, Username: r.username},
		caveats:  caveats,
	}, nil
}

// touch records that the token was used, at most once per lastUsedEvery.
// It is bookkeeping: a failure is logged, never returned, so an upload does
// not fail because a timestamp could not be written. Two concurrent requests
// may both write; the later time wins either way.
func (s *Service) touch(ctx context.Context, id string, last sql.NullTime, now time.Time) {
	if last.Valid && now.Sub(last.Time) < lastUsedEvery {
		return
	}
	_, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`,
		now.UTC().Truncate(time.Microsecond), id)
	if err != nil {
		s.log.WarnContext(ctx, "cannot record API token use", "token_id", id, "err", err)
	}
}

// PermitsProject checks the token's project caveats against the project a
// request acts on. A failure is derrors.Forbidden "Invalid API Token:
// project-scoped token is not valid for project: 'name'". Warehouse quotes
// the project's display name; we have only the normalized one here.
func (v *Verified) PermitsProject(normalizedName string, projectID int64) error {
	var reasons []string
	for _, c := range v.caveats {
		if reason := c.checkProject(normalizedName, projectID); reason != "" {
			reasons = append(reasons, reason)
		}
		if c.tag == tagPublisher && (projectID == 0 || !slices.Contains(v.publisherProjects, projectID)) {
			reasons = append(reasons, fmt.Sprintf(reasonNotPublished, normalizedName))
		}
	}
	if len(reasons) > 0 {
		return invalidToken(reasons)
	}
	return nil
}

// PermitsNewProject returns nil if the token may act outside any existing
// project, i.e. create one, and otherwise Warehouse's denial
// "Invalid API Token: project-scoped token used outside of a project
// context" (derrors.Forbidden).
func (v *Verified) PermitsNewProject() error {
	for _, c := range v.caveats {
		if c.isProjectScoped() {
			return invalidToken([]string{reasonNoProject})
		}
	}
	return nil
}

// ReadOnly reports whether the token may only read (a read token, or one a
// client narrowed with [100]): the upload API refuses it.
func (v *Verified) ReadOnly() bool {
	for _, c := range v.caveats {
		if c.tag == tagReadOnly {
			return true
		}
	}
	return false
}

// ErrReadOnly is the upload API's refusal of a read-only token.
func (s *Service) ErrReadOnly() error {
	return derrors.New(derrors.Forbidden, "Invalid API Token: this token is read-only: it installs packages but cannot upload. Create an upload token to publish. See %s#apitoken for more information.", s.helpURL)
}

// CanCreateProjects is false for any token limited to projects: such a
// token cannot create a new project.
func (v *Verified) CanCreateProjects() bool {
	return v.PermitsNewProject() == nil
}

// dedupe drops repeated reasons, keeping the first of each. The issued
// caveats are checked twice (in the token and from the database), and a
// project token has both a name and an id caveat, all failing the same way.
func dedupe(reasons []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range reasons {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
