-- +goose Up
-- Gatehouse schema, SQLite dialect. Keep in step with ../postgres/00001_init.sql:
-- same tables, columns and constraints; only types and id generation differ.

-- users: people who own projects and API tokens. username_key is the
-- case-folded username, so "Alice" and "alice" cannot both exist.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    full_name     TEXT    NOT NULL DEFAULT '',
    email         TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL DEFAULT '',
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL
);

-- projects: normalized_name is the PEP 503 form and the identity of a
-- project; ultranormalized_name backs the "too similar" check.
CREATE TABLE projects (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL,
    normalized_name      TEXT    NOT NULL UNIQUE,
    ultranormalized_name TEXT    NOT NULL,
    created_at           TIMESTAMP NOT NULL,
    last_serial          BIGINT  NOT NULL DEFAULT 0,
    total_size           BIGINT  NOT NULL DEFAULT 0,
    upload_limit         BIGINT,
    total_size_limit     BIGINT
);
CREATE INDEX projects_ultranormalized ON projects (ultranormalized_name);

-- prohibited_project_names: names an administrator has reserved.
CREATE TABLE prohibited_project_names (
    normalized_name TEXT PRIMARY KEY,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE roles (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('Owner', 'Maintainer')),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX roles_user ON roles (user_id);

-- releases: canonical_version makes "1.0" and "1.0.0" one release.
CREATE TABLE releases (
    id                       INTEGER PRIMARY KEY,
    project_id               INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version                  TEXT    NOT NULL,
    canonical_version        TEXT    NOT NULL,
    is_prerelease            BOOLEAN NOT NULL DEFAULT FALSE,
    summary                  TEXT    NOT NULL DEFAULT '',
    description              TEXT    NOT NULL DEFAULT '',
    description_content_type TEXT    NOT NULL DEFAULT '',
    description_html         TEXT    NOT NULL DEFAULT '',
    requires_python          TEXT    NOT NULL DEFAULT '',
    metadata_json            TEXT    NOT NULL DEFAULT '{}',
    yanked                   BOOLEAN NOT NULL DEFAULT FALSE,
    yanked_reason            TEXT    NOT NULL DEFAULT '',
    uploader_id              INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at               TIMESTAMP NOT NULL,
    UNIQUE (project_id, canonical_version)
);

-- files: blob_key is derived from the blake2b-256 digest, never from the
-- client's filename. metadata_* describe the PEP 658 file of a wheel.
CREATE TABLE files (
    id               INTEGER PRIMARY KEY,
    release_id       INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    filename         TEXT    NOT NULL UNIQUE,
    packagetype      TEXT    NOT NULL,
    python_version   TEXT    NOT NULL,
    requires_python  TEXT    NOT NULL DEFAULT '',
    size             BIGINT  NOT NULL,
    md5_digest       TEXT    NOT NULL,
    sha256_digest    TEXT    NOT NULL,
    blake2_256_digest TEXT   NOT NULL UNIQUE,
    blob_key         TEXT    NOT NULL,
    metadata_sha256  TEXT,
    metadata_blake2_256 TEXT,
    metadata_key     TEXT,
    metadata_size    BIGINT,
    uploaded_at      TIMESTAMP NOT NULL,
    uploader_id      INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX files_project ON files (project_id);
CREATE INDEX files_release ON files (release_id);

-- filename_log: every filename ever used. A filename stays banned after its
-- file is deleted, so an installer never sees two different files by one name.
CREATE TABLE filename_log (
    filename   TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL
);

-- journal: one row per change to the index. Its id is the serial that the
-- Simple API reports (X-PyPI-Last-Serial) and that invalidates cached pages
-- on every instance.
CREATE TABLE journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    submitted_by TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX journal_project ON journal (project_id);

-- api_tokens: the id is the macaroon identifier. No key material is stored:
-- the root key is derived from the server secret and the id, so a database
-- dump alone can neither verify nor mint a token. caveats_json holds the
-- caveats issued with the token; they are re-applied at every verification.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description  TEXT    NOT NULL,
    caveats_json TEXT    NOT NULL,
    permissions  TEXT    NOT NULL DEFAULT '',
    expires_at   TIMESTAMP,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    UNIQUE (user_id, description)
);

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE journal;
DROP TABLE filename_log;
DROP TABLE files;
DROP TABLE releases;
DROP TABLE roles;
DROP TABLE prohibited_project_names;
DROP TABLE projects;
DROP TABLE users;
