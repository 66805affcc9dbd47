-- Muting (issue 25), per member and room, kept on the server so every client follows it: until a
-- time ('infinity' for good); with `mute_all`, mentions of the member are silenced too.
ALTER TABLE chat_room_members
    ADD COLUMN muted_until TIMESTAMPTZ,
    ADD COLUMN mute_all BOOLEAN NOT NULL DEFAULT false;
