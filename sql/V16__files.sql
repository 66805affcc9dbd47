-- Files in chats (issue 24).

-- Stored bytes, once per content: the storage key is the SHA-256 (`blobs/ab/abcdef...`). A blob
-- goes when no file (or preview) refers to it any more; the foreign keys from `files` make a
-- removal and a new reference to the same bytes wait for each other.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One upload: its name, type and size as the uploader sent it, attached to at most one message.
-- Until it is attached only its uploader can read it; unattached uploads go after a day.
CREATE TABLE files (
    id BIGSERIAL PRIMARY KEY,
    uploader_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    width INTEGER,
    height INTEGER,
    preview_sha256 TEXT REFERENCES blobs(sha256),
    message_id BIGINT REFERENCES messages(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX files_message_idx ON files (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX files_unattached_idx ON files (created_at) WHERE message_id IS NULL;
CREATE INDEX files_uploader_idx ON files (uploader_id);
CREATE INDEX files_sha256_idx ON files (sha256);
CREATE INDEX files_preview_idx ON files (preview_sha256) WHERE preview_sha256 IS NOT NULL;

-- A message carries its attachments' descriptions (what history, live frames and sync show, read
-- with the message and nothing else), and their names for search.
ALTER TABLE messages
    ADD COLUMN attachments JSONB,
    ADD COLUMN file_names TEXT;

-- Search matches file names too: the generated column cannot be changed in place (PostgreSQL 15).
ALTER TABLE messages DROP COLUMN search;
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', content || ' ' || coalesce(file_names, ''))) STORED;
CREATE INDEX messages_search_idx ON messages USING gin (search) WITH (fastupdate = off);
