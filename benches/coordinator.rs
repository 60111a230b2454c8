//! Benchmarks of the real binary, driven over real MCP stdio by the official Rust SDK's client.
//!
//!     cargo bench --bench coordinator              # the full run (a few minutes)
//!     cargo bench --bench coordinator -- --quick   # a smoke run of every section (CI)
//!     cargo bench --bench coordinator -- --seed /tmp/big.db 100000   # only seed a database
//!     cargo bench --bench coordinator -- --only raw,throughput,footprint   # some sections
//!     cargo bench --bench coordinator -- --only raw --bin /tmp/old-build   # another server
//!
//! Sections: (direct) the same calls in process, without MCP, to separate the domain's cost
//! from the transport's; (sdk) round-trip latency of the hot calls through the official Rust
//! SDK's client; (raw) the same through the raw JSON-RPC probe (`support/probe.rs`), on pipes and
//! on socket pairs, beside the probe's own round trip through `cat`; (throughput) lock
//! operations with 1, 2, 4 and 8 server processes on one database, on distinct paths and on one
//! shared path; (scaling) the hot calls with 1k, 10k and 100k live locks, messages and context
//! entries seeded straight into the store; (footprint) idle memory and time to the first
//! answer. It prints tables, compares them with the goals of PRODUCT.md, and writes everything
//! as JSON (`--json PATH`, default `target/bench/coordinator.json`). Figures are this
//! machine's: the bench client shares the cores with the servers it measures.

// The integration tests' helpers, which that binary uses in full; `pub` because a bench uses
// a part of them, and what is unused there is not dead.
#[path = "../tests/common/mod.rs"]
pub mod common;
mod support;
// Only this benchmark drives servers without an SDK.
#[path = "support/probe.rs"]
mod probe;

use probe::{Probe, Wire};

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
    /// `--only raw,throughput`: the sections to run (direct, sdk, raw, throughput, scaling,
    /// footprint); all by default.
    only: Option<Vec<String>>,
    /// `--bin PATH`: the server the raw, throughput and footprint sections start (another
    /// build, for a before-and-after); the SDK sections always start this build's.
    bin: String,
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
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|at| args.get(at + 1))
        .map(|list| list.split(',').map(str::to_owned).collect());
    let bin = args
        .iter()
        .position(|a| a == "--bin")
        .and_then(|at| args.get(at + 1))
        .cloned()
        .unwrap_or_else(|| BIN.to_owned());
    Options {
        quick: args.iter().any(|a| a == "--quick"),
        bin,
        only,
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
        "{:<28} {:>6} {:>10} {:>10} {:>10}",
        "call", "n", "p50 µs", "p99 µs", "max µs"
    );
    for r in rows {
        println!(
            "{:<28} {:>6} {:>10.0} {:>10.0} {:>10.0}",
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
        coordinator.news(&me).expect("news");
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
        summarize("news (per answer)", unread),
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
/// makes them) for `run`; on the shared path a denied acquire counts as one op. Each process is
/// driven by the raw probe on its own thread, so the client's cost on the shared cores is a
/// pipe's, not an SDK's.
fn throughput(bin: &str, processes: usize, shared_path: bool, run: Duration) -> Throughput {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = dir.path().join("coordinator.db");
    drop(Store::open_file(&db).expect("create"));
    let mut servers = Vec::new();
    for p in 0..processes {
        let mut server = Probe::server(bin, &db, Wire::Pipe);
        server.call(
            "session_register",
            &json!({"name": format!("worker-{p}"), "project": "app", "branch": "main"}),
        );
        servers.push(server);
    }
    let started = Instant::now();
    let deadline = started + run;
    let counts: Vec<(u64, u64, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = servers
            .iter_mut()
            .enumerate()
            .map(|(p, server)| {
                scope.spawn(move || {
                    let (mut ops, mut grants, mut denials) = (0u64, 0u64, 0u64);
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let path = if shared_path {
                            "hot/shared.ts".to_owned()
                        } else {
                            format!("hot/{p}/{}.ts", i % 32)
                        };
                        i += 1;
                        let args = json!({"file_path": path});
                        let answer = server.call("lock_acquire", &args);
                        ops += 1;
                        if answer["granted"] == true {
                            grants += 1;
                            server.call("lock_release", &args);
                            ops += 1;
                        } else {
                            denials += 1;
                        }
                    }
                    (ops, grants, denials)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let (ops, grants, denials) = counts
        .iter()
        .fold((0, 0, 0), |t, c| (t.0 + c.0, t.1 + c.1, t.2 + c.2));
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

/// Where the raw probe and the server it starts run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cores {
    /// Where the scheduler puts them.
    Free,
    /// Both on the first core: a round trip then costs no wake-up of another core, which on
    /// this project's virtual machines takes 30–40 µs each way and would hide the server's
    /// own time (the probe's pipe floor through `cat`: about 80 µs free, 4 µs on one core).
    One,
}

/// Runs `work` with this thread (and what it starts) on one core, then restores its cores.
fn on_one_core<T>(work: impl FnOnce() -> T) -> T {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let before = sched_getaffinity(None).expect("this thread's cores");
    let mut first = CpuSet::new();
    first.set(0);
    sched_setaffinity(None, &first).expect("pin to the first core");
    let result = work();
    sched_setaffinity(None, &before).expect("restore this thread's cores");
    result
}

/// Section 1r: the raw probe's round trips, on pipes and on socket pairs, with the probe's
/// own round trip through `cat` as the floor; free and on one core.
fn raw_latency(bin: &str, n: usize) -> Vec<Latency> {
    let mut rows = Vec::new();
    for cores in [Cores::One, Cores::Free] {
        for wire in [Wire::Pipe, Wire::Socket] {
            rows.extend(match cores {
                Cores::One => on_one_core(|| raw_calls(bin, n, wire, cores)),
                Cores::Free => raw_calls(bin, n, wire, cores),
            });
        }
    }
    rows
}

fn raw_calls(bin: &str, n: usize, wire: Wire, cores: Cores) -> Vec<Latency> {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = dir.path().join("coordinator.db");
    let name = |call: &str| match cores {
        Cores::One => format!("{} {call} [1 core]", wire.name()),
        Cores::Free => format!("{} {call}", wire.name()),
    };
    let mut rows = Vec::new();
    let floor = Probe::floor(wire, 200, n + 50);
    rows.push(summarize(&name("floor"), floor[50..].to_vec()));
    let mut server = Probe::server(bin, &db, wire);
    server.call(
        "session_register",
        &json!({"name": "probe", "project": "app", "branch": "main"}),
    );
    let held = json!({"file_path": "probe/held.ts"});
    server.call("lock_acquire", &held);
    let mut time = |call: &str, params: &dyn Fn(usize) -> Value| {
        // The first 50 warm the statement cache and the allocator.
        let samples = (0..n + 50)
            .map(|i| {
                let method = match call {
                    "ping" | "tools/list" => call,
                    _ => "tools/call",
                };
                let (answer, took) = server.timed(method, &params(i));
                assert!(
                    answer.contains("\"result\"") && !answer.contains("\"isError\":true"),
                    "{call}: {answer}"
                );
                took
            })
            .skip(50)
            .collect();
        summarize(&name(call), samples)
    };
    rows.push(time("ping", &|_| json!({})));
    rows.push(time("tools/list", &|_| json!({})));
    rows.push(time(
        "lock_check",
        &|_| json!({"name": "lock_check", "arguments": held}),
    ));
    let path = |i: usize| format!("probe/{i}.ts");
    rows.push(time(
        "lock_acquire",
        &|i| json!({"name": "lock_acquire", "arguments": {"file_path": path(i)}}),
    ));
    rows.push(time(
        "lock_release",
        &|i| json!({"name": "lock_release", "arguments": {"file_path": path(i)}}),
    ));
    rows
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
fn footprint_of(bin: &str, runs: usize) -> Footprint {
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
        let mut child = std::process::Command::new(bin)
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

/// One goal of PRODUCT.md against what this run measured.
#[derive(Debug, serde::Serialize)]
struct Goal {
    goal: &'static str,
    measured: String,
    /// `None` when the run skipped the section that measures it.
    met: Option<bool>,
}

fn goals(
    raw: &[Latency],
    throughputs: &[Throughput],
    scaling: &[Scaled],
    footprint: Option<&Footprint>,
) -> Vec<Goal> {
    let find = |rows: &[Latency], call: &str| rows.iter().find(|r| r.call == call).cloned();
    // On one core, net of the client's own pipe round trip, as PRODUCT.md states the goal.
    let floor = find(raw, "pipe floor [1 core]");
    let net = |call: &str, limit: f64| {
        let row = find(raw, &format!("pipe {call} [1 core]"));
        let value = row.zip(floor.as_ref()).map(|(r, f)| r.p50_us - f.p50_us);
        (
            value.map_or("-".into(), |v| format!("{v:.0} µs")),
            value.map(|v| v <= limit),
        )
    };
    let worst_p99 = raw
        .iter()
        .filter(|r| r.call.ends_with("[1 core]") && !r.call.contains("floor"))
        .map(|r| r.p99_us)
        .fold(None, |worst: Option<f64>, p| {
            Some(worst.map_or(p, |w| w.max(p)))
        });
    let eight = throughputs
        .iter()
        .find(|t| t.processes == 8 && !t.shared_path)
        .map(|t| t.ops_per_sec);
    let largest = scaling.last().map(|s| s.calls.as_slice()).unwrap_or(&[]);
    let at_largest = |call: &str, limit: f64| {
        let value = find(largest, call).map(|r| r.p50_us / 1e3);
        (
            value.map_or("-".into(), |v| format!("{v:.2} ms")),
            value.map(|v| v <= limit),
        )
    };
    let mut goals = Vec::new();
    let mut add = |goal, (measured, met): (String, Option<bool>)| {
        goals.push(Goal {
            goal,
            measured,
            met,
        })
    };
    add("raw stdio ping p50 ≤ 25 µs", net("ping", 25.0));
    add("raw stdio lock_check p50 ≤ 45 µs", net("lock_check", 45.0));
    add(
        "raw stdio lock_acquire p50 ≤ 90 µs",
        net("lock_acquire", 90.0),
    );
    add(
        "raw stdio p99 ≤ 300 µs (every call, pipe and socket)",
        (
            worst_p99.map_or("-".into(), |v| format!("{v:.0} µs")),
            worst_p99.map(|v| v <= 300.0),
        ),
    );
    add(
        "8 processes, distinct files ≥ 8,000 lock ops/s",
        (
            eight.map_or("-".into(), |v| format!("{v:.0}/s")),
            eight.map(|v| v >= 8_000.0),
        ),
    );
    add(
        "conflict_check ≤ 2 ms at the largest size",
        at_largest("conflict_check", 2.0),
    );
    add(
        "context_query ≤ 5 ms at the largest size",
        at_largest("context_query", 5.0),
    );
    add(
        "idle RSS ≤ 8 MB",
        (
            footprint.map_or("-".into(), |f| format!("{} kB", f.idle_rss_kb)),
            footprint.map(|f| f.idle_rss_kb <= 8 * 1024),
        ),
    );
    add(
        "start to first answer ≤ 5 ms",
        (
            footprint.map_or("-".into(), |f| format!("{:.1} ms", f.startup_p50_ms)),
            footprint.map(|f| f.startup_p50_ms <= 5.0),
        ),
    );
    goals
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
        "mcp-session-coordinator benchmarks ({}; binary {})",
        if options.quick { "quick smoke" } else { "full" },
        options.bin
    );

    let wanted = |section: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    };
    let mut direct = Vec::new();
    if wanted("direct") {
        direct = in_process(n);
        print_latencies(
            "0. In process: the coordinator API on one thread, no MCP",
            &direct,
        );
    }
    let mut latencies = Vec::new();
    if wanted("sdk") {
        latencies = latency(n).await;
        print_latencies(
            "1. Round trip over stdio, one client (the official Rust SDK)",
            &latencies,
        );
    }
    let mut raw = Vec::new();
    if wanted("raw") {
        raw = raw_latency(&options.bin, n);
        print_latencies(
            "1r. Round trip over stdio, the raw JSON-RPC probe (no SDK)",
            &raw,
        );
    }
    let mut throughputs = Vec::new();
    if wanted("throughput") {
        println!("\n2. Lock throughput, one call in flight per process (raw probe clients)");
        println!(
            "{:>9} {:>7} {:>9} {:>10} {:>9} {:>9}",
            "processes", "path", "ops", "ops/s", "grants", "denials"
        );
        for shared in [false, true] {
            for processes in [1, 2, 4, 8] {
                let t = throughput(&options.bin, processes, shared, run);
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
    }
    let mut scaling = Vec::new();
    if wanted("scaling") {
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
    }
    let mut footprint = None;
    if wanted("footprint") {
        let f = footprint_of(&options.bin, if options.quick { 3 } else { 20 });
        println!(
            "\n4. Start to first answer: p50 {:.1} ms, max {:.1} ms; idle RSS {} kB",
            f.startup_p50_ms, f.startup_max_ms, f.idle_rss_kb
        );
        footprint = Some(f);
    }

    let goals = goals(&raw, &throughputs, &scaling, footprint.as_ref());
    println!("\nGoals (PRODUCT.md; raw figures on one core, p50 net of the probe's floor)");
    for goal in &goals {
        println!(
            "  {:<52} {:>12}  {}",
            goal.goal,
            goal.measured,
            match goal.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not measured",
            }
        );
    }

    let report = json!({
        "quick": options.quick,
        "in_process": direct,
        "latency": latencies,
        "raw": raw,
        "throughput": throughputs,
        "scaling": scaling,
        "footprint": footprint,
        "goals": goals,
    });
    support::write_json(&options.json, &report);
    println!("\nJSON: {}", options.json.display());
}
