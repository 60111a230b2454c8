//! Statements on `sessions`.
//!
//! A session's `client_pid` names a process only on the machine it runs on, and a shared
//! database holds several machines' sessions, so the row records that machine beside it
//! (`client_host`). Which machine this process is, the caller says: the store only stores.

use super::sql::{Arg, IntoArg, Row, args};
use super::{ReadTx, StoreError, WriteTx};
use crate::clock::Timestamp;
use crate::model::{Session, SessionActivity};

const COLUMNS: &str = "id, name, project, branch, working_directory, group_name, registered_at,
    last_heartbeat, wake, client_pid, client_ref, who";

fn session_from_row(row: &Row<'_>) -> Result<Session, StoreError> {
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
        who: row.get("who")?,
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
        self.conn.query_opt(
            "SELECT id FROM sessions WHERE token_hash = ?1",
            &args![token_hash],
            |row| row.get(0),
        )
    }

    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.conn.query_opt(
            &format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"),
            &args![id],
            session_from_row,
        )
    }

    /// Live sessions, with how many locks and active intents each holds.
    pub fn sessions(
        &self,
        filter: SessionFilter<'_>,
        now: Timestamp,
    ) -> Result<Vec<SessionActivity>, StoreError> {
        self.conn.query(
            &format!(
                "SELECT {COLUMNS},
                    (SELECT count(*) FROM locks l
                      WHERE l.session_id = s.id AND l.expires_at > ?4) AS locks_held,
                    (SELECT count(*) FROM intents i
                      WHERE i.session_id = s.id AND i.status IN ('announced', 'in_progress'))
                      AS active_intents,
                    s.unread
                 FROM sessions s
                 WHERE s.last_heartbeat >= ?1
                   AND (CAST(?2 AS TEXT) IS NULL OR s.project = ?2)
                   AND (CAST(?3 AS TEXT) IS NULL OR s.branch = ?3)
                   AND (CAST(?5 AS TEXT) IS NULL OR s.group_name = ?5)
                 ORDER BY s.project, s.registered_at, s.id"
            ),
            &args![
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
        )
    }

    /// How many live locks and active intents a session holds.
    pub fn holdings(&self, id: &str, now: Timestamp) -> Result<(i64, i64), StoreError> {
        self.conn.query_one(
            "SELECT
                (SELECT count(*) FROM locks WHERE session_id = ?1 AND expires_at > ?2),
                (SELECT count(*) FROM intents
                  WHERE session_id = ?1 AND status IN ('announced', 'in_progress'))",
            &args![id, now.as_millis()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    }

    /// Live sessions that know their client (a process of `machine`, or the client's own id):
    /// the candidates for a hook's or guard's own sessions. A process id names a process only
    /// on its own machine, so other machines' sessions show without it.
    pub fn live_client_sessions(
        &self,
        alive_since: Timestamp,
        machine: &str,
    ) -> Result<Vec<Session>, StoreError> {
        self.conn.query(
            &format!(
                "SELECT {COLUMNS} FROM (
                     SELECT id, name, project, branch, working_directory, group_name,
                         registered_at, last_heartbeat, wake, client_ref, who,
                         CASE WHEN coalesce(client_host, ?2) = ?2 THEN client_pid END AS client_pid
                     FROM sessions) AS here
                 WHERE (client_pid IS NOT NULL OR client_ref IS NOT NULL) AND last_heartbeat >= ?1
                 ORDER BY registered_at, id"
            ),
            &args![alive_since.as_millis(), machine],
            session_from_row,
        )
    }

    /// The session registered under a client's own id, live or not.
    pub fn session_of_client(&self, client_ref: &str) -> Result<Option<Session>, StoreError> {
        self.conn.query_opt(
            &format!("SELECT {COLUMNS} FROM sessions WHERE client_ref = ?1"),
            &args![client_ref],
            session_from_row,
        )
    }

    /// Sessions with this name (in `project`, when given) whose last heartbeat is at or after
    /// `alive_since`.
    pub fn named(
        &self,
        name: &str,
        project: Option<&str>,
        alive_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.conn.query(
            &format!(
                "SELECT {COLUMNS} FROM sessions
                 WHERE name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR project = ?2) AND last_heartbeat >= ?3
                 ORDER BY registered_at, id"
            ),
            &args![name, project, alive_since.as_millis()],
            session_from_row,
        )
    }

    /// The projects of live sessions whose working directory is `dir` or below it, those with
    /// the most sessions first.
    pub fn projects_under(
        &self,
        dir: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let dir = dir.trim_end_matches('/');
        self.conn.query(
            "SELECT project, count(*) FROM sessions
             WHERE last_heartbeat >= ?3
               AND (working_directory = ?1
                    OR substr(working_directory, 1, length(CAST(?2 AS TEXT))) = ?2)
             GROUP BY project ORDER BY count(*) DESC, project",
            &args![dir, format!("{dir}/"), alive_since.as_millis()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    }

    /// The ids of a project's sessions in `group`.
    pub fn group_members(&self, project: &str, group: &str) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT id FROM sessions WHERE project = ?1 AND group_name = ?2",
            &args![project, group],
            |row| row.get(0),
        )
    }

    /// Live sessions of one project, oldest first.
    pub fn live_sessions(
        &self,
        project: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.conn.query(
            &format!(
                "SELECT {COLUMNS} FROM sessions
                 WHERE project = ?1 AND last_heartbeat >= ?2
                 ORDER BY registered_at, id"
            ),
            &args![project, alive_since.as_millis()],
            session_from_row,
        )
    }
}

impl WriteTx<'_> {
    pub fn set_token_hash(&self, session_id: &str, token_hash: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET token_hash = ?2 WHERE id = ?1",
            &args![session_id, token_hash],
        )?;
        Ok(())
    }

    /// Inserts a session whose client, if it has one, is a process of `machine`.
    pub fn insert_session(&self, session: &Session, machine: &str) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "INSERT INTO sessions ({COLUMNS}, client_host)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            &args![
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
                session.who,
                machine,
            ],
        )?;
        Ok(())
    }

    /// Records a sign of life; `None` when the session does not exist.
    pub fn touch_session(&self, id: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.conn.query_opt(
            &format!(
                "UPDATE sessions
                 SET last_heartbeat = CASE WHEN last_heartbeat > ?2 THEN last_heartbeat ELSE ?2 END
                 WHERE id = ?1 RETURNING {COLUMNS}"
            ),
            &args![id, now.as_millis()],
            session_from_row,
        )
    }

    /// Updates where a session works, its group, its client (a process of `machine`), where
    /// to wake it and whose it is (on re-registration): every field of `place` but its id,
    /// name, project and times. `None` when it does not exist.
    pub fn update_session_place(
        &self,
        place: &Session,
        machine: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        self.conn.query_opt(
            &format!(
                "UPDATE sessions
                 SET branch = ?2, working_directory = ?3, group_name = ?4, wake = ?5,
                     client_pid = ?6, client_ref = ?7, client_host = ?9, who = ?10,
                     last_heartbeat = CASE WHEN last_heartbeat > ?8 THEN last_heartbeat ELSE ?8 END
                 WHERE id = ?1 RETURNING {COLUMNS}"
            ),
            &args![
                place.session_id,
                place.branch,
                place.working_directory,
                place.group,
                place.wake,
                place.client_pid,
                place.client_ref,
                now.as_millis(),
                machine,
                place.who
            ],
            session_from_row,
        )
    }

    /// Deletes a session; its locks, intents and inbox go with it (foreign-key cascade).
    pub fn delete_session(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.record_sessions_ending("id = ?1", id.arg(), now)?;
        Ok(self
            .conn
            .execute("DELETE FROM sessions WHERE id = ?1", &args![id])?
            > 0)
    }

    /// Deletes every session whose last heartbeat is older than `cutoff`, with what it held.
    pub fn delete_stale_sessions(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.record_sessions_ending("last_heartbeat < ?1", Arg::Int(cutoff.as_millis()), now)?;
        self.conn.query(
            &format!("DELETE FROM sessions WHERE last_heartbeat < ?1 RETURNING {COLUMNS}"),
            &args![cutoff.as_millis()],
            session_from_row,
        )
    }
}
