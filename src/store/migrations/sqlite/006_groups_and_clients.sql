-- 006: session groups, and which client started a session.
-- group_name: a team inside a project (the seed's "session groups"); filters and addresses
-- messages, never scopes conflicts.
ALTER TABLE sessions ADD COLUMN group_name TEXT;
-- client_pid: the AI client process (Claude Code, an editor) that started the session's server
-- or hook, so the edit hook and the git guard, run by the same client, recognize its locks as
-- their own. A process id is only meaningful on one machine.
ALTER TABLE sessions ADD COLUMN client_pid INTEGER;
-- client_ref: the client's own id for its session (e.g. "claude-code:<session_id>"), for
-- sessions a hook registered, so later hook calls find them again. At most one session each:
-- hooks of one client run in parallel, and must not register twins.
ALTER TABLE sessions ADD COLUMN client_ref TEXT;
CREATE INDEX sessions_by_group ON sessions (project, group_name) WHERE group_name IS NOT NULL;
CREATE INDEX sessions_by_client_pid ON sessions (client_pid) WHERE client_pid IS NOT NULL;
CREATE UNIQUE INDEX sessions_by_client_ref ON sessions (client_ref) WHERE client_ref IS NOT NULL;
-- The group a message was sent to (its members got it), for the record.
ALTER TABLE messages ADD COLUMN to_group TEXT;
