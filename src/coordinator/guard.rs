//! What stands in the way of an edit or a commit made outside the MCP tools.
//!
//! Locks are advisory to an AI that forgets to take them, so the AI clients' hooks (Claude
//! Code, Copilot CLI) and the git pre-commit guard ask these questions where every agent
//! passes. None of them acts for one session: they act for a set of "own" sessions (everything
//! the same AI client registered), whose locks never stand in their own way. Only other live
//! sessions count, as in `conflict_check`.

use schemars::JsonSchema;
use serde::Serialize;

use super::rule::same_tree;
use super::{Coordinator, path_key, required_label};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::model::{Intent, Lock, LockType};
use crate::store::{Overlap, ReadTx};

/// What stands on an edit.
#[derive(Debug, Clone, Default)]
pub struct EditCheck {
    /// Other live sessions' exclusive and shared locks on the path or covering it.
    pub blockers: Vec<Lock>,
    /// The caller's own locks on the path or covering it.
    pub own: Vec<Lock>,
}

/// What a commit would break.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct CommitCheck {
    /// Exclusive locks other live sessions hold on the staged files (or on directories and
    /// globs covering them).
    pub locked: Vec<Lock>,
    /// Other live sessions' active rebases and merges in the project.
    pub rewriting: Vec<Intent>,
}

impl CommitCheck {
    pub fn is_clear(&self) -> bool {
        self.locked.is_empty() && self.rewriting.is_empty()
    }
}

impl Coordinator {
    /// What stands on an edit of `path` (project-relative): other live sessions' locks it
    /// would break, exclusive ones (someone is editing it) and shared ones (someone relies on
    /// it staying as it is), and the caller's own locks on it or covering it.
    /// An edit in `worktree` (its top folder) is not refused by another worktree's edit locks.
    pub fn edit_check(
        &self,
        project: &str,
        own: &[String],
        path: &str,
        worktree: Option<&str>,
    ) -> Result<EditCheck> {
        let project = required_label("project", project)?;
        let key = path_key("file_path", path, None)?;
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            let mut check = EditCheck::default();
            for lock in tx.locks_overlapping(&project, &key, now)? {
                if !same_tree(worktree, lock.worktree.as_deref()) {
                    continue;
                }
                if own.contains(&lock.session_id) {
                    check.own.push(lock);
                } else if LockType::Exclusive.is_blocked_by(lock.lock_type)
                    && holder_alive(tx, &lock, alive_since)?
                {
                    check.blockers.push(lock);
                }
            }
            Ok(check)
        })
    }

    /// What a commit of `paths` (project-relative files, or the symbols a staged change
    /// touches) in `worktree` would break: other live sessions' exclusive locks on them, and
    /// their rebases and merges in progress.
    pub fn commit_blockers(
        &self,
        project: &str,
        own: &[String],
        paths: &[String],
        worktree: Option<&str>,
    ) -> Result<CommitCheck> {
        let project = required_label("project", project)?;
        // A name git accepts but no lock can have (a control character, a huge path) is
        // held by no one: skipping it beats refusing the whole commit.
        let keys: Vec<String> = paths
            .iter()
            .filter_map(|p| path_key("file_path", p, None).ok())
            .collect();
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            let mut check = CommitCheck::default();
            for key in &keys {
                for lock in tx.locks_overlapping(&project, key, now)? {
                    let counts = lock.lock_type == LockType::Exclusive
                        && same_tree(worktree, lock.worktree.as_deref())
                        && !own.contains(&lock.session_id)
                        && !check.locked.iter().any(|l| l.lock_id == lock.lock_id);
                    if counts && holder_alive(tx, &lock, alive_since)? {
                        check.locked.push(lock);
                    }
                }
            }
            check.rewriting = tx
                .overlapping_intents(&project, "", alive_since, Overlap::Git)?
                .into_iter()
                .filter(|i| i.intent_type.rewrites_history() && !own.contains(&i.session_id))
                .collect();
            Ok(check)
        })
    }
}

/// Whether the session holding `lock` has been heard from since `alive_since`.
fn holder_alive(tx: &ReadTx<'_>, lock: &Lock, alive_since: Timestamp) -> Result<bool> {
    Ok(tx
        .session(&lock.session_id)?
        .is_some_and(|s| s.last_heartbeat >= alive_since))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{IntentRequest, LockRequest};
    use super::*;
    use crate::model::IntentType;

    /// "me" and "other" in project app, other holding src/a.ts exclusively and src/b.ts shared.
    fn me_and_other(h: &Harness) -> (String, String) {
        let (me, other) = (
            h.session("me", "app", None),
            h.session("other", "app", None),
        );
        lock(h, &other, "src/a.ts", LockType::Exclusive);
        lock(h, &other, "src/b.ts", LockType::Shared);
        (me, other)
    }

    fn lock(h: &Harness, session: &str, path: &str, lock_type: LockType) {
        let granted = h
            .coordinator
            .acquire_lock(LockRequest::new(session, path, lock_type))
            .expect("lock");
        assert!(granted.granted, "{path}");
    }

    #[test]
    fn an_edit_is_blocked_by_others_exclusive_and_shared_locks_only() {
        let h = Harness::new();
        let (me, other) = me_and_other(&h);
        lock(&h, &other, "src/c.ts", LockType::Intent);
        lock(&h, &other, "docs/", LockType::Exclusive);
        lock(&h, &me, "src/d.ts", LockType::Exclusive);
        let own = vec![me.clone()];
        let blocked = |path: &str| {
            h.coordinator
                .edit_check("app", &own, path, None)
                .expect("check")
                .blockers
                .into_iter()
                .map(|l| l.file_path)
                .collect::<Vec<_>>()
        };
        assert_eq!(blocked("src/a.ts"), ["src/a.ts"]);
        assert_eq!(blocked("./src/b.ts"), ["src/b.ts"]);
        assert!(blocked("src/c.ts").is_empty(), "intent locks never block");
        assert_eq!(
            blocked("docs/guide.md"),
            ["docs/"],
            "a directory lock covers it"
        );
        assert!(blocked("src/d.ts").is_empty(), "my own lock");
        let mine = h
            .coordinator
            .edit_check("app", &own, "src/d.ts", None)
            .expect("check");
        assert_eq!(mine.own.len(), 1, "and it is reported as mine");
        assert!(
            h.coordinator
                .edit_check("other-project", &own, "src/a.ts", None)
                .expect("check")
                .blockers
                .is_empty()
        );

        h.advance(TIMEOUT + std::time::Duration::from_secs(1));
        h.coordinator.heartbeat(&me).expect("me");
        assert!(
            blocked("src/a.ts").is_empty(),
            "a stale holder does not count"
        );
    }

    #[test]
    fn a_commit_is_blocked_by_others_exclusive_locks_and_rewrites() {
        let h = Harness::new();
        let (me, other) = me_and_other(&h);
        let own = vec![me.clone()];
        let staged = |paths: &[&str]| {
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            h.coordinator
                .commit_blockers("app", &own, &paths, None)
                .expect("check")
        };
        let check = staged(&["src/a.ts", "src/b.ts"]);
        let locked: Vec<_> = check.locked.iter().map(|l| l.file_path.as_str()).collect();
        assert_eq!(
            locked,
            ["src/a.ts"],
            "a reader's shared lock does not stop a commit"
        );
        assert!(staged(&["src/b.ts"]).is_clear());
        assert!(
            staged(&["bad\nname"]).is_clear(),
            "a name no lock can have is skipped"
        );

        let mut rebase = IntentRequest {
            session_id: other.clone(),
            intent_type: IntentType::GitRebase,
            target: Some("main".into()),
            description: None,
            files: Vec::new(),
        };
        h.coordinator
            .announce_intent(rebase.clone())
            .expect("rebase");
        let check = staged(&[]);
        assert_eq!(check.rewriting.len(), 1);
        assert_eq!(check.rewriting[0].session_name, "other");
        rebase.session_id = me.clone();
        h.coordinator.announce_intent(rebase).expect("mine");
        assert_eq!(
            staged(&[]).rewriting.len(),
            1,
            "my own rebase does not count"
        );
    }
}
