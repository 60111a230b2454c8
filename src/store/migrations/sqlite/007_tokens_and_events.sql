-- 007: session credentials, and the event outbox webhooks are delivered from.
-- token_hash: SHA-256 of the secret session_register returns. Over HTTP a connection acts only
-- for sessions it registered, or whose token it shows; only the hash is kept.
ALTER TABLE sessions ADD COLUMN token_hash TEXT;
CREATE UNIQUE INDEX sessions_by_token ON sessions (token_hash) WHERE token_hash IS NOT NULL;

-- What people want to hear about without watching (contention, grants from a queue, urgent
-- messages, high-severity conflicts, stale sessions), appended in the transaction of the change
-- itself, so an event exists exactly when its change committed. `dedupe` keys repeats of the
-- same event, which are not recorded again for a while.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    project TEXT NOT NULL,
    text TEXT NOT NULL,
    data TEXT NOT NULL,
    dedupe TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_by_time ON events (created_at);
CREATE INDEX events_by_dedupe ON events (dedupe, created_at) WHERE dedupe IS NOT NULL;

-- How far each webhook endpoint has been delivered. An endpoint seen for the first time starts
-- after the newest event; failures back off; a lease (renewed with each delivery) keeps two
-- processes configured with the same endpoint from sending the same events at once.
CREATE TABLE webhook_cursors (
    url TEXT PRIMARY KEY,
    delivered_through INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    leased_until INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    last_error TEXT
);
