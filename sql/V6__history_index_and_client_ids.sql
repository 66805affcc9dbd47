-- W12/P1: history pages walk (chat_room_id, id): newest first, stable while messages arrive.
CREATE INDEX messages_room_id_idx ON messages (chat_room_id, id);
DROP INDEX IF EXISTS idx_messages_chat_room;
DROP INDEX IF EXISTS idx_messages_created_at;

-- Safe retries: a client may tag a message with its own id; the same tag from the same sender never
-- stores a second message.
ALTER TABLE messages ADD COLUMN client_id TEXT;
CREATE UNIQUE INDEX messages_sender_client_id_key ON messages (sender_id, client_id)
    WHERE client_id IS NOT NULL;
