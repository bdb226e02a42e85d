-- +goose Up
-- Trusted publishing (OIDC): publishers, pending publishers, issuers an
-- administrator registers, single-use JWT ids and the short-lived tokens
-- minted for publishers. SQLite dialect; keep in step with
-- ../postgres/00007_trusted_publishing.sql.

-- oidc_issuers: OIDC issuers an administrator added (Gitea/Forgejo Actions,
-- any OIDC CI). claims_json lists the claim names every publisher of the
-- issuer must give a value for; a token matches a publisher only when each
-- of those claims equals the publisher's value.
CREATE TABLE oidc_issuers (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    issuer_url  TEXT    NOT NULL UNIQUE,
    audience    TEXT    NOT NULL,
    claims_json TEXT    NOT NULL,
    created_by  TEXT    NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);

-- trusted_publishers: one CI identity. kind is github, gitlab, google,
-- activestate or custom; issuer_url is the issuer its tokens must come
-- from; lookup_key is the provider's identity in normalized form (what a
-- token's claims are looked up by), environment the optional environment
-- (also normalized). config_json holds the fields as entered. A row is
-- shared by every project that names the same identity.
CREATE TABLE trusted_publishers (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    issuer_url  TEXT    NOT NULL,
    issuer_id   INTEGER REFERENCES oidc_issuers (id) ON DELETE CASCADE,
    lookup_key  TEXT    NOT NULL,
    environment TEXT    NOT NULL DEFAULT '',
    config_json TEXT    NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (kind, issuer_url, lookup_key, environment)
);

-- project_publishers: which publishers may upload to which projects.
CREATE TABLE project_publishers (
    project_id   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    publisher_id INTEGER NOT NULL REFERENCES trusted_publishers (id) ON DELETE CASCADE,
    added_by     TEXT    NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, publisher_id)
);
CREATE INDEX project_publishers_publisher ON project_publishers (publisher_id);

-- pending_publishers: a publisher for a project that does not exist yet;
-- the first exchange of a matching token creates the project. They do not
-- reserve the name and expire at expires_at; reminded_at is when the owner
-- was told it expires soon.
CREATE TABLE pending_publishers (
    id                   INTEGER PRIMARY KEY,
    project_name         TEXT    NOT NULL,
    normalized_name      TEXT    NOT NULL,
    ultranormalized_name TEXT    NOT NULL,
    added_by             INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind                 TEXT    NOT NULL,
    issuer_url           TEXT    NOT NULL,
    issuer_id            INTEGER REFERENCES oidc_issuers (id) ON DELETE CASCADE,
    lookup_key           TEXT    NOT NULL,
    environment          TEXT    NOT NULL DEFAULT '',
    config_json          TEXT    NOT NULL,
    created_at           TIMESTAMP NOT NULL,
    expires_at           TIMESTAMP NOT NULL,
    reminded_at          TIMESTAMP,
    UNIQUE (kind, issuer_url, lookup_key, environment)
);
CREATE INDEX pending_publishers_user ON pending_publishers (added_by);
CREATE INDEX pending_publishers_name ON pending_publishers (ultranormalized_name);

-- oidc_jtis: every JWT id exchanged, per issuer. The primary key makes the
-- claim atomic: of any number of concurrent exchanges of one token, one
-- inserts the row and the others find it. keep_until (Unix seconds) is past
-- the token's exp plus the leeway, so a replay is refused for as long as
-- the token itself would be accepted.
CREATE TABLE oidc_jtis (
    issuer     TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    keep_until BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX oidc_jtis_keep ON oidc_jtis (keep_until);

-- oidc_tokens: upload tokens minted for a publisher. As for api_tokens, no
-- key material is stored; the root key is derived from the server secret.
-- claims_json keeps what the exchange proved (repository, workflow, ref,
-- sha) for the audit trail.
CREATE TABLE oidc_tokens (
    id           TEXT    PRIMARY KEY,
    publisher_id INTEGER NOT NULL REFERENCES trusted_publishers (id) ON DELETE CASCADE,
    description  TEXT    NOT NULL,
    caveats_json TEXT    NOT NULL,
    claims_json  TEXT    NOT NULL DEFAULT '{}',
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX oidc_tokens_publisher ON oidc_tokens (publisher_id);

-- trusted_publishing_only: projects that refuse uploads with long-lived
-- API tokens.
CREATE TABLE trusted_publishing_only (
    project_id INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    set_by     TEXT    NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

-- token_publisher_warnings: a long-lived token that uploaded to a project
-- with a trusted publisher; the owners are told once per token and project.
CREATE TABLE token_publisher_warnings (
    token_id   TEXT    NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, project_id)
);

-- +goose Down
DROP TABLE token_publisher_warnings;
DROP TABLE trusted_publishing_only;
DROP TABLE oidc_tokens;
DROP TABLE oidc_jtis;
DROP TABLE pending_publishers;
DROP TABLE project_publishers;
DROP TABLE trusted_publishers;
DROP TABLE oidc_issuers;
