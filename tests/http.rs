//! The shared server over real HTTP: the seed's walkthrough through Streamable HTTP, who may
//! act for a session, the Host/Origin/token refusals, the dashboard's API, and webhooks.

use std::time::Duration;

use crate::common::http::{HttpServer, Receiver, TOKEN, web};
use crate::common::{self, Db, Lifecycle, Server};
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

const LEGACY: Lifecycle = Lifecycle::Initialize(ProtocolVersion::V_2025_11_25);

/// Polls `look` until it returns `Some`, for up to `limit`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut look: impl FnMut() -> F,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = look().await {
            return Some(found);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A POST to the dashboard's API, as its page sends it.
async fn post(server: &HttpServer, path: &str, body: Value) -> reqwest::Response {
    web()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .expect("POST")
}

async fn snapshot(server: &HttpServer) -> Value {
    web()
        .get(server.url("/api/snapshot"))
        .send()
        .await
        .expect("snapshot")
        .json()
        .await
        .expect("snapshot JSON")
}

#[tokio::test]
async fn the_seed_walkthrough_over_streamable_http() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let alice = server.client(LEGACY, None).await;
    let bob = server.client(LEGACY, None).await;

    let a = alice.register("alice", "web", "main").await;
    let b = bob.register("bob", "web", "feature").await;
    let granted = alice
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    assert_eq!(granted["granted"], true);

    let denied = bob
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    assert_eq!(denied["granted"], false);
    assert_eq!(denied["holder_name"], "alice");
    assert_eq!(denied["held_by"], a.as_str());

    let intent = bob
        .call(
            "intent_announce",
            json!({"intent_type": "file_edit", "files": ["src/app.rs"]}),
        )
        .await;
    assert_eq!(intent["safe_to_proceed"], false, "{intent}");

    bob.call(
        "message_send",
        json!({"to_session": "alice", "content": "may I have src/app.rs?"}),
    )
    .await;
    let answer = alice
        .call("lock_release", json!({"file_path": "src/app.rs"}))
        .await;
    assert_eq!(answer["released"], true);
    assert_eq!(
        answer["unread_messages"]["count"], 1,
        "answers carry unread mail over HTTP too: {answer}"
    );
    let inbox = alice.call("message_list", json!({})).await;
    assert_eq!(inbox["messages"][0]["from_session"], b.as_str());

    let listed = bob.call("session_list", json!({})).await;
    assert_eq!(listed["count"], 2);
    alice.quit().await;
    bob.quit().await;
}

#[tokio::test]
async fn a_connection_acts_only_for_its_own_sessions_or_those_it_proves() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let alice = server.client(LEGACY, None).await;
    let mallory = server.client(LEGACY, None).await;
    let (registered, token) = register_for_token(&alice, "alice", "web").await;
    let a = registered["session_id"].as_str().expect("id").to_owned();
    assert_eq!(token.len(), 64, "256 random bits in hex");
    alice
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    mallory.register("mallory", "web", "main").await;

    // The id is public (session_list shows it); knowing it is not enough.
    for (tool, args) in [
        (
            "lock_release",
            json!({"session_id": a, "file_path": "src/app.rs"}),
        ),
        ("session_deregister", json!({"session_id": a})),
        ("message_list", json!({"session_id": a})),
        // A look in its name would heartbeat it and take its grants from the queue.
        (
            "lock_check",
            json!({"session_id": a, "file_path": "src/app.rs"}),
        ),
        (
            "lock_acquire",
            json!({"session_id": a, "file_path": "src/other.rs"}),
        ),
    ] {
        let error = mallory.call_err(tool, args).await;
        assert!(
            error.contains("only on its token") && error.contains("pass `session_token`"),
            "{tool}: {error}"
        );
    }
    let wrong = mallory
        .call_err(
            "lock_release",
            json!({"session_id": a, "session_token": "f".repeat(64), "file_path": "src/app.rs"}),
        )
        .await;
    assert!(wrong.contains("session_token"), "{wrong}");
    let still = mallory
        .call("lock_check", json!({"file_path": "src/app.rs"}))
        .await;
    assert_eq!(still["locked"], true, "nothing was released: {still}");

    // The token is the proof: with it, another connection may act (a client that reconnected).
    let released = mallory
        .call(
            "lock_release",
            json!({"session_id": a, "session_token": token, "file_path": "src/app.rs"}),
        )
        .await;
    assert_eq!(released["released"], true);
    let mismatch = mallory
        .call_err(
            "lock_release",
            json!({"session_id": "ses-000000000000", "session_token": token, "file_path": "x"}),
        )
        .await;
    assert!(mismatch.contains(&a), "names whose token it is: {mismatch}");

    // Registering again replaces the token.
    let again = alice
        .call(
            "session_register",
            json!({"name": "alice", "project": "web"}),
        )
        .await;
    assert_eq!(again["session_id"], a.as_str());
    let stale = mallory
        .call_err("session_heartbeat", json!({"session_token": token}))
        .await;
    assert!(stale.contains("session_token"), "{stale}");
    // Nor does the proof this connection made with the old token.
    let replaced = mallory
        .call_err("session_heartbeat", json!({"session_id": a}))
        .await;
    assert!(replaced.contains("replaced"), "{replaced}");
}

#[tokio::test]
async fn sessionless_clients_prove_their_session_on_every_call() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let modern = server.client(Lifecycle::Discover, None).await;
    let (registered, token) = register_for_token(&modern, "modern", "web").await;
    // No connection remembers the session between stateless requests.
    let forgotten = modern
        .call_err("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    // ... and the model is told exactly what to pass.
    assert!(
        forgotten.contains("`session_token` is required") && forgotten.contains("on every call"),
        "{forgotten}"
    );
    let granted = modern
        .call(
            "lock_acquire",
            json!({"file_path": "src/a.rs", "session_token": token}),
        )
        .await;
    assert_eq!(granted["granted"], true);
    // The session outlives the request that registered it.
    let sessions = snapshot(&server).await["sessions"].clone();
    assert_eq!(sessions[0]["name"], "modern", "{sessions}");
    // Registering with its token continues it instead of making a twin.
    let again = modern
        .call(
            "session_register",
            json!({"name": "modern", "project": "web", "session_token": token}),
        )
        .await;
    assert_eq!(again["session_id"], registered["session_id"]);
    assert_eq!(again["resumed"], true);
}

#[tokio::test]
async fn closing_a_connection_ends_its_sessions_and_stopping_the_server_ends_all() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let leaving = server.client(LEGACY, None).await;
    let staying = server.client(LEGACY, None).await;
    leaving.register("leaving", "web", "main").await;
    leaving
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    staying.register("staying", "web", "main").await;
    leaving.quit().await;
    let gone = eventually(Duration::from_secs(5), || async {
        let now = snapshot(&server).await;
        (now["sessions"].as_array().map(Vec::len) == Some(1) && now["locks"] == json!([]))
            .then_some(now)
    })
    .await;
    assert!(
        gone.is_some(),
        "the closed connection's session and lock end"
    );

    let status = server.stop();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
    let left = db.cli(&["status", "--json"]).json();
    assert_eq!(
        left["sessions"],
        json!([]),
        "every connection's sessions ended"
    );
}

#[tokio::test]
async fn foreign_hosts_origins_and_missing_tokens_are_refused() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &["--token", TOKEN], &[]);
    let http = web();
    let get = |path: &str| http.get(server.url(path));

    let anonymous = get("/api/snapshot").send().await.expect("request");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let wrong = get("/api/snapshot")
        .bearer_auth("not-the-token-not-the-token-not-the")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let mcp = http
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("request");
    assert_eq!(mcp.status(), 401, "MCP needs the token too");
    let ok = get("/api/snapshot")
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);

    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
    let rebound = get("/api/snapshot")
        .bearer_auth(TOKEN)
        .header("host", "evil.example:7420")
        .send()
        .await
        .expect("request");
    assert_eq!(rebound.status(), 403);
    let body: Value = rebound.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("--allowed-host")
    );
    let foreign = http
        .post(server.url("/api/broadcast"))
        .bearer_auth(TOKEN)
        .header("origin", "https://evil.example")
        .json(&json!({"project": "web", "content": "hi"}))
        .send()
        .await
        .expect("request");
    assert_eq!(foreign.status(), 403);
    let own = get("/api/snapshot")
        .bearer_auth(TOKEN)
        .header("origin", server.base.as_str())
        .send()
        .await
        .expect("request");
    assert_eq!(own.status(), 200, "the dashboard's own page may call");

    // Its own client: the server closes the connection after refusing an unread body.
    let huge = web()
        .post(server.url("/api/broadcast"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"project\":\"web\",\"content\":\"{}\"}}",
            "x".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(huge.status(), 413);

    // Opening the dashboard with ?token= once sets a cookie and drops the token from the URL.
    let opened = get(&format!("/?token={TOKEN}"))
        .send()
        .await
        .expect("request");
    assert!(opened.status().is_redirection());
    assert_eq!(opened.headers()["location"], "/");
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("pair");
    let page = get("/")
        .header("cookie", pair)
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("app.js"), "the dashboard page");

    // An MCP client with the token works end to end.
    let client = server.client(LEGACY, Some(TOKEN)).await;
    client.register("alice", "web", "main").await;
}

#[test]
fn binding_beyond_loopback_needs_a_token() {
    let db = Db::new();
    let run = db.run(&["serve", "--http", "0.0.0.0:0"], &[], None, "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("MCP_COORDINATOR_TOKEN") && run.stderr.contains("--token"),
        "{}",
        run.stderr
    );
    let weak = db.run(
        &["serve", "--http", "0.0.0.0:0", "--token", "short"],
        &[],
        None,
        "",
    );
    assert!(
        !weak.ok && weak.stderr.contains("at least 32"),
        "{}",
        weak.stderr
    );
}

#[tokio::test]
async fn the_dashboard_api_shows_live_state_and_acts_as_a_person() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let http = web();

    // The event stream sends a snapshot on connect and again when something changes.
    let mut events = http
        .get(server.url("/api/events?project=web"))
        .send()
        .await
        .expect("events");
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap_or(""),
        "text/event-stream"
    );
    let alice = server.client(LEGACY, None).await;
    let bob = server.client(LEGACY, None).await;
    let a = alice.register("alice", "web", "main").await;
    bob.register("bob", "web", "main").await;
    alice
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    bob.call(
        "lock_acquire",
        json!({"file_path": "src/app.rs", "queue": true}),
    )
    .await;
    let mut seen = String::new();
    let streamed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = events.chunk().await.expect("chunk") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\"holder_name\":\"alice\"")
                && seen.contains("\"session_name\":\"bob\"")
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        streamed,
        Ok(true),
        "live events show the lock and the queue: {seen}"
    );
    assert!(seen.contains("event: snapshot"));

    let now = snapshot(&server).await;
    assert_eq!(now["projects"], json!(["web"]));
    assert_eq!(now["conflicts"][0]["file_path"], "src/app.rs");
    assert_eq!(now["conflicts"][0]["severity"], "high");

    let released: Value = post(
        &server,
        "/api/locks/release",
        json!({"project": "web", "file_path": "src/app.rs", "reason": "stuck"}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(
        released["released"][0]["holder_name"], "alice",
        "{released}"
    );
    let after = snapshot(&server).await;
    assert_eq!(
        after["locks"][0]["holder_name"], "bob",
        "the queue was granted: {after}"
    );
    let told = alice.call("message_list", json!({})).await;
    assert!(
        told["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .contains("src/app.rs"),
        "{told}"
    );

    let bad = post(
        &server,
        "/api/broadcast",
        json!({"project": "web", "content": "hi", "priority": "asap"}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let why: Value = bad.json().await.expect("json");
    assert!(
        why["error"].as_str().unwrap_or("").contains("urgent"),
        "{why}"
    );
    let sent = post(
        &server,
        "/api/broadcast",
        json!({"project": "web", "content": "freeze main", "priority": "urgent", "from": "ops"}),
    )
    .await;
    assert_eq!(sent.status(), 200);
    let inbox = bob.call("message_list", json!({})).await;
    assert_eq!(inbox["messages"][0]["from_name"], "ops (person)");

    alice
        .call(
            "context_share",
            json!({"context_type": "decision", "content": "Use tokio for the async runtime", "tags": ["runtime"]}),
        )
        .await;
    let found: Value = http
        .get(server.url("/api/context?project=web&q=tokio"))
        .send()
        .await
        .expect("context")
        .json()
        .await
        .expect("json");
    assert_eq!(found["count"], 1, "{found}");

    let ended: Value = post(&server, "/api/sessions/end", json!({"session_id": a}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ended["status"], "deregistered");
    let unknown = post(&server, "/api/sessions/end", json!({"session_id": a})).await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn webhooks_reach_a_receiver_that_was_down_even_across_a_restart() {
    let db = Db::new();
    let receiver = Receiver::on_free_port();
    let url = receiver.url();
    let server = HttpServer::start(&db.path(), &["--webhook", &url], &[]);
    let alice = server.client(LEGACY, None).await;
    let bob = server.client(LEGACY, None).await;
    alice.register("alice", "web", "main").await;
    bob.register("bob", "web", "main").await;
    alice
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    bob.call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    bob.call(
        "message_send",
        json!({"content": "main is red", "priority": "urgent"}),
    )
    .await;
    // The receiver is down: the server retries, and is stopped before it ever succeeds.
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop((alice, bob));
    assert!(server.stop().success());

    let _up = receiver.start().await;
    let _again = HttpServer::start(&db.path(), &["--webhook", &url], &[]);
    let delivered = eventually(Duration::from_secs(15), || async {
        let got = receiver.received();
        (got.len() >= 2).then_some(got)
    })
    .await
    .expect("both events arrive once the receiver is up");
    let kinds: Vec<&str> = delivered.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &kinds[..2],
        ["lock.contention", "message.urgent"],
        "in order"
    );
    let contention = &delivered[0].1;
    assert_eq!(contention["event"], "lock.contention");
    assert_eq!(contention["project"], "web");
    assert_eq!(contention["data"]["file_path"], "src/app.rs");
    assert_eq!(contention["data"]["held_by"]["name"], "alice");
    let text = contention["text"].as_str().expect("text for Slack");
    assert_eq!(
        contention["content"].as_str(),
        Some(text),
        "content for Discord"
    );
    assert!(
        text.contains("bob") && text.contains("src/app.rs"),
        "{text}"
    );
    assert!(
        delivered[1].1["text"]
            .as_str()
            .unwrap_or("")
            .contains("main is red")
    );
}

#[tokio::test]
async fn the_dashboard_command_shows_what_stdio_servers_share() {
    let db = Db::new();
    let stdio = db.server().await;
    stdio.register("local", "web", "main").await;
    stdio
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;

    let dashboard = HttpServer::dashboard(&db.path());
    let now = snapshot(&dashboard).await;
    assert_eq!(now["sessions"][0]["name"], "local", "{now}");
    assert_eq!(now["locks"][0]["file_path"], "src/app.rs");
    let mcp = post(&dashboard, "/mcp", json!({})).await;
    assert_eq!(mcp.status(), 404, "the dashboard alone serves no MCP");
}

#[tokio::test]
async fn a_client_that_reconnects_keeps_its_session_when_the_old_connection_closes() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let old = server.client(LEGACY, None).await;
    let (registered, token) = register_for_token(&old, "alice", "web").await;
    old.call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;

    let new = server.client(LEGACY, None).await;
    let resumed = new
        .call(
            "session_register",
            json!({"name": "alice", "project": "web", "session_token": token}),
        )
        .await;
    assert_eq!(resumed["session_id"], registered["session_id"]);
    assert_eq!(resumed["resumed"], true);
    old.quit().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = snapshot(&server).await;
    assert_eq!(
        now["sessions"][0]["name"], "alice",
        "the session lives on: {now}"
    );
    assert_eq!(now["locks"][0]["file_path"], "src/app.rs", "with its lock");
    // The new connection acts for it without naming it.
    let released = new
        .call("lock_release", json!({"file_path": "src/app.rs"}))
        .await;
    assert_eq!(released["released"], true);
}

#[tokio::test]
async fn two_servers_delivering_to_one_endpoint_send_each_event_once() {
    let db = Db::new();
    // Slow enough that the other server looks for work while a batch is being sent.
    let receiver = Receiver {
        slowness: Duration::from_millis(100),
        ..Receiver::on_free_port()
    };
    let _up = receiver.start().await;
    let url = receiver.url();
    let first = HttpServer::start(&db.path(), &["--webhook", &url], &[]);
    let second = HttpServer::start(&db.path(), &["--webhook", &url], &[]);
    // Let both open the endpoint's cursor before anything happens.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let alice = first.client(LEGACY, None).await;
    let bob = second.client(LEGACY, None).await;
    alice.register("alice", "web", "main").await;
    bob.register("bob", "web", "main").await;
    for i in 0..20 {
        let sender = if i % 2 == 0 { &alice } else { &bob };
        sender
            .call(
                "message_send",
                json!({"content": format!("alert {i}"), "channel": "alerts"}),
            )
            .await;
    }
    let got = eventually(Duration::from_secs(20), || async {
        let got = receiver.received();
        (got.len() >= 20).then_some(got)
    })
    .await
    .expect("all 20 events arrive");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ids: Vec<i64> = receiver
        .received()
        .iter()
        .map(|(_, body)| body["id"].as_i64().expect("id"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "every event: {ids:?}");
    assert_eq!(ids.len(), 20, "none twice while the lease holds: {ids:?}");
    assert_eq!(ids, sorted, "in order");
    assert!(got.iter().all(|(kind, _)| kind == "message.urgent"));
}

/// A hand-written MCP message over HTTP, for what the SDKs never send or send only one way.
async fn rpc(
    server: &HttpServer,
    connection: Option<&str>,
    revision: &str,
    body: Value,
) -> reqwest::Response {
    let mut request = web()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", revision)
        .body(body.to_string());
    if let Some(connection) = connection {
        request = request.header("mcp-session-id", connection);
    }
    request.send().await.expect("POST /mcp")
}

/// Registers `name` in `project` through `client`: the answer, and the session's token.
async fn register_for_token(client: &Server, name: &str, project: &str) -> (Value, String) {
    let registered = client
        .call(
            "session_register",
            json!({"name": name, "project": project}),
        )
        .await;
    let token = registered["session_token"]
        .as_str()
        .expect("session_token")
        .to_owned();
    (registered, token)
}

/// A client's `initialize` of `revision`, written by hand.
fn initialize_message(revision: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": revision, "capabilities": {},
        "clientInfo": {"name": "by-hand", "version": "0"}}})
}

/// Opens a connection's event stream (GET /mcp), as a client of `revision` does.
async fn event_stream(server: &HttpServer, revision: &str, connection: &str) -> reqwest::Response {
    web()
        .get(server.url("/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", revision)
        .header("mcp-session-id", connection)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("GET stream")
}

/// Opens an MCP connection of `revision` by hand; returns its id and the answer's raw events.
async fn open_connection(server: &HttpServer, revision: &str) -> (String, String) {
    let initialize = initialize_message(revision);
    let answer = rpc(server, None, revision, initialize).await;
    assert_eq!(answer.status(), 200);
    let connection = answer.headers()["mcp-session-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let events = answer.text().await.expect("events");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let acknowledged = rpc(server, Some(&connection), revision, initialized).await;
    assert_eq!(acknowledged.status(), 202);
    (connection, events)
}

/// The JSON-RPC messages in an SSE body.
fn messages(events: &str) -> Vec<Value> {
    events
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter(|data| !data.trim().is_empty())
        .map(|data| serde_json::from_str(data.trim()).expect("JSON data"))
        .collect()
}

/// Whether an SSE body has an event whose data is empty (a "priming" event).
fn has_empty_event(events: &str) -> bool {
    events.split("\n\n").any(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .collect();
        !data.is_empty() && data.iter().all(|d| d.trim().is_empty())
    })
}

/// A tool call on a hand-made connection; its result.
async fn call_by_hand(
    server: &HttpServer,
    connection: &str,
    revision: &str,
    tool: &str,
    arguments: Value,
) -> Value {
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}});
    let answer = rpc(server, Some(connection), revision, call).await;
    let events = answer.text().await.expect("events");
    messages(&events)
        .into_iter()
        .find(|m| m["id"] == 7)
        .map(|m| m["result"]["structuredContent"].clone())
        .unwrap_or_else(|| panic!("no answer in {events:?}"))
}

#[tokio::test]
async fn clients_older_than_2025_11_25_get_no_empty_events() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    // TypeScript SDK 1.23 (Gemini CLI) parses every event's data as JSON, so an empty one
    // drops the connection.
    let (connection, events) = open_connection(&server, "2025-06-18").await;
    assert!(!has_empty_event(&events), "{events:?}");
    // Nor event ids: it takes one as a cue to ask for the finished stream again.
    assert!(!events.lines().any(|l| l.starts_with("id:")), "{events:?}");
    assert_eq!(
        messages(&events)[0]["result"]["protocolVersion"],
        "2025-06-18"
    );
    let registered = call_by_hand(
        &server,
        &connection,
        "2025-06-18",
        "session_register",
        json!({"name": "old", "project": "web"}),
    )
    .await;
    assert_eq!(registered["status"], "registered");
    let mut stream = event_stream(&server, "2025-06-18", &connection).await;
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_millis(700), stream.chunk()).await;
    assert!(
        first.is_err(),
        "nothing to say yet, and no empty event: {first:?}"
    );

    // Clients of 2025-11-25 resume streams by the priming event, so they still get it.
    let (_, events) = open_connection(&server, "2025-11-25").await;
    assert!(has_empty_event(&events), "{events:?}");
}

#[tokio::test]
async fn a_live_name_is_refused_to_a_client_without_its_token() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let alice = server.client(LEGACY, None).await;
    let (registered, token) = register_for_token(&alice, "alice", "web").await;
    for lifecycle in [LEGACY, Lifecycle::Discover] {
        let squatter = server.client(lifecycle, None).await;
        let refused = squatter
            .call_err(
                "session_register",
                json!({"name": "alice", "project": "web"}),
            )
            .await;
        assert!(
            refused.contains("live session") && refused.contains("pass its session_token"),
            "{refused}"
        );
    }
    // Its own client, back on a new connection, continues it with the token.
    let back = server.client(Lifecycle::Discover, None).await;
    let continued = back
        .call(
            "session_register",
            json!({"name": "alice", "project": "web", "session_token": token}),
        )
        .await;
    assert_eq!(continued["session_id"], registered["session_id"]);
    let sessions = snapshot(&server).await["sessions"].clone();
    assert_eq!(
        sessions.as_array().map(Vec::len),
        Some(1),
        "no twin: {sessions}"
    );
}

#[tokio::test]
async fn a_configured_session_token_header_needs_nothing_from_the_model() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let key = "a-key-this-person-generated-once";
    let header = [("coordinator-session-token", key)];
    // MCP 2026-07-28: no connection, and the model passes no token.
    let modern = server.client_sending(Lifecycle::Discover, &header).await;
    let registered = modern
        .call(
            "session_register",
            json!({"name": "carol", "project": "web"}),
        )
        .await;
    assert_eq!(registered["session_token"], key);
    let granted = modern
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    assert_eq!(granted["granted"], true, "{granted}");
    // The client restarted (a new connection, another revision): the same session goes on.
    let restarted = server.client_sending(LEGACY, &header).await;
    let again = restarted
        .call(
            "session_register",
            json!({"name": "carol", "project": "web"}),
        )
        .await;
    assert_eq!(again["session_id"], registered["session_id"]);
    assert_eq!(again["resumed"], true);
    let held = restarted
        .call("lock_check", json!({"file_path": "src/a.rs"}))
        .await;
    assert_eq!(held["locked"], true, "{held}");
    // Anyone else is a stranger to carol.
    let other = server.client(Lifecycle::Discover, None).await;
    let refused = other
        .call_err(
            "session_register",
            json!({"name": "carol", "project": "web"}),
        )
        .await;
    assert!(refused.contains("live session"), "{refused}");
}

#[tokio::test]
async fn a_session_lives_by_its_http_clients_activity() {
    let db = Db::new();
    let server = HttpServer::start(
        &db.path(),
        &["--session-timeout", "2", "--cleanup-interval", "1"],
        &[],
    );
    let revision = "2025-11-25";
    // One client holds its event stream open; the other leaves without a DELETE (as
    // mcp-remote does when its desktop app quits).
    let (staying, _) = open_connection(&server, revision).await;
    call_by_hand(
        &server,
        &staying,
        revision,
        "session_register",
        json!({"name": "staying", "project": "web"}),
    )
    .await;
    let mut stream = event_stream(&server, revision, &staying).await;
    assert_eq!(stream.status(), 200);
    let (leaving, _) = open_connection(&server, revision).await;
    call_by_hand(
        &server,
        &leaving,
        revision,
        "session_register",
        json!({"name": "leaving", "project": "web"}),
    )
    .await;
    call_by_hand(
        &server,
        &leaving,
        revision,
        "lock_acquire",
        json!({"file_path": "src/a.rs"}),
    )
    .await;

    let names = |snapshot: &Value| -> Vec<String> {
        snapshot["sessions"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| s["name"].as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let swept = eventually(Duration::from_secs(15), || async {
        let now = snapshot(&server).await;
        (names(&now) == ["staying"] && now["locks"] == json!([])).then_some(now)
    })
    .await;
    assert!(
        swept.is_some(),
        "the silent client's session and lock end after the timeout"
    );
    // The stream counts as activity well past the timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(names(&snapshot(&server).await), ["staying"]);
    let _ = tokio::time::timeout(Duration::from_millis(10), stream.chunk()).await;
    drop(stream);
    let ended = eventually(Duration::from_secs(15), || async {
        names(&snapshot(&server).await).is_empty().then_some(())
    })
    .await;
    assert!(
        ended.is_some(),
        "its stream closed, its session ends after the timeout"
    );
}

#[tokio::test]
async fn the_wire_answers_as_clients_expect() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &["--token", TOKEN], &[]);
    let http = web();
    // No OAuth: the probes clients make before they fall back to a token find nothing.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/mcp/.well-known/oauth-protected-resource",
    ] {
        let probe = http.get(server.url(path)).send().await.expect("probe");
        assert_eq!(probe.status(), 404, "{path}");
    }
    let register = http
        .post(server.url("/register"))
        .json(&json!({}))
        .send()
        .await
        .expect("register");
    assert_eq!(register.status(), 404, "no dynamic client registration");
    // Claude Code tries it anyway and shows this body as the reason.
    let said: Value = register.json().await.expect("json");
    assert!(
        said["error"]
            .as_str()
            .unwrap_or("")
            .contains("bearer token"),
        "{said}"
    );
    let anonymous = rpc(
        &server,
        None,
        "2025-06-18",
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(anonymous.status(), 401);
    let said: Value = anonymous.json().await.expect("json");
    assert!(
        said["error"]
            .as_str()
            .unwrap_or("")
            .contains("bearer token"),
        "{said}"
    );

    let send = |body: String, connection: Option<String>| {
        let mut request = http
            .post(server.url("/mcp"))
            .header("authorization", format!("bearer {TOKEN}"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body);
        if let Some(connection) = connection {
            request = request.header("mcp-session-id", connection);
        }
        request.send()
    };
    // The scheme's name in any case; then a malformed body is a JSON-RPC parse error.
    let garbage = send(
        "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".into(),
        None,
    )
    .await
    .expect("POST");
    assert_eq!(garbage.status(), 400);
    let parsed: Value = garbage.json().await.expect("a JSON-RPC error");
    assert_eq!(parsed["error"]["code"], -32700, "{parsed}");

    let initialize = initialize_message("2025-11-25");
    let opened = send(initialize.to_string(), None)
        .await
        .expect("initialize");
    assert_eq!(opened.status(), 200);
    let connection = opened.headers()["mcp-session-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    send(initialized.to_string(), Some(connection.clone()))
        .await
        .expect("initialized");
    let positional = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "lock_check", "arguments": [1, 2]}});
    let refused = send(positional.to_string(), Some(connection.clone()))
        .await
        .expect("call");
    let refused: Value = refused.json().await.expect("a JSON-RPC error");
    assert_eq!(refused["id"], 2);
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`arguments`"),
        "{refused}"
    );

    let closed = http
        .delete(server.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", &connection)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(
        closed.status(),
        200,
        "the Python SDK accepts 200, 204 or 405"
    );
}

/// Whether the server closes `stream` within `limit` (reads end-of-file, or the connection is
/// reset) without answering anything.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 256];
    match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

#[tokio::test]
async fn silent_and_dribbling_connections_are_closed_and_strangers_make_room() {
    use tokio::io::AsyncWriteExt;
    let db = Db::new();
    let server = HttpServer::start(
        &db.path(),
        &["--token", TOKEN, "--max-connections", "6"],
        &[],
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    // Six strangers fill the server: four silent, two that stop halfway through their headers.
    let mut strangers = Vec::new();
    for half in [false, false, false, false, true, true] {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        if half {
            stream
                .write_all(b"GET /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .expect("half a request");
        }
        strangers.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A client with the token still gets in: the oldest stranger makes room.
    let ok = web()
        .get(server.url("/api/snapshot"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("a client with the token is served");
    assert_eq!(ok.status(), 200);
    assert!(
        closed_within(&mut strangers[0], Duration::from_secs(2)).await,
        "the oldest stranger was shed"
    );
    // The rest are closed by the header deadline (10 s), silent or halfway.
    for (n, stranger) in strangers.iter_mut().enumerate().skip(1) {
        assert!(
            closed_within(stranger, Duration::from_secs(15)).await,
            "stranger {n} is still open"
        );
    }
}

#[tokio::test]
async fn mcp_connections_beyond_the_limit_are_refused_with_the_reason() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &["--max-mcp-connections", "2"], &[]);
    let _first = open_connection(&server, "2025-11-25").await;
    let _second = open_connection(&server, "2025-11-25").await;
    let initialize = initialize_message("2025-11-25");
    let refused = rpc(&server, None, "2025-11-25", initialize).await;
    assert_eq!(refused.status(), 503);
    let said: Value = refused.json().await.expect("a JSON-RPC error");
    let message = said["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("--max-mcp-connections"), "{said}");
    // A client without a connection (2026-07-28) holds nothing, and is still served.
    let modern = server.client(Lifecycle::Discover, None).await;
    let listed = modern.call("session_list", json!({})).await;
    assert_eq!(listed["count"], 0);
}

#[tokio::test]
async fn sigterm_stops_the_server_whatever_its_clients_do() {
    use tokio::io::AsyncWriteExt;
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let address = server.base.trim_start_matches("http://").to_owned();
    // One idle keep-alive connection after a request, one event stream, one silent socket.
    let mut idle = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    idle.write_all(b"GET /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let _silent = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let mut halfway = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    halfway
        .write_all(
            b"POST /api/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .expect("half a body");
    let (connection, _) = open_connection(&server, "2025-11-25").await;
    let _stream = event_stream(&server, "2025-11-25", &connection).await;
    let _events = web()
        .get(server.url("/api/events"))
        .send()
        .await
        .expect("dashboard stream");
    // And a sessionless client waiting for a lock another holds.
    let holder = server.client(LEGACY, None).await;
    holder.register("holder", "web", "main").await;
    holder
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    let waiter = server.client(Lifecycle::Discover, None).await;
    let (_, token) = register_for_token(&waiter, "waiter", "web").await;
    let waiting = tokio::spawn(async move {
        waiter
            .raw(
                "lock_acquire",
                json!({"file_path": "src/a.rs", "wait_seconds": 120, "session_token": token}),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let status = server.stop();
    waiting.abort();
    assert!(
        status.success(),
        "SIGTERM ends it cleanly within the harness's 5 s: {status:?} after {:?}",
        started.elapsed()
    );
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    common::rss_kib(pid).expect("VmRSS")
}

#[tokio::test]
async fn dashboard_streams_that_never_read_cost_no_memory() {
    use tokio::io::AsyncWriteExt;
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let busy = server.client(LEGACY, None).await;
    busy.register("busy", "web", "main").await;
    // A snapshot of some size: 1,000 locks.
    for n in 0..1000 {
        busy.call(
            "lock_acquire",
            json!({"file_path": format!("src/file{n}.rs")}),
        )
        .await;
    }
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut streams = Vec::new();
    for _ in 0..100 {
        // A small window, so the kernel holds little for the server and the rest would wait
        // in the server's memory.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("buffer size");
        let mut stream = socket
            .connect(address.parse().expect("address"))
            .await
            .expect("connect");
        stream
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("request");
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(server.pid());
    // Every change is a new snapshot for every stream; none of them reads.
    for n in 0..10 {
        busy.call(
            "lock_release",
            json!({"file_path": format!("src/file{n}.rs")}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let after = rss_kib(server.pid());
    assert!(
        after < before + 20 * 1024,
        "100 streams that never read grew the server from {before} KiB to {after} KiB"
    );
    // A stream that reads still gets the latest state.
    let mut live = web()
        .get(server.url("/api/events"))
        .send()
        .await
        .expect("events");
    let first = tokio::time::timeout(Duration::from_secs(5), live.chunk())
        .await
        .expect("a snapshot at once")
        .expect("read")
        .expect("data");
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("event: snapshot\ndata: {"), "{text:.80}");
    drop(streams);
}

#[tokio::test]
async fn a_flood_of_refused_requests_is_logged_as_a_count() {
    let db = Db::new();
    let log = db.path().with_extension("log");
    let server = HttpServer::start_logging(&db.path(), &["--token", TOKEN], &log);
    let http = web();
    for _ in 0..300 {
        let refused = http
            .get(server.url("/api/snapshot"))
            .send()
            .await
            .expect("request");
        assert_eq!(refused.status(), 401);
    }
    server.stop();
    let written = std::fs::read_to_string(&log).expect("log");
    let lines = written.matches("request refused").count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines for 300 refusals:\n{written}"
    );
}
