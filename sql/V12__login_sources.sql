-- The addresses each account has signed in from (issue 20). A login attempt from one of them is
-- throttled on a budget of its own: a stranger guessing an account's password from elsewhere
-- spends the account's shared budget, never its owner's.
CREATE TABLE login_sources (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address INET NOT NULL,
    last_success_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, address)
);
CREATE INDEX login_sources_age_idx ON login_sources (last_success_at);
