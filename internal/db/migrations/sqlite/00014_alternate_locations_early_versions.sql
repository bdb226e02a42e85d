-- +goose Up
-- PEP 708 alternate locations set by a project's owners, and upstream
-- versions an administrator let through the cooldown early. SQLite dialect;
-- keep in step with ../postgres/00014_alternate_locations_early_versions.sql.

-- project_alternate_locations: the project pages on other indexes that its
-- owners say hold this same project (PEP 708), in their order. The Simple
-- API lists them as alternate-locations.
CREATE TABLE project_alternate_locations (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    url        TEXT    NOT NULL,
    PRIMARY KEY (project_id, position)
);

-- upstream_early_versions: an upstream project's version (canonical PEP 440
-- form) whose files are served although they are younger than
-- --upstream-min-age, by an administrator's choice (a security fix, say).
CREATE TABLE upstream_early_versions (
    normalized_name TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    allowed_by      TEXT    NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (normalized_name, version)
);

-- +goose Down
DROP TABLE upstream_early_versions;
DROP TABLE project_alternate_locations;
