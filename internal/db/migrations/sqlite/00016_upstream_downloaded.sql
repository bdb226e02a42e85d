-- +goose Up
-- upstream_files.downloaded_at: about when a stored upstream file (or its
-- metadata) was last downloaded, kept to within a day (a download writes
-- it only when it is older than that), so that 'gatehouse upstream prune
-- --unused-for' removes what nobody installs any more. NULL: not
-- downloaded since it was stored, or since before this column existed.
-- SQLite dialect; keep in step with ../postgres/00016_upstream_downloaded.sql.
ALTER TABLE upstream_files ADD COLUMN downloaded_at TIMESTAMP;

-- +goose Down
ALTER TABLE upstream_files DROP COLUMN downloaded_at;
