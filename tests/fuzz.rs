//! Fuzzing the real binary: random tool arguments, and garbage on the JSON-RPC wire.
//!
//! Whatever arrives, the server must not panic or exit, must answer every request it can
//! identify, and must answer a bad tool argument with a tool error (`isError`) that names the
//! argument. Runs are reproducible: `FUZZ_SEED=N` replays one, and a failure prints the command.
//! `COORDINATOR_SOAK=N` multiplies the number of rounds for a longer run.

use std::collections::BTreeMap;

use crate::common::raw::RawServer;
use crate::common::replay::Seed;
use crate::common::{self, Db, soak};
use serde_json::{Map, Value, json};

/// Small, fast, and good enough to pick test inputs: splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The same inputs every run unless `FUZZ_SEED=N` asks for others.
fn seed() -> Seed {
    Seed::fixed("FUZZ_SEED", 0x00c0_ffee)
}

/// Strings that have broken parsers, path handling or SQL elsewhere.
const STRINGS: &[&str] = &[
    "",
    " ",
    "src/a.ts",
    "src/",
    "src/**",
    "src/**/*.ts",
    "migrations/*.sql",
    "pages/[id].tsx",
    "../../etc/passwd",
    "/abs/outside",
    "C:\\work\\x.ts",
    "./a/../b",
    "a//b",
    "\u{0}",
    "nul\u{0}byte",
    "\u{feff}bom",
    "💥ünïcödé",
    "line\nbreak",
    "'; DROP TABLE sessions; --",
    "%",
    "_",
    "*",
    "?",
    "[",
    "\"quoted\"",
    "exclusive",
    "Shared",
    "intent",
    "file_edit",
    "git_rebase",
    "in_progress",
    "completed",
    "decision",
    "urgent",
    "alerts",
    "high",
    "-1",
    "600",
    "1e309",
    "NaN",
    "null",
    "true",
    "15m",
    "2026-11-24T00:00:00Z",
    "int-1",
    "int-999999999999",
    "msg-1",
    "ctx-1",
    "ses-nope",
    "fuzzer",
    "app",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "300",
    "301",
    "86400",
    "86401",
    "1.5",
    "-0.0",
    "1e308",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "-9223372036854775808",
    "123456789012345678901234567890",
];

fn number(rng: &mut Rng) -> Value {
    let text: &&str = rng.pick(NUMBERS);
    serde_json::from_str(text).expect("a JSON number")
}

fn string(rng: &mut Rng) -> Value {
    if rng.chance(3) {
        return Value::String("x".repeat(rng.pick(&[1_000, 20_000, 300_000]).to_owned()));
    }
    Value::String((*rng.pick(STRINGS)).to_owned())
}

/// Any JSON value, nested at most `depth` deep.
fn any(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => number(rng),
        3 | 4 => string(rng),
        5 => Value::Array((0..rng.below(4)).map(|_| any(rng, depth - 1)).collect()),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| {
                    (
                        string(rng).as_str().unwrap_or("k").to_owned(),
                        any(rng, depth - 1),
                    )
                })
                .collect(),
        ),
    }
}

/// A value of roughly the schema's type, or now and then anything at all.
fn plausible(rng: &mut Rng, kind: &str, depth: usize) -> Value {
    if rng.chance(20) {
        return any(rng, depth);
    }
    match kind {
        "integer" | "number" => {
            if rng.chance(15) {
                Value::String(rng.pick(NUMBERS).to_string())
            } else {
                number(rng)
            }
        }
        "boolean" => Value::Bool(rng.chance(50)),
        "array" => Value::Array((0..rng.below(4)).map(|_| string(rng)).collect()),
        _ => string(rng),
    }
}

/// A tool's argument names with their JSON types, and which are required.
struct Schema {
    properties: BTreeMap<String, String>,
    required: Vec<String>,
}

fn schemas(tools: &Value) -> BTreeMap<String, Schema> {
    tools["result"]["tools"]
        .as_array()
        .expect("tools/list answers a list")
        .iter()
        .map(|tool| {
            let input = &tool["inputSchema"];
            let properties = input["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .map(|(name, p)| {
                            let kind = p["type"].as_str().unwrap_or("string").to_owned();
                            (name.clone(), kind)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let required = input["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let name = tool["name"].as_str().expect("tool name").to_owned();
            (
                name,
                Schema {
                    properties,
                    required,
                },
            )
        })
        .collect()
}

/// A well-formed value for a required argument, so that one injected fault is the only one.
fn good(name: &str) -> Value {
    typical(&mut Rng(0), name)
        .unwrap_or_else(|| panic!("add well-formed values for the required argument `{name}`"))
}

/// A well-formed value for an argument, when the name is known: most random calls should get
/// past argument checks and reach the coordinator.
fn typical(rng: &mut Rng, name: &str) -> Option<Value> {
    let words: &[&str] = match name {
        "file_path" => &["src/fuzz.ts", "src/", "src/**/*.ts", "docs/a.md"],
        "file_paths" | "files" => return Some(json!(["src/fuzz.ts", "src/b.ts"])),
        "name" => &["fuzz-peer", "fuzzer"],
        "project" => &["app"],
        "branch" => &["main", "feature/x"],
        "content" | "description" => &["a note", "done"],
        "context_type" => &["decision", "discovery"],
        "intent_type" => &["file_edit", "git_commit", "git_rebase", "build"],
        "intent_id" => &["int-1", "int-2"],
        "context_id" => &["ctx-1"],
        "status" => &["in_progress", "completed", "abandoned"],
        "lock_type" => &["exclusive", "shared", "intent"],
        "channel" => &["general", "coordination", "alerts"],
        "priority" => &["normal", "high", "urgent"],
        "keyword" | "target" => &["auth", "main"],
        "since" => &["15m", "1h"],
        "to_session" => &["fuzz-peer", "fuzzer"],
        "ttl_seconds" | "limit" => return Some(json!(rng.pick(&[1, 60, 900]))),
        "wait_seconds" | "fencing_token" => return Some(json!(rng.pick(&[0, 1]))),
        "queue" | "mark_read" | "unread_only" | "include_finished" => {
            return Some(json!(rng.chance(50)));
        }
        _ => return None,
    };
    Some(json!(rng.pick(words)))
}

/// A call with one thing wrong, and the argument name the error must mention.
fn faulty(rng: &mut Rng, schema: &Schema) -> (Map<String, Value>, String) {
    let mut args: Map<String, Value> = schema
        .required
        .iter()
        .map(|name| (name.clone(), good(name)))
        .collect();
    let names: Vec<&String> = schema.properties.keys().collect();
    match rng.below(3) {
        0 if !schema.required.is_empty() => {
            let dropped = rng.pick(&schema.required).clone();
            args.remove(&dropped);
            (args, dropped)
        }
        1 if !names.is_empty() => {
            let name = (*rng.pick(&names)).clone();
            let wrong = if rng.chance(50) {
                json!({"nested": [1, 2]})
            } else {
                json!([{"deep": {"er": null}}])
            };
            // A list argument accepts one item, but never a list of objects or an object.
            args.insert(name.clone(), wrong);
            (args, name)
        }
        _ => {
            let unknown = format!("{}_typo", rng.pick(&["file_path", "sesion_id", "zz"]));
            args.insert(unknown.clone(), json!("x"));
            (args, unknown)
        }
    }
}

/// Random arguments shaped loosely like the tool's, with the odd unknown key.
fn wild(rng: &mut Rng, schema: &Schema) -> Map<String, Value> {
    let mut args = Map::new();
    for (name, kind) in &schema.properties {
        // Mostly well-formed calls, so most of them reach the coordinator: required arguments
        // nearly always, and mostly this connection's own session.
        let odds = if schema.required.contains(name) {
            95
        } else if name == "session_id" || name == "from_session" {
            15
        } else {
            50
        };
        if rng.chance(odds) {
            let mut value = match typical(rng, name) {
                Some(value) if rng.chance(75) => value,
                _ => plausible(rng, kind, 2),
            };
            // A long wait would only slow the run down; waiting is tested elsewhere.
            if name == "wait_seconds" && value.as_f64().is_some_and(|s| s > 1.0) {
                value = json!(1);
            }
            args.insert(name.clone(), value);
        }
    }
    if rng.chance(10) {
        args.insert(string(rng).as_str().unwrap_or("k").to_owned(), any(rng, 1));
    }
    args
}

fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The database's integrity verdict (`PRAGMA integrity_check` on SQLite; "ok" on PostgreSQL,
/// which checks its own pages), after checking that the unread counters the triggers keep
/// still match the inbox after everything the fuzz did.
fn integrity(db: &std::path::Path) -> String {
    const DRIFTED: &str = "SELECT count(*) FROM sessions s WHERE s.unread != (SELECT count(*)
        FROM inbox x WHERE x.session_id = s.id AND x.read_at IS NULL)";
    if let Some(url) = common::postgres_url(db) {
        let drifted: i64 = common::on_postgres(&url, |client| {
            client.query_one(DRIFTED, &[]).expect("compare").get(0)
        });
        assert_eq!(drifted, 0, "sessions whose unread counter drifted");
        return "ok".to_owned();
    }
    let conn = rusqlite::Connection::open(db).expect("open the database");
    let drifted: i64 = conn
        .query_row(DRIFTED, [], |row| row.get(0))
        .expect("compare the unread counters");
    assert_eq!(drifted, 0, "sessions whose unread counter drifted");
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check")
}

#[tokio::test]
async fn random_tool_arguments_get_answers_and_bad_ones_name_the_argument() {
    let seed = seed();
    let mut rng = Rng(seed.value());
    let db = Db::new();
    let mut server = RawServer::start(&db.path()).await;
    let tools = server.request(json!("list"), "tools/list", json!({})).await;
    let schemas = schemas(&tools);
    assert_eq!(schemas.len(), 20, "every tool is fuzzed");
    let names: Vec<&String> = schemas.keys().collect();
    let (mut calls, mut refusals, mut faults) = (0, 0, 0);
    for round in 0..25 * soak() {
        // (Again) the connection's session, which random calls may have deregistered.
        let me = server
            .request(
                json!(format!("me-{round}")),
                "tools/call",
                json!({"name": "session_register", "arguments": {"name": "fuzzer", "project": "app"}}),
            )
            .await;
        assert_eq!(me["result"]["structuredContent"]["status"], "registered");
        // A batch in flight at once, as a busy client pipelines them.
        let mut batch = Vec::new();
        for n in 0..40 {
            let id = json!(format!("r{round}-{n}"));
            let tool = (*rng.pick(&names)).clone();
            let schema = &schemas[&tool];
            let (arguments, expect) = if rng.chance(40) {
                let (args, name) = faulty(&mut rng, schema);
                (args, Some(name))
            } else {
                (wild(&mut rng, schema), None)
            };
            let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}});
            server.send(&request.to_string()).await;
            batch.push((id, tool, arguments, expect));
        }
        for (id, tool, arguments, expect) in batch {
            let answer = server.answer(&id).await;
            calls += 1;
            let args = Value::Object(arguments);
            let result = answer
                .get("result")
                .unwrap_or_else(|| panic!("{tool}({args}): a tool result, not {answer}"));
            let text = text_of(result);
            if result["isError"] == true {
                refusals += 1;
                assert!(!text.trim().is_empty(), "{tool}({args}): an empty error");
                assert!(!text.contains("internal error"), "{tool}({args}): {text}");
            } else {
                assert!(
                    result["structuredContent"].is_object(),
                    "{tool}({args}): a success has structured content: {result}"
                );
            }
            if let Some(name) = expect {
                faults += 1;
                assert_eq!(result["isError"], true, "{tool}({args}) must be refused");
                assert!(
                    text.contains(&format!("`{name}`")),
                    "{tool}({args}): the error names `{name}`: {text}"
                );
            }
        }
        assert!(server.alive(), "the server exited in round {round}");
    }
    println!("{calls} calls, {refusals} refused, {faults} with an injected fault");
    assert_eq!(server.duplicate_answers, 0, "one answer per request");
    let still = server
        .request(
            json!("end"),
            "tools/call",
            json!({"name": "session_register", "arguments": {"name": "after", "project": "app"}}),
        )
        .await;
    assert_eq!(still["result"]["structuredContent"]["status"], "registered");
    let stderr = server.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    assert_eq!(integrity(&db.path()), "ok");
}

/// Lines that are not JSON, JSON that is not JSON-RPC, and JSON-RPC with fields of the wrong
/// shape; each case a fixed example, then random ones.
fn garbage(rng: &mut Rng) -> String {
    let methods = [
        "tools/call",
        "tools/list",
        "resources/read",
        "resources/subscribe",
        "resources/list",
        "ping",
        "initialize",
        "no/such/method",
        "",
    ];
    match rng.below(9) {
        0 => {
            // Bytes, not necessarily text.
            let bytes: Vec<u8> = (0..rng.below(200))
                .map(|_| (rng.next() % 256) as u8)
                .filter(|b| *b != b'\n')
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => {
            // A request cut short.
            let whole = json!({"jsonrpc": "2.0", "id": 1, "method": rng.pick(&methods),
                "params": {"name": "lock_acquire", "arguments": {"file_path": "a"}}})
            .to_string();
            let cut = rng.below(whole.len());
            whole.get(..cut).unwrap_or("{").to_owned()
        }
        2 => any(rng, 3).to_string(),
        3 => json!({"jsonrpc": "2.0", "id": any(rng, 1), "method": rng.pick(&methods),
            "params": any(rng, 2)})
        .to_string(),
        4 => json!({"jsonrpc": any(rng, 0), "id": 7, "method": any(rng, 0)}).to_string(),
        5 => {
            // Nesting far past any parser's recursion limit.
            let depth = rng.pick(&[200, 5_000, 100_000]).to_owned();
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        }
        6 => json!({"jsonrpc": "2.0", "id": rng.below(1000), "method": "tools/call",
            "params": {"name": any(rng, 0), "arguments": any(rng, 2)}})
        .to_string(),
        7 => {
            // A batch (JSON-RPC 2.0 allows them; MCP removed them).
            let items: Vec<Value> = (0..rng.below(3))
                .map(|i| json!({"jsonrpc": "2.0", "id": format!("batch-{i}"), "method": "ping"}))
                .collect();
            Value::Array(items).to_string()
        }
        _ => json!({"jsonrpc": "2.0", "method": rng.pick(&methods), "params": any(rng, 2)})
            .to_string(),
    }
}

#[tokio::test]
async fn garbage_on_the_wire_never_stops_the_server() {
    let seed = seed();
    let mut rng = Rng(seed.value());
    let db = Db::new();
    let mut server = RawServer::start(&db.path()).await;
    let fixed = [
        "this is not json".to_owned(),
        "{\"jsonrpc\": \"2.0\", \"id\": 2".to_owned(),
        "[1, 2, 3]".to_owned(),
        "\u{feff}{}".to_owned(),
        "{}".to_owned(),
        "null".to_owned(),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "lock_acquire", "arguments": "not an object"}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "session_register", "arguments": {"name": "\u{0000}\u{fffd}", "project": "p\nq"}}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 6, "result": {}}).to_string(),
        format!("{{\"jsonrpc\": \"2.0\", \"id\": 8, \"method\": \"ping\", \"params\": {{\"pad\": \"{}\"}}}}", "x".repeat(2_000_000)),
    ];
    for line in &fixed {
        server.send(line).await;
    }
    // Requests whose id can be read are answered, with an error where they are wrong. (rmcp
    // answers arguments that are not an object with "method not found", not "invalid params".)
    for id in [3, 4] {
        let answer = server.answer(&json!(id)).await;
        assert!(answer["error"]["code"].is_i64(), "{id}: {answer}");
    }
    let control = server.answer(&json!(5)).await;
    assert_eq!(control["result"]["isError"], true, "{control}");
    assert!(text_of(&control["result"]).contains("`name`"), "{control}");
    let long = server.answer(&json!(8)).await;
    assert!(long["result"].is_object(), "a 2 MB line is read whole");
    let mut probes = 0;
    for round in 0..20 * soak() {
        for _ in 0..25 {
            let line = garbage(&mut rng);
            server.send(&line).await;
        }
        // Interleaved well-formed requests must all be answered.
        let probe = json!(format!("probe-{round}"));
        let pong = server.request(probe.clone(), "ping", json!({})).await;
        assert!(pong.get("result").is_some(), "ping answered: {pong}");
        probes += 1;
        assert!(server.alive(), "the server exited in round {round}");
    }
    let survivor = server
        .request(
            json!("survivor"),
            "tools/call",
            json!({"name": "session_register", "arguments": {"name": "survivor", "project": "app"}}),
        )
        .await;
    assert_eq!(
        survivor["result"]["structuredContent"]["status"],
        "registered"
    );
    println!(
        "{probes} probes answered; {} error answers without an id",
        server.anonymous_errors
    );
    let stderr = server.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    assert_eq!(integrity(&db.path()), "ok");
}
