//! Conflict detection: what other live sessions of the project are doing that clashes with
//! what this session is about to do.
//!
//! The rules (one pure function per kind of evidence) are:
//! - a lock on one of the files: exclusive → high; shared and this is a write → high; intent
//!   lock → medium;
//! - a resource (`resource:NAME` among the files or as the target) whose every slot others
//!   hold → high;
//! - an active intent on the same files or target: medium, high when it is in progress and both
//!   are writes;
//! - while this is a git operation: someone's rebase or merge → high; someone's commit or push
//!   on the same branch → high;
//! - a session on the same branch: low, medium for a git operation;
//! - before a commit, merge or push: another session's unmerged change to the same file or
//!   symbol in another worktree (what `changes.rs` recorded) → medium; another worktree's edit
//!   locks are that worktree's files, so they count only as such changes.
//!
//! `safe_to_proceed` is false exactly when some conflict is high.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::Serialize;

use super::locks::key_rule;
use super::rule::{Rule, within};
use super::{Coordinator, MAX_DESCRIPTION_CHARS, MAX_FILES, optional_text, path_key};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::IntentId;
use crate::model::{
    Change, ConflictType, Intent, IntentStatus, IntentType, Lock, LockType, Session, Severity,
};
use crate::patterns;
use crate::store::{Overlap, ReadTx};

#[derive(Debug, Clone)]
pub struct ConflictQuery {
    pub session_id: String,
    pub intent_type: Option<IntentType>,
    pub file_paths: Vec<String>,
    pub target: Option<String>,
    /// For a commit, merge or push: what the session's checkout changes (files or symbols),
    /// as the caller read it from git; compared with other worktrees' unmerged changes.
    pub changed: Vec<String>,
    /// What the caller found the target branch changed that this branch changed too.
    pub stale_base: Option<StaleBase>,
}

/// The branch a session's work goes into changed the same code since the session's branch
/// forked from it: merging will conflict unless the branch catches up first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct StaleBase {
    /// The target branch.
    pub target: String,
    /// Commits on it that the session's branch lacks.
    pub behind: usize,
    /// The files and symbols both changed.
    pub overlapping: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Conflict {
    #[serde(rename = "type")]
    pub conflict_type: ConflictType,
    pub severity: Severity,
    /// Who is doing what, in words to act on.
    pub description: String,
    /// The other session.
    pub session_id: String,
    pub session_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_type: Option<LockType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent_id: Option<IntentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent_type: Option<IntentType>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConflictReport {
    /// Worst first.
    pub conflicts: Vec<Conflict>,
    /// False exactly when a conflict has severity high.
    pub safe_to_proceed: bool,
    /// Before a commit, merge or push: the target branch changed what you changed since your
    /// branch forked from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_base: Option<StaleBase>,
}

/// What the checking session is about to do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned<'a> {
    pub intent_type: Option<IntentType>,
    /// Normalized paths.
    pub files: &'a [String],
    pub target: Option<&'a str>,
}

impl Planned<'_> {
    fn is_git(&self) -> bool {
        self.intent_type.is_some_and(IntentType::is_git)
    }

    /// Without an intent type, naming files means editing them.
    fn is_write(&self) -> bool {
        self.intent_type
            .map_or(!self.files.is_empty(), IntentType::is_write)
    }

    /// The branch a git operation is about: its target, else the session's branch.
    fn branch<'s>(&'s self, me: &'s Session) -> Option<&'s str> {
        self.target.or(me.branch.as_deref())
    }
}

impl Coordinator {
    pub fn check_conflicts(&self, query: ConflictQuery) -> Result<ConflictReport> {
        let target = optional_text("target", query.target.as_deref(), MAX_DESCRIPTION_CHARS)?;
        if query.file_paths.len() > MAX_FILES {
            return Err(Error::invalid(
                "file_paths",
                format!(
                    "lists {} paths; the limit is {MAX_FILES}",
                    query.file_paths.len()
                ),
            ));
        }
        self.look(Some(&query.session_id), |tx, me, now| {
            let me = me.ok_or_else(|| Error::unknown_session(&query.session_id))?;
            let root = me.working_directory.as_deref();
            let mut files = query
                .file_paths
                .iter()
                .map(|raw| path_key("file_paths", raw, root))
                .collect::<Result<Vec<_>>>()?;
            // A resource named as the target is checked like one among the files.
            if let Some(resource) = target
                .as_deref()
                .filter(|t| patterns::is_resource(t.trim()))
            {
                files.push(path_key("target", resource, root)?);
            }
            files.sort();
            files.dedup();
            let planned = Planned {
                intent_type: query.intent_type,
                files: &files,
                target: target.as_deref(),
            };
            let mut report = self.conflicts(tx, me, &planned, now)?;
            if query.intent_type.is_some_and(IntentType::carries_changes) {
                let mut keys = files.clone();
                for raw in &query.changed {
                    keys.push(path_key("changed", raw, root)?);
                }
                report.conflicts.extend(unmerged_conflicts(tx, me, &keys)?);
                report.stale_base = query.stale_base.clone();
            }
            Ok(report)
        })
    }

    /// Gathers the evidence with indexed lookups (locks on each file, intents on each file or
    /// the target, git intents, sessions of the project) and applies the rules.
    pub(super) fn conflicts(
        &self,
        tx: &ReadTx<'_>,
        me: &Session,
        planned: &Planned<'_>,
        now: Timestamp,
    ) -> Result<ConflictReport> {
        let alive_since = self.alive_since(now);
        let mut conflicts = Vec::new();

        for file in planned.files {
            // Another worktree's edit locks are its own files on disk: its changes show as
            // unmerged changes instead.
            let mine = me.working_directory.as_deref();
            let others: Vec<Lock> = tx
                .locks_overlapping(&me.project, file, now)?
                .into_iter()
                .filter(|lock| lock.session_id != me.session_id)
                .filter(|lock| match (mine, lock.worktree.as_deref()) {
                    (Some(mine), Some(theirs)) => within(mine, theirs),
                    _ => true,
                })
                .collect();
            match key_rule(tx, &me.project, file)? {
                Rule::Slots(capacity) => {
                    conflicts.extend(resource_conflict(file, capacity, &others));
                }
                Rule::Matrix => {
                    conflicts.extend(others.iter().filter_map(|l| lock_conflict(planned, l)));
                }
            }
        }

        let peers: HashMap<String, Session> = tx
            .live_sessions(&me.project, alive_since)?
            .into_iter()
            .filter(|s| s.session_id != me.session_id)
            .map(|s| (s.session_id.clone(), s))
            .collect();

        let mut intents = BTreeMap::new();
        let mut overlaps: Vec<Overlap<'_>> =
            planned.files.iter().map(|f| Overlap::Path(f)).collect();
        overlaps.extend(planned.target.map(Overlap::Target));
        if planned.is_git() {
            overlaps.push(Overlap::Git);
        }
        for overlap in overlaps {
            for intent in
                tx.overlapping_intents(&me.project, &me.session_id, alive_since, overlap)?
            {
                intents.insert(intent.intent_id, intent);
            }
        }
        for intent in intents.values() {
            let their_branch = peers
                .get(&intent.session_id)
                .and_then(|s| s.branch.as_deref());
            conflicts.extend(intent_conflict(planned, me, intent, their_branch));
        }

        for peer in peers.values() {
            conflicts.extend(branch_conflict(planned, me, peer));
        }

        conflicts.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.conflict_type.cmp(&b.conflict_type))
                .then(a.session_name.cmp(&b.session_name))
        });
        Ok(ConflictReport {
            safe_to_proceed: !conflicts.iter().any(|c| c.severity == Severity::High),
            conflicts,
            stale_base: None,
        })
    }
}

/// Before `me` commits, merges or pushes `keys` (and what it recorded changing itself): the
/// other sessions' unmerged changes to the same code in other worktrees, each once.
fn unmerged_conflicts(tx: &ReadTx<'_>, me: &Session, keys: &[String]) -> Result<Vec<Conflict>> {
    let mut keys = keys.to_vec();
    keys.extend(
        tx.changes_of(&me.session_id)?
            .into_iter()
            .map(|c| c.file_path),
    );
    let mine = me.working_directory.as_deref().unwrap_or_default();
    let mut found: Vec<Conflict> = Vec::new();
    for key in &keys {
        for change in tx.changes_overlapping(&me.project, key)? {
            let elsewhere = change.session_id != me.session_id && !within(mine, &change.worktree);
            let seen = found.iter().any(|c| {
                c.session_id == change.session_id && c.file_path.as_ref() == Some(&change.file_path)
            });
            if elsewhere && !seen {
                found.push(unmerged_conflict(&change));
            }
        }
    }
    Ok(found)
}

fn unmerged_conflict(change: &Change) -> Conflict {
    let state = match &change.commit {
        Some(commit) => format!(
            "committed (commit {}) but not merged",
            commit.get(..7).unwrap_or(commit)
        ),
        None => "uncommitted".to_owned(),
    };
    let branch = change
        .branch
        .as_deref()
        .map(|b| format!(" on branch {b}"))
        .unwrap_or_default();
    Conflict {
        conflict_type: ConflictType::UnmergedChange,
        severity: Severity::Medium,
        description: format!(
            "Session '{}' changed {} in {}{branch} ({state}): merging both will conflict there",
            change.session_name, change.file_path, change.worktree
        ),
        session_id: change.session_id.clone(),
        session_name: change.session_name.clone(),
        file_path: Some(change.file_path.clone()),
        lock_type: None,
        intent_id: None,
        intent_type: None,
    }
}

fn lock_conflict(planned: &Planned<'_>, lock: &Lock) -> Option<Conflict> {
    let (severity, what) = match lock.lock_type {
        LockType::Exclusive => (
            Severity::High,
            format!(
                "holds an exclusive lock on {} until {}: it is editing it",
                lock.file_path, lock.expires_at
            ),
        ),
        LockType::Shared if planned.is_write() => (
            Severity::High,
            format!(
                "holds a shared (read) lock on {} until {}: changing it now would change it under them",
                lock.file_path, lock.expires_at
            ),
        ),
        LockType::Shared => return None,
        LockType::Intent => (
            Severity::Medium,
            format!(
                "holds an intent lock on {}: it plans to edit it",
                lock.file_path
            ),
        ),
    };
    Some(Conflict {
        conflict_type: ConflictType::FileLock,
        severity,
        description: format!("Session '{}' {what}", lock.holder_name),
        session_id: lock.session_id.clone(),
        session_name: lock.holder_name.clone(),
        file_path: Some(lock.file_path.clone()),
        lock_type: Some(lock.lock_type),
        intent_id: None,
        intent_type: None,
    })
}

/// A resource is a conflict only when others hold every slot.
fn resource_conflict(key: &str, capacity: usize, others: &[Lock]) -> Option<Conflict> {
    if others.len() < capacity {
        return None;
    }
    let first = others.iter().min_by_key(|lock| lock.expires_at)?;
    let names: Vec<String> = others
        .iter()
        .map(|lock| format!("'{}'", lock.holder_name))
        .collect();
    Some(Conflict {
        conflict_type: ConflictType::Resource,
        severity: Severity::High,
        description: format!(
            "{key} is full: all {capacity} of its slots are held (by {}); the first frees at {} unless renewed. Wait for it with lock_acquire(wait_seconds) or queue=true",
            names.join(", "),
            first.expires_at
        ),
        session_id: first.session_id.clone(),
        session_name: first.holder_name.clone(),
        file_path: Some(key.to_owned()),
        lock_type: Some(first.lock_type),
        intent_id: None,
        intent_type: None,
    })
}

fn intent_conflict(
    planned: &Planned<'_>,
    me: &Session,
    intent: &Intent,
    their_branch: Option<&str>,
) -> Option<Conflict> {
    let mut verdict: Option<(Severity, ConflictType)> = None;
    let mut raise = |severity, conflict_type| {
        if verdict.is_none_or(|(s, _)| severity > s) {
            verdict = Some((severity, conflict_type));
        }
    };

    if planned.is_git() {
        let their_git_branch = intent.target.as_deref().or(their_branch);
        let same_branch = planned.branch(me).is_some() && planned.branch(me) == their_git_branch;
        if intent.intent_type.rewrites_history() || (intent.intent_type.is_git() && same_branch) {
            raise(Severity::High, ConflictType::GitOperation);
        }
    }

    let shared_file = intent.files.iter().find(|f| planned.files.contains(f));
    let same_target = planned.target.is_some() && planned.target == intent.target.as_deref();
    if shared_file.is_some() || same_target {
        let both_write = planned.is_write() && intent.intent_type.is_write();
        let severity = if both_write && intent.status == IntentStatus::InProgress {
            Severity::High
        } else {
            Severity::Medium
        };
        raise(severity, ConflictType::Intent);
    }

    let (severity, conflict_type) = verdict?;
    Some(Conflict {
        conflict_type,
        severity,
        description: describe_intent(intent, their_branch),
        session_id: intent.session_id.clone(),
        session_name: intent.session_name.clone(),
        file_path: shared_file.cloned(),
        lock_type: None,
        intent_id: Some(intent.intent_id),
        intent_type: Some(intent.intent_type),
    })
}

fn branch_conflict(planned: &Planned<'_>, me: &Session, peer: &Session) -> Option<Conflict> {
    let branch = me.branch.as_deref()?;
    if peer.branch.as_deref() != Some(branch) {
        return None;
    }
    let (severity, advice) = if planned.is_git() {
        (
            Severity::Medium,
            "; agree on who commits and pushes before you do",
        )
    } else {
        (Severity::Low, "")
    };
    Some(Conflict {
        conflict_type: ConflictType::Branch,
        severity,
        description: format!(
            "Session '{}' is also working on branch {branch}{advice}",
            peer.name
        ),
        session_id: peer.session_id.clone(),
        session_name: peer.name.clone(),
        file_path: None,
        lock_type: None,
        intent_id: None,
        intent_type: None,
    })
}

/// "Session 'auth-implementation' is currently rebasing branch feature/auth (Rebasing onto main)"
fn describe_intent(intent: &Intent, their_branch: Option<&str>) -> String {
    let doing = match intent.intent_type {
        IntentType::FileEdit => "editing",
        IntentType::GitCommit => "committing on",
        IntentType::GitPush => "pushing",
        IntentType::GitRebase => "rebasing",
        IntentType::GitMerge => "merging into",
        IntentType::Build => "building",
        IntentType::Test => "running tests on",
        IntentType::Refactor => "refactoring",
        IntentType::DependencyChange => "changing dependencies in",
    };
    let object = if intent.intent_type.is_git() {
        intent
            .target
            .as_deref()
            .or(their_branch)
            .map(|branch| format!(" branch {branch}"))
            .unwrap_or_default()
    } else {
        match (&intent.target, intent.files.as_slice()) {
            (Some(target), _) => format!(" {target}"),
            (None, []) => String::new(),
            (None, files) => format!(" {}", files.join(", ")),
        }
    };
    let when = match intent.status {
        IntentStatus::InProgress => "is currently",
        _ => "is about to start",
    };
    // The product description's own example reads "is currently rebasing": an announced git
    // operation is about to rewrite the branch, so it is described as under way.
    let when = if intent.intent_type.is_git() {
        "is currently"
    } else {
        when
    };
    let detail = intent
        .description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    format!(
        "Session '{}' {when} {doing}{object}{detail}; see {} (intent_list) or message them before you go ahead",
        intent.session_name, intent.intent_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn session(id: &str, branch: Option<&str>) -> Session {
        Session {
            session_id: id.into(),
            name: format!("name-{id}"),
            project: "app".into(),
            branch: branch.map(Into::into),
            working_directory: None,
            registered_at: Timestamp::from_millis(0),
            last_heartbeat: Timestamp::from_millis(0),
            wake: None,
            group: None,
            client_pid: None,
            client_ref: None,
            who: None,
        }
    }

    fn lock(lock_type: LockType) -> Lock {
        Lock {
            lock_id: crate::ids::LockId(1),
            project: "app".into(),
            file_path: "src/a.ts".into(),
            lock_type,
            session_id: "b".into(),
            holder_name: "name-b".into(),
            acquired_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(1),
            fencing_token: 1,
            worktree: None,
            last_edit_at: None,
        }
    }

    fn intent(
        intent_type: IntentType,
        status: IntentStatus,
        target: Option<&str>,
        files: &[&str],
    ) -> Intent {
        Intent {
            intent_id: IntentId(9),
            session_id: "b".into(),
            session_name: "name-b".into(),
            project: "app".into(),
            intent_type,
            target: target.map(Into::into),
            description: None,
            files: files.iter().map(|f| f.to_string()).collect(),
            status,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
        }
    }

    fn plan<'a>(
        intent_type: Option<IntentType>,
        files: &'a [String],
        target: Option<&'a str>,
    ) -> Planned<'a> {
        Planned {
            intent_type,
            files,
            target,
        }
    }

    #[test]
    fn a_full_resource_is_a_high_conflict() {
        use super::super::testing::Harness;
        use crate::coordinator::LockRequest;

        let h = Harness::new();
        let [a, b, me] = ["a", "b", "me"].map(|n| h.session(n, "app", None));
        let take = |session: &str| {
            h.coordinator
                .acquire_lock(LockRequest {
                    capacity: Some(2),
                    ..LockRequest::new(session, "resource:test-suite", LockType::Exclusive)
                })
                .expect("acquire")
        };
        let check = || {
            h.coordinator
                .check_conflicts(ConflictQuery {
                    session_id: me.clone(),
                    intent_type: Some(IntentType::Test),
                    file_paths: Vec::new(),
                    target: Some("resource:test-suite".into()),
                    changed: Vec::new(),
                    stale_base: None,
                })
                .expect("check")
        };
        assert!(take(&a).granted);
        assert!(check().safe_to_proceed, "one slot is still free");
        assert!(take(&b).granted);
        let full = check();
        assert!(!full.safe_to_proceed);
        assert_eq!(full.conflicts.len(), 1);
        assert_eq!(full.conflicts[0].conflict_type, ConflictType::Resource);
        assert!(full.conflicts[0].description.contains("'a', 'b'"));
    }

    #[test]
    fn lock_severities() {
        let files = vec!["src/a.ts".to_owned()];
        let edit = plan(Some(IntentType::FileEdit), &files, None);
        let test = plan(Some(IntentType::Test), &files, None);
        let severity = |p: &Planned<'_>, t| lock_conflict(p, &lock(t)).map(|c| c.severity);
        assert_eq!(severity(&edit, LockType::Exclusive), Some(Severity::High));
        assert_eq!(severity(&test, LockType::Exclusive), Some(Severity::High));
        assert_eq!(severity(&edit, LockType::Shared), Some(Severity::High));
        assert_eq!(severity(&test, LockType::Shared), None);
        assert_eq!(severity(&edit, LockType::Intent), Some(Severity::Medium));
        let unspecified = plan(None, &files, None);
        assert_eq!(
            severity(&unspecified, LockType::Shared),
            Some(Severity::High),
            "files alone mean an edit"
        );
    }

    #[test]
    fn intent_severities() {
        use IntentStatus::*;
        use IntentType::*;
        let me = session("a", Some("feature/profile"));
        let files = vec!["src/a.ts".to_owned()];
        let severity = |p: Planned<'_>, i: Intent| {
            intent_conflict(&p, &me, &i, Some("feature/auth"))
                .map(|c| (c.severity, c.conflict_type))
        };

        assert_eq!(
            severity(
                plan(Some(FileEdit), &files, None),
                intent(FileEdit, Announced, None, &["src/a.ts"])
            ),
            Some((Severity::Medium, ConflictType::Intent))
        );
        assert_eq!(
            severity(
                plan(Some(FileEdit), &files, None),
                intent(Refactor, InProgress, None, &["src/a.ts"])
            ),
            Some((Severity::High, ConflictType::Intent))
        );
        assert_eq!(
            severity(
                plan(Some(Test), &files, None),
                intent(FileEdit, InProgress, None, &["src/a.ts"])
            ),
            Some((Severity::Medium, ConflictType::Intent)),
            "only two writes make an in-progress overlap high"
        );
        assert_eq!(
            severity(
                plan(Some(FileEdit), &files, None),
                intent(FileEdit, InProgress, None, &["src/b.ts"])
            ),
            None
        );
        assert_eq!(
            severity(
                plan(Some(Build), &[], Some("frontend")),
                intent(Build, Announced, Some("frontend"), &[])
            ),
            Some((Severity::Medium, ConflictType::Intent)),
            "same target"
        );
    }

    #[test]
    fn git_severities() {
        use IntentStatus::*;
        use IntentType::*;
        let me = session("a", Some("feature/profile"));
        let severity = |p: Planned<'_>, i: Intent, their_branch| {
            intent_conflict(&p, &me, &i, their_branch).map(|c| (c.severity, c.conflict_type))
        };
        let high_git = Some((Severity::High, ConflictType::GitOperation));

        // The product description's example: a push while someone else rebases another branch.
        let rebase = intent(GitRebase, Announced, Some("feature/auth"), &[]);
        assert_eq!(
            severity(
                plan(Some(GitPush), &[], None),
                rebase.clone(),
                Some("feature/auth")
            ),
            high_git
        );
        assert_eq!(
            severity(
                plan(Some(GitCommit), &[], None),
                intent(GitMerge, Announced, None, &[]),
                None
            ),
            high_git
        );
        assert_eq!(
            severity(plan(Some(FileEdit), &["x".into()], None), rebase, None),
            None,
            "not a git op"
        );

        let push_same = intent(GitPush, Announced, None, &[]);
        assert_eq!(
            severity(
                plan(Some(GitCommit), &[], None),
                push_same.clone(),
                Some("feature/profile")
            ),
            high_git
        );
        assert_eq!(
            severity(plan(Some(GitCommit), &[], None), push_same, Some("main")),
            None,
            "other branch"
        );
        let push_named = intent(GitPush, Announced, Some("release"), &[]);
        assert_eq!(
            severity(
                plan(Some(GitPush), &[], Some("release")),
                push_named,
                Some("main")
            ),
            high_git
        );
    }

    #[test]
    fn branch_severities() {
        let me = session("a", Some("main"));
        let peer = session("b", Some("main"));
        let other = session("c", Some("dev"));
        let files: Vec<String> = vec![];
        let severity =
            |p: Planned<'_>, s: &Session| branch_conflict(&p, &me, s).map(|c| c.severity);
        assert_eq!(
            severity(plan(Some(IntentType::FileEdit), &files, Some("x")), &peer),
            Some(Severity::Low)
        );
        assert_eq!(
            severity(plan(Some(IntentType::GitPush), &files, None), &peer),
            Some(Severity::Medium)
        );
        assert_eq!(severity(plan(None, &files, None), &other), None);
        let nowhere = session("d", None);
        assert_eq!(
            branch_conflict(&plan(None, &files, None), &nowhere, &session("e", None)),
            None
        );
    }

    #[test]
    fn descriptions_name_the_session_and_what_it_does() {
        let mut rebase = intent(
            IntentType::GitRebase,
            IntentStatus::Announced,
            Some("feature/auth"),
            &[],
        );
        rebase.session_name = "auth-implementation".into();
        let text = describe_intent(&rebase, None);
        assert!(
            text.starts_with(
                "Session 'auth-implementation' is currently rebasing branch feature/auth"
            ),
            "{text}"
        );
        let edit = intent(
            IntentType::FileEdit,
            IntentStatus::Announced,
            None,
            &["src/a.ts"],
        );
        assert!(describe_intent(&edit, None).contains("is about to start editing src/a.ts"));
    }
}
