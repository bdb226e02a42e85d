-- +goose Up
-- The pull-through cache of upstream indexes (--upstream). PostgreSQL dialect;
-- keep in step with ../sqlite/00012_upstream.sql.

-- upstream_pages: the last good page of a name no local project has, from
-- the first upstream that had it, in Gatehouse's own form (page_json), with
-- the validator to revalidate it and when it was last fetched or confirmed.
CREATE TABLE upstream_pages (
    normalized_name TEXT    PRIMARY KEY,
    upstream        TEXT    NOT NULL,
    etag            TEXT    NOT NULL DEFAULT '',
    serial          BIGINT  NOT NULL DEFAULT 0,
    page_json       TEXT    NOT NULL,
    fetched_at      TIMESTAMPTZ NOT NULL
);

-- upstream_files: every file an upstream page listed, by its sha256 (the
-- digest the page gave, which a stored blob is checked against), with where
-- to fetch it; stored_at is set once its bytes are in the blob store under
-- upstream/<sha256> (and metadata_stored_at for its PEP 658 metadata, under
-- upstream/<sha256>.metadata).
CREATE TABLE upstream_files (
    sha256             TEXT    PRIMARY KEY,
    normalized_name    TEXT    NOT NULL,
    filename           TEXT    NOT NULL,
    url                TEXT    NOT NULL,
    size               BIGINT  NOT NULL DEFAULT 0,
    metadata_sha256    TEXT    NOT NULL DEFAULT '',
    stored_at          TIMESTAMPTZ,
    metadata_stored_at TIMESTAMPTZ,
    -- mismatch_at: when the bytes the upstream sent did not match the
    -- digest; the file is refused (502) until the page is fetched again.
    mismatch_at        TIMESTAMPTZ
);
CREATE INDEX upstream_files_name ON upstream_files (normalized_name);

-- project_origins: a local project whose owners let its name come from
-- upstream too ('both': the pages merged, local files first) or instead
-- ('upstream'). No row: local only, the default, so that no upstream version
-- of an internal name is ever served unless its owners say so.
CREATE TABLE project_origins (
    project_id BIGINT  PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    origin     TEXT    NOT NULL CHECK (origin IN ('upstream', 'both')),
    set_by     TEXT    NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE project_origins;
DROP TABLE upstream_files;
DROP TABLE upstream_pages;
