-- 004: named resources (lock keys `resource:NAME`) and how many sessions may hold each at once.
-- Set once per project by the first request that names a capacity; 1 when never set.
CREATE TABLE resource_capacities (
    project  TEXT NOT NULL,
    key      TEXT NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    set_by   TEXT NOT NULL,
    set_at   INTEGER NOT NULL,
    PRIMARY KEY (project, key)
);
