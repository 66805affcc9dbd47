-- W10: read state is a pointer per member (the last message id that member has read), so groups have
-- unread counts too and one reader does not mark a message read for everybody.
ALTER TABLE chat_room_members ADD COLUMN last_read_message_id BIGINT NOT NULL DEFAULT 0;

UPDATE chat_room_members m
SET last_read_message_id = coalesce((
    SELECT max(id) FROM messages
    WHERE chat_room_id = m.chat_room_id AND sender_id IS DISTINCT FROM m.user_id AND is_read
), 0);

-- Message ids outlive 2^31 on a busy server.
ALTER TABLE messages ALTER COLUMN id TYPE BIGINT;
ALTER SEQUENCE messages_id_seq AS BIGINT;
