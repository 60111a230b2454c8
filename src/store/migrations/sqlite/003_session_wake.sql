-- 003: where to wake a session's server process when something arrives for it (a message, a
-- lock granted from the queue), so it can notify its MCP client. NULL when the process has no
-- wake socket; see src/wake.rs.
ALTER TABLE sessions ADD COLUMN wake TEXT;
