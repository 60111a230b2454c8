//! Statements on `changes`: what each session changed and has not merged, per file or symbol.

use super::sql::{Arg, Row, args};
use super::{ReadTx, StoreError, WriteTx, symbols_of};
use crate::clock::Timestamp;
use crate::model::Change;
use crate::patterns;

const SELECT: &str = "SELECT project, path, session_id, session_name, worktree, branch,
        commit_sha, changed_at
    FROM changes";

fn change_from_row(row: &Row<'_>) -> Result<Change, StoreError> {
    Ok(Change {
        project: row.get("project")?,
        file_path: row.get("path")?,
        session_id: row.get("session_id")?,
        session_name: row.get("session_name")?,
        worktree: row.get("worktree")?,
        branch: row.get("branch")?,
        commit: row.get("commit_sha")?,
        changed_at: Timestamp::from_millis(row.get("changed_at")?),
    })
}

/// A change to record (or to record again: it is uncommitted once more).
#[derive(Debug, Clone, Copy)]
pub struct NewChange<'a> {
    pub project: &'a str,
    pub path: &'a str,
    pub session_id: &'a str,
    pub session_name: &'a str,
    pub worktree: &'a str,
    pub branch: Option<&'a str>,
    pub now: Timestamp,
}

impl ReadTx<'_> {
    /// The changes of the project that overlap `key` (a file, a symbol, or a pattern). A file's
    /// own row and its symbols' rows sort together, so one range scan finds them.
    pub fn changes_overlapping(&self, project: &str, key: &str) -> Result<Vec<Change>, StoreError> {
        let found = match patterns::base(key) {
            None => {
                let file = patterns::file_of(key);
                let [first, past] = symbols_of(file);
                self.conn.query(
                    &format!(
                        "{SELECT} WHERE project = ?1 AND (path = ?2 OR (path > ?3 AND path < ?4))
                         ORDER BY changed_at"
                    ),
                    &[Arg::text(project), Arg::text(file), first, past],
                    change_from_row,
                )?
            }
            Some(_) => self.conn.query(
                &format!("{SELECT} WHERE project = ?1 ORDER BY changed_at"),
                &args![project],
                change_from_row,
            )?,
        };
        Ok(found
            .into_iter()
            .filter(|change| patterns::overlaps(&change.file_path, key))
            .collect())
    }

    /// Every change a session has recorded.
    pub fn changes_of(&self, session_id: &str) -> Result<Vec<Change>, StoreError> {
        self.conn.query(
            &format!("{SELECT} WHERE session_id = ?1 ORDER BY path"),
            &args![session_id],
            change_from_row,
        )
    }
}

impl WriteTx<'_> {
    /// Records a change, uncommitted (again, if it was committed before).
    pub fn put_change(&self, change: &NewChange<'_>) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO changes (project, path, session_id, session_name, worktree, branch,
                commit_sha, changed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)
             ON CONFLICT (project, path, session_id) DO UPDATE SET
                session_name = excluded.session_name,
                worktree = excluded.worktree,
                branch = excluded.branch,
                commit_sha = NULL,
                changed_at = excluded.changed_at",
            &args![
                change.project,
                change.path,
                change.session_id,
                change.session_name,
                change.worktree,
                change.branch,
                change.now.as_millis()
            ],
        )?;
        Ok(())
    }

    /// Marks a session's change of `path` (a file or symbol key) as carried by `commit`.
    pub fn commit_change(
        &self,
        project: &str,
        path: &str,
        session_id: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE changes SET commit_sha = ?4 WHERE project = ?1 AND path = ?2 AND session_id = ?3",
            &args![project, path, session_id, commit],
        )?;
        Ok(())
    }

    /// Forgets a change: merged, or back to what was committed.
    pub fn delete_change(
        &self,
        project: &str,
        path: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM changes WHERE project = ?1 AND path = ?2 AND session_id = ?3",
            &args![project, path, session_id],
        )? > 0)
    }

    /// Forgets the uncommitted changes of the sessions `condition` selects (over `sessions`,
    /// with `?1` bound to `value`); called as they end. Their worktree's files are no one's
    /// business any more, while a committed change waits for its branch to be merged.
    pub(super) fn end_uncommitted_changes(
        &self,
        condition: &str,
        value: &[Arg<'_>],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "DELETE FROM changes WHERE commit_sha IS NULL
                   AND session_id IN (SELECT id FROM sessions WHERE {condition})"
            ),
            value,
        )?;
        Ok(())
    }

    /// Forgets committed changes recorded before `before` whose branch no one merged.
    pub fn delete_old_changes(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn.execute(
            "DELETE FROM changes WHERE changed_at < ?1",
            &[Arg::Int(before.as_millis())],
        )
    }
}
