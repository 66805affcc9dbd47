-- W11: one direct room per pair of users, enforced by the database rather than a check-then-insert.
-- The pair is stored ordered (low < high) so that (a, b) and (b, a) collide.
ALTER TABLE chat_rooms
    ADD COLUMN direct_user_low INTEGER REFERENCES users(id) ON DELETE CASCADE,
    ADD COLUMN direct_user_high INTEGER REFERENCES users(id) ON DELETE CASCADE;

UPDATE chat_rooms r
SET direct_user_low = pair.low, direct_user_high = pair.high
FROM (
    SELECT chat_room_id, min(user_id) AS low, max(user_id) AS high
    FROM chat_room_members
    GROUP BY chat_room_id
    HAVING count(*) = 2
) pair
WHERE r.id = pair.chat_room_id AND r.room_type = 'direct';

ALTER TABLE chat_rooms
    ADD CONSTRAINT chat_rooms_direct_pair_check CHECK (
        (room_type = 'direct') = (direct_user_low IS NOT NULL)
        AND (direct_user_low IS NULL) = (direct_user_high IS NULL)
        AND (direct_user_low IS NULL OR direct_user_low < direct_user_high)
    ),
    ADD CONSTRAINT chat_rooms_direct_pair_key UNIQUE (direct_user_low, direct_user_high);
