//! What stands in the way of an edit or a commit made outside the MCP tools.
//!
//! Locks are advisory to an AI that forgets to take them, so the Claude Code hook and the git
//! pre-commit guard ask these questions where every agent passes. Neither acts for one session:
//! they act for a set of "own" sessions (everything the same AI client registered), whose locks
//! never stand in their own way. Only other live sessions count, as in `conflict_check`.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Coordinator, path_key, required_label};
use crate::error::Result;
use crate::model::{Intent, Lock, LockType, Session};
use crate::store::Overlap;

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
    /// The live locks of other sessions that an edit of `path` would break: exclusive ones
    /// (someone is editing it) and shared ones (someone relies on it staying as it is).
    /// `root` makes an absolute path project-relative.
    pub fn edit_blockers(
        &self,
        project: &str,
        own: &[String],
        path: &str,
        root: Option<&str>,
    ) -> Result<Vec<Lock>> {
        let project = required_label("project", project)?;
        let key = path_key("file_path", path, root)?;
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            let mut blockers = Vec::new();
            for lock in tx.locks_overlapping(&project, &key, now)? {
                if own.contains(&lock.session_id)
                    || !LockType::Exclusive.is_blocked_by(lock.lock_type)
                {
                    continue;
                }
                if tx
                    .session(&lock.session_id)?
                    .is_some_and(|s| s.last_heartbeat >= alive_since)
                {
                    blockers.push(lock);
                }
            }
            Ok(blockers)
        })
    }

    /// What a commit of `paths` (project-relative) would break: other live sessions' exclusive
    /// locks on them, and their rebases and merges in progress.
    pub fn commit_blockers(
        &self,
        project: &str,
        own: &[String],
        paths: &[String],
    ) -> Result<CommitCheck> {
        let project = required_label("project", project)?;
        let keys = paths
            .iter()
            .map(|p| path_key("file_path", p, None))
            .collect::<Result<Vec<_>>>()?;
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            let mut check = CommitCheck::default();
            for key in &keys {
                for lock in tx.locks_overlapping(&project, key, now)? {
                    let counts = lock.lock_type == LockType::Exclusive
                        && !own.contains(&lock.session_id)
                        && !check.locked.iter().any(|l| l.lock_id == lock.lock_id);
                    if counts
                        && tx
                            .session(&lock.session_id)?
                            .is_some_and(|s| s.last_heartbeat >= alive_since)
                    {
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

    /// The live sessions an AI client registered: those its server or hooks recorded with one
    /// of `pids` as their client process, and the one registered under `client_ref`.
    pub fn client_sessions(&self, pids: &[u32], client_ref: Option<&str>) -> Result<Vec<Session>> {
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            Ok(tx
                .client_sessions(pids, client_ref)?
                .into_iter()
                .filter(|s| s.last_heartbeat >= alive_since)
                .collect())
        })
    }

    /// A live session by id, or by name (unique among live sessions, within `project` when
    /// given); `None` when there is no such session or the name is ambiguous.
    pub fn find_session(&self, id_or_name: &str, project: Option<&str>) -> Result<Option<Session>> {
        let wanted = id_or_name.trim();
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            if let Some(session) = tx.session(wanted)? {
                return Ok(Some(session));
            }
            let mut named = tx.live_named(wanted, project, alive_since)?;
            Ok(if named.len() == 1 { named.pop() } else { None })
        })
    }

    /// The projects of live sessions working in `dir` or below it, most sessions first.
    pub fn projects_in(&self, dir: &str) -> Result<Vec<String>> {
        self.look(None, |tx, _, now| {
            Ok(tx.projects_under(dir, self.alive_since(now))?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{IntentRequest, LockRequest};
    use super::*;
    use crate::model::IntentType;

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
        let (me, other) = (
            h.session("me", "app", None),
            h.session("other", "app", None),
        );
        lock(&h, &other, "src/a.ts", LockType::Exclusive);
        lock(&h, &other, "src/b.ts", LockType::Shared);
        lock(&h, &other, "src/c.ts", LockType::Intent);
        lock(&h, &other, "docs/", LockType::Exclusive);
        lock(&h, &me, "src/d.ts", LockType::Exclusive);
        let own = vec![me.clone()];
        let blocked = |path: &str| {
            h.coordinator
                .edit_blockers("app", &own, path, Some("/work/me"))
                .expect("blockers")
                .into_iter()
                .map(|l| l.file_path)
                .collect::<Vec<_>>()
        };
        assert_eq!(blocked("src/a.ts"), ["src/a.ts"]);
        assert_eq!(blocked("/work/me/src/b.ts"), ["src/b.ts"]);
        assert!(blocked("src/c.ts").is_empty(), "intent locks never block");
        assert_eq!(
            blocked("docs/guide.md"),
            ["docs/"],
            "a directory lock covers it"
        );
        assert!(blocked("src/d.ts").is_empty(), "my own lock");
        assert!(
            h.coordinator
                .edit_blockers("other-project", &own, "src/a.ts", None)
                .expect("blockers")
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
        let (me, other) = (
            h.session("me", "app", None),
            h.session("other", "app", None),
        );
        lock(&h, &other, "src/a.ts", LockType::Exclusive);
        lock(&h, &other, "src/b.ts", LockType::Shared);
        let own = vec![me.clone()];
        let staged = |paths: &[&str]| {
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            h.coordinator
                .commit_blockers("app", &own, &paths)
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
