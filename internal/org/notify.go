package org

import (
	"context"
	"database/sql"
	"net/url"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/account"
	"github.com/gatehouse-index/gatehouse/internal/audit"
	"github.com/gatehouse-index/gatehouse/internal/mail"
)

// change is one change to an organization, as it is recorded and told.
type change struct {
	tag string         // the organization event
	add map[string]any // its details; organization_name is added
	// concerned is the user the change is about (0: none); accountTag, if
	// set, records it in their history too, and they get their own email.
	concerned  int64
	accountTag string
	// projectID and projectTag record it in a project's history too.
	projectID  int64
	projectTag string
}

// record writes a change's events in tx and emails the organization's
// owners and the person it concerns. The email's sentence is the history
// page's, so both always say the same thing.
func (s *Service) record(ctx context.Context, tx *sql.Tx, now time.Time, a Actor, o *Organization, c change) error {
	add := map[string]any{"organization_name": o.Name}
	for k, v := range c.add {
		add[k] = v
	}
	ev := audit.Event{OrganizationID: o.ID, Tag: c.tag, ActorID: a.UserID, Actor: a.Username,
		IP: a.Client.IP, UserAgent: a.Client.UserAgent, Additional: add}
	if err := audit.Record(ctx, tx, now, ev); err != nil {
		return err
	}
	if c.projectTag != "" {
		pe := ev
		pe.OrganizationID, pe.ProjectID, pe.Tag = 0, c.projectID, c.projectTag
		if err := audit.Record(ctx, tx, now, pe); err != nil {
			return err
		}
	}
	what := audit.Describe(audit.Stored{Event: ev})
	data := func(username string) map[string]any {
		return map[string]any{"Username": username, "Organization": o.Name, "What": what,
			"Link": s.baseURL + "/manage/organization/" + url.PathEscape(o.NormalizedName) + "/history/"}
	}
	if c.concerned != 0 {
		nt := account.Notice{Template: mail.TemplateOrganizationChanged}
		nt.Event = audit.Event{UserID: c.concerned}
		if c.accountTag != "" {
			nt.Event = audit.Event{UserID: c.concerned, Tag: c.accountTag, ActorID: a.UserID, Actor: a.Username, Additional: add}
		}
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT username FROM users WHERE id = $1`, c.concerned).Scan(&name); err != nil {
			return err
		}
		nt.Data = data(name)
		if err := account.SendNotice(ctx, tx, s.notifier, now, a.Client, nt); err != nil {
			return err
		}
	}
	return s.tellOwners(ctx, tx, now, o.ID, c.concerned, mail.TemplateOrganizationChanged, data)
}

// tellOwners emails every owner of the organization except the user
// except, each addressed by name. It reads the owners inside tx, so it sees
// the change itself.
func (s *Service) tellOwners(ctx context.Context, tx *sql.Tx, now time.Time, orgID, except int64, template string, data func(string) map[string]any) error {
	ms, err := listMembers(ctx, tx, orgID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Role != RoleOwner || m.UserID == except {
			continue
		}
		if err := s.tell(ctx, tx, now, m.UserID, template, data(m.Username)); err != nil {
			return err
		}
	}
	return nil
}

// tell emails one user through the one notice path.
func (s *Service) tell(ctx context.Context, tx *sql.Tx, now time.Time, userID int64, template string, data map[string]any) error {
	return account.SendNotice(ctx, tx, s.notifier, now, account.Client{}, account.Notice{
		Event: audit.Event{UserID: userID}, Template: template, Data: data})
}
