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

/// The test server's own URL for this test's database (not PgBouncer's, in the pass that
/// goes through it), by `host`, with `query` appended.
fn tls_url(db: &Db, host: &str, query: &str) -> String {
    let url = common::postgres_url(&db.path()).expect("a PostgreSQL run");
    let url = match (
        std::env::var("MCP_TEST_PGBOUNCER_ADDR"),
        std::env::var("MCP_TEST_PG_ADDR"),
    ) {
        (Ok(bouncer), Ok(server)) => url.replacen(&bouncer, &server, 1),
        _ => url,
    };
    let base = url.split_once('?').map_or(url.as_str(), |(base, _)| base);
    format!("{}?{query}", base.replacen("127.0.0.1", host, 1))
}

fn test_ca() -> String {
    std::env::var("MCP_TEST_PG_CA").expect("scripts/with-postgres sets MCP_TEST_PG_CA")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn verify_full_connects_encrypted_to_a_server_whose_certificate_names_the_host() {
    let server = common::postgres_only();
    let db = Db::new();
    let url = tls_url(
        &db,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", test_ca()),
    );
    let coordinator = db.server_with(&[("MCP_COORDINATOR_DB_URL", &url)]).await;
    coordinator.register("secure", "app", "main").await;
    let name = common::postgres_name(&db.path()).expect("database name");
    let (encrypted, plain): (i64, i64) = common::on_postgres(server, move |client| {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                 WHERE a.datname = $1 AND a.application_name = 'mcp-session-coordinator'",
                &[&name],
            )
            .expect("pg_stat_ssl");
        (row.get(0), row.get(1))
    });
    assert!(encrypted >= 1, "no encrypted connection of the server");
    assert_eq!(plain, 0, "a connection of the server is not encrypted");

    // `require` without a root encrypts without checking; PGSSLMODE is read as libpq reads it.
    let url = tls_url(&db, "127.0.0.1", "");
    let run = db.run(
        &["doctor", "--json"],
        &[("MCP_COORDINATOR_DB_URL", &url), ("PGSSLMODE", "require")],
        None,
        "",
    );
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["sessions"], 1);
    let tls = report["tls"].as_str().unwrap_or_default();
    assert!(
        tls.starts_with("TLSv1.") && tls.ends_with("(sslmode=require)"),
        "{report}"
    );
    let run = db.run(
        &["doctor", "--json"],
        &[("MCP_COORDINATOR_DB_URL", &url), ("PGSSLMODE", "disable")],
        None,
        "",
    );
    assert_eq!(run.json()["tls"], "none (sslmode=disable)");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn a_certificate_for_another_host_or_from_an_unknown_ca_is_refused_at_once() {
    common::postgres_only();
    let db = Db::new();
    let ca = test_ca();
    // The certificate names localhost; 127.0.0.1 is another name to verify-full.
    let wrong_name = tls_url(
        &db,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let started = Instant::now();
    let run = db.run(
        &["doctor"],
        &[("MCP_COORDINATOR_DB_URL", &wrong_name)],
        None,
        "",
    );
    assert!(
        !run.ok,
        "verify-full accepted a certificate for another name"
    );
    assert!(
        run.stderr
            .contains("certificate is not issued for the host name in the URL"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("sslmode=verify-ca"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refused certificate was retried as if the server were down"
    );

    // verify-ca checks who signed it, not the name.
    let any_name = tls_url(
        &db,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    let run = db.run(
        &["doctor"],
        &[("MCP_COORDINATOR_DB_URL", &any_name)],
        None,
        "",
    );
    assert!(run.ok, "{}{}", run.stdout, run.stderr);

    // Without the test CA, the system's roots do not know the signer.
    let unknown = tls_url(&db, "localhost", "sslmode=verify-full");
    let run = db.run(
        &["doctor"],
        &[("MCP_COORDINATOR_DB_URL", &unknown)],
        None,
        "",
    );
    assert!(!run.ok, "a certificate from an unknown CA was accepted");
    assert!(
        run.stderr
            .contains("not signed by a root this process trusts"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn a_server_without_tls_is_refused_when_tls_is_required() {
    common::postgres_only();
    let db = Db::new();
    // PgBouncer in front of the test server listens without TLS.
    let plain = std::env::var("MCP_TEST_PGBOUNCER_URL")
        .expect("scripts/with-postgres sets MCP_TEST_PGBOUNCER_URL");
    let url = format!("{plain}?sslmode=require");
    let run = db.run(&["doctor"], &[("MCP_COORDINATOR_DB_URL", &url)], None, "");
    assert!(!run.ok, "a plain server was used under sslmode=require");
    assert!(
        run.stderr
            .contains("does not offer TLS, and sslmode=require requires it"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn behind_pgbouncer_statements_last_one_transaction_with_pgbouncer_true() {
    common::postgres_only();
    let db = Db::new();
    let bouncer = std::env::var("MCP_TEST_PGBOUNCER_URL")
        .expect("scripts/with-postgres sets MCP_TEST_PGBOUNCER_URL");
    let name = common::postgres_name(&db.path()).expect("database name");
    // This test's database is a pool of its own in PgBouncer: one server connection, which
    // each process's transactions get in turn.
    let url = match bouncer.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("MCP_TEST_PGBOUNCER_URL names no database: {bouncer}"),
    };
    let status = |url: &str| db.run(&["status"], &[("MCP_COORDINATOR_DB_URL", url)], None, "");

    // Without the setting, the second process meets the statements the first one left on
    // the server connection, and is told what to change.
    let run = status(&url);
    assert!(run.ok, "{}", run.stderr);
    let run = status(&url);
    assert!(!run.ok, "the clash of statement names went unnoticed");
    assert!(run.stderr.contains("add pgbouncer=true"), "{}", run.stderr);

    // With it, leftovers are dropped and each transaction closes its own.
    let pooled = format!("{url}?pgbouncer=true");
    for round in 0..3 {
        let run = status(&pooled);
        assert!(run.ok, "round {round}: {}", run.stderr);
    }
    let servers = [
        db.server_with(&[("MCP_COORDINATOR_DB_URL", &pooled)]).await,
        db.server_with(&[("MCP_COORDINATOR_DB_URL", &pooled)]).await,
    ];
    servers[0].register("one", "app", "main").await;
    servers[1].register("two", "app", "main").await;
    servers[0]
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    let refused = servers[1]
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    assert_eq!(refused["granted"], false, "{refused}");
    assert_eq!(refused["holder_name"], "one", "{refused}");
    let report = db.run(
        &["doctor", "--json"],
        &[("MCP_COORDINATOR_DB_URL", &pooled)],
        None,
        "",
    );
    let tls = report.json()["tls"].as_str().unwrap_or_default().to_owned();
    assert!(tls.contains("to the pooler"), "{tls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn a_grant_reaches_a_waiter_on_another_machine_through_the_database() {
    common::postgres_only();
    let db = Db::new();
    let name = common::postgres_name(&db.path()).expect("database name");
    let socket = std::env::var("MCP_TEST_PG_SOCKET").expect("scripts/with-postgres sets it");
    let address = std::env::var("MCP_TEST_PG_ADDR").expect("scripts/with-postgres sets it");
    let port = address.rsplit(':').next().unwrap_or("5432");
    let url = format!("postgres://postgres@/{name}?host={socket}&port={port}");
    // The waiter's server runs in a network namespace of its own, reaching the database by
    // its Unix socket: the holder's process cannot poke its wake socket, as if it ran on
    // another machine. Only the database can wake it before its 2-second look.
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("elsewhere.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport MCP_COORDINATOR_DB_URL='{url}'\nexec unshare --net {} \"$@\"\n",
            common::BIN
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let waiter = std::sync::Arc::new(db.server_through(&script, None).await);
    let holder = db.server_with(&[("MCP_COORDINATOR_DB_URL", &url)]).await;
    holder.register("holder", "app", "main").await;
    waiter.register("waiter", "app", "main").await;

    let mut seen = Vec::new();
    for round in 0..5 {
        holder
            .call("lock_acquire", json!({"file_path": "src/a.rs"}))
            .await;
        let waiting = {
            let waiter = waiter.clone();
            tokio::spawn(async move {
                let asked = json!({"file_path": "src/a.rs", "wait_seconds": 10});
                waiter.call("lock_acquire", asked).await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let released = Instant::now();
        holder
            .call("lock_release", json!({"file_path": "src/a.rs"}))
            .await;
        let granted = waiting.await.expect("waiter");
        seen.push(released.elapsed());
        assert_eq!(granted["granted"], true, "round {round}: {granted}");
        waiter
            .call("lock_release", json!({"file_path": "src/a.rs"}))
            .await;
    }
    // Without a wake-up the waiter's first look comes 2 s after it began to wait, 1.7 s
    // after the release: a grant seen within 1 s came by notification.
    assert!(
        seen.iter().all(|took| *took < Duration::from_secs(1)),
        "grants seen after {seen:?}"
    );
}
