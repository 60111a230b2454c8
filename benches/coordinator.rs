//! Benchmarks of the real binary, driven over real MCP stdio by the official Rust SDK's client.
//!
//!     cargo bench --bench coordinator              # the full run (a few minutes)
//!     cargo bench --bench coordinator -- --quick   # a smoke run of every section (CI)
//!     cargo bench --bench coordinator -- --seed /tmp/big.db 100000   # only seed a database
//!
//! Sections: (0) the same calls in process, without MCP, to separate the domain's cost from the
//! transport's; (1) round-trip latency of the hot calls, one client; (2) lock throughput with 1, 2,
//! 4 and 8 server processes on one database, on distinct paths and on one shared path; (3) the
//! same calls with 1k, 10k and 100k live locks, messages and context entries seeded straight
//! into the store; (4) idle memory and time to the first answer. It prints tables, compares
//! them with the goals of PRODUCT.md, and writes everything as JSON (`--json PATH`, default
//! `target/bench/coordinator.json`). Figures are this machine's: the bench client shares the
//! cores with the servers it measures.

// The integration tests' helpers, which that binary uses in full; `pub` because a bench uses
// a part of them, and what is unused there is not dead.
#[path = "../tests/common/mod.rs"]
pub mod common;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{BIN, Db, Server};
use mcp_session_coordinator::clock::{Clock, SystemClock};
use mcp_session_coordinator::model::{Channel, ContextType, LockType, Priority};
use mcp_session_coordinator::store::{NewMessage, Store};
use rmcp::model::{ClientRequest, PingRequest};
use serde_json::{Value, json};

/// The bench session seeded into the scaling databases, so calls can name it.
const SEEDED_SESSION: &str = "ses-bench";

struct Options {
    quick: bool,
    json: PathBuf,
    /// `--seed PATH SIZE`: only write a seeded database, to look into with the sqlite3 shell.
    seed_only: Option<(PathBuf, usize)>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|at| args.get(at + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/coordinator.json")
        });
    let seed_only = args.iter().position(|a| a == "--seed").and_then(|at| {
        let size = args.get(at + 2)?.parse().ok()?;
        Some((PathBuf::from(args.get(at + 1)?), size))
    });
    Options {
        quick: args.iter().any(|a| a == "--quick"),
        json,
        seed_only,
    }
}

/// Round trips of one call, summarized.
#[derive(Debug, Clone, serde::Serialize)]
struct Latency {
    call: String,
    n: usize,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

fn summarize(call: &str, mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1e6
    };
    Latency {
        call: call.to_owned(),
        n: samples.len(),
        p50_us: at(0.50),
        p99_us: at(0.99),
        max_us: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
    }
}

/// Times `n` calls of `tool`, with arguments made per iteration; every call must succeed.
async fn time_tool(
    server: &Server,
    tool: &str,
    n: usize,
    mut args: impl FnMut(usize) -> Value,
) -> Latency {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let arguments = args(i);
        let started = Instant::now();
        let result = server.raw(tool, arguments.clone()).await;
        samples.push(started.elapsed());
        assert_ne!(
            result.is_error,
            Some(true),
            "{tool}({arguments}) failed: {}",
            common::text(&result)
        );
    }
    summarize(tool, samples)
}

/// Acquire and release of fresh paths, timed separately.
async fn time_lock_pairs(server: &Server, n: usize, session: Option<&str>) -> [Latency; 2] {
    let (mut acquire, mut release) = (Vec::new(), Vec::new());
    for i in 0..n {
        let path = format!("bench/fresh/{i}.ts");
        let mut args = json!({"file_path": path});
        if let Some(id) = session {
            args["session_id"] = json!(id);
        }
        let started = Instant::now();
        let granted = server.raw("lock_acquire", args.clone()).await;
        acquire.push(started.elapsed());
        assert_ne!(granted.is_error, Some(true), "{}", common::text(&granted));
        let started = Instant::now();
        server.raw("lock_release", args).await;
        release.push(started.elapsed());
    }
    [
        summarize("lock_acquire", acquire),
        summarize("lock_release", release),
    ]
}

fn print_latencies(title: &str, rows: &[Latency]) {
    println!("\n{title}");
    println!(
        "{:<16} {:>6} {:>10} {:>10} {:>10}",
        "call", "n", "p50 µs", "p99 µs", "max µs"
    );
    for r in rows {
        println!(
            "{:<16} {:>6} {:>10.0} {:>10.0} {:>10.0}",
            r.call, r.n, r.p50_us, r.p99_us, r.max_us
        );
    }
}

/// Section 0: the same work without MCP or another process, through the coordinator API on
/// one thread: what the domain and SQLite cost per call.
fn in_process(n: usize) -> Vec<Latency> {
    use mcp_session_coordinator::Coordinator;
    use mcp_session_coordinator::coordinator::{Claim, LockRequest, Registration};
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("temporary folder");
    let store = Store::open_file(&dir.path().join("coordinator.db")).expect("open");
    let coordinator = Coordinator::new(
        store,
        Arc::new(SystemClock),
        Duration::from_secs(300),
        "bench".into(),
    );
    let me = coordinator
        .register(
            Registration {
                name: "bench".into(),
                project: "app".into(),
                branch: None,
                working_directory: None,
                ..Registration::default()
            },
            Claim::default(),
        )
        .expect("register")
        .session
        .session_id;
    let (mut acquire, mut release, mut check, mut unread) = (vec![], vec![], vec![], vec![]);
    for i in 0..n + 50 {
        let path = format!("bench/{i}.ts");
        let started = Instant::now();
        coordinator
            .acquire_lock(LockRequest::new(&me, &path, LockType::Exclusive))
            .expect("acquire");
        let acquired = started.elapsed();
        let started = Instant::now();
        coordinator
            .check_lock(Some(&me), None, &path, None)
            .expect("check");
        let checked = started.elapsed();
        let started = Instant::now();
        coordinator.unread(&me).expect("unread");
        let counted = started.elapsed();
        let started = Instant::now();
        coordinator.release_lock(&me, &path).expect("release");
        // The first 50 warm the statement cache.
        if i >= 50 {
            release.push(started.elapsed());
            acquire.push(acquired);
            check.push(checked);
            unread.push(counted);
        }
    }
    vec![
        summarize("lock_acquire", acquire),
        summarize("lock_release", release),
        summarize("lock_check", check),
        summarize("unread (per answer)", unread),
    ]
}

/// The transport's floor: a `ping`, which no tool or database work follows.
async fn time_ping(server: &Server, n: usize) -> Latency {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let ping = PingRequest {
            method: Default::default(),
            extensions: Default::default(),
        };
        let started = Instant::now();
        server
            .client
            .send_request(ClientRequest::PingRequest(ping))
            .await
            .expect("ping");
        samples.push(started.elapsed());
    }
    summarize("ping (floor)", samples)
}

/// Section 1: each hot call, one client, a second session present to receive messages.
async fn latency(n: usize) -> Vec<Latency> {
    let db = Db::new();
    let server = db.server().await;
    let peer = db.server().await;
    server.register("bench", "app", "main").await;
    peer.register("peer", "app", "main").await;
    for i in 0..20 {
        server
            .call(
                "context_share",
                json!({"context_type": "decision", "content": format!("bench decision {i}: use tokio")}),
            )
            .await;
        peer.call(
            "message_send",
            json!({"to_session": "bench", "content": "hello"}),
        )
        .await;
    }
    // Warm-up: the first calls pay for statement preparation and page faults.
    time_lock_pairs(&server, 50, None).await;

    let mut rows = vec![time_ping(&server, n).await];
    rows.extend(time_lock_pairs(&server, n, None).await);
    server
        .call("lock_acquire", json!({"file_path": "bench/held.ts"}))
        .await;
    rows.push(
        time_tool(
            &server,
            "lock_check",
            n,
            |_| json!({"file_path": "bench/held.ts"}),
        )
        .await,
    );
    rows.push(
        time_tool(
            &server,
            "conflict_check",
            n,
            |i| json!({"intent_type": "file_edit", "file_paths": [format!("bench/{}.ts", i % 50)]}),
        )
        .await,
    );
    rows.push(
        time_tool(
            &server,
            "message_send",
            n,
            |i| json!({"to_session": "peer", "content": format!("message {i}")}),
        )
        .await,
    );
    rows.push(time_tool(&server, "message_list", n, |_| json!({})).await);
    rows.push(time_tool(&server, "context_query", n, |_| json!({"keyword": "tokio"})).await);
    rows
}

/// What one throughput run did.
#[derive(Debug, Clone, serde::Serialize)]
struct Throughput {
    processes: usize,
    shared_path: bool,
    seconds: f64,
    /// Acquires plus releases answered.
    ops: u64,
    ops_per_sec: f64,
    grants: u64,
    denials: u64,
}

/// Section 2: every process loops acquire/release (one call in flight each, as an AI client
/// makes them) for `run`; on the shared path a denied acquire counts as one op.
async fn throughput(processes: usize, shared_path: bool, run: Duration) -> Throughput {
    let db = Db::new();
    let mut servers = Vec::new();
    for p in 0..processes {
        let server = db.server().await;
        server.register(&format!("worker-{p}"), "app", "main").await;
        servers.push(server);
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + run;
    let mut tasks = Vec::new();
    for (p, server) in servers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (mut ops, mut grants, mut denials) = (0u64, 0u64, 0u64);
            let mut i = 0u64;
            while tokio::time::Instant::now() < deadline {
                let path = if shared_path {
                    "hot/shared.ts".to_owned()
                } else {
                    format!("hot/{p}/{}.ts", i % 32)
                };
                i += 1;
                let answer = server
                    .call("lock_acquire", json!({"file_path": path}))
                    .await;
                ops += 1;
                if answer["granted"] == true {
                    grants += 1;
                    server
                        .call("lock_release", json!({"file_path": path}))
                        .await;
                    ops += 1;
                } else {
                    denials += 1;
                }
            }
            server.quit().await;
            (ops, grants, denials)
        }));
    }
    let (mut ops, mut grants, mut denials) = (0, 0, 0);
    for task in tasks {
        let (o, g, d) = task.await.expect("worker");
        ops += o;
        grants += g;
        denials += d;
    }
    let seconds = started.elapsed().as_secs_f64();
    Throughput {
        processes,
        shared_path,
        seconds,
        ops,
        ops_per_sec: ops as f64 / seconds,
        grants,
        denials,
    }
}

/// Section 3's database: `n` live locks (held by 100 sessions), `n / 10` active intents, `n`
/// messages in the bench session's inbox and `n` context entries, in one transaction.
/// Seeded sessions heartbeat a day ahead so no sweep removes them mid-measurement.
fn seed(path: &Path, n: usize) {
    let store = Store::open_file(path).expect("open the store");
    let now = SystemClock.now();
    let later = now.plus(Duration::from_secs(86_400));
    let words = [
        "auth", "cache", "tokio", "schema", "retry", "queue", "index", "parser",
    ];
    store
        .write(|tx| {
            tx.insert_session(
                &support::seed::session(SEEDED_SESSION, "bench", "app", now, later),
                "bench",
            )?;
            let holders = support::seed::locks_held(tx, "app", n, now, later)?;
            for i in 0..n {
                let content = format!("seeded message {i}");
                let id = tx.insert_message(&NewMessage {
                    project: "app",
                    from_session: Some(&holders[i % holders.len()]),
                    from_name: "seed",
                    to_session: Some(SEEDED_SESSION),
                    to_group: None,
                    channel: Channel::General,
                    priority: Priority::Normal,
                    content: &content,
                    now,
                })?;
                tx.deliver(id, SEEDED_SESSION)?;
            }
            for i in 0..n {
                let content = format!(
                    "note {i}: {} {} {}",
                    words[i % words.len()],
                    words[(i / 8) % words.len()],
                    if i % 10_000 == 7 { "needle" } else { "hay" }
                );
                tx.insert_context(
                    "app",
                    ContextType::Discovery,
                    &content,
                    &[],
                    &holders[i % holders.len()],
                    "seed",
                    now,
                )?;
            }
            Ok::<_, mcp_session_coordinator::store::StoreError>(())
        })
        .expect("seed");
}

#[derive(Debug, Clone, serde::Serialize)]
struct Scaled {
    size: usize,
    seed_seconds: f64,
    calls: Vec<Latency>,
}

/// Section 3: the hot calls against a database of `size` rows per table.
async fn scaled(size: usize, n: usize) -> Scaled {
    let db = Db::new();
    let seeding = Instant::now();
    seed(&db.path(), size);
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let server = db.server().await;
    let me = json!(SEEDED_SESSION);
    time_lock_pairs(&server, 20, Some(SEEDED_SESSION)).await;
    let mut calls = time_lock_pairs(&server, n, Some(SEEDED_SESSION))
        .await
        .to_vec();
    let middle = format!("seed/{}/{}.ts", size / 200, size / 2);
    calls.push(
        time_tool(
            &server,
            "lock_check",
            n,
            |_| json!({"session_id": me, "file_path": middle}),
        )
        .await,
    );
    calls.push(
        time_tool(&server, "conflict_check", n, |i| {
            json!({"session_id": me, "intent_type": "file_edit",
                "file_paths": [format!("seed/{}/{}.ts", (i * 37 % size) / 100, i * 37 % size)]})
        })
        .await,
    );
    calls.push(time_tool(&server, "message_list", n, |_| json!({"session_id": me})).await);
    calls.push(
        time_tool(
            &server,
            "context_query",
            n,
            |i| json!({"keyword": if i % 2 == 0 { "needle" } else { "tokio retry" }}),
        )
        .await,
    );
    Scaled {
        size,
        seed_seconds,
        calls,
    }
}

#[derive(Debug, Clone, serde::Serialize)]
struct Footprint {
    startup_p50_ms: f64,
    startup_max_ms: f64,
    idle_rss_kb: u64,
}

/// Section 4: spawn to `initialize` answer, then the resident memory of an idle server.
fn footprint(runs: usize) -> Footprint {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = dir.path().join("coordinator.db");
    // Create the database once, so runs measure a start, not a first migration.
    drop(Store::open_file(&db).expect("create"));
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}});
    let mut startups = Vec::new();
    let mut idle_rss_kb = 0;
    for run in 0..runs {
        let started = Instant::now();
        let mut child = std::process::Command::new(BIN)
            .env("MCP_COORDINATOR_DB_PATH", &db)
            .env("MCP_COORDINATOR_LOG", "error")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{initialize}").expect("write");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        startups.push(started.elapsed());
        assert!(line.contains("protocolVersion"), "{line}");
        if run + 1 == runs {
            writeln!(
                stdin,
                "{}",
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
            )
            .expect("write");
            std::thread::sleep(Duration::from_millis(500));
            idle_rss_kb = common::rss_kib(child.id()).unwrap_or(0);
        }
        drop(stdin);
        let _ = child.wait();
    }
    let summary = summarize("startup", startups);
    Footprint {
        startup_p50_ms: summary.p50_us / 1e3,
        startup_max_ms: summary.max_us / 1e3,
        idle_rss_kb,
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    if let Some((path, size)) = &options.seed_only {
        seed(path, *size);
        println!("seeded {} with {size} rows per table", path.display());
        return;
    }
    let (n, run, sizes): (usize, Duration, &[usize]) = if options.quick {
        (30, Duration::from_millis(300), &[1_000])
    } else {
        (2_000, Duration::from_secs(3), &[1_000, 10_000, 100_000])
    };
    println!(
        "mcp-session-coordinator benchmarks ({}; binary {BIN})",
        if options.quick { "quick smoke" } else { "full" }
    );

    let direct = in_process(n);
    print_latencies(
        "0. In process: the coordinator API on one thread, no MCP",
        &direct,
    );

    let latencies = latency(n).await;
    print_latencies("1. Round trip over stdio, one client", &latencies);

    println!("\n2. Lock throughput, one call in flight per process");
    println!(
        "{:>9} {:>7} {:>9} {:>10} {:>9} {:>9}",
        "processes", "path", "ops", "ops/s", "grants", "denials"
    );
    let mut throughputs = Vec::new();
    for shared in [false, true] {
        for processes in [1, 2, 4, 8] {
            let t = throughput(processes, shared, run).await;
            println!(
                "{:>9} {:>7} {:>9} {:>10.0} {:>9} {:>9}",
                t.processes,
                if shared { "shared" } else { "own" },
                t.ops,
                t.ops_per_sec,
                t.grants,
                t.denials
            );
            throughputs.push(t);
        }
    }

    let mut scaling = Vec::new();
    for &size in sizes {
        let s = scaled(size, n.min(500)).await;
        print_latencies(
            &format!(
                "3. With {size} live locks, {size} messages, {size} context entries, {} intents (seeded in {:.1} s)",
                size / 10,
                s.seed_seconds
            ),
            &s.calls,
        );
        scaling.push(s);
    }

    let footprint = footprint(if options.quick { 3 } else { 20 });
    println!(
        "\n4. Start to first answer: p50 {:.1} ms, max {:.1} ms; idle RSS {} kB",
        footprint.startup_p50_ms, footprint.startup_max_ms, footprint.idle_rss_kb
    );

    let p = |rows: &[Latency], call: &str| {
        rows.iter()
            .find(|r| r.call == call)
            .map_or(f64::NAN, |r| r.p50_us)
    };
    let largest = scaling.last().map(|s| s.calls.as_slice()).unwrap_or(&[]);
    let eight = throughputs
        .iter()
        .find(|t| t.processes == 8 && !t.shared_path)
        .map_or(0.0, |t| t.ops_per_sec);
    println!("\nGoals (PRODUCT.md)");
    let goals = [
        (
            "lock_acquire p50 ≤ 100 µs",
            p(&latencies, "lock_acquire") <= 100.0,
        ),
        (
            "lock_release p50 ≤ 100 µs",
            p(&latencies, "lock_release") <= 100.0,
        ),
        ("8 processes ≥ 5,000 lock ops/s", eight >= 5_000.0),
        (
            "conflict_check ≤ 2 ms at the largest size",
            p(largest, "conflict_check") <= 2_000.0,
        ),
        (
            "context_query ≤ 5 ms at the largest size",
            p(largest, "context_query") <= 5_000.0,
        ),
        ("idle RSS ≤ 10 MB", footprint.idle_rss_kb <= 10 * 1024),
        ("first answer ≤ 20 ms", footprint.startup_p50_ms <= 20.0),
    ];
    for (goal, met) in &goals {
        println!("  {:<45} {}", goal, verdict(*met));
    }

    let report = json!({
        "quick": options.quick,
        "in_process": direct,
        "latency": latencies,
        "throughput": throughputs,
        "scaling": scaling,
        "footprint": footprint,
        "goals": goals.iter().map(|(g, m)| json!({"goal": g, "met": m})).collect::<Vec<_>>(),
    });
    support::write_json(&options.json, &report);
    println!("\nJSON: {}", options.json.display());
}
