package project

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// The project statuses (PEP 792 status markers). A project has exactly one.
const (
	StatusActive      = "active"
	StatusArchived    = "archived"
	StatusQuarantined = "quarantined"
)

// ownedForChange loads the project for a change by one of its owners, in
// tx: the role is read again here, inside the transaction that makes the
// change, so a role removed after the page's guard ran cannot act, and a
// quarantined project refuses every change (its owners can see it but not
// change it).
func ownedForChange(ctx context.Context, tx *sql.Tx, a Actor, normalizedName string) (*Project, error) {
	p, err := getProject(ctx, tx, normalizedName)
	if err != nil {
		return nil, err
	}
	r, err := role(ctx, tx, p.ID, a.UserID)
	if err != nil {
		return nil, err
	}
	if r != RoleOwner {
		return nil, derrors.New(derrors.Forbidden, "Only an owner of %s can do this.", p.Name)
	}
	if p.Status == StatusQuarantined {
		return nil, errQuarantined(p)
	}
	return p, nil
}

func errQuarantined(p *Project) error {
	return derrors.New(derrors.Forbidden, "%s is quarantined by the administrators: it cannot be changed until the quarantine is lifted.", p.Name)
}

// requireAdmin checks in tx that the actor is an administrator with an
// enabled account.
func requireAdmin(ctx context.Context, tx *sql.Tx, a Actor) error {
	var admin, disabled bool
	err := tx.QueryRowContext(ctx, `SELECT is_admin, disabled FROM users WHERE id = $1`, a.UserID).Scan(&admin, &disabled)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (!admin || disabled)) {
		return derrors.New(derrors.Forbidden, "Only administrators can do this.")
	}
	return err
}

// record appends a project event in tx.
func (s *Service) record(ctx context.Context, tx *sql.Tx, a Actor, p *Project, tag string, add map[string]any) error {
	return audit.Record(ctx, tx, s.now(), audit.Event{ProjectID: p.ID, Tag: tag, ActorID: a.UserID, Actor: a.Username,
		IP: a.Client.IP, UserAgent: a.Client.UserAgent, Additional: add})
}

// collaborators lists the project's owners and maintainers, in tx.
func collaborators(ctx context.Context, tx *sql.Tx, projectID int64) ([]Collaborator, error) {
	return listCollaborators(ctx, tx, projectID)
}

// tellCollaborators emails every owner and maintainer of the project, as
// PyPI does for yanks and deletions: each through the one notice path
// (account.SendNotice), which picks their verified addresses. The event is
// recorded once by the caller, on the project, so the notices carry none.
// data gets Username, Project and RecipientRole for each.
func (s *Service) tellCollaborators(ctx context.Context, tx *sql.Tx, cs []Collaborator, p *Project, template string, data map[string]any) error {
	for _, c := range cs {
		d := map[string]any{"Username": c.Username, "Project": p.Name, "RecipientRole": roleDescription(c.Role)}
		for k, v := range data {
			d[k] = v
		}
		err := account.SendNotice(ctx, tx, s.notifier, s.now(), account.Client{}, account.Notice{
			Event: audit.Event{UserID: c.UserID}, Template: template, Data: d})
		if err != nil {
			return err
		}
	}
	return nil
}

// roleOf is the actor's role among the collaborators, for "with a role:".
func roleOf(cs []Collaborator, userID int64) string {
	for _, c := range cs {
		if c.UserID == userID {
			return strings.ToLower(c.Role)
		}
	}
	return "administrator"
}

func roleDescription(role string) string {
	if role == RoleMaintainer {
		return "a maintainer"
	}
	return "an owner"
}

// confirmName checks what a person typed to confirm a destructive action
// against the name it must match, exactly (surrounding spaces aside).
func confirmName(field, typed, want, what string) error {
	typed = strings.TrimSpace(typed)
	if typed == "" {
		return derrors.InField(derrors.Invalid, field, "Type %s to confirm.", what)
	}
	if typed != want {
		return derrors.InField(derrors.Invalid, field, "%q is not %s. Type it exactly as shown to confirm.", typed, what)
	}
	return nil
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }
