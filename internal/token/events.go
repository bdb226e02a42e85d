package token

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
)

// The form fields a refusal of Create is about (derrors.FieldOf), so a page
// can show the message next to the field.
const (
	FieldDescription = "description"
	FieldScope       = "scope"
	FieldExpires     = "expires"
)

// Origin is who changes a token and from where, for the audit trail.
type Origin struct {
	// Client is the browser's address and user agent; empty from the
	// command line.
	Client account.Client
	// CommandLine marks a change made with the gatehouse command by whoever
	// runs the server: the event names "command line" as its actor, not
	// the token's owner.
	CommandLine bool
}

// actor is who an event says acted: the owner, or the command line.
func (o Origin) actor(ownerID int64, owner string) (int64, string) {
	if o.CommandLine {
		return 0, "command line"
	}
	return ownerID, owner
}

// recordChange records a token's creation (added) or deletion: the account
// event on its owner and, for a project token, one project event on each
// of its projects (Warehouse records both; a project's history must show
// who can upload to it). The details say which token by id and
// description, never by value.
func recordChange(ctx context.Context, tx *sql.Tx, now time.Time, by Origin, owner string, t Token, projectIDs []int64, added bool) error {
	actorID, actor := by.actor(t.UserID, owner)
	tag, projectTag := audit.APITokenRemoved, audit.ProjectAPITokenRemoved
	add := map[string]any{"token_id": t.ID, "description": t.Description}
	if added {
		tag, projectTag = audit.APITokenAdded, audit.ProjectAPITokenAdded
		add["scope"] = t.Permissions
		if t.ExpiresAt != nil {
			add["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
	}
	e := audit.Event{UserID: t.UserID, Tag: tag, ActorID: actorID, Actor: actor,
		IP: by.Client.IP, UserAgent: by.Client.UserAgent, Additional: add}
	if err := audit.Record(ctx, tx, now, e); err != nil {
		return err
	}
	for _, pid := range projectIDs {
		pe := audit.Event{ProjectID: pid, Tag: projectTag, ActorID: actorID, Actor: actor,
			IP: by.Client.IP, UserAgent: by.Client.UserAgent,
			Additional: map[string]any{"token_id": t.ID, "description": t.Description, "owner": owner}}
		if err := audit.Record(ctx, tx, now, pe); err != nil {
			return err
		}
	}
	return nil
}

// projectIDsOf returns the project ids in stored issued caveats.
func projectIDsOf(caveatsJSON string) []int64 {
	var caveats []string
	if json.Unmarshal([]byte(caveatsJSON), &caveats) != nil {
		return nil
	}
	var ids []int64
	for _, s := range caveats {
		c, err := parseCaveat([]byte(s))
		if err != nil || c.tag != tagProjectID {
			continue
		}
		for _, v := range c.values {
			if id, err := strconv.ParseInt(v, 10, 64); err == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
