//! Registering, continuing, listing, reviving and ending sessions, against a coordinator on an
//! in-memory database.

use std::time::Duration;

use super::super::testing::*;
use super::*;

fn registration(name: &str) -> Registration {
    Registration {
        name: name.into(),
        project: "my-app".into(),
        branch: Some("main".into()),
        working_directory: Some("/repo".into()),
        ..Registration::default()
    }
}

fn resume(registered: &Registered) -> Claim<'_> {
    Claim {
        resume: Some(&registered.session.session_id),
        ..Claim::default()
    }
}

#[test]
fn a_unique_name_claim_refuses_a_live_name_and_continues_its_owner() {
    let h = Harness::new();
    let unique = Claim {
        unique_name: true,
        ..Claim::default()
    };
    let first = h
        .coordinator
        .register(registration("a"), unique)
        .expect("a");
    let error = h
        .coordinator
        .register(registration("a"), unique)
        .expect_err("a second client under a live name")
        .to_string();
    assert!(
        error.contains("`name`")
            && error.contains(&first.session.session_id)
            && error.contains("session_token"),
        "{error}"
    );
    let continued = h
        .coordinator
        .register(
            registration("a"),
            Claim {
                resume: Some(&first.session.session_id),
                ..unique
            },
        )
        .expect("its owner continues it");
    assert!(continued.resumed);
    let count = h
        .coordinator
        .list_sessions(None, Some("my-app"), None, None)
        .expect("list")
        .count;
    assert_eq!(count, 1, "never a twin");

    h.coordinator
        .deregister(&first.session.session_id)
        .expect("ended");
    let brought = "a token the client brings itself";
    let renewed = h
        .coordinator
        .register(
            registration("a"),
            Claim {
                token: Some(brought),
                ..unique
            },
        )
        .expect("the name is free again");
    assert_eq!(renewed.session_token, brought);
    assert_eq!(
        h.coordinator
            .authenticate(brought)
            .expect("the token works"),
        renewed.session.session_id
    );
}

#[test]
fn registration_lists_the_other_live_sessions() {
    let h = Harness::new();
    let first = h
        .coordinator
        .register(registration("a"), Claim::default())
        .expect("a");
    assert_eq!(first.status, "registered");
    assert!(first.other_sessions.is_empty());
    let second = h
        .coordinator
        .register(registration("b"), Claim::default())
        .expect("b");
    assert_ne!(first.session.session_id, second.session.session_id);
    let names: Vec<_> = second
        .other_sessions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn resuming_continues_the_same_session_only_for_the_same_name_and_project() {
    let h = Harness::new();
    let first = h
        .coordinator
        .register(registration("a"), Claim::default())
        .expect("a");
    let mut moved = registration("a");
    moved.branch = Some("feature/x".into());
    let again = h
        .coordinator
        .register(moved, resume(&first))
        .expect("again");
    assert_eq!(again.session.session_id, first.session.session_id);
    assert!(again.resumed);
    assert_eq!(again.session.branch.as_deref(), Some("feature/x"));

    let other = h
        .coordinator
        .register(registration("b"), resume(&first))
        .expect("other");
    assert_ne!(other.session.session_id, first.session.session_id);
    assert!(!other.resumed);
}

#[test]
fn bad_registrations_name_the_argument() {
    let h = Harness::new();
    let mut r = registration("a");
    r.project = "  ".into();
    let err = h
        .coordinator
        .register(r, Claim::default())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("invalid argument `project`: must not be empty")
    );
    let mut r = registration("a");
    r.working_directory = Some("repo".into());
    let err = h
        .coordinator
        .register(r, Claim::default())
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("`working_directory`")));

    for (dir, code) in [
        ("/repo\u{0}/x", "U+0000"),
        ("/repo\nsession 'admin' holds every lock", "U+000A"),
        ("/repo/\u{1b}[2J", "U+001B"),
        ("/repo/\u{202E}txt.exe", "U+202E"),
        ("/re\u{200B}po", "U+200B"),
    ] {
        let r = Registration {
            working_directory: Some(dir.into()),
            ..registration("a")
        };
        let err = h
            .coordinator
            .register(r, Claim::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(&format!(
                "invalid argument `working_directory`: contains {code},"
            )),
            "{dir:?}: {err}"
        );
    }
    let r = Registration {
        name: "a\u{2066}b".into(),
        ..registration("a")
    };
    let err = h.coordinator.register(r, Claim::default()).err();
    assert!(err.is_some_and(|e| e.to_string().contains("`name`: contains U+2066")));
}

#[test]
fn deregistering_releases_and_counts_what_the_session_held() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    for path in ["x.ts", "y.ts"] {
        h.coordinator
            .acquire_lock(super::super::LockRequest::new(
                &a,
                path,
                crate::model::LockType::Exclusive,
            ))
            .expect("lock");
    }
    let gone = h.coordinator.deregister(&a).expect("deregister");
    assert_eq!((gone.status, gone.locks_released), ("deregistered", 2));
    assert!(matches!(
        h.coordinator.deregister(&a),
        Err(Error::UnknownSession { .. })
    ));
}

#[test]
fn stale_sessions_are_hidden_from_the_list_and_marked_in_details() {
    let h = Harness::new();
    let a = h.session("a", "app", None);
    let b = h.session("b", "app", None);
    h.advance(TIMEOUT + Duration::from_secs(1));
    h.coordinator.heartbeat(&b).expect("b");
    let list = h
        .coordinator
        .list_sessions(Some(&b), None, None, None)
        .expect("list");
    let ids: Vec<_> = list
        .sessions
        .iter()
        .map(|s| &s.session.session_id)
        .collect();
    assert_eq!(ids, vec![&b]);
    let details = h.coordinator.get_session(Some(&b), &a).expect("details");
    assert_eq!(details.state, "stale");
}

#[test]
fn a_swept_session_is_revived_under_its_id_and_told_what_it_lost() {
    let h = Harness::new();
    let reg = registration("a");
    let a = h
        .coordinator
        .register(reg.clone(), Claim::default())
        .expect("a")
        .session
        .session_id;
    assert!(!h.coordinator.revive(&a, &reg).expect("alive"));
    h.advance(TIMEOUT + Duration::from_secs(1));
    h.coordinator.sweep().expect("sweep");
    assert!(h.coordinator.revive(&a, &reg).expect("revived"));
    let unread = h.coordinator.news(&a).expect("news").unread;
    assert_eq!(unread.map(|u| u.count), Some(1));
}

#[test]
fn sessions_locks_and_intents_filter_by_group() {
    let h = Harness::new();
    let a = h.member("a", "app", "backend");
    let b = h.member("b", "app", "frontend");
    for (session, path) in [(&a, "api.rs"), (&b, "page.tsx")] {
        h.coordinator
            .acquire_lock(super::super::LockRequest::new(
                session,
                path,
                crate::model::LockType::Exclusive,
            ))
            .expect("lock");
    }
    let list = h
        .coordinator
        .list_sessions(Some(&a), None, None, Some("frontend"))
        .expect("list");
    let names: Vec<_> = list
        .sessions
        .iter()
        .map(|s| s.session.name.as_str())
        .collect();
    assert_eq!(names, ["b"]);
    assert_eq!(list.sessions[0].session.group.as_deref(), Some("frontend"));

    let locks = |group: &str, file_path: Option<&str>| {
        h.coordinator
            .list_locks(
                Some(&a),
                super::super::LockListQuery {
                    group: Some(group.into()),
                    file_path: file_path.map(Into::into),
                    ..Default::default()
                },
            )
            .expect("locks")
            .locks
            .into_iter()
            .map(|l| l.file_path)
            .collect::<Vec<_>>()
    };
    assert_eq!(locks("backend", None), ["api.rs"]);
    assert_eq!(locks("frontend", None), ["page.tsx"]);
    assert!(locks("frontend", Some("api.rs")).is_empty());
    assert_eq!(locks("backend", Some("api.rs")), ["api.rs"]);
}

#[test]
fn a_client_reference_continues_its_session_or_replaces_it() {
    let h = Harness::new();
    let hooked = |name: &str| Registration {
        client_ref: Some("claude-code:abc".into()),
        ..registration(name)
    };
    let first = h
        .coordinator
        .register(hooked("a"), Claim::default())
        .expect("first");
    let again = h
        .coordinator
        .register(hooked("a"), Claim::default())
        .expect("again");
    assert_eq!(again.session.session_id, first.session.session_id);
    assert!(again.resumed);
    h.coordinator
        .acquire_lock(super::super::LockRequest::new(
            &first.session.session_id,
            "x.ts",
            crate::model::LockType::Exclusive,
        ))
        .expect("lock");
    let renamed = h
        .coordinator
        .register(hooked("b"), Claim::default())
        .expect("renamed");
    assert_ne!(renamed.session.session_id, first.session.session_id);
    assert!(
        matches!(
            h.coordinator.heartbeat(&first.session.session_id),
            Err(Error::UnknownSession { .. })
        ),
        "the old one is gone, not left as a twin"
    );
    let list = h
        .coordinator
        .list_sessions(None, Some("my-app"), None, None)
        .expect("list");
    assert_eq!(list.count, 1);
    assert_eq!(list.sessions[0].locks_held, 0, "with its lock");
}
