-- +goose Up
-- Collaborators: invitations to take a role on a project. SQLite dialect;
-- keep in step with ../postgres/00005_collaborators.sql.

-- role_invitations: an owner's invitation of a user to a role, at most one
-- per user and project. Only the SHA-256 of the emailed token is stored, so
-- a database dump holds no usable link. The row is deleted when the
-- invitation is accepted, declined or revoked, which makes the link
-- single-use; expires_at ends it after 72 hours. inviter keeps the
-- inviting owner's username in case that account is deleted.
CREATE TABLE role_invitations (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('Owner', 'Maintainer')),
    token_hash  TEXT    NOT NULL UNIQUE,
    inviter_id  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    inviter     TEXT    NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    UNIQUE (project_id, user_id)
);
CREATE INDEX role_invitations_user ON role_invitations (user_id);

-- +goose Down
DROP TABLE role_invitations;
