//! The product description's walkthroughs, each session in its own server process sharing one
//! database, as two AI clients would run them.

use crate::common::{Db, Server};
use serde_json::json;

/// The product description's two sessions, each in its own server process.
async fn auth_and_profile(db: &Db) -> (Server, String, Server, String) {
    let (a, b) = (db.server().await, db.server().await);
    let session_a = a
        .register("auth-implementation", "my-app", "feature/auth")
        .await;
    let session_b = b
        .register("profile-page", "my-app", "feature/profile")
        .await;
    (a, session_a, b, session_b)
}

#[tokio::test]
async fn basic_session_lifecycle() {
    let db = Db::new();
    let server = db.server().await;
    let id = server
        .register("feature-auth", "my-app", "feature/auth")
        .await;

    let granted = server
        .call(
            "lock_acquire",
            json!({"session_id": id, "file_path": "src/auth.ts"}),
        )
        .await;
    assert_eq!(granted["granted"], true);
    assert_eq!(granted["lock_type"], "exclusive");
    assert!(granted["fencing_token"].as_i64().is_some_and(|t| t > 0));

    let intent = server
        .call(
            "intent_announce",
            json!({"session_id": id, "intent_type": "file_edit", "target": "src/auth.ts"}),
        )
        .await;
    assert_eq!(intent["status"], "announced");
    assert!(
        intent["intent_id"]
            .as_str()
            .is_some_and(|i| i.starts_with("int-"))
    );

    let released = server
        .call(
            "lock_release",
            json!({"session_id": id, "file_path": "src/auth.ts"}),
        )
        .await;
    assert_eq!(released["released"], true);

    let check = server
        .call(
            "conflict_check",
            json!({"session_id": id, "intent_type": "git_commit"}),
        )
        .await;
    assert_eq!(check, json!({"conflicts": [], "safe_to_proceed": true}));

    let gone = server
        .call("session_deregister", json!({"session_id": id}))
        .await;
    assert_eq!(gone["status"], "deregistered");
    assert_eq!(gone["locks_released"], 0);
}

#[tokio::test]
async fn two_sessions_coordinating() {
    let db = Db::new();
    let (a, session_a, b, session_b) = auth_and_profile(&db).await;

    let granted = a
        .call(
            "lock_acquire",
            json!({"session_id": session_a, "file_path": "src/models/user.ts", "lock_type": "exclusive"}),
        )
        .await;
    assert_eq!(granted["granted"], true);

    let denied = b
        .call(
            "lock_acquire",
            json!({"session_id": session_b, "file_path": "src/models/user.ts", "lock_type": "exclusive"}),
        )
        .await;
    assert_eq!(denied["granted"], false);
    assert_eq!(denied["held_by"], session_a.as_str());
    assert_eq!(denied["holder_name"], "auth-implementation");

    let sent = b
        .call(
            "message_send",
            json!({
                "from_session": session_b,
                "to_session": session_a,
                "channel": "coordination",
                "content": "I need to add a 'bio' field to the User model. Can you include it in your changes?"
            }),
        )
        .await;
    assert_eq!(sent["delivered_to"], 1);

    // A notices the message on its very next answer, without polling for mail.
    let status = a
        .call("lock_check", json!({"file_path": "src/models/user.ts"}))
        .await;
    assert_eq!(status["unread_messages"], json!({"count": 1, "urgent": 0}));
    let inbox = a
        .call("message_list", json!({"session_id": session_a}))
        .await;
    assert_eq!(inbox["messages"][0]["from_name"], "profile-page");
    assert_eq!(inbox["messages"][0]["channel"], "coordination");

    a.call(
        "message_send",
        json!({
            "from_session": session_a,
            "to_session": session_b,
            "channel": "coordination",
            "content": "Done! Added 'bio: string' to the User interface. Releasing lock now."
        }),
    )
    .await;
    let released = a
        .call(
            "lock_release",
            json!({"session_id": session_a, "file_path": "src/models/user.ts"}),
        )
        .await;
    assert_eq!(released["released"], true);

    let shared = b
        .call(
            "lock_acquire",
            json!({"session_id": session_b, "file_path": "src/models/user.ts", "lock_type": "shared"}),
        )
        .await;
    assert_eq!(shared["granted"], true);
    assert!(shared["fencing_token"].as_i64() > granted["fencing_token"].as_i64());
    assert_eq!(
        shared["unread_messages"]["count"], 1,
        "A's reply is waiting for B"
    );
}

#[tokio::test]
async fn sharing_context_across_sessions() {
    let db = Db::new();
    let (a, session_a, b, _) = auth_and_profile(&db).await;

    let shared = a
        .call(
            "context_share",
            json!({
                "session_id": session_a,
                "context_type": "discovery",
                "project": "my-app",
                "content": "The auth module uses JWT tokens (not sessions). Tokens are stored in httpOnly cookies, not localStorage. See src/auth/jwt.ts for the implementation."
            }),
        )
        .await;
    assert_eq!(shared["status"], "shared");
    a.call(
        "context_share",
        json!({"session_id": session_a, "context_type": "convention", "content": "Components live in src/components."}),
    )
    .await;

    let discoveries = b
        .call(
            "context_query",
            json!({"project": "my-app", "context_type": "discovery"}),
        )
        .await;
    assert_eq!(discoveries["count"], 1);
    let entry = &discoveries["entries"][0];
    assert!(
        entry["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("The auth module uses JWT"))
    );
    assert_eq!(entry["shared_by"], "auth-implementation");
    assert_eq!(entry["context_type"], "discovery");
    assert!(entry["created_at"].is_string());

    let by_keyword = b
        .call(
            "context_query",
            json!({"project": "my-app", "keyword": "auth"}),
        )
        .await;
    assert_eq!(by_keyword["count"], 1);
    assert_eq!(by_keyword["entries"][0]["context_id"], shared["context_id"]);

    let deleted = b
        .call(
            "context_delete",
            json!({"context_id": shared["context_id"]}),
        )
        .await;
    assert_eq!(deleted["deleted"], true);
    let after = a.call("context_query", json!({"keyword": "JWT"})).await;
    assert_eq!(after["count"], 0);
}

#[tokio::test]
async fn announcing_git_operations() {
    let db = Db::new();
    let (a, session_a, b, session_b) = auth_and_profile(&db).await;

    let rebase = a
        .call(
            "intent_announce",
            json!({
                "session_id": session_a,
                "intent_type": "git_rebase",
                "target": "feature/auth",
                "description": "Rebasing feature/auth onto latest main"
            }),
        )
        .await;

    let check = b
        .call(
            "conflict_check",
            json!({"session_id": session_b, "intent_type": "git_push"}),
        )
        .await;
    assert_eq!(check["safe_to_proceed"], false);
    let conflicts = check["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{check}");
    assert_eq!(conflicts[0]["type"], "git_operation");
    assert_eq!(conflicts[0]["severity"], "high");
    assert_eq!(conflicts[0]["session_name"], "auth-implementation");
    let description = conflicts[0]["description"].as_str().expect("description");
    assert!(
        description
            .starts_with("Session 'auth-implementation' is currently rebasing branch feature/auth"),
        "{description}"
    );
    assert!(description.contains("Rebasing feature/auth onto latest main"));

    let cleared = a
        .call(
            "intent_clear",
            json!({"session_id": session_a, "intent_id": rebase["intent_id"]}),
        )
        .await;
    assert_eq!(cleared["cleared"], true);
    let check = b
        .call(
            "conflict_check",
            json!({"session_id": session_b, "intent_type": "git_push"}),
        )
        .await;
    assert_eq!(check["safe_to_proceed"], true);
}

#[tokio::test]
async fn conflicts_seen_from_another_process() {
    let db = Db::new();
    let (a, b) = (db.server().await, db.server().await);
    a.register("a", "my-app", "main").await;
    b.register("b", "my-app", "main").await;
    a.call("lock_acquire", json!({"file_path": "src/x.ts"}))
        .await;
    a.call(
        "intent_announce",
        json!({"intent_type": "refactor", "files": ["src/y.ts"], "description": "splitting y"}),
    )
    .await;

    let check = b
        .call(
            "conflict_check",
            json!({"file_paths": ["./src/x.ts", "src/y.ts"]}),
        )
        .await;
    assert_eq!(check["safe_to_proceed"], false);
    let kinds: Vec<(String, String)> = check["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_owned(),
                c["severity"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("file_lock".to_owned(), "high".to_owned()),
            ("intent".to_owned(), "medium".to_owned()),
            ("branch".to_owned(), "low".to_owned()),
        ]
    );
}

#[tokio::test]
async fn broadcasts_and_per_recipient_read_state_across_processes() {
    let db = Db::new();
    let (a, b, c) = (db.server().await, db.server().await, db.server().await);
    a.register("a", "my-app", "main").await;
    b.register("b", "my-app", "main").await;
    c.register("c", "my-app", "main").await;

    let sent = a
        .call(
            "message_send",
            json!({"content": "main is broken, do not pull", "channel": "alerts", "priority": "urgent"}),
        )
        .await;
    assert_eq!(sent["delivered_to"], 2);

    let heartbeat = b.call("session_heartbeat", json!({})).await;
    assert_eq!(
        heartbeat["unread_messages"],
        json!({"count": 1, "urgent": 1})
    );
    let read = b
        .call(
            "message_list",
            json!({"unread_only": true, "mark_read": true}),
        )
        .await;
    assert_eq!(read["count"], 1);
    assert_eq!(read["messages"][0]["priority"], "urgent");
    let heartbeat = b.call("session_heartbeat", json!({})).await;
    assert!(heartbeat.get("unread_messages").is_none(), "b read it");
    let heartbeat = c.call("session_heartbeat", json!({})).await;
    assert_eq!(heartbeat["unread_messages"]["count"], 1, "c has not");
    let sender = a.call("session_heartbeat", json!({})).await;
    assert!(
        sender.get("unread_messages").is_none(),
        "no echo to the sender"
    );
}

/// Session groups: a backend pair and a frontend session in one project, each in its own
/// server process, filtering by group and messaging a group.
#[tokio::test]
async fn session_groups_filter_and_receive_messages() {
    let db = Db::new();
    let (api, worker, page) = (db.server().await, db.server().await, db.server().await);
    let mut ids = Vec::new();
    for (server, name, group) in [
        (&api, "api", "backend"),
        (&worker, "worker", "backend"),
        (&page, "page", "frontend"),
    ] {
        let answer = server
            .call(
                "session_register",
                json!({"name": name, "project": "shop", "group": group}),
            )
            .await;
        assert_eq!(answer["group"], group);
        ids.push(answer["session_id"].as_str().expect("id").to_owned());
    }
    worker
        .call("lock_acquire", json!({"file_path": "src/queue.rs"}))
        .await;
    page.call(
        "intent_announce",
        json!({"intent_type": "file_edit", "target": "web/cart.tsx"}),
    )
    .await;

    let backend = page.call("session_list", json!({"group": "backend"})).await;
    let names: Vec<_> = backend["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["api", "worker"]);
    let locks = page.call("lock_list", json!({"group": "backend"})).await;
    assert_eq!(locks["count"], 1);
    assert_eq!(locks["locks"][0]["holder_name"], "worker");
    assert_eq!(
        page.call("lock_list", json!({"group": "frontend"})).await["count"],
        0
    );
    let intents = api.call("intent_list", json!({"group": "frontend"})).await;
    assert_eq!(intents["intents"][0]["session_name"], "page");

    let sent = page
        .call(
            "message_send",
            json!({"to_group": "backend", "content": "cart API needs a discount field"}),
        )
        .await;
    assert_eq!(sent["delivered_to"], 2);
    for server in [&api, &worker] {
        let inbox = server.call("message_list", json!({})).await;
        assert_eq!(inbox["messages"][0]["to_group"], "backend");
        assert_eq!(inbox["messages"][0]["from_name"], "page");
    }
    assert_eq!(page.call("message_list", json!({})).await["count"], 0);
    let err = api
        .call_err(
            "message_send",
            json!({"to_group": "fronted", "content": "typo"}),
        )
        .await;
    assert!(
        err.contains("`to_group`") && err.contains("backend, frontend"),
        "{err}"
    );
}
