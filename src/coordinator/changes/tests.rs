//! Edit locks and changes on values the hooks and the guard would pass.

use super::super::testing::*;
use super::super::{EditLock, LockRequest};
use super::*;
use crate::model::LockType;

const MAIN: &str = "/work/app";
const FEATURE: &str = "/work/app-feature";

fn edit_lock(h: &Harness, session: &str, key: &str, worktree: &str) -> bool {
    h.coordinator
        .acquire_lock(LockRequest {
            edit: Some(EditLock {
                worktree: worktree.into(),
                until_commit: true,
            }),
            ..LockRequest::new(session, key, LockType::Exclusive)
        })
        .expect("acquire")
        .granted
}

/// `session` commits src/lib.rs as c0ffee, its working tree still changing `still`.
fn commit(h: &Harness, session: &str, still: &[&str]) -> Vec<String> {
    h.coordinator
        .commit_done(
            "app",
            &[session.to_owned()],
            "c0ffee",
            &keys(&["src/lib.rs"]),
            &keys(still),
        )
        .expect("commit")
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| k.to_string()).collect()
}

#[test]
fn an_edit_lock_binds_its_own_worktree_and_lasts_until_commit() {
    let h = Harness::new();
    let (a, b) = (h.session("a", "app", None), h.session("b", "app", None));
    assert!(edit_lock(&h, &a, "src/lib.rs#one", MAIN));
    assert!(!edit_lock(&h, &b, "src/lib.rs#one", MAIN), "same worktree");
    assert!(!edit_lock(&h, &b, "src/lib.rs", MAIN), "the file covers it");
    assert!(
        edit_lock(&h, &b, "src/lib.rs#two", MAIN),
        "another function"
    );
    assert!(
        edit_lock(&h, &b, "src/lib.rs#one", FEATURE),
        "another worktree"
    );
    let explicit = h
        .coordinator
        .acquire_lock(LockRequest::new(&b, "src/lib.rs#one", LockType::Exclusive))
        .expect("acquire");
    assert!(!explicit.granted, "a lock_acquire binds every worktree");

    h.advance(Duration::from_secs(86_400 * 2));
    h.coordinator.heartbeat(&a).expect("alive");
    h.coordinator.heartbeat(&b).expect("alive");
    let held = h
        .coordinator
        .edit_check(
            "app",
            std::slice::from_ref(&b),
            "src/lib.rs#one",
            Some(MAIN),
        )
        .expect("check");
    assert_eq!(held.blockers.len(), 1, "no TTL: two days later still held");
    assert_eq!(held.blockers[0].expires_at, Timestamp::UNTIL_COMMIT);

    let released = commit(&h, &a, &[]);
    assert_eq!(released, ["src/lib.rs#one"]);
    assert!(
        edit_lock(&h, &b, "src/lib.rs#one", MAIN),
        "free once committed"
    );
}

#[test]
fn hunks_left_out_of_a_commit_keep_their_lock() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    assert!(edit_lock(&h, &a, "src/lib.rs#one", MAIN));
    assert!(edit_lock(&h, &a, "src/lib.rs#two", MAIN));
    let released = commit(&h, &a, &["src/lib.rs#two"]);
    assert_eq!(released, ["src/lib.rs#one"]);
}

#[test]
fn other_worktrees_changes_are_found_until_merged() {
    let h = Harness::new();
    let (a, b) = (h.session("a", "app", None), h.session("b", "app", None));
    let main = Worktree {
        root: MAIN,
        branch: Some("main"),
    };
    h.coordinator
        .record_changes(&a, &keys(&["src/lib.rs#one", "src/main.rs"]), main)
        .expect("record");
    let seen = |key: &str, worktree: &str| {
        h.coordinator
            .changes_elsewhere("app", std::slice::from_ref(&b), &keys(&[key]), worktree)
            .expect("look")
    };
    assert_eq!(seen("src/lib.rs#one", FEATURE).len(), 1);
    assert_eq!(seen("src/lib.rs", FEATURE).len(), 1, "the file covers it");
    assert_eq!(seen("src/lib.rs#one.inner", FEATURE).len(), 1, "nested");
    assert!(seen("src/lib.rs#two", FEATURE).is_empty());
    assert!(seen("src/lib.rs#one", MAIN).is_empty(), "its own worktree");
    let found = seen("src/", FEATURE);
    assert_eq!(found.len(), 2, "a directory covers both");
    assert_eq!(found[0].session_name, "a");
    assert_eq!(found[0].branch.as_deref(), Some("main"));

    commit(&h, &a, &[]);
    let committed = seen("src/lib.rs#one", FEATURE);
    assert_eq!(committed[0].commit.as_deref(), Some("c0ffee"));
    h.coordinator.deregister(&a).expect("end");
    let kept = seen("src/", FEATURE);
    assert_eq!(
        kept.len(),
        1,
        "the committed change outlives its session, the uncommitted one does not"
    );
    assert_eq!(h.coordinator.forget_merged(&kept).expect("forget"), 1);
    assert!(seen("src/", FEATURE).is_empty());
}

#[test]
fn a_settled_edit_lock_is_released_only_after_the_grace() {
    let h = Harness::new();
    let (a, b) = (h.session("a", "app", None), h.session("b", "app", None));
    assert!(edit_lock(&h, &a, "src/lib.rs#one", MAIN));
    let holder = |h: &Harness| {
        h.coordinator
            .edit_check(
                "app",
                std::slice::from_ref(&b),
                "src/lib.rs#one",
                Some(MAIN),
            )
            .expect("check")
            .blockers
    };
    let lock = holder(&h).remove(0);
    assert!(!settles(&lock, h.coordinator.now()));
    assert!(!h.coordinator.release_settled(&lock).expect("release"));
    h.advance(SETTLE_GRACE);
    h.coordinator.heartbeat(&a).expect("alive");
    assert!(settles(&lock, h.coordinator.now()));
    assert!(h.coordinator.release_settled(&lock).expect("release"));
    assert!(holder(&h).is_empty());
}
