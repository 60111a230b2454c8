//! A token per person or agent on the shared server (`token add | list | revoke`): the real
//! binary as `serve --http`, real MCP clients and the dashboard's API over HTTP, and a webhook
//! receiver, on SQLite and (in the PostgreSQL pass) on PostgreSQL.

use std::time::Duration;

use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

use crate::common::http::{HttpServer, Receiver, add_token, web};
use crate::common::{self, Db, Lifecycle};

const LEGACY: Lifecycle = Lifecycle::Initialize(ProtocolVersion::V_2025_11_25);

async fn get(server: &HttpServer, path: &str, token: &str) -> reqwest::Response {
    web()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
}

async fn post(server: &HttpServer, path: &str, token: &str, body: Value) -> reqwest::Response {
    web()
        .post(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn what_each_person_does_is_recorded_under_their_name() {
    let db = Db::new();
    let alice = add_token(&db, "alice");
    let bob = add_token(&db, "bob");
    let receiver = Receiver::on_free_port();
    let _up = receiver.start().await;
    // On loopback and without the shared token: the persons' tokens alone guard it.
    let server = HttpServer::start(&db.path(), &["--webhook", &receiver.url()], &[]);
    let anonymous = web()
        .get(server.url("/api/snapshot"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        anonymous.status(),
        401,
        "a person has a token: none is refused"
    );

    let agent = server.client(LEGACY, Some(&alice)).await;
    let registered = agent
        .call(
            "session_register",
            json!({"name": "alice-agent", "project": "web", "branch": "main"}),
        )
        .await;
    assert_eq!(registered["status"], "registered");
    let me = agent.call("session_get", json!({})).await;
    assert_eq!(me["who"], "alice", "{me}");
    agent
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;

    let snapshot: Value = get(&server, "/api/snapshot", &bob)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(snapshot["sessions"][0]["who"], "alice", "{snapshot}");
    let viewer: Value = get(&server, "/api/viewer", &bob)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(viewer["who"], "bob");

    // Bob acts on the dashboard: his token, not the name he types, signs it.
    let sent = post(
        &server,
        "/api/broadcast",
        &bob,
        json!({"project": "web", "content": "deploy at 5", "from": "the boss", "priority": "urgent"}),
    )
    .await;
    assert!(
        sent.status().is_success(),
        "{}",
        sent.text().await.unwrap_or_default()
    );
    let released = post(
        &server,
        "/api/locks/release",
        &bob,
        json!({"project": "web", "file_path": "src/app.rs", "reason": "stuck"}),
    )
    .await;
    assert!(released.status().is_success());
    let inbox = agent.call("message_list", json!({})).await;
    let texts: Vec<(String, String)> = inbox["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["from_name"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|(from, text)| from == "bob (person)" && text == "deploy at 5"),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(_, text)| text
                .starts_with("bob on the dashboard (stuck) (a person) force-released")),
        "{texts:?}"
    );

    // The webhook events say whose token was behind each.
    let events = eventually(|| {
        let got = receiver.received();
        let kinds: Vec<&str> = got.iter().map(|(kind, _)| kind.as_str()).collect();
        (kinds.contains(&"lock.force_released") && kinds.contains(&"message.urgent")).then_some(got)
    })
    .await;
    let forced = &events
        .iter()
        .find(|(kind, _)| kind == "lock.force_released")
        .expect("forced release event")
        .1;
    assert_eq!(forced["data"]["who"], "bob", "{forced}");
    let urgent = &events
        .iter()
        .find(|(kind, _)| kind == "message.urgent")
        .expect("urgent message event")
        .1;
    assert_eq!(urgent["data"]["who"], "bob", "{urgent}");
    assert_eq!(
        forced["data"]["released"][0]["name"], "alice-agent",
        "{forced}"
    );
    agent.quit().await;
}

#[tokio::test]
async fn a_revoked_token_stops_at_once_and_its_open_streams_close() {
    let db = Db::new();
    let alice = add_token(&db, "alice");
    let bob = add_token(&db, "bob");
    let server = HttpServer::start(&db.path(), &[], &[]);
    let agent = server.client(LEGACY, Some(&alice)).await;
    agent.register("alice-agent", "web", "main").await;

    // A dashboard left open on alice's token: its event stream stays open until she loses it.
    let mut stream = get(&server, "/api/events", &alice).await;
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("the first snapshot arrives");
    assert!(matches!(first, Ok(Some(_))), "{first:?}");

    let listed = db.cli(&["token", "list"]).stdout;
    assert!(
        listed.contains("alice") && listed.contains("works"),
        "{listed}"
    );
    let revoked = std::time::Instant::now();
    db.cli(&["token", "revoke", "alice"]);
    // Replaced at once (a leaked token's usual fix): the old token's stream must close all
    // the same, though the name has a working token again.
    let renewed = add_token(&db, "alice");

    let refused = get(&server, "/api/snapshot", &alice).await;
    assert_eq!(refused.status(), 401, "the next request is refused");
    let mcp = post(
        &server,
        "/mcp",
        &alice,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(mcp.status(), 401);
    // The open stream ends: read until it does.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked token's stream is still open");
    assert!(
        revoked.elapsed() < Duration::from_secs(3),
        "{:?}",
        revoked.elapsed()
    );

    let others = get(&server, "/api/snapshot", &bob).await;
    assert_eq!(others.status(), 200, "bob's token still works");
    let again = get(&server, "/api/snapshot", &renewed).await;
    assert_eq!(again.status(), 200, "alice's new token works");
    let listed = db.cli(&["token", "list", "--json"]).stdout;
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    assert!(
        listed[0]["name"] == "alice" && listed[1]["name"] == "bob",
        "{listed}"
    );
    assert!(
        listed[0].get("revoked_at").is_none(),
        "a new token: {listed}"
    );

    if common::postgres_server().is_none() {
        // Only hashes are kept: the tokens appear nowhere in the database's files.
        for file in std::fs::read_dir(db.path().parent().expect("dir")).expect("dir") {
            let bytes = std::fs::read(file.expect("entry").path()).unwrap_or_default();
            for token in [&alice, &bob, &renewed] {
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "a token is stored in plain"
                );
            }
        }
    }
}

#[tokio::test]
async fn beyond_loopback_a_persons_token_is_enough() {
    let db = Db::new();
    let refused = db.run(&["serve", "--http", "0.0.0.0:0"], &[], None, "");
    assert!(
        !refused.ok && refused.stderr.contains("token add NAME"),
        "{}",
        refused.stderr
    );
    let alice = add_token(&db, "alice");
    let server = HttpServer::launch(&db.path(), &["serve", "--http", "0.0.0.0:0"], &[]);
    let port = server.base.rsplit(':').next().expect("port").to_owned();
    let url = format!("http://127.0.0.1:{port}/api/snapshot");
    let anonymous = web().get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), 401);
    let hers = web()
        .get(&url)
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET");
    assert_eq!(hers.status(), 200);
}

/// Polls `look` for up to 15 s.
async fn eventually<T>(mut look: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(found) = look() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 15 s");
}
