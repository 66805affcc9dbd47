-- Reactions (issue 25): one of each emoji per person on a message.
CREATE TABLE message_reactions (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);

-- A message carries who reacted with what (`{"👍": [3, 7]}`, in the order they reacted), read with
-- the message like its attachments: history, live frames and sync need no other query.
ALTER TABLE messages ADD COLUMN reactions JSONB;

-- A reaction takes a position in the message log like an edit, so that every instance delivers it
-- in order and `sync` brings those made while away: `{"emoji", "user_id", "added", "count"}`
-- (NULL for an edit or a deletion, whose `content` says which).
ALTER TABLE message_changes ADD COLUMN reaction JSONB;
