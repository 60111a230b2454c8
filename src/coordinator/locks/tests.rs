//! The lock methods against a coordinator on an in-memory database: grants, renewals,
//! refusals, release, looking, resources, and a model of the rules under random operations.

use super::super::testing::*;
use super::super::{IntentRequest, LockListQuery};
use super::*;
use crate::model::IntentType;

fn acquire(h: &Harness, session: &str, path: &str, lock_type: LockType) -> LockOutcome {
    h.coordinator
        .acquire_lock(LockRequest::new(session, path, lock_type))
        .expect("acquire")
}

#[test]
fn the_matrix_holds_between_sessions() {
    use LockType::*;
    for (held, wanted, granted) in [
        (Exclusive, Exclusive, false),
        (Exclusive, Shared, false),
        (Exclusive, Intent, true),
        (Shared, Exclusive, false),
        (Shared, Shared, true),
        (Shared, Intent, true),
        (Intent, Exclusive, true),
        (Intent, Shared, true),
        (Intent, Intent, true),
    ] {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        assert!(acquire(&h, &a, "f.ts", held).granted);
        let outcome = acquire(&h, &b, "f.ts", wanted);
        assert_eq!(outcome.granted, granted, "{held} held, {wanted} wanted");
        if !granted {
            assert_eq!(outcome.held_by.as_deref(), Some(a.as_str()));
            assert_eq!(outcome.holder_name.as_deref(), Some("a"));
            assert_eq!(outcome.lock_type, held);
            // What the model reads: one sentence per step, no layout whitespace inside.
            let reason = outcome.reason.unwrap_or_default();
            assert!(
                reason.contains("wait_seconds") && !reason.contains("  "),
                "{reason:?}"
            );
        }
    }
}

#[test]
fn intent_overlap_is_warned_about_not_blocked() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    assert!(acquire(&h, &a, "f.ts", LockType::Intent).granted);
    let outcome = acquire(&h, &b, "f.ts", LockType::Exclusive);
    assert!(outcome.granted);
    assert_eq!(outcome.warnings.len(), 1);
    assert!(outcome.warnings[0].starts_with("Session 'a'"));

    let intent = acquire(&h, &a, "g.ts", LockType::Intent);
    assert!(intent.warnings.is_empty());
    h.coordinator
        .announce_intent(IntentRequest {
            session_id: b.clone(),
            intent_type: IntentType::FileEdit,
            target: Some("g.ts".into()),
            description: Some("adding bio".into()),
            files: vec![],
        })
        .expect("announce");
    let again = acquire(&h, &a, "g.ts", LockType::Exclusive);
    assert!(
        again
            .warnings
            .iter()
            .any(|w| w.contains("file_edit") && w.contains("adding bio"))
    );
}

#[test]
fn projects_do_not_collide() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "other", None);
    assert!(acquire(&h, &a, "f.ts", LockType::Exclusive).granted);
    assert!(acquire(&h, &b, "f.ts", LockType::Exclusive).granted);
}

#[test]
fn spellings_of_a_path_collide_and_absolute_paths_resolve_per_session() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    let granted = acquire(&h, &a, "/work/a/src/./x/../user.ts", LockType::Exclusive);
    assert_eq!(granted.file_path, "src/user.ts");
    for spelling in [
        "src/user.ts",
        "./src/user.ts",
        "src\\user.ts",
        "/work/b/src/user.ts",
    ] {
        assert!(
            !acquire(&h, &b, spelling, LockType::Exclusive).granted,
            "{spelling}"
        );
    }
    let escape = h
        .coordinator
        .acquire_lock(LockRequest::new(&b, "../outside.ts", LockType::Exclusive))
        .err()
        .map(|e| e.to_string());
    assert!(escape.is_some_and(|e| e.starts_with("invalid argument `file_path`")));
}

#[test]
fn an_expired_lock_is_gone_at_once_and_tokens_keep_rising() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    let first = h
        .coordinator
        .acquire_lock(LockRequest {
            ttl_seconds: Some(10),
            ..LockRequest::new(&a, "f.ts", LockType::Exclusive)
        })
        .expect("first");
    h.advance(Duration::from_secs(9));
    assert!(!acquire(&h, &b, "f.ts", LockType::Exclusive).granted);
    h.advance(Duration::from_secs(1));
    let status = h
        .coordinator
        .check_lock(Some(&b), None, "f.ts", None)
        .expect("check");
    assert!(
        !status.locked,
        "expired locks are invisible without a sweep"
    );
    let second = acquire(&h, &b, "f.ts", LockType::Exclusive);
    assert!(second.granted);
    assert!(second.fencing_token > first.fencing_token);
}

#[test]
fn renewing_keeps_the_token_and_upgrading_takes_a_new_one() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    let shared = acquire(&h, &a, "f.ts", LockType::Shared);
    h.advance(Duration::from_secs(100));
    let renewed = acquire(&h, &a, "f.ts", LockType::Shared);
    assert!(renewed.renewed);
    assert_eq!(renewed.fencing_token, shared.fencing_token);
    assert!(renewed.expires_at > shared.expires_at);

    assert!(acquire(&h, &b, "f.ts", LockType::Shared).granted);
    let blocked = acquire(&h, &a, "f.ts", LockType::Exclusive);
    assert!(!blocked.granted, "upgrade waits for the other reader");
    assert_eq!(blocked.held_by.as_deref(), Some(b.as_str()));

    h.coordinator.release_lock(&b, "f.ts").expect("release");
    let upgraded = acquire(&h, &a, "f.ts", LockType::Exclusive);
    assert!(upgraded.granted && !upgraded.renewed);
    assert!(upgraded.fencing_token > shared.fencing_token);
}

#[test]
fn only_the_holder_releases() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    acquire(&h, &a, "f.ts", LockType::Exclusive);
    let refused = h.coordinator.release_lock(&b, "f.ts").expect("release");
    assert!(!refused.released);
    assert!(
        refused
            .reason
            .is_some_and(|r| r.contains("only the holder"))
    );
    assert!(
        h.coordinator
            .check_lock(Some(&b), None, "f.ts", None)
            .expect("check")
            .locked
    );
    assert!(
        h.coordinator
            .release_lock(&a, "./f.ts")
            .expect("release")
            .released
    );
    assert!(
        !h.coordinator
            .release_lock(&a, "f.ts")
            .expect("again")
            .released
    );
}

#[test]
fn ttl_is_bounded() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    for bad in [0, MAX_TTL.as_secs() + 1] {
        let err = h
            .coordinator
            .acquire_lock(LockRequest {
                ttl_seconds: Some(bad),
                ..LockRequest::new(&a, "f.ts", LockType::Exclusive)
            })
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`ttl_seconds`") && e.contains("1 to 86400")));
    }
}

#[test]
fn looking_needs_a_project_and_lists_filter() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    acquire(&h, &a, "x.ts", LockType::Exclusive);
    acquire(&h, &b, "y.ts", LockType::Shared);
    assert!(h.coordinator.check_lock(None, None, "x.ts", None).is_err());
    let status = h
        .coordinator
        .check_lock(None, Some("app"), "x.ts", None)
        .expect("check");
    assert_eq!(status.holder_name.as_deref(), Some("a"));

    let all = h
        .coordinator
        .list_locks(Some(&a), LockListQuery::default())
        .expect("list");
    assert_eq!(all.count, 2);
    let of_b = h
        .coordinator
        .list_locks(
            Some(&a),
            LockListQuery {
                session_id: Some(b.clone()),
                ..Default::default()
            },
        )
        .expect("list");
    assert_eq!(
        of_b.locks
            .iter()
            .map(|l| l.file_path.as_str())
            .collect::<Vec<_>>(),
        ["y.ts"]
    );
    let elsewhere = h
        .coordinator
        .list_locks(
            None,
            LockListQuery {
                project: Some("other".into()),
                ..Default::default()
            },
        )
        .expect("list");
    assert_eq!(elsewhere.count, 0);
}

fn slot(h: &Harness, session: &str, key: &str, capacity: Option<u64>, queue: bool) -> LockOutcome {
    h.coordinator
        .acquire_lock(LockRequest {
            capacity,
            queue,
            ..LockRequest::new(session, key, LockType::Exclusive)
        })
        .expect("acquire a slot")
}

#[test]
fn a_resource_admits_up_to_its_capacity_first_come_first_served() {
    let h = Harness::new();
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| h.session(n, "app", None));
    assert!(slot(&h, &a, "resource:Playwright", Some(2), false).granted);
    let second = slot(&h, &b, "resource:playwright", None, false);
    assert!(
        second.granted,
        "the capacity was set to 2 and names ignore case"
    );
    assert_eq!(second.file_path, "resource:playwright");
    let full = slot(&h, &c, "resource:playwright", None, true);
    assert_eq!(full.queue_position, Some(1));
    assert!(full.reason.is_some_and(|r| r.contains("is full")));
    assert_eq!(
        slot(&h, &d, "resource:playwright", None, true).queue_position,
        Some(2)
    );

    h.coordinator
        .release_lock(&b, "resource:playwright")
        .expect("release");
    let status = h
        .coordinator
        .check_lock(Some(&a), None, "resource:playwright", None)
        .expect("check");
    assert_eq!(status.capacity, Some(2));
    let names: Vec<&str> = status
        .holders
        .iter()
        .map(|l| l.holder_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a", "c"],
        "the head of the queue got the freed slot"
    );
    assert_eq!(status.queue.len(), 1);
    // Holding a resource does not touch files, and a glob over everything does not touch it.
    assert!(acquire(&h, &b, "**", LockType::Exclusive).granted);

    let other_project = h.session("e", "web", None);
    assert!(slot(&h, &other_project, "resource:playwright", Some(5), false).granted);
}

#[test]
fn setting_a_capacity_grants_requests_queued_under_the_default() {
    let h = Harness::new();
    let [a, b, c] = ["a", "b", "c"].map(|n| h.session(n, "app", None));
    assert!(slot(&h, &a, "resource:gpu", None, false).granted);
    assert!(
        slot(&h, &b, "resource:gpu", None, true).queued,
        "capacity 1 so far"
    );
    // c sets the capacity to 3: b, first in line, gets a slot, and so does c.
    let third = slot(&h, &c, "resource:gpu", Some(3), false);
    assert!(third.granted, "{third:?}");
    let status = h
        .coordinator
        .check_lock(Some(&a), None, "resource:gpu", None)
        .expect("check");
    let names: Vec<&str> = status
        .holders
        .iter()
        .map(|l| l.holder_name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(status.queue.is_empty());
}

#[test]
fn a_resource_capacity_is_set_once_and_checked() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let error = |key: &str, capacity: Option<u64>, lock_type: LockType| {
        h.coordinator
            .acquire_lock(LockRequest {
                capacity,
                ..LockRequest::new(&a, key, lock_type)
            })
            .expect_err("refused")
            .to_string()
    };
    assert!(slot(&h, &a, "resource:gpu", Some(2), false).granted);
    let changed = error("resource:gpu", Some(3), LockType::Exclusive);
    assert!(
        changed.contains("already has capacity 2") && changed.contains("'a'"),
        "{changed}"
    );
    assert!(error("resource:db", Some(0), LockType::Exclusive).contains("1 to 1000"));
    assert!(error("src/a.ts", Some(2), LockType::Exclusive).contains("only a resource key"));
    assert!(error("resource:gpu", None, LockType::Shared).contains("must be exclusive"));
    let pathlike = error("./resource:GPU", None, LockType::Exclusive);
    assert!(pathlike.contains("through a path"), "{pathlike}");
    let bad = error("resource:no spaces", None, LockType::Exclusive);
    assert!(
        bad.contains("file_path") && bad.contains("letters, digits"),
        "{bad}"
    );
}

#[test]
fn listing_a_path_shows_the_locks_that_overlap_it() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    acquire(&h, &a, "src/auth/jwt.ts", LockType::Exclusive);
    acquire(&h, &b, "src/**/*.test.ts", LockType::Shared);
    acquire(&h, &b, "docs/readme.md", LockType::Exclusive);
    let listed = |path: &str, session: Option<&str>| -> Vec<String> {
        h.coordinator
            .list_locks(
                Some(&a),
                LockListQuery {
                    file_path: Some(path.into()),
                    session_id: session.map(Into::into),
                    ..Default::default()
                },
            )
            .expect("list")
            .locks
            .into_iter()
            .map(|l| l.file_path)
            .collect()
    };
    assert_eq!(
        listed("src/auth/", None),
        ["src/**/*.test.ts", "src/auth/jwt.ts"]
    );
    assert_eq!(listed("src/auth/jwt.ts", None), ["src/auth/jwt.ts"]);
    assert_eq!(listed("src/a/b.test.ts", None), ["src/**/*.test.ts"]);
    assert_eq!(listed("src/auth/", Some(&a)), ["src/auth/jwt.ts"]);
    assert!(listed("lib/x.ts", None).is_empty());
}

mod model {
    //! The lock rules against a reference model small enough to trust by reading: random
    //! sequences of acquires, releases and clock moves over overlapping keys.

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::patterns::overlaps;

    const KEYS: [&str; 5] = ["src/a.ts", "src/", "src/*.ts", "lib/b.ts", "src/x/y.ts"];
    const TYPES: [LockType; 3] = [LockType::Exclusive, LockType::Shared, LockType::Intent];

    #[derive(Debug, Clone)]
    enum Op {
        Acquire {
            session: usize,
            key: usize,
            kind: usize,
        },
        Release {
            session: usize,
            key: usize,
        },
        Wait {
            seconds: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3usize, 0..KEYS.len(), 0..3usize)
                .prop_map(|(session, key, kind)| Op::Acquire { session, key, kind }),
            2 => (0..3usize, 0..KEYS.len()).prop_map(|(session, key)| Op::Release { session, key }),
            1 => (0..120u64).prop_map(|seconds| Op::Wait { seconds }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn grants_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            let h = Harness::new();
            let sessions: Vec<String> =
                ["a", "b", "c"].iter().map(|n| h.session(n, "app", None)).collect();
            // (session, key) -> (type, expires at in seconds since start)
            let mut held: HashMap<(usize, usize), (LockType, u64)> = HashMap::new();
            let mut now = 0u64;
            let mut last_token = 0;
            for op in ops {
                match op {
                    Op::Acquire { session, key, kind } => {
                        let wanted = TYPES[kind];
                        held.retain(|_, (_, expires)| *expires > now);
                        let blocked = held.iter().any(|((s, k), (t, _))| {
                            *s != session
                                && overlaps(KEYS[*k], KEYS[key])
                                && wanted.is_blocked_by(*t)
                        });
                        let outcome = h.coordinator.acquire_lock(LockRequest {
                            ttl_seconds: Some(60),
                            ..LockRequest::new(&sessions[session], KEYS[key], wanted)
                        }).expect("acquire");
                        prop_assert_eq!(outcome.granted, !blocked, "{:?} {} on {}", wanted, session, KEYS[key]);
                        if outcome.granted {
                            let token = outcome.fencing_token.unwrap_or(0);
                            if outcome.renewed {
                                prop_assert_eq!(token, last_token.min(token));
                            } else {
                                prop_assert!(token > last_token);
                                last_token = token;
                            }
                            held.insert((session, key), (wanted, now + 60));
                        }
                    }
                    Op::Release { session, key } => {
                        let live = held.remove(&(session, key)).is_some_and(|(_, e)| e > now);
                        let released = h.coordinator
                            .release_lock(&sessions[session], KEYS[key])
                            .expect("release");
                        prop_assert_eq!(released.released, live);
                    }
                    Op::Wait { seconds } => {
                        now += seconds;
                        h.advance(Duration::from_secs(seconds));
                        for id in &sessions {
                            h.coordinator.heartbeat(id).expect("heartbeat");
                        }
                    }
                }
            }
        }
    }
}
