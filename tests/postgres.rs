//! What only the PostgreSQL backend has to get right: connections the server ends are replaced
//! without failing a call, and servers starting together on a new database migrate it once.
//! Runs in the PostgreSQL pass of the suite (`scripts/with-postgres`).

mod common;

use common::Db;
use serde_json::json;

#[tokio::test]
async fn connections_the_server_ends_are_replaced_without_failing_a_call() {
    let Some(server) = common::postgres_server() else {
        eprintln!("skipped: runs against PostgreSQL (scripts/with-postgres cargo test)");
        return;
    };
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
async fn servers_starting_together_on_a_new_database_all_come_up() {
    if common::postgres_server().is_none() {
        eprintln!("skipped: runs against PostgreSQL (scripts/with-postgres cargo test)");
        return;
    }
    let db = Db::new();
    let (a, b, c, d) = tokio::join!(db.server(), db.server(), db.server(), db.server());
    for (i, server) in [a, b, c, d].iter().enumerate() {
        server.register(&format!("s{i}"), "app", "main").await;
    }
    let report = db.cli(&["doctor", "--json"]).json();
    assert_eq!(report["schema_version"], report["schema_expected"]);
    assert_eq!(report["sessions"], 4);
}
