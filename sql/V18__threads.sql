-- Threads (issue 25): a reply belongs to the thread of the message it answers, whose root is the
-- first message of the chain. A root keeps its reply count and last reply time, so that history
-- shows them with no other query.
ALTER TABLE messages
    ADD COLUMN thread_root BIGINT,
    ADD COLUMN thread_replies INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN thread_last_reply_at TIMESTAMPTZ;

-- Replies written before: their root is the oldest message up their chain.
WITH RECURSIVE chain (id, up) AS (
    SELECT id, reply_to FROM messages WHERE reply_to IS NOT NULL
    UNION ALL
    SELECT c.id, m.reply_to FROM chain c JOIN messages m ON m.id = c.up WHERE m.reply_to IS NOT NULL
)
UPDATE messages m SET thread_root = x.root
FROM (SELECT id, min(up) AS root FROM chain GROUP BY id) x
WHERE m.id = x.id;

UPDATE messages r SET thread_replies = t.n, thread_last_reply_at = t.last
FROM (SELECT thread_root, count(*) AS n, max(created_at) AS last
      FROM messages WHERE thread_root IS NOT NULL GROUP BY thread_root) t
WHERE r.id = t.thread_root;

CREATE INDEX messages_thread_idx ON messages (thread_root, id) WHERE thread_root IS NOT NULL;
