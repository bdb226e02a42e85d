package token

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/macaroon.v2"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// PublisherTokenLifetime is how long a token minted for a trusted publisher
// works: Warehouse's 15 minutes, enough for one CI job's uploads.
const PublisherTokenLifetime = 15 * time.Minute

// PublisherGrant is what a trusted-publishing exchange proved: which
// publisher the CI job is, the projects bound to it, and the claims worth
// keeping (repository, workflow, ref, sha) for the audit trail.
type PublisherGrant struct {
	PublisherID int64
	// Publisher is how people read the publisher, such as
	// "GitHub: octo/widget, workflow release.yml".
	Publisher  string
	ProjectIDs []int64
	Claims     map[string]string
}

// MintForPublisher mints an upload token for a trusted publisher, in the
// exchange's transaction tx: the caller claims the JWT's id in the same
// transaction, so that a token is minted exactly when the id is recorded.
//
// The token carries Warehouse's caveats: OIDCPublisher (the publisher),
// ProjectID (its projects at minting time) and Expiration (valid from now
// for PublisherTokenLifetime). It belongs to no user: it can only upload,
// and only to projects that are still bound to the publisher when it is
// used. Its row lives in oidc_tokens, which the publisher's removal
// deletes along with every token minted for it.
func (s *Service) MintForPublisher(ctx context.Context, tx *sql.Tx, g PublisherGrant) (raw string, expires time.Time, err error) {
	defer derrors.Wrap(&err, "token.MintForPublisher(publisher %d)", g.PublisherID)
	if g.PublisherID <= 0 || len(g.ProjectIDs) == 0 {
		return "", time.Time{}, errors.New("a publisher and at least one project are required")
	}
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	id := u.String()
	now := s.now().UTC().Truncate(time.Second)
	expires = now.Add(PublisherTokenLifetime)
	ids := make([]string, len(g.ProjectIDs))
	for i, p := range g.ProjectIDs {
		ids[i] = strconv.FormatInt(p, 10)
	}
	caveats := []string{
		publisherCaveat(g.PublisherID),
		projectIDCaveat(ids),
		expirationCaveat(expires.Unix(), now.Unix()),
	}
	raw, err = mint(rootKey(s.secret, id), id, s.location, caveats)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint: %w", err)
	}
	cj, err := json.Marshal(caveats)
	if err != nil {
		return "", time.Time{}, err
	}
	claims := g.Claims
	if claims == nil {
		claims = map[string]string{}
	}
	clj, err := json.Marshal(claims)
	if err != nil {
		return "", time.Time{}, err
	}
	// Warehouse's description; never shown, but it says what the row is.
	desc := "OpenID token: " + g.Publisher + " (" + now.Format(time.RFC3339) + ")"
	_, err = tx.ExecContext(ctx, `
		INSERT INTO oidc_tokens (id, publisher_id, description, caveats_json, claims_json, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, g.PublisherID, desc, string(cj), string(clj), now, expires)
	if err != nil {
		return "", time.Time{}, err
	}
	return raw, expires, nil
}

// authenticatePublisher verifies a token that is not a user's: one minted
// by MintForPublisher. It applies the same rules as Authenticate: an
// unknown token is no identity at all; a known one must carry a good
// signature and hold every caveat, presented and issued. The publisher's
// projects are read now, so that a project unbound from the publisher
// since minting refuses the token at once.
func (s *Service) authenticatePublisher(ctx context.Context, m *macaroon.Macaroon, id string) (*Verified, error) {
	var (
		publisherID int64
		caveatsJSON string
		desc        string
		expiresAt   time.Time
	)
	err := s.db.QueryRowContext(ctx, `SELECT publisher_id, description, caveats_json, expires_at FROM oidc_tokens WHERE id = $1`, id).
		Scan(&publisherID, &desc, &caveatsJSON, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.InvalidAuth()
	}
	if err != nil {
		return nil, fmt.Errorf("token.Authenticate: load publisher token %s: %w", id, err)
	}
	presented, err := m.VerifySignature(rootKey(s.secret, id), nil)
	if err != nil {
		return nil, invalidToken([]string{reasonSignatures})
	}
	var issued []string
	if err := json.Unmarshal([]byte(caveatsJSON), &issued); err != nil {
		return nil, fmt.Errorf("token.Authenticate: publisher token %s: stored caveats: %w", id, err)
	}
	now := s.now()
	var (
		caveats []caveat
		reasons []string
	)
	for _, text := range append(presented, issued...) {
		c, err := parseCaveat([]byte(text))
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		if reason := c.checkRequest(0, publisherID, now); reason != "" {
			reasons = append(reasons, reason)
		}
		caveats = append(caveats, c)
	}
	if !now.Before(expiresAt) {
		reasons = append(reasons, reasonExpired)
	}
	if len(reasons) > 0 {
		return nil, invalidToken(reasons)
	}
	projects, err := publisherProjects(ctx, s.db, publisherID)
	if err != nil {
		return nil, fmt.Errorf("token.Authenticate: publisher token %s: %w", id, err)
	}
	return &Verified{
		Identity:          Identity{TokenID: id, PublisherID: publisherID, Publisher: publisherName(desc)},
		caveats:           caveats,
		publisherProjects: projects,
	}, nil
}

func publisherProjects(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, publisherID int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT project_id FROM project_publishers WHERE publisher_id = $1`, publisherID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// publisherName recovers the publisher's display name from the token's
// description ("OpenID token: <publisher> (<time>)").
func publisherName(desc string) string {
	const prefix = "OpenID token: "
	if len(desc) > len(prefix) && desc[:len(prefix)] == prefix {
		desc = desc[len(prefix):]
		if i := strings.LastIndexByte(desc, '('); i > 0 {
			desc = desc[:i-1]
		}
	}
	return desc
}

// IsPublisher reports whether the token was minted for a trusted publisher
// rather than created by a user.
func (v *Verified) IsPublisher() bool { return v.PublisherID != 0 }
