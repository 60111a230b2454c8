//! Sessions live exactly as long as their process: clean exits release at once, dead processes
//! are swept after the timeout, idle but living ones are kept alive.

use std::time::{Duration, Instant};

use crate::common::{Db, Server, wait_exit};
use serde_json::json;

/// Short liveness settings so the tests run in seconds.
const FAST: &[(&str, &str)] = &[
    ("MCP_SESSION_TIMEOUT_SEC", "2"),
    ("MCP_CLEANUP_INTERVAL_SEC", "1"),
];

async fn holder_and_watcher(db: &Db, env: &[(&str, &str)]) -> (Server, Server, String) {
    let holder = db.server_with(env).await;
    let watcher = db.server_with(env).await;
    let id = holder.register("holder", "app", "main").await;
    watcher.register("watcher", "app", "main").await;
    let granted = holder
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(granted["granted"], true);
    (holder, watcher, id)
}

async fn assert_released_on_exit(stop: impl FnOnce(&Server)) {
    let db = Db::new();
    let (holder, watcher, id) = holder_and_watcher(&db, &[]).await;
    let pid = holder.pid;
    stop(&holder);
    assert!(
        wait_exit(pid, Duration::from_secs(5)).await,
        "the server exits"
    );

    let status = watcher
        .call("lock_check", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(
        status["locked"], false,
        "its locks were released on the way out"
    );
    let sessions = watcher.call("session_list", json!({})).await;
    let names: Vec<_> = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("watcher")]);
    let err = watcher
        .call_err("session_get", json!({"session_id": id}))
        .await;
    assert!(err.contains("unknown session"), "{err}");
    drop(holder);
}

#[tokio::test]
async fn closing_stdin_deregisters_and_releases() {
    let db = Db::new();
    let (holder, watcher, _) = holder_and_watcher(&db, &[]).await;
    let pid = holder.pid;
    holder.quit().await;
    assert!(wait_exit(pid, Duration::from_secs(5)).await);
    let status = watcher
        .call("lock_check", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(status["locked"], false);
}

#[tokio::test]
async fn sigterm_deregisters_and_releases() {
    assert_released_on_exit(|server| server.signal("TERM")).await;
}

#[tokio::test]
async fn sigint_deregisters_and_releases() {
    assert_released_on_exit(|server| server.signal("INT")).await;
}

#[tokio::test]
async fn a_killed_holder_is_swept_after_the_timeout() {
    let db = Db::new();
    let (holder, watcher, _) = holder_and_watcher(&db, FAST).await;
    holder.signal("KILL");
    let killed_at = Instant::now();
    assert!(wait_exit(holder.pid, Duration::from_secs(5)).await);

    let denied = watcher
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(
        denied["granted"], false,
        "a dead process's lock holds until it is swept"
    );
    loop {
        let attempt = watcher
            .call("lock_acquire", json!({"file_path": "src/a.ts"}))
            .await;
        if attempt["granted"] == true {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(2 + 1 + 3),
            "freed within timeout + sweep interval (plus slack)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sessions = watcher.call("session_list", json!({})).await;
    assert_eq!(sessions["count"], 1);
}

#[tokio::test]
async fn an_idle_session_is_kept_alive_by_its_process() {
    let db = Db::new();
    let (holder, watcher, id) = holder_and_watcher(&db, FAST).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = watcher
        .call("lock_check", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(
        status["locked"], true,
        "two timeouts later the idle holder still holds it"
    );
    assert_eq!(status["held_by"], id.as_str());
    let details = watcher.call("session_get", json!({"session_id": id})).await;
    assert_eq!(details["state"], "active");
    drop(holder);
}

#[tokio::test]
async fn a_stopped_process_loses_its_locks_and_is_told_when_it_resumes() {
    let db = Db::new();
    let (holder, watcher, id) = holder_and_watcher(&db, FAST).await;
    db.stop(&holder).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let taken = watcher
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(taken["granted"], true, "the silent holder was swept");

    holder.signal("CONT");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let beat = holder.call("session_heartbeat", json!({})).await;
    assert_eq!(
        beat["session_id"],
        id.as_str(),
        "it continues under the same id"
    );
    assert_eq!(beat["unread_messages"]["count"], 1);
    let inbox = holder.call("message_list", json!({})).await;
    let notice = inbox["messages"][0]["content"].as_str().expect("notice");
    assert!(
        notice.contains("locks and intents were released"),
        "{notice}"
    );
    let denied = holder
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(
        denied["granted"], false,
        "and the lock it lost stays with the new holder"
    );
}
