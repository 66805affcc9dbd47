-- Issue 22, item 5: a group has an owner (`chat_rooms.created_by`, as before) and any number of
-- admins; a group may be public (anyone on the server finds and joins it) and has a topic.
ALTER TABLE chat_room_members ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE chat_rooms
    ADD COLUMN is_public BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN topic TEXT;
CREATE INDEX chat_rooms_public_idx ON chat_rooms (lower(name), id) WHERE is_public;
