-- +goose Up
-- Second factors, known devices and new-device confirmation. SQLite
-- dialect; keep in step with ../postgres/00003_mfa.sql.

-- webauthn_user_handle: the opaque user id given to authenticators, so a
-- passkey names its account without revealing the database id.
-- recovery_confirmed_at: set when the user has entered one recovery code
-- back, proving they stored them; second factors may be added only after.
ALTER TABLE users ADD COLUMN webauthn_user_handle TEXT;
ALTER TABLE users ADD COLUMN recovery_confirmed_at TIMESTAMP;
CREATE UNIQUE INDEX users_webauthn_handle ON users (webauthn_user_handle);

-- totp_secrets: one authenticator app per user. The secret is encrypted
-- with a key derived from the server secret. last_step is the RFC 6238 time
-- step of the last accepted code: any code at or before it is refused.
CREATE TABLE totp_secrets (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc TEXT    NOT NULL,
    last_step  BIGINT  NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

-- recovery_codes: 8 per user, stored as keyed hashes; burned, never deleted
-- until regenerated.
CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    created_at TIMESTAMP NOT NULL,
    burned_at  TIMESTAMP
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- webauthn_credentials: security keys and passkeys. credential_id is
-- unique across all users. credential_json is go-webauthn's Credential.
CREATE TABLE webauthn_credentials (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label           TEXT    NOT NULL,
    label_key       TEXT    NOT NULL,
    credential_id   TEXT    NOT NULL UNIQUE,
    credential_json TEXT    NOT NULL,
    sign_count      BIGINT  NOT NULL DEFAULT 0,
    passkey         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMP NOT NULL,
    last_used_at    TIMESTAMP,
    UNIQUE (user_id, label_key)
);

-- devices: browsers a user has signed in from with a phishing-resistant
-- factor or a confirmed email link. The browser holds a random device token
-- in a cookie; only its hash is stored. remember_until lets the browser skip
-- the second factor; it is cleared whenever the password or a factor changes.
CREATE TABLE devices (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash     TEXT    NOT NULL,
    user_agent     TEXT    NOT NULL DEFAULT '',
    ip             TEXT    NOT NULL DEFAULT '',
    created_at     TIMESTAMP NOT NULL,
    last_used_at   TIMESTAMP NOT NULL,
    remember_until TIMESTAMP,
    UNIQUE (user_id, token_hash)
);

-- pending_logins: a TOTP or recovery-code login from an unknown browser,
-- held until the emailed link is opened in that same browser (the one whose
-- session hash is browser_hash).
CREATE TABLE pending_logins (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT    NOT NULL UNIQUE,
    browser_hash  TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    ip            TEXT    NOT NULL DEFAULT '',
    user_agent    TEXT    NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    last_email_at TIMESTAMP NOT NULL,
    used_at       TIMESTAMP
);
CREATE INDEX pending_logins_user ON pending_logins (user_id);

-- account_recoveries: administrator-assisted recovery of an account whose
-- owner lost every second factor and recovery code.
CREATE TABLE account_recoveries (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    admin_id     INTEGER,
    admin_name   TEXT    NOT NULL,
    verified_how TEXT    NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE account_recoveries;
DROP TABLE pending_logins;
DROP TABLE devices;
DROP TABLE webauthn_credentials;
DROP TABLE recovery_codes;
DROP TABLE totp_secrets;
DROP INDEX users_webauthn_handle;
ALTER TABLE users DROP COLUMN recovery_confirmed_at;
ALTER TABLE users DROP COLUMN webauthn_user_handle;
