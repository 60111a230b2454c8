-- The machine a session's client_pid is a process of: in a database several machines share
-- (PostgreSQL), a process id alone could name another machine's process. Sessions from before
-- this migration were all registered on this machine.
ALTER TABLE sessions ADD COLUMN client_host TEXT;
