-- Locks the hooks take for an edit: scoped to the worktree the edit is made in (NULL: the whole
-- project, as for every lock_acquire), and, when held until the change is committed, the time
-- of the last edit under it (NULL: held until expires_at).
ALTER TABLE locks ADD COLUMN worktree TEXT;
ALTER TABLE locks ADD COLUMN edited_at INTEGER;

-- What each session has changed and not yet merged, per file or symbol, so that sessions in
-- other worktrees (or on other machines) are warned before they change the same thing. A row
-- outlives its session once committed (`commit_sha`): the branch is still to be merged.
CREATE TABLE changes (
    project      TEXT NOT NULL,
    path         TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    session_name TEXT NOT NULL,
    worktree     TEXT NOT NULL,
    branch       TEXT,
    commit_sha   TEXT,
    changed_at   INTEGER NOT NULL,
    PRIMARY KEY (project, path, session_id)
);
CREATE INDEX changes_by_session ON changes (session_id);
