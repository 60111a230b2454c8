//! What only the PostgreSQL backend has to get right: connections the server ends are replaced
//! without failing a call, a process stopped while writing holds the others up only briefly,
//! and servers starting together on a new database migrate it once.
//! Runs in the PostgreSQL pass of the suite (`scripts/with-postgres`).

use std::time::{Duration, Instant};

use crate::common::{self, Db};
use serde_json::json;

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn connections_the_server_ends_are_replaced_without_failing_a_call() {
    let server = common::postgres_only();
    let db = Db::new();
    let coordinator = db.server().await;
    coordinator.register("steady", "app", "main").await;
    coordinator
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;

    let name = common::postgres_name(&db.path()).expect("database name");
    for round in 0..3 {
        let name = name.clone();
        let ended: i64 = common::on_postgres(server, move |client| {
            client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .expect("terminate")
                .get(0)
        });
        assert!(ended >= 1, "round {round}: no connection to end");
        let status = coordinator
            .call("lock_check", json!({"file_path": "src/a.rs"}))
            .await;
        assert_eq!(status["holder_name"], "steady", "round {round}: {status}");
        coordinator
            .call(
                "lock_acquire",
                json!({"file_path": format!("src/{round}.rs")}),
            )
            .await;
    }
    let locks = coordinator.call("lock_list", json!({})).await;
    assert_eq!(locks["count"], 4, "every lock survived: {locks}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn servers_starting_together_on_a_new_database_all_come_up() {
    common::postgres_only();
    let db = Db::new();
    let (a, b, c, d) = tokio::join!(db.server(), db.server(), db.server(), db.server());
    for (i, server) in [a, b, c, d].iter().enumerate() {
        server.register(&format!("s{i}"), "app", "main").await;
    }
    let report = db.cli(&["doctor", "--json"]).json();
    assert_eq!(report["schema_version"], report["schema_expected"]);
    assert_eq!(report["sessions"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn a_server_stopped_while_writing_holds_the_others_up_only_briefly() {
    common::postgres_only();
    let db = Db::new();
    let stopped = std::sync::Arc::new(db.server().await);
    let other = db.server().await;
    stopped.register("laptop", "app", "main").await;
    other.register("desk", "app", "main").await;
    stopped
        .call("lock_acquire", json!({"file_path": "src/renewed.rs"}))
        .await;

    // Back-to-back renewals keep the first server writing most of the time, so a stop soon
    // lands inside a write transaction.
    let writer = {
        let stopped = stopped.clone();
        tokio::spawn(async move {
            loop {
                stopped
                    .raw("lock_acquire", json!({"file_path": "src/renewed.rs"}))
                    .await;
            }
        })
    };
    db.stop_when(&stopped, true).await;

    let started = Instant::now();
    let answer = other
        .raw("lock_acquire", json!({"file_path": "src/other.rs"}))
        .await;
    let waited = started.elapsed();
    // Resumed before anything can fail: a stopped child would outlive the test.
    stopped.signal("CONT");
    writer.abort();
    assert_ne!(answer.is_error, Some(true), "{}", common::text(&answer));
    let granted = answer.structured_content.expect("structured answer");
    assert_eq!(granted["granted"], true, "{granted}");
    assert!(
        waited >= Duration::from_secs(3),
        "the write waited for the stopped one ({waited:?})"
    );

    let status = other
        .call("lock_check", json!({"file_path": "src/renewed.rs"}))
        .await;
    assert_eq!(status["holder_name"], "laptop", "{status}");
    let resumed = stopped
        .call("lock_acquire", json!({"file_path": "src/next.rs"}))
        .await;
    assert_eq!(
        resumed["granted"], true,
        "resumed, it carries on: {resumed}"
    );
}
