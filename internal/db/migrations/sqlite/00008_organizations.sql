-- +goose Up
-- Organizations and teams. SQLite dialect; keep in step with
-- ../postgres/00008_organizations.sql.

-- organizations: a request until an administrator approves it (or at once,
-- with --organizations-need-approval=false). A declined request's row is
-- deleted, which frees its name. normalized_name is unique, so of two
-- requests for one name at the same moment exactly one is written. The
-- three policy columns are enforced by the management gate and the upload
-- path for every member on every project of the organization.
CREATE TABLE organizations (
    id                         INTEGER PRIMARY KEY,
    name                       TEXT    NOT NULL,
    normalized_name            TEXT    NOT NULL UNIQUE,
    description                TEXT    NOT NULL DEFAULT '',
    status                     TEXT    NOT NULL CHECK (status IN ('pending', 'approved')),
    requested_by               INTEGER REFERENCES users (id) ON DELETE SET NULL,
    requester                  TEXT    NOT NULL,
    created_at                 TIMESTAMP NOT NULL,
    approved_at                TIMESTAMP,
    require_phishing_resistant BOOLEAN NOT NULL DEFAULT FALSE,
    trusted_publishing_only    BOOLEAN NOT NULL DEFAULT FALSE,
    confirm_every_login        BOOLEAN NOT NULL DEFAULT FALSE,
    -- require_attestations: uploads to the organization's projects need
    -- valid PEP 740 attestations (internal/project/attestations.go).
    require_attestations       BOOLEAN NOT NULL DEFAULT FALSE
);

-- organization_old_names: names an organization had before a rename; they
-- redirect to it and no other organization can take them.
CREATE TABLE organization_old_names (
    normalized_name TEXT    PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at      TIMESTAMP NOT NULL
);

-- organization_roles: members and their role.
CREATE TABLE organization_roles (
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('Owner', 'Manager', 'Member')),
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_roles_user ON organization_roles (user_id);

-- organization_invitations: as role_invitations, for membership. inviter_id
-- is kept so that answering re-checks the inviter still may invite.
CREATE TABLE organization_invitations (
    id              INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('Owner', 'Manager', 'Member')),
    token_hash      TEXT    NOT NULL UNIQUE,
    inviter_id      INTEGER REFERENCES users (id) ON DELETE SET NULL,
    inviter         TEXT    NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    UNIQUE (organization_id, user_id)
);
CREATE INDEX organization_invitations_user ON organization_invitations (user_id);

-- teams: named groups of an organization's members.
CREATE TABLE teams (
    id              INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    normalized_name TEXT    NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    UNIQUE (organization_id, normalized_name)
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

-- team_project_roles: a team's role on one of its organization's projects.
CREATE TABLE team_project_roles (
    team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('Owner', 'Maintainer')),
    PRIMARY KEY (team_id, project_id)
);
CREATE INDEX team_project_roles_project ON team_project_roles (project_id);

-- organization_projects: which organization a project belongs to (at most
-- one).
CREATE TABLE organization_projects (
    project_id      INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX organization_projects_org ON organization_projects (organization_id);

-- organization_project_requests: a project owner's request to move a
-- project into an organization, for its owners or managers to accept.
CREATE TABLE organization_project_requests (
    project_id      INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    requested_by    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    requester       TEXT    NOT NULL,
    created_at      TIMESTAMP NOT NULL
);

-- effective_roles: every role a user holds on a project, by whatever
-- path: as a collaborator; as an organization's Owner (Owner on all its
-- projects) or Manager (Maintainer on all of them); or through a team of
-- the project's organization that they are still a member of. A user may
-- appear more than once for a project; readers take the strongest role.
-- Everything that decides access (the project guards, uploads, token
-- scopes) reads this view, so a removal from a team or an organization, or
-- a project's move out, takes effect at the next request, tokens included.
-- It is a plain UNION ALL, with no aggregate, so that both databases push a
-- query's project_id / user_id conditions into each branch and its indexes
-- (a GROUP BY here made SQLite scan every role of the index).
CREATE VIEW effective_roles AS
    SELECT project_id, user_id, role FROM roles
    UNION ALL
    SELECT op.project_id, r.user_id, CASE r.role WHEN 'Owner' THEN 'Owner' ELSE 'Maintainer' END
    FROM organization_projects op JOIN organization_roles r ON r.organization_id = op.organization_id
    WHERE r.role IN ('Owner', 'Manager')
    UNION ALL
    SELECT tpr.project_id, tm.user_id, tpr.role
    FROM team_project_roles tpr
    JOIN teams t ON t.id = tpr.team_id
    JOIN organization_projects op ON op.project_id = tpr.project_id AND op.organization_id = t.organization_id
    JOIN team_members tm ON tm.team_id = tpr.team_id
    JOIN organization_roles m ON m.organization_id = t.organization_id AND m.user_id = tm.user_id;

-- Events about an organization show in its history.
ALTER TABLE events ADD COLUMN organization_id INTEGER;
CREATE INDEX events_organization ON events (organization_id, id);

-- +goose Down
DROP INDEX events_organization;
ALTER TABLE events DROP COLUMN organization_id;
DROP VIEW effective_roles;
DROP TABLE organization_project_requests;
DROP TABLE organization_projects;
DROP TABLE team_project_roles;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE organization_invitations;
DROP TABLE organization_roles;
DROP TABLE organization_old_names;
DROP TABLE organizations;
