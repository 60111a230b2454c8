//! What the lock methods take and give: the requests, the answers, and the [`Grant`] that a
//! lock row and its holder's answer are both made from.

use schemars::JsonSchema;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::ids::LockId;
use crate::model::{Lock, LockType, Session, Waiter};
use crate::store::NewLock;

#[derive(Debug, Clone)]
pub struct LockRequest {
    pub session_id: String,
    pub file_path: String,
    pub lock_type: LockType,
    pub ttl_seconds: Option<u64>,
    /// Wait up to this long in the key's queue (the caller does the waiting, see `queue.rs`).
    pub wait_seconds: Option<u64>,
    /// Stay queued after the answer (and after `wait_seconds`), to be granted automatically.
    pub queue: bool,
    /// Where to wake this process when a queued request is granted (see `Notifier`).
    pub wake: Option<String>,
    /// For a `resource:` key: how many sessions may hold it at once (set once per project).
    pub capacity: Option<u64>,
    /// Set when a hook locks for an edit; `lock_acquire` leaves it out.
    pub edit: Option<EditLock>,
}

/// What sets a hook's lock for an edit apart from one taken with `lock_acquire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditLock {
    /// The worktree the edit is made in. Only locks of the same worktree (and unscoped ones)
    /// stand in its way: another worktree is another file on disk.
    pub worktree: String,
    /// Held until the change is committed (or the session ends) rather than for a TTL.
    pub until_commit: bool,
}

impl LockRequest {
    pub fn new(session_id: &str, file_path: &str, lock_type: LockType) -> Self {
        Self {
            session_id: session_id.to_owned(),
            file_path: file_path.to_owned(),
            lock_type,
            ttl_seconds: None,
            wait_seconds: None,
            queue: false,
            wake: None,
            capacity: None,
            edit: None,
        }
    }
}

/// The answer to a lock request: a grant, a place in the queue, or a denial naming the
/// blocking holder.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockOutcome {
    pub granted: bool,
    /// The normalized, project-relative path (or directory/glob) the lock is on.
    pub file_path: String,
    /// On a grant, the type granted; otherwise the type of the blocking lock or request.
    pub lock_type: LockType,
    /// On a grant, when your lock expires; otherwise when the blocking lock does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<LockId>,
    /// Strictly increasing across the database; a later holder always has a larger one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<i64>,
    /// True when you already held this lock and it was renewed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub renewed: bool,
    /// True when your request waits in the queue and will be granted automatically.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// Your place in the queue for this path (1 = next), when not granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    /// Other sessions whose locks or intents overlap this path (they do not block it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// When not granted, the session holding (or queued first for) the blocking lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// That session's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<String>,
    /// When not granted, why, and what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Released {
    pub released: bool,
    pub file_path: String,
    /// True when a queued request of yours for this path was withdrawn.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled_wait: bool,
    /// When nothing was released, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who holds a path, and who waits for it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockStatus {
    /// For a resource: whether any slot is taken (see `capacity` for how many there are).
    pub locked: bool,
    /// For a resource: how many sessions may hold it at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<usize>,
    pub file_path: String,
    pub project: String,
    /// The strongest lock held (exclusive > shared > intent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_type: Option<LockType>,
    /// The session holding that lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Every live lock on the path or on a directory/glob overlapping it, oldest first.
    pub holders: Vec<Lock>,
    /// Requests waiting for the path (or an overlapping key), first in line first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<Waiter>,
    /// When a fencing_token was given: whether it is the token of a live lock on this path.
    /// False means that lock expired or was released; do not write with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_valid: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct LockListQuery {
    pub project: Option<String>,
    pub session_id: Option<String>,
    pub file_path: Option<String>,
    /// Only locks of sessions in this group.
    pub group: Option<String>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockList {
    pub locks: Vec<Lock>,
    pub count: usize,
}

impl LockOutcome {
    /// The answer for a lock the session holds already (granted from the queue meanwhile).
    pub(in crate::coordinator) fn held(lock: &Lock) -> Self {
        LockOutcome {
            granted: true,
            expires_at: Some(lock.expires_at),
            lock_id: Some(lock.lock_id),
            fencing_token: Some(lock.fencing_token),
            ..LockOutcome::not_granted(&lock.file_path, lock.lock_type)
        }
    }

    /// A not-granted answer with nobody named, to fill in.
    pub(in crate::coordinator) fn not_granted(path: &str, lock_type: LockType) -> Self {
        LockOutcome {
            granted: false,
            file_path: path.to_owned(),
            lock_type,
            expires_at: None,
            lock_id: None,
            fencing_token: None,
            renewed: false,
            queued: false,
            queue_position: None,
            warnings: Vec::new(),
            held_by: None,
            holder_name: None,
            reason: None,
        }
    }
}

/// A lock granted to `holder`: the one description its row and its holder's answer are both
/// made from, so the two cannot disagree.
pub(in crate::coordinator) struct Grant<'a> {
    pub holder: &'a Session,
    pub path: &'a str,
    pub lock_type: LockType,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    pub fencing_token: i64,
    /// The holder held this very lock already: it is renewed, not granted anew.
    pub renewal: bool,
    /// For an edit lock: the worktree it is scoped to.
    pub worktree: Option<&'a str>,
    /// For an edit lock held until committed: the time of the edit.
    pub edited_at: Option<Timestamp>,
}

impl<'a> Grant<'a> {
    /// The lock row to write at `now`, as if served from no queue entry and told at once;
    /// callers adjust that with struct update syntax.
    pub(in crate::coordinator) fn row(&self, now: Timestamp) -> NewLock<'a> {
        NewLock {
            project: &self.holder.project,
            path: self.path,
            session_id: &self.holder.session_id,
            lock_type: self.lock_type,
            acquired_at: self.acquired_at,
            expires_at: self.expires_at,
            fencing_token: self.fencing_token,
            renewal: self.renewal,
            from_waiter: None,
            unreported: false,
            worktree: self.worktree,
            edited_at: self.edited_at,
            now,
        }
    }

    /// The answer to the holder, once the row is written as `lock_id`.
    pub(in crate::coordinator) fn answer(
        &self,
        lock_id: LockId,
        warnings: Vec<String>,
    ) -> LockOutcome {
        LockOutcome {
            granted: true,
            expires_at: Some(self.expires_at),
            lock_id: Some(lock_id),
            fencing_token: Some(self.fencing_token),
            renewed: self.renewal,
            warnings,
            ..LockOutcome::not_granted(self.path, self.lock_type)
        }
    }
}
