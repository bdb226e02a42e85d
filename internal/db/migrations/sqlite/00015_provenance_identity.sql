-- +goose Up
-- file_provenance.issuer: the OIDC issuer of the publisher (a self-managed
-- GitLab's own URL, say), so the project page links the right forge.
-- identity: what the certificate certifies for publishers without a
-- repository: a Google service account's email, a custom issuer's
-- subject.
-- SQLite dialect; keep in step with ../postgres/00015_provenance_identity.sql.
ALTER TABLE file_provenance ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE file_provenance ADD COLUMN identity TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE file_provenance DROP COLUMN identity;
ALTER TABLE file_provenance DROP COLUMN issuer;
