-- +goose Up
-- Project management on the web: a project's status (PEP 792), the
-- per-project release-age override, and the digest of every file ever
-- uploaded. PostgreSQL dialect; keep in step with ../sqlite/00004_projects.sql.

-- status: 'active', 'archived' (owners: no uploads, still installable) or
-- 'quarantined' (administrators: no uploads, nothing served). One value, as
-- PEP 792 gives a project exactly one status.
ALTER TABLE projects ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'archived', 'quarantined'));
ALTER TABLE projects ADD COLUMN status_changed_at TIMESTAMPTZ;
-- release_age_days: no new files on a release older than this many days;
-- NULL takes the site's --release-age-days.
ALTER TABLE projects ADD COLUMN release_age_days INTEGER;

-- filename_log.blake2_256_digest: the bytes a name was used for, so that a
-- deleted file's bytes cannot come back under another name either (rows
-- logged before this migration have none until their file is deleted).
ALTER TABLE filename_log ADD COLUMN blake2_256_digest TEXT;
CREATE INDEX filename_log_blake2 ON filename_log (blake2_256_digest);

-- +goose Down
DROP INDEX filename_log_blake2;
ALTER TABLE filename_log DROP COLUMN blake2_256_digest;
ALTER TABLE projects DROP COLUMN release_age_days;
ALTER TABLE projects DROP COLUMN status_changed_at;
ALTER TABLE projects DROP COLUMN status;
