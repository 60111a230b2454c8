-- The tokens of the people and agents who use a shared HTTP server, one per name. Only each
-- token's SHA-256 is kept, so a copy of the database lends nobody access. A revoked token's row
-- stays (revoked_at), so `token list` still shows who had one and since when.
CREATE TABLE access_tokens (
    name       TEXT COLLATE "C" PRIMARY KEY,
    hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Whose token registered a session on a shared server (NULL: a stdio session, or the shared
-- MCP_COORDINATOR_TOKEN, which names nobody).
ALTER TABLE sessions ADD COLUMN who TEXT;
