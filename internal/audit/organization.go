package audit

import (
	"context"
	"database/sql"
	"encoding/json"
)

// Organization event tags (spec §2.1). Those recorded on the organization
// carry Event.OrganizationID; the account:… ones are the same change as the
// person it concerns sees it, and project:… ones as the project's history
// shows it. The policy tags are ours: PyPI's organizations have no
// security policies.
const (
	OrgApplicationSubmit = "organization:application_submit"
	OrgCreate            = "organization:create"
	OrgApprove           = "organization:approve"
	OrgDecline           = "organization:decline"
	OrgRename            = "organization:rename"
	OrgDelete            = "organization:delete"

	OrgProjectAdd    = "organization:organization_project:add"
	OrgProjectRemove = "organization:organization_project:remove"
	// OrgProjectRequest and OrgProjectDecline are ours: a project owner
	// asking to move a project in, and the organization saying no.
	OrgProjectRequest = "organization:organization_project:request"
	OrgProjectDecline = "organization:organization_project:decline"
	ProjectOrgAdd     = "project:organization_project:add"
	ProjectOrgRemove  = "project:organization_project:remove"

	OrgRoleAdd           = "organization:organization_role:add"
	OrgRoleChange        = "organization:organization_role:change"
	OrgRoleRemove        = "organization:organization_role:remove"
	OrgRoleInvite        = "organization:organization_role:invite"
	OrgRoleDeclineInvite = "organization:organization_role:decline_invite"
	OrgRoleRevokeInvite  = "organization:organization_role:revoke_invite"
	AccountOrgRoleAdd    = "account:organization_role:add"
	AccountOrgRoleChange = "account:organization_role:change"
	AccountOrgRoleRemove = "account:organization_role:remove"
	AccountOrgRoleInvite = "account:organization_role:invite"
	AccountOrgRoleDecl   = "account:organization_role:decline_invite"
	AccountOrgRoleRevoke = "account:organization_role:revoke_invite"

	TeamCreate            = "organization:team:create"
	TeamDelete            = "organization:team:delete"
	TeamRoleAdd           = "organization:team_role:add"
	TeamRoleRemove        = "organization:team_role:remove"
	AccountTeamRoleAdd    = "account:team_role:add"
	AccountTeamRoleRemove = "account:team_role:remove"
	TeamProjectRoleAdd    = "organization:team_project_role:add"
	TeamProjectRoleChange = "organization:team_project_role:change"
	TeamProjectRoleRemove = "organization:team_project_role:remove"
	ProjectTeamRoleAdd    = "project:team_project_role:add"
	ProjectTeamRoleChange = "project:team_project_role:change"
	ProjectTeamRoleRemove = "project:team_project_role:remove"

	OrgIssuerAdded   = "organization:oidc:issuer-added"
	OrgIssuerRemoved = "organization:oidc:issuer-removed"

	OrgPolicyPhishingResistantOn  = "organization:policy:phishing_resistant:enabled"
	OrgPolicyPhishingResistantOff = "organization:policy:phishing_resistant:disabled"
	OrgPolicyTrustedOnlyOn        = "organization:policy:trusted_publishing_only:enabled"
	OrgPolicyTrustedOnlyOff       = "organization:policy:trusted_publishing_only:disabled"
	OrgPolicyAttestationsOn       = "organization:policy:require_attestations:enabled"
	OrgPolicyAttestationsOff      = "organization:policy:require_attestations:disabled"
	OrgPolicyConfirmLoginsOn      = "organization:policy:confirm_every_login:enabled"
	OrgPolicyConfirmLoginsOff     = "organization:policy:confirm_every_login:disabled"
	SitePolicyPhishingResistantOn = "admin:policy:phishing_resistant:enabled"
	SitePolicyPhishingResistantNo = "admin:policy:phishing_resistant:disabled"
	SitePolicyTrustedOnlyOn       = "admin:policy:trusted_publishing_only:enabled"
	SitePolicyTrustedOnlyOff      = "admin:policy:trusted_publishing_only:disabled"
	SitePolicyConfirmLoginsOn     = "admin:policy:confirm_every_login:enabled"
	SitePolicyConfirmLoginsOff    = "admin:policy:confirm_every_login:disabled"
)

// policyWords names each policy tag's policy and whether it went on.
var policyWords = map[string]struct {
	site bool
	what string
	on   bool
}{
	OrgPolicyPhishingResistantOn:  {false, "members must use a security key or passkey", true},
	OrgPolicyPhishingResistantOff: {false, "members must use a security key or passkey", false},
	OrgPolicyTrustedOnlyOn:        {false, "uploads only from trusted publishers", true},
	OrgPolicyTrustedOnlyOff:       {false, "uploads only from trusted publishers", false},
	OrgPolicyAttestationsOn:       {false, "uploads need valid attestations", true},
	OrgPolicyAttestationsOff:      {false, "uploads need valid attestations", false},
	OrgPolicyConfirmLoginsOn:      {false, "every login from a new device is confirmed by email", true},
	OrgPolicyConfirmLoginsOff:     {false, "every login from a new device is confirmed by email", false},
	SitePolicyPhishingResistantOn: {true, "everyone must use a security key or passkey", true},
	SitePolicyPhishingResistantNo: {true, "everyone must use a security key or passkey", false},
	SitePolicyTrustedOnlyOn:       {true, "uploads only from trusted publishers", true},
	SitePolicyTrustedOnlyOff:      {true, "uploads only from trusted publishers", false},
	SitePolicyConfirmLoginsOn:     {true, "every login from a new device is confirmed by email", true},
	SitePolicyConfirmLoginsOff:    {true, "every login from a new device is confirmed by email", false},
}

// describeOrganization words the organization events, on the organization
// (its history), on the account ("you") and on a project.
func describeOrganization(e Stored, str func(string) string) (string, bool) {
	org, role, target, team, proj := str("organization_name"), str("role_name"), str("target_user"), str("team_name"), str("project_name")
	by := " by " + e.Actor
	switch e.Tag {
	case OrgApplicationSubmit:
		return "Organization " + org + " requested" + by, true
	case OrgCreate:
		return "Organization " + org + " created" + by, true
	case OrgApprove:
		return "Organization request approved by administrator " + e.Actor, true
	case OrgDecline:
		return "Organization request declined by administrator " + e.Actor, true
	case OrgRename:
		return "Organization renamed from " + str("previous_name") + " to " + org + by, true
	case OrgDelete:
		return "Organization " + org + " deleted" + by, true
	case OrgProjectAdd:
		if str("created") == "true" {
			return "Project " + proj + " created in the organization" + by, true
		}
		return "Project " + proj + " moved into the organization" + by, true
	case OrgProjectRemove:
		return "Project " + proj + " moved out of the organization" + by, true
	case OrgProjectRequest:
		return e.Actor + " asked to move project " + proj + " into the organization", true
	case OrgProjectDecline:
		return "Request to move project " + proj + " in declined" + by, true
	case ProjectOrgAdd:
		if str("created") == "true" {
			return "Created in organization " + org + by, true
		}
		return "Moved into organization " + org + by, true
	case ProjectOrgRemove:
		return "Moved out of organization " + org + by + "; its teams lost their roles", true
	case OrgRoleAdd:
		return target + " joined as " + role, true
	case OrgRoleChange:
		return target + "'s role changed to " + role + by, true
	case OrgRoleRemove:
		if target == e.Actor {
			return target + " left the organization", true
		}
		return target + " removed from the organization" + by, true
	case OrgRoleInvite:
		return target + " invited as " + role + by, true
	case OrgRoleDeclineInvite:
		return target + " declined the invitation to join as " + role, true
	case OrgRoleRevokeInvite:
		return "Invitation of " + target + " withdrawn" + by, true
	case AccountOrgRoleAdd:
		return "Joined organization " + org + " as " + role, true
	case AccountOrgRoleChange:
		return "Role in organization " + org + " changed to " + role + by, true
	case AccountOrgRoleRemove:
		if e.ActorID == e.UserID {
			return "Left organization " + org, true
		}
		return "Removed from organization " + org + by, true
	case AccountOrgRoleInvite:
		return "Invited" + by + " to join organization " + org + " as " + role, true
	case AccountOrgRoleDecl:
		return "Declined the invitation to join organization " + org, true
	case AccountOrgRoleRevoke:
		return "Invitation to join organization " + org + " withdrawn" + by, true
	case OrgIssuerAdded:
		return "Trusted publishing issuer " + str("name") + " (" + str("issuer") + ") added" + by, true
	case OrgIssuerRemoved:
		return "Trusted publishing issuer " + str("name") + " (" + str("issuer") + ") removed" + by + "; its publishers went with it", true
	case TeamCreate:
		return "Team " + team + " created" + by, true
	case TeamDelete:
		return "Team " + team + " deleted" + by, true
	case TeamRoleAdd:
		return target + " added to team " + team + by, true
	case TeamRoleRemove:
		return target + " removed from team " + team + by, true
	case AccountTeamRoleAdd:
		return "Added to team " + team + " of organization " + org + by, true
	case AccountTeamRoleRemove:
		return "Removed from team " + team + " of organization " + org + by, true
	case TeamProjectRoleAdd, ProjectTeamRoleAdd:
		return "Team " + team + " given the " + role + " role on " + proj + by, true
	case TeamProjectRoleChange, ProjectTeamRoleChange:
		return "Team " + team + "'s role on " + proj + " changed to " + role + by, true
	case TeamProjectRoleRemove, ProjectTeamRoleRemove:
		return "Team " + team + " no longer has a role on " + proj + by, true
	}
	if p, ok := policyWords[e.Tag]; ok {
		who := "Organization policy"
		if p.site {
			who = "Site-wide policy"
			by = " by administrator " + e.Actor
		}
		state := "turned off"
		if p.on {
			state = "turned on"
		}
		return who + " “" + p.what + "” " + state + by, true
	}
	return "", false
}

// ForOrganization returns an organization's events, newest first, at most
// limit of them with an id below before (0: from the newest).
func (s *Service) ForOrganization(ctx context.Context, orgID, before int64, limit int) ([]Stored, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, project_id, organization_id, tag, actor_id, actor, ip, user_agent, additional, created_at
		FROM events WHERE organization_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, orgID, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var e Stored
		var uid, pid, oid, aid sql.NullInt64
		var add string
		if err := rows.Scan(&e.ID, &uid, &pid, &oid, &e.Tag, &aid, &e.Actor, &e.IP, &e.UserAgent, &add, &e.CreatedAt); err != nil {
			return nil, err
		}
		e.CreatedAt = e.CreatedAt.UTC()
		e.UserID, e.ProjectID, e.OrganizationID, e.ActorID = uid.Int64, pid.Int64, oid.Int64, aid.Int64
		json.Unmarshal([]byte(add), &e.Additional)
		out = append(out, e)
	}
	return out, rows.Err()
}
