//! Statements on `sessions`.

use rusqlite::{OptionalExtension, Row, params};

use super::{ReadTx, StoreError, WriteTx};
use crate::clock::Timestamp;
use crate::model::{Session, SessionActivity};

const COLUMNS: &str = "id, name, project, branch, working_directory, group_name, registered_at,
    last_heartbeat, wake, client_pid, client_ref";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        session_id: row.get("id")?,
        name: row.get("name")?,
        project: row.get("project")?,
        branch: row.get("branch")?,
        working_directory: row.get("working_directory")?,
        group: row.get("group_name")?,
        registered_at: Timestamp::from_millis(row.get("registered_at")?),
        last_heartbeat: Timestamp::from_millis(row.get("last_heartbeat")?),
        wake: row.get("wake")?,
        client_pid: row.get("client_pid")?,
        client_ref: row.get("client_ref")?,
    })
}

/// Which sessions `session_list` shows.
#[derive(Debug, Clone, Copy)]
pub struct SessionFilter<'a> {
    pub project: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub group: Option<&'a str>,
    /// Sessions whose last heartbeat is older than this are stale and left out.
    pub alive_since: Timestamp,
}

impl ReadTx<'_> {
    /// The session id a token hash belongs to.
    pub fn session_of_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM sessions WHERE token_hash = ?1")?;
        Ok(stmt.query_row([token_hash], |row| row.get(0)).optional()?)
    }

    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"))?;
        Ok(stmt.query_row([id], session_from_row).optional()?)
    }

    /// Live sessions, with how many locks and active intents each holds.
    pub fn sessions(
        &self,
        filter: SessionFilter<'_>,
        now: Timestamp,
    ) -> Result<Vec<SessionActivity>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS},
                (SELECT count(*) FROM locks l
                  WHERE l.session_id = s.id AND l.expires_at > ?4) AS locks_held,
                (SELECT count(*) FROM intents i
                  WHERE i.session_id = s.id AND i.status IN ('announced', 'in_progress'))
                  AS active_intents,
                s.unread
             FROM sessions s
             WHERE s.last_heartbeat >= ?1
               AND (?2 IS NULL OR s.project = ?2)
               AND (?3 IS NULL OR s.branch = ?3)
               AND (?5 IS NULL OR s.group_name = ?5)
             ORDER BY s.project, s.registered_at, s.id"
        ))?;
        let rows = stmt.query_map(
            params![
                filter.alive_since.as_millis(),
                filter.project,
                filter.branch,
                now.as_millis(),
                filter.group,
            ],
            |row| {
                Ok(SessionActivity {
                    session: session_from_row(row)?,
                    locks_held: row.get("locks_held")?,
                    active_intents: row.get("active_intents")?,
                    unread: row.get("unread")?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many live locks and active intents a session holds.
    pub fn holdings(&self, id: &str, now: Timestamp) -> Result<(i64, i64), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT
                (SELECT count(*) FROM locks WHERE session_id = ?1 AND expires_at > ?2),
                (SELECT count(*) FROM intents
                  WHERE session_id = ?1 AND status IN ('announced', 'in_progress'))",
        )?;
        Ok(stmt.query_row(params![id, now.as_millis()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?)
    }

    /// Live sessions that know their client (a process, or the client's own id): the
    /// candidates for a hook's or guard's own sessions.
    pub fn live_client_sessions(&self, alive_since: Timestamp) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE (client_pid IS NOT NULL OR client_ref IS NOT NULL) AND last_heartbeat >= ?1
             ORDER BY registered_at, id"
        ))?;
        let rows = stmt.query_map([alive_since.as_millis()], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The session registered under a client's own id, live or not.
    pub fn session_of_client(&self, client_ref: &str) -> Result<Option<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE client_ref = ?1"
        ))?;
        Ok(stmt.query_row([client_ref], session_from_row).optional()?)
    }

    /// Sessions with this name (in `project`, when given) whose last heartbeat is at or after
    /// `alive_since`.
    pub fn named(
        &self,
        name: &str,
        project: Option<&str>,
        alive_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE name = ?1 AND (?2 IS NULL OR project = ?2) AND last_heartbeat >= ?3
             ORDER BY registered_at, id"
        ))?;
        let rows = stmt.query_map(
            params![name, project, alive_since.as_millis()],
            session_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The projects of live sessions whose working directory is `dir` or below it, those with
    /// the most sessions first.
    pub fn projects_under(
        &self,
        dir: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let mut stmt = self.conn.prepare_cached(
            "SELECT project, count(*) FROM sessions
             WHERE last_heartbeat >= ?3
               AND (working_directory = ?1
                    OR substr(working_directory, 1, length(?2)) = ?2)
             GROUP BY project ORDER BY count(*) DESC, project",
        )?;
        let rows = stmt.query_map(
            params![dir, format!("{dir}/"), alive_since.as_millis()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ids of a project's sessions in `group`.
    pub fn group_members(&self, project: &str, group: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM sessions WHERE project = ?1 AND group_name = ?2")?;
        let rows = stmt.query_map(params![project, group], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Live sessions of one project, oldest first.
    pub fn live_sessions(
        &self,
        project: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE project = ?1 AND last_heartbeat >= ?2
             ORDER BY registered_at, id"
        ))?;
        let rows = stmt.query_map(params![project, alive_since.as_millis()], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl WriteTx<'_> {
    pub fn set_token_hash(&self, session_id: &str, token_hash: &str) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE sessions SET token_hash = ?2 WHERE id = ?1")?;
        stmt.execute([session_id, token_hash])?;
        Ok(())
    }

    pub fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))?;
        stmt.execute(params![
            session.session_id,
            session.name,
            session.project,
            session.branch,
            session.working_directory,
            session.group,
            session.registered_at.as_millis(),
            session.last_heartbeat.as_millis(),
            session.wake,
            session.client_pid,
            session.client_ref,
        ])?;
        Ok(())
    }

    /// Records a sign of life; `None` when the session does not exist.
    pub fn touch_session(&self, id: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "UPDATE sessions SET last_heartbeat = max(last_heartbeat, ?2)
             WHERE id = ?1 RETURNING {COLUMNS}"
        ))?;
        Ok(stmt
            .query_row(params![id, now.as_millis()], session_from_row)
            .optional()?)
    }

    /// Updates where a session works, its group and where to wake it (on re-registration):
    /// every field of `place` but its id, name, project and times. `None` when it does not
    /// exist.
    pub fn update_session_place(
        &self,
        place: &Session,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "UPDATE sessions
             SET branch = ?2, working_directory = ?3, group_name = ?4, wake = ?5,
                 client_pid = ?6, client_ref = ?7, last_heartbeat = max(last_heartbeat, ?8)
             WHERE id = ?1 RETURNING {COLUMNS}"
        ))?;
        Ok(stmt
            .query_row(
                params![
                    place.session_id,
                    place.branch,
                    place.working_directory,
                    place.group,
                    place.wake,
                    place.client_pid,
                    place.client_ref,
                    now.as_millis()
                ],
                session_from_row,
            )
            .optional()?)
    }

    /// Deletes a session; its locks, intents and inbox go with it (foreign-key cascade).
    pub fn delete_session(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.record_sessions_ending("id = ?1", &id, now)?;
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM sessions WHERE id = ?1")?;
        Ok(stmt.execute([id])? > 0)
    }

    /// Deletes every session whose last heartbeat is older than `cutoff`, with what it held.
    pub fn delete_stale_sessions(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.record_sessions_ending("last_heartbeat < ?1", &cutoff.as_millis(), now)?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "DELETE FROM sessions WHERE last_heartbeat < ?1 RETURNING {COLUMNS}"
        ))?;
        let rows = stmt.query_map([cutoff.as_millis()], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
