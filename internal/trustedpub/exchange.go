package trustedpub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
	"github.com/gatehouse-index/gatehouse/internal/token"
)

// Minted is a successful exchange.
type Minted struct {
	Token     string // the upload token, shown to the CI job only
	Expires   time.Time
	Publisher string
	// CreatedProject is the project a pending publisher created, or "".
	CreatedProject string
	// Projects are the normalized names the token may upload to.
	Projects []string
}

// errRefused rolls an exchange's transaction back when the answer is a
// refusal (held in the exchange's *Error), not a failure.
var errRefused = errors.New("exchange refused")

// Exchange checks a CI job's ID token and mints an upload token for the
// publisher it matches (spec §3.1). A refusal is an *Error with the code
// and description the answer carries; err is an internal failure.
//
// Everything after the signature check is one transaction: finding the
// publisher (a pending one first, which then creates its project), claiming
// the token's jti with a unique insert, minting, and the audit events. Two
// exchanges of one token therefore cannot both mint: the second's insert
// waits for the first to commit and then finds the row (G5). The jti is
// kept until exp + Leeway + 5 s, past the last moment the token itself
// would be accepted (G4).
func (s *Service) Exchange(ctx context.Context, raw string, client account.Client) (_ *Minted, refusal *Error, err error) {
	if s.disabled {
		return nil, refuse(CodeNotEnabled, "Trusted publishing functionality not enabled"), nil
	}
	// The issuer's share of the exchange is bounded: an issuer that does
	// not answer costs at most the fetch timeout.
	vctx, cancel := context.WithTimeout(ctx, s.timeout)
	vt, refusal := s.verify(vctx, raw)
	cancel()
	if refusal != nil {
		return nil, refusal, nil
	}
	lk, refusal := lookupFor(vt.issuer, vt.claims)
	if refusal != nil {
		return nil, refusal, nil
	}
	var (
		out          *Minted
		stalePending int64
	)
	for attempt := 0; ; attempt++ {
		out, refusal, stalePending = nil, nil, 0
		err = s.db.InTx(ctx, func(tx *sql.Tx) error {
			var e *Error
			out, e, stalePending, err = s.exchangeTx(ctx, tx, vt, lk)
			if e != nil {
				refusal = e
				return errRefused
			}
			return err
		})
		// A concurrent exchange through the same pending publisher created
		// the project first: once more, and the publisher it left is found.
		if attempt == 0 && db.IsUniqueViolation(err) {
			continue
		}
		break
	}
	if stalePending != 0 {
		// Warehouse deletes a pending publisher whose name was taken.
		if _, derr := s.db.ExecContext(ctx, `DELETE FROM pending_publishers WHERE id = $1`, stalePending); derr != nil {
			s.log.Warn("delete stale pending publisher", "id", stalePending, "err", derr)
		}
	}
	if errors.Is(err, errRefused) {
		return nil, refusal, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trustedpub.Exchange: %w", err)
	}
	return out, nil, nil
}

func (s *Service) exchangeTx(ctx context.Context, tx *sql.Tx, vt *verifiedToken, lk lookup) (_ *Minted, _ *Error, stalePending int64, _ error) {
	now := s.now().UTC()
	out := &Minted{}
	var (
		pub        *Publisher
		projectIDs []int64
	)
	pending, err := findPending(ctx, tx, vt.issuer, lk, now)
	if err != nil {
		return nil, nil, 0, err
	}
	if pending != nil {
		if e := checkClaims(&pending.Publisher, vt.issuer, vt.claims); e != nil {
			return nil, e, 0, nil
		}
		// The project would be its registrant's: an account an
		// administrator disabled creates nothing, on this path as on every
		// other (spec F8).
		var disabled bool
		if err := tx.QueryRowContext(ctx, `SELECT disabled FROM users WHERE id = $1`, pending.UserID).Scan(&disabled); err != nil {
			return nil, nil, 0, err
		}
		if disabled {
			return nil, publisherErr("the account that registered this pending publisher is disabled"), 0, nil
		}
		if e, err := claimJTI(ctx, tx, vt); e != nil || err != nil {
			return nil, e, 0, err
		}
		owner := usernameOf(ctx, tx, pending.UserID)
		p, err := s.projects.CreateInTx(ctx, tx, pending.ProjectName, pending.UserID, owner)
		if err != nil {
			if msg, ok := derrors.Message(err); ok {
				if errors.Is(err, derrors.Conflict) {
					return nil, refuse(CodeInvalidPendingPublisher, "valid token, but project already exists"), pending.ID, nil
				}
				return nil, refuse(CodeInvalidPayload, "%s", msg), 0, nil
			}
			return nil, nil, 0, err
		}
		pub = &pending.Publisher
		pub.ID = 0
		if err := upsertPublisher(ctx, tx, pub, now); err != nil {
			return nil, nil, 0, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO project_publishers (project_id, publisher_id, added_by, created_at) VALUES ($1, $2, $3, $4)`,
			p.ID, pub.ID, owner, now); err != nil {
			return nil, nil, 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_publishers WHERE id = $1`, pending.ID); err != nil {
			return nil, nil, 0, err
		}
		actor := Actor{UserID: pending.UserID, Username: owner}
		if err := audit.Record(ctx, tx, now, audit.Event{ProjectID: p.ID, Tag: audit.PublisherAdded, ActorID: pending.UserID, Actor: owner,
			Additional: map[string]any{"publisher": pub.ProviderName(), "id": pub.ID, "specifier": pub.Name(), "url": pub.URL(),
				"submitted_by": actor.Username, "reified_from_pending_publisher": true}}); err != nil {
			return nil, nil, 0, err
		}
		if err := s.tellOwners(ctx, tx, p, mail.TemplatePendingPublisherReified, map[string]any{
			"Project": p.Name, "Publisher": pub.Name(), "Link": s.baseURL + "/manage/project/" + p.NormalizedName + "/settings/publishing/",
		}); err != nil {
			return nil, nil, 0, err
		}
		// Warehouse clears the registrant's registration limit: the
		// publisher did what it was registered for.
		if err := s.userRegister.Clear(ctx, tx, fmt.Sprint(pending.UserID)); err != nil {
			return nil, nil, 0, err
		}
		out.CreatedProject = p.NormalizedName
		projectIDs = []int64{p.ID}
	} else {
		pub, err = findPublisher(ctx, tx, vt.issuer, lk)
		if err != nil {
			return nil, nil, 0, err
		}
		if pub == nil {
			return nil, publisherErr("Publisher with matching claims was not found"), 0, nil
		}
		if e := checkClaims(pub, vt.issuer, vt.claims); e != nil {
			return nil, e, 0, nil
		}
		if projectIDs, err = publisherProjectIDs(ctx, tx, pub.ID); err != nil {
			return nil, nil, 0, err
		}
		if len(projectIDs) == 0 {
			return nil, publisherErr("the publisher is not bound to any project"), 0, nil
		}
		if e, err := claimJTI(ctx, tx, vt); e != nil || err != nil {
			return nil, e, 0, err
		}
		if env := ignoredEnvironment(pub, vt.claims, projectIDs); env != "" {
			if err := s.noteIgnoredEnvironment(ctx, tx, pub, env, projectIDs[0], now); err != nil {
				return nil, nil, 0, err
			}
		}
	}

	recorded := recordedClaims(vt.issuer, vt.claims)
	raw, expires, err := s.tokens.MintForPublisher(ctx, tx, token.PublisherGrant{
		PublisherID: pub.ID, Publisher: pub.Name(), ProjectIDs: projectIDs, Claims: recorded,
	})
	if err != nil {
		return nil, nil, 0, err
	}
	out.Token, out.Expires, out.Publisher = raw, expires, pub.Name()
	for _, id := range projectIDs {
		p, err := projectByID(ctx, tx, id)
		if err != nil {
			return nil, nil, 0, err
		}
		out.Projects = append(out.Projects, p.NormalizedName)
		add := map[string]any{
			"expires": expires.Unix(), "publisher_name": pub.ProviderName(), "publisher": pub.Name(), "publisher_url": pub.URL(),
			"reusable_workflow_used": pub.Kind == KindGitHub && recorded["workflow_ref"] != "" && recorded["workflow_ref"] != recorded["job_workflow_ref"],
		}
		for k, v := range recorded {
			add[k] = v
		}
		if err := audit.Record(ctx, tx, now, audit.Event{ProjectID: id, Tag: audit.ShortLivedTokenAdded, Actor: "OpenID created token", Additional: add}); err != nil {
			return nil, nil, 0, err
		}
	}
	return out, nil, 0, nil
}

// claimJTI records the token's id, refusing a token whose id is recorded
// already. A unique key does the check and the claim in one statement, so
// concurrent exchanges cannot both pass (the check-then-insert race of
// TOB-PYPI26-2).
func claimJTI(ctx context.Context, tx *sql.Tx, vt *verifiedToken) (*Error, error) {
	keep := vt.exp.Add(Leeway + jtiMargin)
	res, err := tx.ExecContext(ctx, `INSERT INTO oidc_jtis (issuer, jti, keep_until) VALUES ($1, $2, $3) ON CONFLICT (issuer, jti) DO NOTHING`,
		vt.issuer.url, vt.jti, keep.Unix()+1)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return refuse(CodeInvalidReuseToken, "invalid token: already used"), nil
	}
	return nil, nil
}

// findPublisher looks a token's publisher up: the lookup keys in order, at
// the token's own issuer (never another's, G7), preferring for each key the
// publisher bound to the token's environment over one that accepts any.
func findPublisher(ctx context.Context, tx *sql.Tx, is *issuer, lk lookup) (*Publisher, error) {
	for _, key := range lk.keys {
		rows, err := tx.QueryContext(ctx, `SELECT `+publisherColumns+` FROM trusted_publishers WHERE kind = $1 AND issuer_url = $2 AND lookup_key = $3`,
			is.kind, is.url, key)
		if err != nil {
			return nil, err
		}
		var cands []*Publisher
		for rows.Next() {
			p, err := scanPublisher(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			cands = append(cands, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if p := preferEnvironment(cands, lk.env, func(p *Publisher) string { return p.Environment }); p != nil {
			return p, nil
		}
	}
	return nil, nil
}

func findPending(ctx context.Context, tx *sql.Tx, is *issuer, lk lookup, now time.Time) (*Pending, error) {
	for _, key := range lk.keys {
		rows, err := tx.QueryContext(ctx, `SELECT `+pendingColumns+` FROM pending_publishers WHERE kind = $1 AND issuer_url = $2 AND lookup_key = $3 ORDER BY id`,
			is.kind, is.url, key)
		if err != nil {
			return nil, err
		}
		var cands []*Pending
		for rows.Next() {
			pp, err := scanPending(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if now.Before(pp.ExpiresAt) {
				cands = append(cands, pp)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if pp := preferEnvironment(cands, lk.env, func(p *Pending) string { return p.Publisher.Environment }); pp != nil {
			return pp, nil
		}
	}
	return nil, nil
}

// preferEnvironment picks the candidate limited to env, else one limited
// to nothing; a candidate limited to another environment never matches.
func preferEnvironment[T any](cands []T, env string, envOf func(T) string) T {
	var fallback T
	for _, c := range cands {
		switch e := envOf(c); {
		case env != "" && e == env:
			return c
		case e == "":
			fallback = c
		}
	}
	return fallback
}

func publisherProjectIDs(ctx context.Context, q querier, publisherID int64) ([]int64, error) {
	// A publisher of an organization's issuer serves the projects of that
	// organization only: one moved out is no longer covered.
	rows, err := q.QueryContext(ctx, `SELECT pp.project_id FROM project_publishers pp
		JOIN trusted_publishers p ON p.id = pp.publisher_id
		LEFT JOIN oidc_issuers i ON i.id = p.issuer_id
		WHERE pp.publisher_id = $1 AND (i.organization_id IS NULL
			OR EXISTS (SELECT 1 FROM organization_projects op WHERE op.project_id = pp.project_id AND op.organization_id = i.organization_id))
		ORDER BY pp.project_id`, publisherID)
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
