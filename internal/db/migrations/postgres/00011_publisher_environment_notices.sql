-- +goose Up
-- publisher_environment_notices: a publisher with no environment that a
-- job running in one used; its owners were told once that they can limit
-- it to that environment (Warehouse's
-- environment-ignored-in-trusted-publisher email). PostgreSQL dialect; keep in
-- step with ../sqlite/00011_publisher_environment_notices.sql.
CREATE TABLE publisher_environment_notices (
    publisher_id BIGINT  NOT NULL REFERENCES trusted_publishers (id) ON DELETE CASCADE,
    environment  TEXT    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (publisher_id, environment)
);

-- +goose Down
DROP TABLE publisher_environment_notices;
