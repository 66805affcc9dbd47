-- Several rtchat-server processes on one database. Each running instance has a row, refreshed by
-- its heartbeat; an instance whose heartbeat stops is removed by the others, and with it its
-- users' presence. A user is online while any live instance holds a socket of theirs.
CREATE TABLE server_instances (
    id UUID PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE online_presence (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    instance_id UUID NOT NULL REFERENCES server_instances(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, instance_id)
);
CREATE INDEX online_presence_instance_idx ON online_presence (instance_id);

-- The PostgreSQL bus: a notification carries at most 8000 bytes; a larger envelope is stored here
-- and the notification names its row.
CREATE TABLE bus_payloads (
    id BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload TEXT NOT NULL
);
