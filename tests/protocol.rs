//! What any MCP client sees: protocol versions, tool definitions, errors it can read, and a
//! server that survives whatever it is sent.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{self, BIN, Db, Lifecycle, Server};
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const TOOLS: [&str; 20] = [
    "session_register",
    "session_heartbeat",
    "session_list",
    "session_get",
    "session_deregister",
    "lock_acquire",
    "lock_release",
    "lock_list",
    "lock_check",
    "intent_announce",
    "intent_update",
    "intent_list",
    "intent_clear",
    "message_send",
    "message_list",
    "message_mark_read",
    "conflict_check",
    "context_share",
    "context_query",
    "context_delete",
];

async fn exercise(server: &Server) {
    let mut names: Vec<String> = server
        .client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = TOOLS.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);

    server.register("versioned", "app", "main").await;
    let granted = server
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(granted["granted"], true);
    let status = server
        .call("lock_check", json!({"file_path": "src/a.ts"}))
        .await;
    assert_eq!(status["locked"], true);
    let err = server
        .call_err(
            "lock_acquire",
            json!({"file_path": "a", "lock_type": "bogus"}),
        )
        .await;
    assert!(err.contains("lock_type"));
}

#[tokio::test]
async fn works_with_each_protocol_version_clients_negotiate() {
    let db = Db::new();
    for lifecycle in [
        Lifecycle::Initialize(ProtocolVersion::V_2025_06_18),
        Lifecycle::Initialize(ProtocolVersion::V_2025_11_25),
        Lifecycle::Discover,
    ] {
        let server = Server::spawn(&db.path(), &[], lifecycle).await;
        exercise(&server).await;
        server.quit().await;
    }
}

/// Every call here is wrong in one way; the answer must be a tool error (not a protocol error)
/// whose text names the argument and, for choices, the allowed values.
#[tokio::test]
async fn bad_input_is_answered_with_errors_that_name_the_argument() {
    let db = Db::new();
    let server = db.server().await;

    let unregistered = server
        .call_err("lock_acquire", json!({"file_path": "a"}))
        .await;
    assert!(
        unregistered.contains("`session_id` is required")
            && unregistered.contains("session_register"),
        "{unregistered}"
    );

    server.register("tester", "app", "main").await;
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("session_register", json!({}), vec!["missing field `name`"]),
        (
            "session_register",
            json!({"name": " ", "project": "p"}),
            vec!["`name`", "must not be empty"],
        ),
        (
            "session_register",
            json!({"name": "n", "project": "p", "working_directory": "rel"}),
            vec!["`working_directory`", "absolute"],
        ),
        (
            "session_register",
            json!({"name": "n", "project": "p", "working_directory": "/repo\nx\u{1b}[2J"}),
            vec!["`working_directory`", "U+000A", "control character"],
        ),
        (
            "session_register",
            json!({"name": "admin\u{202E}gnp", "project": "p"}),
            vec!["`name`", "U+202E", "bidirectional"],
        ),
        (
            "session_register",
            json!({"name": "n", "project": "p", "branch": "ma\u{200B}in"}),
            vec!["`branch`", "U+200B", "zero-width"],
        ),
        (
            "session_register",
            json!({"name": "n", "project": "p", "group": "\u{FEFF}backend"}),
            vec!["`group`", "U+FEFF"],
        ),
        (
            "lock_acquire",
            json!({"file_path": "a", "lock_type": "bogus"}),
            vec!["`lock_type`", "exclusive, shared, intent"],
        ),
        (
            "lock_acquire",
            json!({"file_path": "../outside.ts"}),
            vec!["`file_path`", "project root"],
        ),
        (
            "lock_acquire",
            json!({"file_path": "/etc/passwd"}),
            vec!["`file_path`", "outside"],
        ),
        (
            "lock_acquire",
            json!({"file_path": ""}),
            vec!["`file_path`", "empty"],
        ),
        (
            "lock_acquire",
            json!({"file_path": 42}),
            vec!["`file_path`", "invalid type"],
        ),
        (
            "lock_acquire",
            json!({"file_path": "a", "ttl_seconds": -5}),
            vec!["`ttl_seconds`"],
        ),
        (
            "lock_acquire",
            json!({"file_path": "a", "ttl_seconds": 0}),
            vec!["`ttl_seconds`", "1 to 86400"],
        ),
        (
            "lock_acquire",
            json!({"file_path": "a", "ttl": 60}),
            vec!["unknown field `ttl`", "`ttl_seconds`"],
        ),
        ("lock_release", json!({}), vec!["missing field `file_path`"]),
        (
            "intent_announce",
            json!({"intent_type": "deploy"}),
            vec!["`intent_type`", "file_edit, git_commit"],
        ),
        (
            "intent_update",
            json!({"intent_id": "int-1", "status": "done"}),
            vec!["`status`", "in_progress, completed, abandoned"],
        ),
        (
            "intent_update",
            json!({"intent_id": "msg-1", "status": "completed"}),
            vec!["`intent_id`", "int-42"],
        ),
        (
            "intent_clear",
            json!({"intent_id": "int-999"}),
            vec!["int-999", "does not exist"],
        ),
        (
            "message_send",
            json!({"content": "x", "channel": "random"}),
            vec!["`channel`", "general, coordination, ideas, alerts, git"],
        ),
        (
            "message_send",
            json!({"content": "x", "priority": "asap"}),
            vec!["`priority`", "low, normal, high, urgent"],
        ),
        (
            "message_send",
            json!({"content": "x".repeat(20_000)}),
            vec!["`content`", "limit"],
        ),
        (
            "message_send",
            json!({"content": "hi", "to_session": "nobody"}),
            vec!["`to_session`", "nobody"],
        ),
        (
            "message_list",
            json!({"since": "whenever"}),
            vec!["`since`", "15m"],
        ),
        (
            "message_list",
            json!({"limit": 100000}),
            vec!["`limit`", "1 to 500"],
        ),
        (
            "message_mark_read",
            json!({"message_ids": ["ctx-1"]}),
            vec!["`message_ids", "msg-7"],
        ),
        (
            "conflict_check",
            json!({"intent_type": "yolo"}),
            vec!["`intent_type`", "dependency_change"],
        ),
        (
            "context_share",
            json!({"context_type": "rumor", "content": "x"}),
            vec![
                "`context_type`",
                "decision, discovery, convention, blocker, note",
            ],
        ),
        (
            "context_query",
            json!({"keyword": "!!!"}),
            vec!["`keyword`"],
        ),
        (
            "context_delete",
            json!({"context_id": "ctx-77"}),
            vec!["ctx-77", "does not exist"],
        ),
        (
            "session_heartbeat",
            json!({"session_id": "ses-nope"}),
            vec!["unknown session `ses-nope`", "session_register"],
        ),
        (
            "session_get",
            json!({"session_id": "ses-nope"}),
            vec!["unknown session"],
        ),
        (
            "lock_check",
            json!({"file_path": "a", "session_id": "ses-nope"}),
            vec!["unknown session"],
        ),
    ];
    for (tool, args, expected) in cases {
        let error = server.call_err(tool, args.clone()).await;
        for fragment in expected {
            assert!(
                error.contains(fragment),
                "{tool}({args}): '{error}' should mention '{fragment}'"
            );
        }
    }
    let still_serving = server.call("session_heartbeat", json!({})).await;
    assert_eq!(still_serving["status"], "active");
}

#[tokio::test]
async fn malformed_json_rpc_does_not_stop_the_server() {
    let db = Db::new();
    let mut child = tokio::process::Command::from(common::prepared(
        Path::new(BIN),
        &db.path(),
        &[("MCP_COORDINATOR_LOG", "error")],
        None,
    ))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let garbage = [
        "this is not json".to_owned(),
        "{\"jsonrpc\": \"2.0\", \"id\": 2".to_owned(),
        "[1, 2, 3]".to_owned(),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "lock_acquire", "arguments": "not an object"}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "session_register", "arguments": {"name": "\u{0000}\u{fffd}", "project": "p\nq"}}}).to_string(),
        "\u{feff}{}".to_owned(),
    ];
    let probe = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "session_register", "arguments": {"name": "survivor", "project": "app"}}});

    let mut script = vec![
        initialize.to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
    ];
    script.extend(garbage);
    script.push(probe.to_string());
    for line in script {
        stdin.write_all(line.as_bytes()).await.expect("write");
        stdin.write_all(b"\n").await.expect("write");
    }
    stdin.flush().await.expect("flush");

    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let message: Value =
                serde_json::from_str(&line).expect("the server writes only JSON-RPC on stdout");
            if message["id"] == 99 {
                return Some(message);
            }
        }
        None
    })
    .await
    .expect("an answer in time")
    .expect("the probe is answered");
    assert_eq!(
        answer["result"]["structuredContent"]["status"],
        "registered"
    );
    assert!(child.try_wait().expect("status").is_none(), "still running");
}

#[tokio::test]
async fn sessions_are_rooted_where_the_client_started_the_server() {
    let db = Db::new();
    let checkout = tempfile::tempdir().expect("checkout");
    let root = checkout.path().canonicalize().expect("canonical");
    let server = Server::spawn_in(
        &db.path(),
        &[],
        Lifecycle::Initialize(ProtocolVersion::V_2025_06_18),
        Some(&root),
    )
    .await;
    let registered = server
        .call("session_register", json!({"name": "n", "project": "p"}))
        .await;
    assert_eq!(registered["working_directory"], root.display().to_string());
    let absolute = root.join("src/./lib.rs");
    let granted = server
        .call(
            "lock_acquire",
            json!({"file_path": absolute.display().to_string()}),
        )
        .await;
    assert_eq!(granted["file_path"], "src/lib.rs");
}

/// Node clients (Claude Code, Gemini CLI, Copilot CLI) connect a server's stdin and stdout
/// through libuv's socket pairs, not pipes: the server reads and writes them on its runtime
/// (no blocking thread per message), answers, and ends its sessions when the client closes.
#[test]
fn a_socket_pair_stdio_is_served_like_pipes() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    let db = Db::new();
    let (mut input, theirs_in) = UnixStream::pair().expect("socket pair");
    let (output, theirs_out) = UnixStream::pair().expect("socket pair");
    let mut child = common::prepared(Path::new(BIN), &db.path(), &[], None)
        .env("MCP_COORDINATOR_LOG", "debug")
        .stdin(Stdio::from(OwnedFd::from(theirs_in)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    output
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut answers = BufReader::new(output);
    let mut ask = |id: u64, method: &str, params: Value| -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(input, "{request}").expect("write");
        let mut line = String::new();
        answers.read_line(&mut line).expect("an answer");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let init = ask(
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "node-like", "version": "1"}}),
    );
    assert!(init["result"]["protocolVersion"].is_string(), "{init}");
    let registered = ask(
        2,
        "tools/call",
        json!({"name": "session_register", "arguments": {"name": "node", "project": "app"}}),
    );
    let session = registered["result"]["structuredContent"]["session_id"].clone();
    assert!(session.is_string(), "{registered}");
    let granted = ask(
        3,
        "tools/call",
        json!({"name": "lock_acquire", "arguments": {"file_path": "src/a.ts"}}),
    );
    assert_eq!(
        granted["result"]["structuredContent"]["granted"], true,
        "{granted}"
    );
    assert_eq!(ask(4, "ping", json!({}))["result"], json!({}));

    drop(input);
    let exited = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        child.try_wait().expect("status").is_some()
    });
    assert!(
        exited,
        "the server did not end when its client closed the socket"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(
        stderr.contains("socket pair, read and written without blocking"),
        "the socket was not read on the runtime: {stderr}"
    );
    let locks = db.cli(&["locks", "--project", "app", "--json"]);
    assert!(
        !locks.stdout.contains("src/a.ts"),
        "the lock outlived its session: {}",
        locks.stdout
    );
}
