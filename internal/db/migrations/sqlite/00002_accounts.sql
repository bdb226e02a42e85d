-- +goose Up
-- Accounts on the web: emails, sessions, one-time links, the audit trail,
-- the mail outbox, rate limits and site settings. SQLite dialect; keep in
-- step with ../postgres/00002_accounts.sql.

-- password_date changes whenever the password does: sessions and reset links
-- remember it and die when it moves. last_login binds reset links too.
ALTER TABLE users ADD COLUMN password_date TIMESTAMP;
ALTER TABLE users ADD COLUMN last_login TIMESTAMP;
ALTER TABLE users ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';

-- user_emails: several addresses per user, one primary. email_key is the
-- lower-cased address: an address belongs to one account only.
CREATE TABLE user_emails (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT    NOT NULL,
    email_key   TEXT    NOT NULL UNIQUE,
    is_primary  BOOLEAN NOT NULL DEFAULT FALSE,
    verified    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMP NOT NULL,
    verified_at TIMESTAMP
);
CREATE INDEX user_emails_user ON user_emails (user_id);
CREATE UNIQUE INDEX user_emails_one_primary ON user_emails (user_id) WHERE is_primary;
INSERT INTO user_emails (user_id, email, email_key, is_primary, verified, created_at)
    SELECT id, email, lower(email), TRUE, FALSE, created_at FROM users WHERE email <> '';

-- sessions: server-side browser sessions. Only a SHA-256 of the 256-bit id
-- is stored, so a database dump cannot be replayed as cookies.
CREATE TABLE sessions (
    id_hash       TEXT    PRIMARY KEY,
    user_id       INTEGER REFERENCES users (id) ON DELETE CASCADE,
    auth_level    INTEGER NOT NULL DEFAULT 0,
    password_date TIMESTAMP,
    reauth_at     TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    ip            TEXT    NOT NULL DEFAULT '',
    user_agent    TEXT    NOT NULL DEFAULT '',
    data_json     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_user ON sessions (user_id);

-- one_time_tokens: emailed links (verify an address, reset a password).
-- Only the hash is stored; used_at makes each single-use.
CREATE TABLE one_time_tokens (
    token_hash  TEXT    PRIMARY KEY,
    purpose     TEXT    NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email_id    INTEGER REFERENCES user_emails (id) ON DELETE CASCADE,
    bound_json  TEXT    NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id);

-- events: the append-only audit trail. No code path updates or deletes a
-- row; user_id is not a foreign key so history outlives the account.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER,
    project_id  INTEGER,
    tag         TEXT    NOT NULL,
    actor_id    INTEGER,
    actor       TEXT    NOT NULL DEFAULT '',
    ip          TEXT    NOT NULL DEFAULT '',
    user_agent  TEXT    NOT NULL DEFAULT '',
    additional  TEXT    NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX events_user ON events (user_id, id);
CREATE INDEX events_project ON events (project_id, id);

-- outbox: every email is written here in the transaction of the change that
-- causes it; a worker sends it. claimed_until lets several instances share
-- the work without sending one email twice.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER,
    template        TEXT    NOT NULL,
    to_addr         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_until   BIGINT  NOT NULL DEFAULT 0,
    claim_id        TEXT    NOT NULL DEFAULT '',
    sent_at         TIMESTAMP,
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);

-- throttle_hits: one row per counted attempt (a failed login, an email
-- sent); limits count rows in a moving window. at is Unix milliseconds so
-- comparisons are numeric on both databases.
CREATE TABLE throttle_hits (
    id   INTEGER PRIMARY KEY,
    key  TEXT   NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX throttle_hits_key ON throttle_hits (key, at);

-- site_settings: switches an administrator flips at run time.
CREATE TABLE site_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

ALTER TABLE users DROP COLUMN email;

-- +goose Down
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
DROP TABLE site_settings;
DROP TABLE throttle_hits;
DROP TABLE outbox;
DROP TABLE events;
DROP TABLE one_time_tokens;
DROP TABLE sessions;
DROP TABLE user_emails;
ALTER TABLE users DROP COLUMN disabled_reason;
ALTER TABLE users DROP COLUMN last_login;
ALTER TABLE users DROP COLUMN password_date;
