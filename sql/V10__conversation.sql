-- What people expect of a chat (issue 14): replies, edits, deletions, mentions and search.

ALTER TABLE messages
    -- The message this one answers, in the same room (kept as a tombstone if it is deleted).
    ADD COLUMN reply_to BIGINT REFERENCES messages(id) ON DELETE SET NULL,
    ADD COLUMN edited_at TIMESTAMPTZ,
    -- A deleted message keeps its row (replies and cursors point at it) but not its text.
    ADD COLUMN deleted_at TIMESTAMPTZ,
    -- Members named with @name when it was written (or last edited).
    ADD COLUMN mentions INTEGER[] NOT NULL DEFAULT '{}',
    -- Full-text search, language-neutral: 'simple' lowercases words and stems nothing.
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED;

CREATE INDEX messages_search_idx ON messages USING gin (search);

-- Edits and deletions take positions in the message log, like messages: every instance delivers
-- them in order with the messages around them, and `sync` brings those made while a client was
-- away. A deletion's row has no text, and deleting a message clears the text of its edits.
CREATE TABLE message_changes (
    position BIGINT PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    chat_room_id INTEGER NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
    -- The new text; NULL for a deletion.
    content TEXT,
    changed_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX message_changes_room_idx ON message_changes (chat_room_id, position);
