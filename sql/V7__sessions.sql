-- S6/W1: a login is a session. Its refresh tokens rotate within one family (the session), are stored
-- hashed, and a reused old token revokes the family. Access tokens name their session, so revoking a
-- session ends its access tokens at once.
CREATE TABLE auth_sessions (
    id UUID PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id) WHERE revoked_at IS NULL;

-- The seed kept refresh tokens in plaintext; they cannot be carried over.
DELETE FROM refresh_tokens;
ALTER TABLE refresh_tokens RENAME COLUMN token TO token_hash;
ALTER TABLE refresh_tokens
    ADD COLUMN session_id UUID NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
    ADD COLUMN used_at TIMESTAMPTZ,
    ALTER COLUMN user_id SET NOT NULL;
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
