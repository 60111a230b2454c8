//! Statements on `events` (the outbox) and `webhook_cursors`.

use super::sql::args;
use super::{ReadTx, StoreError, WriteTx};
use crate::clock::Timestamp;

/// An event to append in the transaction of the change it reports.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub project: &'a str,
    pub text: &'a str,
    /// JSON.
    pub data: &'a str,
    /// Repeats with this key inside the dedupe window are not recorded again.
    pub dedupe: Option<&'a str>,
    pub now: Timestamp,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub project: String,
    pub text: String,
    pub data: String,
    pub created_at: Timestamp,
}

/// Where a webhook endpoint's delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub delivered_through: i64,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub leased_until: Timestamp,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
}

impl ReadTx<'_> {
    pub fn cursor(&self, url: &str) -> Result<Option<Cursor>, StoreError> {
        self.conn.query_opt(
            "SELECT delivered_through, attempts, next_attempt_at, leased_until, lease_owner,
                    last_error
             FROM webhook_cursors WHERE url = ?1",
            &args![url],
            |row| {
                Ok(Cursor {
                    delivered_through: row.get(0)?,
                    attempts: row.get(1)?,
                    next_attempt_at: Timestamp::from_millis(row.get(2)?),
                    leased_until: Timestamp::from_millis(row.get(3)?),
                    lease_owner: row.get(4)?,
                    last_error: row.get(5)?,
                })
            },
        )
    }

    /// The newest event's id (0 when there is none).
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        self.conn
            .query_one("SELECT coalesce(max(id), 0) FROM events", &[], |row| {
                row.get(0)
            })
    }

    /// Events after `id`, oldest first.
    pub fn events_after(&self, id: i64, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        self.conn.query(
            "SELECT id, kind, project, text, data, created_at FROM events
             WHERE id > ?1 ORDER BY id LIMIT ?2",
            &args![id, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok(EventRow {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    project: row.get(2)?,
                    text: row.get(3)?,
                    data: row.get(4)?,
                    created_at: Timestamp::from_millis(row.get(5)?),
                })
            },
        )
    }
}

impl WriteTx<'_> {
    /// Appends an event unless one with the same dedupe key was recorded at or after
    /// `repeat_after`; returns whether it was recorded.
    pub fn record_event(
        &self,
        event: &NewEvent<'_>,
        repeat_after: Timestamp,
    ) -> Result<bool, StoreError> {
        if let Some(key) = event.dedupe {
            let seen = self.conn.query_opt(
                "SELECT 1 FROM events WHERE dedupe = ?1 AND created_at >= ?2 LIMIT 1",
                &args![key, repeat_after.as_millis()],
                |_| Ok(()),
            )?;
            if seen.is_some() {
                return Ok(false);
            }
        }
        self.conn.execute(
            "INSERT INTO events (kind, project, text, data, dedupe, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &args![
                event.kind,
                event.project,
                event.text,
                event.data,
                event.dedupe,
                event.now.as_millis()
            ],
        )?;
        Ok(true)
    }

    /// Deletes events recorded before `cutoff`; returns how many.
    pub fn prune_events(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        self.conn.execute(
            "DELETE FROM events WHERE created_at < ?1",
            &args![cutoff.as_millis()],
        )
    }

    /// Starts delivering to `url` after the newest event, unless it already has a cursor.
    pub fn open_cursor(&self, url: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO webhook_cursors (url, delivered_through)
             VALUES (?1, (SELECT coalesce(max(id), 0) FROM events))
             ON CONFLICT (url) DO NOTHING",
            &args![url],
        )?;
        Ok(())
    }

    pub fn lease_cursor(&self, url: &str, owner: &str, until: Timestamp) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE webhook_cursors SET leased_until = ?3, lease_owner = ?2 WHERE url = ?1",
            &args![url, owner, until.as_millis()],
        )?;
        Ok(())
    }

    /// Records that everything up to `through` reached `url`, clears failures, and renews
    /// `owner`'s lease to `until`; false (nothing changed) when `owner` lost the lease.
    pub fn advance_cursor(
        &self,
        url: &str,
        owner: &str,
        through: i64,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE webhook_cursors
             SET delivered_through = CASE WHEN delivered_through > ?3 THEN delivered_through
                                          ELSE ?3 END,
                 attempts = 0, next_attempt_at = 0, leased_until = ?4, last_error = NULL
             WHERE url = ?1 AND lease_owner = ?2",
            &args![url, owner, through, until.as_millis()],
        )? > 0)
    }

    /// Records a failed attempt by `owner` and ends its lease: the next one waits until
    /// `retry_at`. False when `owner` had lost the lease.
    pub fn fail_cursor(
        &self,
        url: &str,
        owner: &str,
        attempts: i64,
        retry_at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE webhook_cursors
             SET attempts = ?3, next_attempt_at = ?4, leased_until = 0, lease_owner = NULL,
                 last_error = ?5
             WHERE url = ?1 AND lease_owner = ?2",
            &args![url, owner, attempts, retry_at.as_millis(), error],
        )? > 0)
    }
}
