//! Statements on `locks` and the fencing-token counter.
//!
//! A lock whose `expires_at` has passed is dead for every query at once: each one filters on
//! it, so expiry never waits for a sweep. The rows themselves are deleted lazily.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::{ReadTx, StoreError, WriteTx, word};
use crate::clock::Timestamp;
use crate::ids::LockId;
use crate::model::{Lock, LockType};

const SELECT: &str = "SELECT l.id, l.project, l.path, l.session_id, s.name AS holder_name,
        l.lock_type, l.acquired_at, l.expires_at, l.fencing_token
    FROM locks l JOIN sessions s ON s.id = l.session_id";

fn lock_from_row(row: &Row<'_>) -> rusqlite::Result<Lock> {
    Ok(Lock {
        lock_id: LockId(row.get("id")?),
        project: row.get("project")?,
        file_path: row.get("path")?,
        lock_type: word(row, "lock_type", LockType::parse)?,
        session_id: row.get("session_id")?,
        holder_name: row.get("holder_name")?,
        acquired_at: Timestamp::from_millis(row.get("acquired_at")?),
        expires_at: Timestamp::from_millis(row.get("expires_at")?),
        fencing_token: row.get("fencing_token")?,
    })
}

/// Which live locks `lock_list` shows; absent fields do not filter.
#[derive(Debug, Clone, Copy)]
pub struct LockFilter<'a> {
    pub project: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub path: Option<&'a str>,
    pub limit: usize,
}

impl ReadTx<'_> {
    /// The live locks on one path, oldest grant first.
    pub fn locks_on(
        &self,
        project: &str,
        path: &str,
        now: Timestamp,
    ) -> Result<Vec<Lock>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT} WHERE l.project = ?1 AND l.path = ?2 AND l.expires_at > ?3
             ORDER BY l.acquired_at, l.id"
        ))?;
        let rows = stmt.query_map(params![project, path, now.as_millis()], lock_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Live locks matching `filter`. The statement names only the filters given, so SQLite can
    /// pick the index that fits (project+path, session) instead of scanning.
    pub fn locks(&self, filter: LockFilter<'_>, now: Timestamp) -> Result<Vec<Lock>, StoreError> {
        let mut sql = format!("{SELECT} WHERE l.expires_at > ?");
        let mut values = vec![Value::from(now.as_millis())];
        for (column, value) in [
            ("l.project", filter.project),
            ("l.session_id", filter.session_id),
            ("l.path", filter.path),
        ] {
            if let Some(value) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                values.push(Value::from(value.to_owned()));
            }
        }
        sql.push_str(" ORDER BY l.project, l.path, l.acquired_at, l.id LIMIT ?");
        values.push(Value::from(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), lock_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl WriteTx<'_> {
    /// Deletes the expired locks on one path, so a new grant starts from a clean slate.
    pub fn delete_expired_locks_on(
        &self,
        project: &str,
        path: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "DELETE FROM locks WHERE project = ?1 AND path = ?2 AND expires_at <= ?3",
        )?;
        Ok(stmt.execute(params![project, path, now.as_millis()])?)
    }

    /// Deletes every expired lock in the database.
    pub fn delete_expired_locks(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM locks WHERE expires_at <= ?1")?;
        Ok(stmt.execute([now.as_millis()])?)
    }

    /// The next fencing token: one counter for the whole database, persisted with the grant it
    /// belongs to, so tokens strictly increase across processes and restarts.
    pub fn next_fencing_token(&self) -> Result<i64, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'fencing_token' RETURNING value",
        )?;
        stmt.query_row([], |row| row.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt("the fencing_token counter is missing".into()))
    }

    /// Inserts or replaces `session_id`'s lock on a path; returns the lock's id.
    #[allow(clippy::too_many_arguments)]
    pub fn put_lock(
        &self,
        project: &str,
        path: &str,
        session_id: &str,
        lock_type: LockType,
        acquired_at: Timestamp,
        expires_at: Timestamp,
        fencing_token: i64,
    ) -> Result<LockId, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO locks
                (project, path, session_id, lock_type, acquired_at, expires_at, fencing_token)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (project, path, session_id) DO UPDATE SET
                lock_type = excluded.lock_type,
                acquired_at = excluded.acquired_at,
                expires_at = excluded.expires_at,
                fencing_token = excluded.fencing_token
             RETURNING id",
        )?;
        let id = stmt.query_row(
            params![
                project,
                path,
                session_id,
                lock_type.as_str(),
                acquired_at.as_millis(),
                expires_at.as_millis(),
                fencing_token
            ],
            |row| row.get(0),
        )?;
        Ok(LockId(id))
    }

    /// Deletes `session_id`'s lock on a path, returning when it expired or would have.
    pub fn delete_lock(
        &self,
        project: &str,
        path: &str,
        session_id: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "DELETE FROM locks WHERE project = ?1 AND path = ?2 AND session_id = ?3
             RETURNING expires_at",
        )?;
        let expires_at: Option<i64> = stmt
            .query_row(params![project, path, session_id], |row| row.get(0))
            .optional()?;
        Ok(expires_at.map(Timestamp::from_millis))
    }
}
