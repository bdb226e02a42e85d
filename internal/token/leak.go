package token

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// Leaked tokens (spec §1.7). Whoever finds a token where others can read it
// (a secret scanner, a person) reports its value; a genuine token is deleted
// at once and its owner emailed, as PyPI does with what GitHub's secret
// scanning sends it. Knowing the value is the only authority needed: whoever
// holds it could use it, so letting them destroy it takes nothing away.

// MaxLeakURLLen bounds the address where a leaked token was found.
const MaxLeakURLLen = 2000

// Leak is one report that a token's value was found where others can read
// it.
type Leak struct {
	Token string // the raw token, as found
	URL   string // where it was found; "" when the reporter did not say
}

// Revoked is a token deleted because its value leaked.
type Revoked struct {
	Token
	Username string // its owner
}

// RevokeLeaked deletes every genuine token among leaks and tells each
// owner, in one transaction: the deletion, account:api_token:removed_leak
// (with where it was found and who reported it) and the
// token-compromised-leak email to the owner, which also goes to an
// unverified primary address. by.CommandLine means an administrator
// revoked it (the email says so); otherwise it came from a report.
//
// A value that is not one of our tokens (malformed, unknown, already
// deleted, or with a signature that does not match, so that nobody can
// revoke a token by guessing its id) is skipped without a word, as is a
// token reported twice: the caller learns only what was revoked. A URL
// that is too long or holds control characters refuses the whole report,
// with nothing revoked.
func (s *Service) RevokeLeaked(ctx context.Context, leaks []Leak, by Origin) (_ []Revoked, err error) {
	defer derrors.Wrap(&err, "token.RevokeLeaked(%d)", len(leaks))
	for i, l := range leaks {
		u := strings.TrimSpace(l.URL)
		if utf8.RuneCountInString(u) > MaxLeakURLLen || !utf8.ValidString(u) || strings.IndexFunc(u, unicode.IsControl) >= 0 {
			return nil, derrors.New(derrors.Invalid, "Report %d: the url must be at most %d characters, without control characters.", i+1, MaxLeakURLLen)
		}
		leaks[i].URL = u
	}
	now := s.now().UTC()
	var out []Revoked
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, l := range leaks {
			r, err := s.revokeGenuine(ctx, tx, now, strings.TrimSpace(l.Token), l.URL, by)
			if err != nil {
				return err
			}
			if r != nil {
				out = append(out, *r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// revokeGenuine deletes the token raw if it is genuine and tells its owner;
// nil when raw is not a live token of ours.
func (s *Service) revokeGenuine(ctx context.Context, tx *sql.Tx, now time.Time, raw, foundAt string, by Origin) (*Revoked, error) {
	m, err := parse(raw)
	if err != nil {
		return nil, nil
	}
	id := string(m.Id())
	var username string
	t, _, err := scanToken(tx.QueryRowContext(ctx, `
		SELECT `+tokenColumns+`, u.username
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.id = $1`, id), &username)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The signature, not the caveats: an expired or attenuated token that
	// leaked is still the owner's and still revoked.
	if _, err := m.VerifySignature(rootKey(s.secret, id), nil); err != nil {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = $1`, id); err != nil {
		return nil, err
	}
	origin, byAdmin := "report", ""
	if by.CommandLine {
		origin, byAdmin = "command line", "yes"
	}
	actorID, actor := int64(0), "leak report"
	if by.CommandLine {
		actorID, actor = by.actor(t.UserID, username)
	}
	err = account.SendNotice(ctx, tx, s.notifier, now, by.Client, account.Notice{
		Event: audit.Event{UserID: t.UserID, Tag: audit.APITokenRemovedLeak, ActorID: actorID, Actor: actor,
			Additional: map[string]any{"token_id": t.ID, "description": t.Description, "scope": t.Permissions,
				"public_url": foundAt, "origin": origin}},
		Template: mail.TemplateTokenCompromisedLeak,
		Data: map[string]any{"Username": username, "Description": t.Description, "Scope": ScopeWords(t),
			"URL": foundAt, "ByAdmin": byAdmin, "TokensLink": s.links.Tokens},
	})
	if err != nil {
		return nil, err
	}
	return &Revoked{Token: t, Username: username}, nil
}

// ScopeWords says what a token may do, as the pages and emails say it:
// "whole account" or "projects a, b".
func ScopeWords(t Token) string {
	s := "whole account"
	if len(t.Projects) > 0 {
		s = "projects " + strings.Join(t.Projects, ", ")
	}
	if t.ReadOnly {
		s = "read-only, " + s
	}
	return s
}
