//! What the hook tells the AI: why an edit is refused, what is now locked for it, and who
//! changed the same code in another worktree.

use super::super::table::{clock, countdown};
use crate::clock::Timestamp;
use crate::coordinator::LockOutcome;
use crate::model::{Change, Lock, LockType};

/// Why the edit of `key` is refused, and what the AI can do about it.
pub(super) fn refusal(key: &str, first: &Lock, blockers: &[Lock], now: Timestamp) -> String {
    let mut reasons = Vec::new();
    for lock in blockers {
        let what = if lock.file_path == key {
            key.to_owned()
        } else {
            format!("{} (which covers {key})", lock.file_path)
        };
        let (how, why) = match lock.lock_type {
            LockType::Shared => ("shared", ": they rely on it not changing"),
            _ => ("exclusively", ""),
        };
        let until = until(lock, now);
        reasons.push(format!(
            "{what} is locked {how} by '{}' {until}{why}",
            lock.holder_name
        ));
    }
    let holder = &first.holder_name;
    format!(
        "{}. Do not edit it now: message them (message_send to_session='{holder}'), or queue \
         with lock_acquire(file_path='{key}', queue=true) and edit once the lock is yours.",
        reasons.join("; ")
    )
}

/// How long `lock` stands: until its holder commits (an edit lock), or until it expires.
pub(in crate::cli) fn until(lock: &Lock, now: Timestamp) -> String {
    match lock.last_edit_at {
        Some(_) => "until they commit their change to it".to_owned(),
        None => format!(
            "until {} ({})",
            clock(lock.expires_at),
            countdown(now, lock.expires_at)
        ),
    }
}

/// What the AI now holds after an edit of `key` was allowed.
pub(super) fn locked(key: &str, outcome: &LockOutcome, now: Timestamp) -> String {
    match (outcome.expires_at, outcome.fencing_token) {
        (Some(expires), Some(token)) if expires == Timestamp::UNTIL_COMMIT => format!(
            "Session coordinator: {key} is now locked exclusively for you (fencing token \
             {token}) until you commit your change to it; a commit releases it."
        ),
        (Some(expires), Some(token)) => format!(
            "Session coordinator: {key} is now locked exclusively for you (fencing token \
             {token}, until {}, {}); editing it again renews the lock. lock_release it when \
             you are done with it.",
            clock(expires),
            countdown(now, expires)
        ),
        _ => format!("Session coordinator: {key} is now locked exclusively for you."),
    }
}

/// A warning that another session changed `change.file_path` in another worktree: the edit
/// goes on (it is another file on disk), but the branches will clash when merged.
pub(in crate::cli) fn elsewhere(change: &Change) -> String {
    let state = match &change.commit {
        Some(commit) => format!(
            "unmerged changes (commit {})",
            commit.get(..7).unwrap_or(commit)
        ),
        None => "uncommitted changes".to_owned(),
    };
    let branch = match &change.branch {
        Some(branch) => format!(" (branch {branch})"),
        None => String::new(),
    };
    format!(
        "`{}` has {state} by '{}' in {}{branch}: the two will conflict when merged; agree \
         with them who changes it (message_send to_session='{}').",
        change.file_path, change.session_name, change.worktree, change.session_name
    )
}
