-- Issue 22: a server a team controls. Server roles, bots, invites, password reset codes, personal
-- access tokens, incoming webhooks and the audit log. Every secret is kept as its SHA-256 digest.

ALTER TABLE users
    ADD COLUMN role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    ADD COLUMN is_bot BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN last_seen_at TIMESTAMPTZ;
-- A server that had accounts before there were roles: its first account owns it.
UPDATE users SET role = 'owner' WHERE id = (SELECT min(id) FROM users);

CREATE TABLE invites (
    id SERIAL PRIMARY KEY,
    code_hash BYTEA NOT NULL UNIQUE,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    max_uses INTEGER NOT NULL CHECK (max_uses > 0),
    uses INTEGER NOT NULL DEFAULT 0,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE password_resets (
    code_hash BYTEA PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- A personal access token is a session without refresh tokens: it ends (revocation, logout-all,
-- deactivation) as any session does, and its sockets close with it.
ALTER TABLE auth_sessions
    ADD COLUMN token_hash BYTEA UNIQUE,
    ADD COLUMN token_name TEXT,
    ADD COLUMN expires_at TIMESTAMPTZ;
CREATE UNIQUE INDEX auth_sessions_token_name_idx ON auth_sessions (user_id, lower(token_name))
    WHERE token_name IS NOT NULL AND revoked_at IS NULL;

-- An incoming webhook posts into its group as a bot account of its own (its name is the sender).
CREATE TABLE webhooks (
    id SERIAL PRIMARY KEY,
    room_id INTEGER NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
    bot_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash BYTEA NOT NULL UNIQUE,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE INDEX webhooks_room_idx ON webhooks (room_id);

-- Who did what to whom, when. Names are kept as they were: the log outlives renames and deletions.
-- No actor: the server's own command line (`rtchat-server admin ...`).
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor_name TEXT,
    action TEXT NOT NULL,
    target_name TEXT,
    detail TEXT
);
