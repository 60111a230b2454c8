//! What lock requests are told, and what people watching a project read about them: the
//! sentences of refusals, queue places, warnings and contention events, kept together so they
//! read alike.

use super::LockOutcome;
use crate::coordinator::rule::Blocker;
use crate::model::{Intent, Lock, LockType, Session};
use crate::patterns;

/// "an exclusive", "a shared", "an intent": a lock type inside a sentence.
fn article(lock_type: LockType) -> &'static str {
    match lock_type {
        LockType::Exclusive => "an exclusive",
        LockType::Shared => "a shared",
        LockType::Intent => "an intent",
    }
}

/// The answer when `wanted` is not granted now: queued at `position`, or denied. `holders`
/// counts the other sessions' locks on overlapping keys.
pub(in crate::coordinator) fn refusal(
    path: &str,
    wanted: LockType,
    blocked: Blocker<'_>,
    holders: usize,
    position: Option<usize>,
) -> LockOutcome {
    let (session_id, name, lock_type, expires_at, what) = match blocked {
        Blocker::Holder(lock) if patterns::is_resource(path) => (
            &lock.session_id,
            &lock.holder_name,
            lock.lock_type,
            Some(lock.expires_at),
            format!(
                "{path} is full: all {holders} of its slots are held; the first to free is session '{}' ({}) until {}",
                lock.holder_name, lock.session_id, lock.expires_at
            ),
        ),
        Blocker::Holder(lock) => {
            let others = match holders.saturating_sub(1) {
                0 => String::new(),
                1 => " and 1 other session".to_owned(),
                n => format!(" and {n} other sessions"),
            };
            (
                &lock.session_id,
                &lock.holder_name,
                lock.lock_type,
                Some(lock.expires_at),
                format!(
                    "{} is held with {} lock by session '{}' ({}){others} until {}",
                    lock.file_path,
                    article(lock.lock_type),
                    lock.holder_name,
                    lock.session_id,
                    lock.expires_at
                ),
            )
        }
        Blocker::Queued(entry) => (
            &entry.session_id,
            &entry.session_name,
            entry.lock_type,
            None,
            format!(
                "session '{}' ({}) is queued first for {} lock on {}, and no request passes the queue",
                entry.session_name,
                entry.session_id,
                article(entry.lock_type),
                entry.file_path
            ),
        ),
    };
    let next = match position {
        Some(position) => format!(
            "You are queued at position {position}; the lock is granted to you automatically when it frees up. lock_release withdraws the request."
        ),
        None => "Message them (message_send), work on something else, wait for it with wait_seconds, or queue with queue=true to be granted it automatically."
            .to_owned(),
    };
    LockOutcome {
        expires_at,
        queued: position.is_some(),
        queue_position: position,
        held_by: Some(session_id.clone()),
        holder_name: Some(name.clone()),
        reason: Some(format!(
            "{what}, so {} lock cannot be granted now. {next}",
            article(wanted)
        )),
        ..LockOutcome::not_granted(path, lock_type)
    }
}

/// A warning about another session's lock that overlaps a grant without blocking it.
pub(super) fn holder_warning(lock: &Lock) -> String {
    format!(
        "Session '{}' ({}) holds {} lock on {} until {}",
        lock.holder_name,
        lock.session_id,
        article(lock.lock_type),
        lock.file_path,
        lock.expires_at
    )
}

/// A warning about another session's intent on `path`, which never blocks a lock.
pub(super) fn intent_warning(path: &str, intent: &Intent) -> String {
    format!(
        "Session '{}' ({}) announced {} on {path} ({}{})",
        intent.session_name,
        intent.session_id,
        intent.intent_type,
        intent.intent_id,
        intent
            .description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    )
}

/// The sentence of a contention event: who wanted what, held by whom, and what became of it.
pub(super) fn contention(me: &Session, wanted: LockType, outcome: &LockOutcome) -> String {
    let holder = outcome.holder_name.as_deref().unwrap_or("another session");
    format!(
        "'{}' wants {} lock on {}, held by '{holder}'{}",
        me.name,
        article(wanted),
        outcome.file_path,
        if outcome.queued {
            "; queued"
        } else {
            "; refused"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::LockId;

    #[test]
    fn a_refusal_names_the_blocker_the_other_holders_and_what_to_do_next() {
        let at = Timestamp::from_millis(1_795_000_000_000);
        let held = Lock {
            lock_id: LockId(7),
            project: "app".into(),
            file_path: "src/".into(),
            lock_type: LockType::Exclusive,
            session_id: "ses-a".into(),
            holder_name: "a".into(),
            acquired_at: at,
            expires_at: at,
            fencing_token: 7,
            worktree: None,
            last_edit_at: None,
        };
        let denied = refusal(
            "src/f.ts",
            LockType::Shared,
            Blocker::Holder(&held),
            3,
            None,
        );
        assert!(!denied.granted && !denied.queued);
        assert_eq!(denied.file_path, "src/f.ts");
        assert_eq!(denied.held_by.as_deref(), Some("ses-a"));
        assert_eq!(denied.expires_at, Some(at));
        let reason = denied.reason.unwrap_or_default();
        assert_eq!(
            reason,
            format!(
                "src/ is held with an exclusive lock by session 'a' (ses-a) and 2 other sessions \
                 until {at}, so a shared lock cannot be granted now. Message them \
                 (message_send), work on something else, wait for it with wait_seconds, or \
                 queue with queue=true to be granted it automatically."
            )
        );

        let queued = refusal(
            "src/f.ts",
            LockType::Shared,
            Blocker::Holder(&held),
            1,
            Some(2),
        );
        assert!(queued.queued && !queued.granted);
        assert_eq!(queued.queue_position, Some(2));
        let reason = queued.reason.unwrap_or_default();
        assert!(
            reason.contains("(ses-a) until") && reason.contains("queued at position 2"),
            "{reason}"
        );
    }
}
