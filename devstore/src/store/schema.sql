-- devstore's durable log: one row per event, in log order. Append-only: rows are never
-- updated or deleted (deletes are themselves events), so the in-memory index is rebuilt by
-- replaying this table.
CREATE TABLE IF NOT EXISTS events (
    position        INTEGER PRIMARY KEY,  -- global log position, 1, 2, 3, ...
    stream          TEXT    NOT NULL,
    revision        INTEGER NOT NULL,     -- i64::MAX for a tombstone
    event_id        BLOB    NOT NULL,     -- 16 bytes, RFC 4122 order
    event_type      TEXT    NOT NULL,
    is_json         INTEGER NOT NULL,
    created         INTEGER NOT NULL,     -- 100-ns ticks since the Unix epoch
    custom_metadata BLOB    NOT NULL,
    data            BLOB    NOT NULL
);
