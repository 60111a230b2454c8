//! Counts over the whole database for people watching the service (`/metrics`): one read,
//! whatever the process.

use super::sql::args;
use super::{ReadTx, StoreError};
use crate::clock::Timestamp;

/// What is going on in the database at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub sessions_live: i64,
    pub sessions_stale: i64,
    pub locks_held: i64,
    /// Lock requests waiting in queues (those whose wait has not run out).
    pub queued: i64,
    /// When the longest-waiting of them was queued.
    pub oldest_queued_at: Option<Timestamp>,
}

/// A webhook endpoint's delivery state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Events recorded that it has not been sent yet.
    pub backlog: i64,
    /// Failed deliveries since its last success.
    pub failures: i64,
}

impl ReadTx<'_> {
    pub fn counts(&self, alive_since: Timestamp, now: Timestamp) -> Result<Counts, StoreError> {
        self.conn.query_one(
            // One scan of each table.
            "SELECT s.live, s.stale, l.held, w.queued, w.oldest FROM
                (SELECT count(*) FILTER (WHERE last_heartbeat >= ?1) AS live,
                        count(*) FILTER (WHERE last_heartbeat < ?1) AS stale
                 FROM sessions) AS s,
                (SELECT count(*) AS held FROM locks WHERE expires_at > ?2) AS l,
                (SELECT count(*) AS queued, min(queued_at) AS oldest FROM lock_waiters
                 WHERE deadline IS NULL OR deadline > ?2) AS w",
            &args![alive_since.as_millis(), now.as_millis()],
            |row| {
                let oldest: Option<i64> = row.get(4)?;
                Ok(Counts {
                    sessions_live: row.get(0)?,
                    sessions_stale: row.get(1)?,
                    locks_held: row.get(2)?,
                    queued: row.get(3)?,
                    oldest_queued_at: oldest.map(Timestamp::from_millis),
                })
            },
        )
    }

    /// The delivery state of the endpoint `url`: a new one (no cursor yet) has nothing due.
    pub fn outbox(&self, url: &str) -> Result<Outbox, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT (SELECT count(*) FROM events e WHERE e.id > c.delivered_through),
                        c.attempts
                 FROM webhook_cursors c WHERE c.url = ?1",
                &args![url],
                |row| {
                    Ok(Outbox {
                        backlog: row.get(0)?,
                        failures: row.get(1)?,
                    })
                },
            )?
            .unwrap_or_default())
    }
}
