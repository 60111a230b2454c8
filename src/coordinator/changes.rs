//! Edits that follow the work: what each session changed and has not merged, and the locks the
//! hooks take for an edit, which last until the change is committed.
//!
//! Sessions in one worktree share files on disk, so an edit lock there refuses the others
//! (`locks.rs`). Sessions in different worktrees of one repository (or on other machines) do
//! not: each edits its own copy, and the clash shows only when the branches merge. For them
//! the hooks record each change here, and a session about to change the same file or symbol
//! elsewhere is warned, with who and where; so is `conflict_check` before a commit, merge or
//! push, and the git guard.
//!
//! Nothing here runs git: the callers (the hooks, the git guard, the MCP tools) read the
//! checkout and pass what it says: which keys a commit carried, which are still changed.

use std::time::Duration;

use super::{Coordinator, path_key, required_label};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::{Change, Lock};
use crate::patterns;
use crate::store::NewChange;

/// An edit lock younger than this is never taken for settled although its file shows no
/// change: a hook locks before the edit lands, and the person may still be approving it.
pub const SETTLE_GRACE: Duration = Duration::from_secs(60);

/// Where a session's edit is made.
#[derive(Debug, Clone, Copy)]
pub struct Worktree<'a> {
    /// Its top folder.
    pub root: &'a str,
    pub branch: Option<&'a str>,
}

impl Coordinator {
    /// Records that `session_id` changed `keys` (files or symbols) in `worktree`.
    pub fn record_changes(
        &self,
        session_id: &str,
        keys: &[String],
        worktree: Worktree<'_>,
    ) -> Result<()> {
        let keys = normalized(keys)?;
        self.store.write(|tx| {
            let now = self.now();
            let me = Self::acting(tx, session_id, now)?;
            for key in &keys {
                tx.put_change(&NewChange {
                    project: &me.project,
                    path: key,
                    session_id: &me.session_id,
                    session_name: &me.name,
                    worktree: worktree.root,
                    branch: worktree.branch,
                    now,
                })?;
            }
            Ok::<_, Error>(())
        })
    }

    /// Other sessions' unmerged changes that overlap `keys`, made outside `worktree` (in it,
    /// the locks speak for them), oldest first; each change once.
    pub fn changes_elsewhere(
        &self,
        project: &str,
        own: &[String],
        keys: &[String],
        worktree: &str,
    ) -> Result<Vec<Change>> {
        let project = required_label("project", project)?;
        let keys = normalized(keys)?;
        self.look(None, |tx, _, _| {
            let mut found: Vec<Change> = Vec::new();
            for key in &keys {
                for change in tx.changes_overlapping(&project, key)? {
                    let counts = change.worktree != worktree
                        && !own.contains(&change.session_id)
                        && !found.iter().any(|c| {
                            c.file_path == change.file_path && c.session_id == change.session_id
                        });
                    if counts {
                        found.push(change);
                    }
                }
            }
            found.sort_by_key(|c| c.changed_at);
            Ok(found)
        })
    }

    /// After the caller's sessions committed `files` as `commit`: their edit locks on those
    /// files are released and their changes there marked as carried by the commit, except
    /// what overlaps `still_changed` (keys the working tree still changes against the new HEAD:
    /// hunks left out of the commit). The keys of the edit locks released.
    pub fn commit_done(
        &self,
        project: &str,
        own: &[String],
        commit: &str,
        files: &[String],
        still_changed: &[String],
    ) -> Result<Vec<String>> {
        let project = required_label("project", project)?;
        let files = normalized(files)?;
        let still = normalized(still_changed)?;
        let pending = |key: &str| still.iter().any(|s| patterns::overlaps(s, key));
        let (released, wakes) = self.store.write(|tx| {
            let now = self.now();
            let mut released = Vec::new();
            let mut wakes = Vec::new();
            for file in &files {
                for lock in tx.locks_overlapping(&project, file, now)? {
                    let releases = own.contains(&lock.session_id)
                        && lock.last_edit_at.is_some()
                        && !pending(&lock.file_path);
                    if releases
                        && tx
                            .delete_lock(&project, &lock.file_path, &lock.session_id, now)?
                            .is_some()
                    {
                        wakes.extend(self.promote(tx, &project, &lock.file_path, now)?);
                        released.push(lock.file_path);
                    }
                }
                for change in tx.changes_overlapping(&project, file)? {
                    if own.contains(&change.session_id) && !pending(&change.file_path) {
                        tx.commit_change(&project, &change.file_path, &change.session_id, commit)?;
                    }
                }
            }
            Ok::<_, Error>((released, wakes))
        })?;
        self.wake(&wakes);
        Ok(released)
    }

    /// Releases `lock`, an edit lock held until commit, whose change its worktree no longer
    /// has (committed, or undone): the caller looked at the file and found it so. Nothing
    /// happens when the lock was renewed meanwhile or is younger than [`SETTLE_GRACE`].
    pub fn release_settled(&self, lock: &Lock) -> Result<bool> {
        let Some(edited) = lock.last_edit_at else {
            return Ok(false);
        };
        let (released, wakes) = self.store.write(|tx| {
            let now = self.now();
            let current = tx
                .lock_of(&lock.project, &lock.file_path, &lock.session_id, now)?
                .filter(|l| l.last_edit_at == Some(edited));
            if current.is_none() || edited.plus(SETTLE_GRACE) > now {
                return Ok::<_, Error>((false, Vec::new()));
            }
            tx.delete_lock(&lock.project, &lock.file_path, &lock.session_id, now)?;
            tx.delete_change(&lock.project, &lock.file_path, &lock.session_id)?;
            Ok((true, self.promote(tx, &lock.project, &lock.file_path, now)?))
        })?;
        self.wake(&wakes);
        Ok(released)
    }

    /// Forgets changes whose commit the target branch now contains: they are merged.
    pub fn forget_merged(&self, merged: &[Change]) -> Result<usize> {
        self.store.write(|tx| {
            let mut forgotten = 0;
            for change in merged {
                if tx.delete_change(&change.project, &change.file_path, &change.session_id)? {
                    forgotten += 1;
                }
            }
            Ok::<_, Error>(forgotten)
        })
    }
}

/// Keys as the lock tools would store them, sorted and deduplicated.
fn normalized(keys: &[String]) -> Result<Vec<String>> {
    let mut keys = keys
        .iter()
        .map(|k| path_key("file_path", k, None))
        .collect::<Result<Vec<_>>>()?;
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Whether a lock is held until its change is committed, and old enough to be checked.
pub fn settles(lock: &Lock, now: Timestamp) -> bool {
    lock.last_edit_at
        .is_some_and(|edited| edited.plus(SETTLE_GRACE) <= now)
}

#[cfg(test)]
mod tests;
