-- +goose Up
-- file_provenance: the PEP 740 attestations a file was uploaded with,
-- verified against the trusted publisher that made the upload
-- (internal/attest), and that publisher as the Integrity API reports it.
-- SQLite dialect; keep in step with ../postgres/00009_attestations.sql.
CREATE TABLE file_provenance (
    file_id        INTEGER NOT NULL PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    publisher_kind TEXT    NOT NULL,
    repository     TEXT    NOT NULL,
    workflow       TEXT    NOT NULL,
    environment    TEXT    NOT NULL DEFAULT '',
    commit_sha     TEXT    NOT NULL DEFAULT '',
    -- attestations: the JSON array as verified.
    attestations   TEXT    NOT NULL
);

-- require_attestations: uploads without valid attestations are refused.
ALTER TABLE projects ADD COLUMN require_attestations BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE projects DROP COLUMN require_attestations;
DROP TABLE file_provenance;
