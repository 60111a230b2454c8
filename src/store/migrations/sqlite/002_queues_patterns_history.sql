-- 002: directory and glob locks, FIFO wait queues, and the lock event history.

-- For a directory or glob key, the directory its matches lie in ("src/auth/", "" for the root);
-- NULL for a plain file. Overlap lookups are range scans on it (see src/patterns.rs).
ALTER TABLE locks ADD COLUMN pattern_base TEXT;
-- 1 while a lock granted from the queue has not been reported to its holder yet.
ALTER TABLE locks ADD COLUMN unreported INTEGER NOT NULL DEFAULT 0;
CREATE INDEX locks_by_pattern ON locks (project, pattern_base) WHERE pattern_base IS NOT NULL;
CREATE INDEX locks_unreported ON locks (session_id) WHERE unreported = 1;

-- Requests waiting for a key; the id is the FIFO order.
CREATE TABLE lock_waiters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    path         TEXT NOT NULL,
    pattern_base TEXT,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    lock_type    TEXT NOT NULL CHECK (lock_type IN ('exclusive', 'shared')),
    ttl_ms       INTEGER NOT NULL,
    queued_at    INTEGER NOT NULL,
    -- A wait gives up at its deadline; NULL: queued until granted, cancelled or the session ends.
    deadline     INTEGER,
    -- Where to wake the waiting process when the request is granted.
    wake         TEXT,
    UNIQUE (project, path, session_id)
);
CREATE INDEX lock_waiters_by_pattern ON lock_waiters (project, pattern_base)
    WHERE pattern_base IS NOT NULL;
CREATE INDEX lock_waiters_by_session ON lock_waiters (session_id);

-- Every change to locks and queues, appended in the transaction that makes it, so the history
-- can be replayed and checked (tests/common/history.rs). Pruned after a day by the sweep.
CREATE TABLE lock_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN
                      ('granted', 'renewed', 'released', 'expired', 'ended', 'queued', 'dequeued')),
    project       TEXT NOT NULL,
    path          TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    lock_type     TEXT NOT NULL,
    fencing_token INTEGER,
    expires_at    INTEGER,
    waiter_id     INTEGER
);
CREATE INDEX lock_events_by_time ON lock_events (at);
