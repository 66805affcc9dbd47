-- The message log's positions (message ids, and the positions of group removals) come from one
-- row, updated inside the transaction that uses them, instead of from a sequence.
--
-- A sequence is not transactional, and after a crash it can hand out again values that an
-- uncommitted transaction had taken (its WAL record is flushed only by a commit). Instances had
-- already settled those positions as empty, so a message stored at one of them later was skipped
-- by every live cursor. Found by killing the writer's backend (faults::database).
--
-- With this row, an aborted transaction's positions are taken again by the next one, a committed
-- position is never reused, and the row lock orders the log: transactions take positions in the
-- order they commit, so a visible position means every lower one is settled.
CREATE TABLE log_head (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    next_position BIGINT NOT NULL
);

INSERT INTO log_head (next_position)
SELECT greatest(
    (SELECT coalesce(max(id), 0) FROM messages),
    (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM messages_id_seq)
) + 1;
