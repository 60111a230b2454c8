-- 001: sessions, locks, intents, messages, shared context.
-- Times are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    project           TEXT NOT NULL,
    branch            TEXT,
    working_directory TEXT,
    registered_at     INTEGER NOT NULL,
    last_heartbeat    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_project ON sessions (project, branch);
CREATE INDEX sessions_by_heartbeat ON sessions (last_heartbeat);

-- Monotonic counters that must survive restarts (the fencing token).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('fencing_token', 0);

-- One row per (project, path, holder). Expired rows are dead on sight and deleted lazily.
CREATE TABLE locks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project       TEXT NOT NULL,
    path          TEXT NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    lock_type     TEXT NOT NULL CHECK (lock_type IN ('exclusive', 'shared', 'intent')),
    acquired_at   INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    fencing_token INTEGER NOT NULL,
    UNIQUE (project, path, session_id)
);
CREATE INDEX locks_by_session ON locks (session_id);
CREATE INDEX locks_by_expiry ON locks (expires_at);

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    project     TEXT NOT NULL,
    intent_type TEXT NOT NULL,
    target      TEXT,
    description TEXT,
    status      TEXT NOT NULL CHECK (status IN ('announced', 'in_progress', 'completed', 'abandoned')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX intents_by_session ON intents (session_id);
CREATE INDEX intents_active_by_type ON intents (project, intent_type)
    WHERE status IN ('announced', 'in_progress');
CREATE INDEX intents_active_by_target ON intents (project, target)
    WHERE status IN ('announced', 'in_progress');
CREATE INDEX intents_finished ON intents (updated_at)
    WHERE status IN ('completed', 'abandoned');

-- The paths an intent touches, so overlap checks are index lookups rather than scans.
CREATE TABLE intent_files (
    intent_id INTEGER NOT NULL REFERENCES intents (id) ON DELETE CASCADE,
    project   TEXT NOT NULL,
    path      TEXT NOT NULL,
    PRIMARY KEY (intent_id, path)
) WITHOUT ROWID;
CREATE INDEX intent_files_by_path ON intent_files (project, path);

-- Messages outlive their sender (no foreign key): the history stays readable.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    from_session TEXT,
    from_name    TEXT NOT NULL,
    to_session   TEXT,
    channel      TEXT NOT NULL,
    priority     TEXT NOT NULL,
    content      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX messages_by_project ON messages (project, id);

-- Per-recipient delivery and read state, written when a message is sent (fan-out on write).
CREATE TABLE inbox (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    read_at    INTEGER,
    PRIMARY KEY (session_id, message_id)
) WITHOUT ROWID;
CREATE INDEX inbox_unread ON inbox (session_id) WHERE read_at IS NULL;
CREATE INDEX inbox_by_message ON inbox (message_id);

-- Shared knowledge outlives its author too.
CREATE TABLE context (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    context_type TEXT NOT NULL,
    content      TEXT NOT NULL,
    tags         TEXT NOT NULL DEFAULT '',
    session_id   TEXT,
    shared_by    TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX context_by_project ON context (project, id);
CREATE INDEX context_by_type ON context (project, context_type, id);

-- Full-text index over content and tags; porter stemming so "tokens" finds "token".
CREATE VIRTUAL TABLE context_search USING fts5 (
    content, tags,
    content = 'context', content_rowid = 'id',
    tokenize = 'porter unicode61'
);
CREATE TRIGGER context_search_insert AFTER INSERT ON context BEGIN
    INSERT INTO context_search (rowid, content, tags) VALUES (new.id, new.content, new.tags);
END;
CREATE TRIGGER context_search_delete AFTER DELETE ON context BEGIN
    INSERT INTO context_search (context_search, rowid, content, tags)
    VALUES ('delete', old.id, old.content, old.tags);
END;
