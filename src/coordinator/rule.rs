//! The grant rule: what stands in the way of a lock request, decided over plain values.
//!
//! Nothing here reads the database. The callers (`locks.rs`, `queue.rs`, `conflicts.rs`) fetch
//! a key's live holders and queue inside their transaction and ask this module what they mean,
//! so the rule is the same wherever it is applied and is tested on values alone.
//!
//! Files, directories and globs follow the exclusive/shared/intent matrix
//! ([`LockType::is_blocked_by`]); a `resource:NAME` key admits up to its capacity, strictly
//! first come first served. Either way no request passes an incompatible one queued before it.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::{Lock, LockType, Waiter};

/// Most sessions a resource can admit at once.
pub const MAX_CAPACITY: u64 = 1_000;

/// How the requests on a key compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    /// Files, directories and globs: the exclusive/shared/intent matrix.
    Matrix,
    /// A `resource:` key: at most this many holders at once, strictly first come first served.
    Slots(usize),
}

/// What stands in the way of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blocker<'a> {
    Holder(&'a Lock),
    /// An earlier request in the queue that this one must not pass.
    Queued(&'a Waiter),
}

/// The first thing that keeps `wanted` from being granted: the strongest incompatible holder,
/// else the first incompatible request queued before it. For a resource: the holder that frees
/// first when every slot is taken, else any earlier request. Both lists hold other sessions only.
pub(super) fn blocker<'a>(
    wanted: LockType,
    rule: Rule,
    holders: &[&'a Lock],
    earlier: &[&'a Waiter],
) -> Option<Blocker<'a>> {
    if let Rule::Slots(capacity) = rule {
        return if holders.len() >= capacity {
            holders
                .iter()
                .min_by_key(|lock| lock.expires_at)
                .map(|lock| Blocker::Holder(lock))
        } else {
            earlier.first().map(|w| Blocker::Queued(w))
        };
    }
    holders
        .iter()
        .filter(|lock| wanted.is_blocked_by(lock.lock_type))
        .min_by_key(|lock| strength(lock.lock_type))
        .map(|lock| Blocker::Holder(lock))
        .or_else(|| {
            earlier
                .iter()
                .find(|w| wanted.is_blocked_by(w.lock_type))
                .map(|w| Blocker::Queued(w))
        })
}

/// The other sessions' requests in `queue` (FIFO order) that `session_id`'s request must not
/// pass: those queued before its entry `own`, or all of them while it has none.
pub(super) fn ahead<'a>(
    queue: &'a [Waiter],
    session_id: &str,
    own: Option<i64>,
) -> Vec<&'a Waiter> {
    queue
        .iter()
        .filter(|w| w.session_id != session_id)
        .filter(|w| own.is_none_or(|own| w.id < own))
        .collect()
}

/// Whether a lock scoped to worktree `b` can stand in the way of a request scoped to `a`: an
/// edit lock binds only its own worktree, and a lock without one (every `lock_acquire`) binds
/// the whole project.
pub fn same_tree(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Whether folder `dir` is `root` or inside it.
pub(super) fn within(dir: &str, root: &str) -> bool {
    dir.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('\\'))
}

/// Orders lock types from strongest to weakest.
pub(super) fn strength(lock_type: LockType) -> u8 {
    match lock_type {
        LockType::Exclusive => 0,
        LockType::Shared => 1,
        LockType::Intent => 2,
    }
}

/// Whether a queue entry still waits: its session is alive and its deadline has not passed.
pub(super) fn waiting(entry: &Waiter, alive_since: Timestamp, now: Timestamp) -> bool {
    entry.last_heartbeat >= alive_since && entry.waiting_until.is_none_or(|d| d > now)
}

/// A resource's capacity as a request finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capacity {
    /// The one set for the project, or 1 while none is.
    InForce(usize),
    /// The first one named for the resource in its project, which this request sets.
    Setting(usize),
}

/// A resource's capacity, from the one `set` for the project (with who set it) and the one a
/// request `asked` for: set once, by the first request that names one, and 1 until then. A
/// request that names another than the one set is refused rather than silently ignored.
pub(super) fn capacity(
    key: &str,
    project: &str,
    set: Option<(usize, &str)>,
    asked: Option<u64>,
) -> Result<Capacity> {
    let asked = match asked {
        Some(n) if (1..=MAX_CAPACITY).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(Error::invalid(
                "capacity",
                format!("{n} is out of range; allowed: 1 to {MAX_CAPACITY}"),
            ));
        }
        None => None,
    };
    match (set, asked) {
        (Some((set, by)), Some(n)) if n != set => Err(Error::invalid(
            "capacity",
            format!(
                "{key} already has capacity {set} in project {project} (set by '{by}'); omit capacity or pass {set}"
            ),
        )),
        (Some((set, _)), _) => Ok(Capacity::InForce(set)),
        (None, Some(n)) => Ok(Capacity::Setting(n)),
        (None, None) => Ok(Capacity::InForce(1)),
    }
}

#[cfg(test)]
mod tests {
    //! The rule on values: no database, no clock but plain timestamps.

    use super::*;
    use crate::ids::LockId;
    use std::time::Duration;

    const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

    fn held(session: &str, lock_type: LockType, expires_in_secs: u64) -> Lock {
        Lock {
            lock_id: LockId(1),
            project: "app".into(),
            file_path: "f.ts".into(),
            lock_type,
            session_id: session.into(),
            holder_name: session.into(),
            acquired_at: T0,
            expires_at: T0.plus(Duration::from_secs(expires_in_secs)),
            fencing_token: 1,
            worktree: None,
            last_edit_at: None,
        }
    }

    fn queued(id: i64, session: &str, lock_type: LockType) -> Waiter {
        Waiter {
            position: 0,
            session_id: session.into(),
            session_name: session.into(),
            file_path: "f.ts".into(),
            lock_type,
            queued_at: T0,
            waiting_until: None,
            id,
            project: "app".into(),
            ttl: Duration::from_secs(60),
            wake: None,
            last_heartbeat: T0,
        }
    }

    #[test]
    fn the_matrix_decides_between_one_holder_and_one_request() {
        use LockType::*;
        for (holding, wanted, blocked) in [
            (Exclusive, Exclusive, true),
            (Exclusive, Shared, true),
            (Exclusive, Intent, false),
            (Shared, Exclusive, true),
            (Shared, Shared, false),
            (Shared, Intent, false),
            (Intent, Exclusive, false),
            (Intent, Shared, false),
            (Intent, Intent, false),
        ] {
            let lock = held("a", holding, 60);
            let found = blocker(wanted, Rule::Matrix, &[&lock], &[]);
            assert_eq!(found.is_some(), blocked, "{holding} held, {wanted} wanted");
        }
    }

    #[test]
    fn the_strongest_incompatible_holder_is_named() {
        let (intent, shared, exclusive) = (
            held("a", LockType::Intent, 60),
            held("b", LockType::Shared, 60),
            held("c", LockType::Exclusive, 60),
        );
        let found = blocker(
            LockType::Exclusive,
            Rule::Matrix,
            &[&intent, &shared, &exclusive],
            &[],
        );
        assert_eq!(found, Some(Blocker::Holder(&exclusive)));
    }

    #[test]
    fn a_holder_is_named_before_the_queue_and_compatible_requests_are_passed() {
        let reader = held("a", LockType::Shared, 60);
        let (writer, other_reader) = (
            queued(1, "b", LockType::Exclusive),
            queued(2, "c", LockType::Shared),
        );
        assert_eq!(
            blocker(LockType::Exclusive, Rule::Matrix, &[&reader], &[&writer]),
            Some(Blocker::Holder(&reader))
        );
        assert_eq!(
            blocker(LockType::Shared, Rule::Matrix, &[&reader], &[&writer]),
            Some(Blocker::Queued(&writer)),
            "a reader behind a queued writer waits"
        );
        assert_eq!(
            blocker(LockType::Shared, Rule::Matrix, &[&reader], &[&other_reader]),
            None
        );
        assert_eq!(
            blocker(LockType::Intent, Rule::Matrix, &[], &[&writer]),
            None,
            "an intent lock is compatible with everything"
        );
    }

    #[test]
    fn a_resource_admits_up_to_its_capacity_and_never_past_its_queue() {
        let (a, b) = (
            held("a", LockType::Exclusive, 90),
            held("b", LockType::Exclusive, 30),
        );
        let first = queued(1, "c", LockType::Exclusive);
        assert_eq!(
            blocker(LockType::Exclusive, Rule::Slots(3), &[&a, &b], &[]),
            None
        );
        assert_eq!(
            blocker(LockType::Exclusive, Rule::Slots(2), &[&a, &b], &[]),
            Some(Blocker::Holder(&b)),
            "full: the holder that frees first"
        );
        assert_eq!(
            blocker(LockType::Exclusive, Rule::Slots(3), &[&a, &b], &[&first]),
            Some(Blocker::Queued(&first)),
            "a free slot goes to the head of the queue"
        );
    }

    #[test]
    fn only_other_sessions_queued_before_are_ahead() {
        let queue = [
            queued(1, "a", LockType::Exclusive),
            queued(2, "me", LockType::Shared),
            queued(3, "b", LockType::Exclusive),
            queued(4, "me", LockType::Exclusive),
        ];
        let ids = |ahead: Vec<&Waiter>| ahead.iter().map(|w| w.id).collect::<Vec<_>>();
        assert_eq!(ids(ahead(&queue, "me", Some(4))), [1, 3]);
        assert_eq!(ids(ahead(&queue, "me", Some(2))), [1]);
        assert_eq!(
            ids(ahead(&queue, "me", None)),
            [1, 3],
            "a newcomer waits behind all"
        );
    }

    #[test]
    fn a_queue_entry_waits_while_its_session_lives_and_its_deadline_is_ahead() {
        let alive_since = T0.minus(Duration::from_secs(300));
        let entry = queued(1, "a", LockType::Exclusive);
        assert!(waiting(&entry, alive_since, T0));
        let stale = Waiter {
            last_heartbeat: alive_since.minus(Duration::from_millis(1)),
            ..entry.clone()
        };
        assert!(!waiting(&stale, alive_since, T0));
        let due = Waiter {
            waiting_until: Some(T0),
            ..entry
        };
        assert!(
            !waiting(&due, alive_since, T0),
            "the deadline itself is past"
        );
    }

    #[test]
    fn a_capacity_is_set_once_by_the_first_request_that_names_one() {
        let resource = |set, asked| capacity("resource:gpu", "app", set, asked);
        assert_eq!(resource(None, None).ok(), Some(Capacity::InForce(1)));
        assert_eq!(resource(None, Some(3)).ok(), Some(Capacity::Setting(3)));
        assert_eq!(
            resource(Some((3, "a")), None).ok(),
            Some(Capacity::InForce(3))
        );
        assert_eq!(
            resource(Some((3, "a")), Some(3)).ok(),
            Some(Capacity::InForce(3))
        );
        let changed = resource(Some((3, "a")), Some(2))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            changed.as_deref(),
            Some(
                "invalid argument `capacity`: resource:gpu already has capacity 3 in project app \
                 (set by 'a'); omit capacity or pass 3"
            )
        );
        for out_of_range in [0, MAX_CAPACITY + 1] {
            let refused = resource(None, Some(out_of_range))
                .err()
                .map(|e| e.to_string());
            assert!(
                refused.is_some_and(|e| e.contains("1 to 1000")),
                "{out_of_range}"
            );
        }
    }
}
