//! A load benchmark of the shared HTTP server (`serve --http`), driven the way a team and an
//! attacker would drive it: raw JSON-RPC over HTTP, from many agents at once, beside hostile
//! connections.
//!
//!     cargo bench --bench load                     # the full run (about 2.5 minutes)
//!     cargo bench --bench load -- --quick          # a smoke run of every section (CI, ~20 s)
//!     scripts/with-postgres cargo bench --bench load   # the same on PostgreSQL
//!
//! It starts the real binary on a database seeded with 1,000 live locks (held by 100 sessions,
//! with 100 intents), so every dashboard snapshot has a realistic size, with a bearer token.
//! Then, for N = 50, 200 and 500 agents (quick: 20), without and with 500 attacking connections
//! (quick: 50), each agent opens an MCP connection (2025-11-25), registers a session, and makes
//! about one call per second for a fixed time: heartbeat, lock_acquire and lock_release of its
//! own file (every third time a file all agents share), message_send to another agent,
//! conflict_check. The attackers are a third slowloris (a header line every few seconds, never
//! finished), a third dashboards' event streams that never read (with the token, a small
//! receive buffer), a third silent sockets, re-opened as the server closes them. Last, the
//! memory of idle MCP connections: RSS before and after opening 1,000 of them (quick: 100),
//! then after 20,000 attempts in all (quick: 2,000), most refused at the server's cap.
//!
//! It prints a table per scenario (calls/s, p50/p99/max latency of every call, errors, server
//! RSS), compares it with the goals of issue 17, and writes everything as JSON (`--json PATH`,
//! default `target/bench/load.json`). The load generator shares the machine's cores with the
//! server it measures, so latencies include the client's own scheduling.

// The integration tests' helpers, which that binary uses in full; `pub` because a bench uses
// a part of them, and what is unused there is not dead.
#[path = "../tests/common/mod.rs"]
pub mod common;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::http::{HttpServer, TOKEN};
use common::{BIN, Db};
use mcp_session_coordinator::clock::{Clock, SystemClock};
use mcp_session_coordinator::store::{Location, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The project every agent and every seeded lock belongs to, so each dashboard snapshot of it
/// carries the 1,000 locks.
const PROJECT: &str = "app";
/// The MCP revision the agents speak: the newest one with a connection (`Mcp-Session-Id`).
const REVISION: &str = "2025-11-25";
/// The file all agents reach for now and then: contention on one lock.
const SHARED_FILE: &str = "shared/hot.ts";
/// Live locks seeded before the runs (the realistic dashboard).
const SEEDED_LOCKS: usize = 1_000;
/// Longest an agent's call may take before it counts as an error; far above any goal, so a
/// stalled server shows as errors and a bounded run rather than a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A call slower than this is counted in its second of the run (`slow_by_second`): the goal.
const SLOW: Duration = Duration::from_millis(10);
/// Interval between a slowloris connection's header lines.
const SLOWLORIS_INTERVAL: Duration = Duration::from_secs(3);

struct Options {
    quick: bool,
    json: PathBuf,
    /// `--agents N`: only this many agents (with and without the attack), to look into one size.
    agents: Option<usize>,
    /// `--seconds S`: how long each scenario calls.
    seconds: Option<u64>,
    /// `--attack KIND`: every attacking connection of one kind (`slowloris`, `dashboards`,
    /// `silent`), to see which costs what; default `mixed`, a third of each.
    attack: Vec<Attack>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|at| args.get(at + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/load.json"));
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|at| args.get(at + 1))
    };
    let attack = match value("--attack").map(String::as_str) {
        None | Some("mixed") => ATTACKS.to_vec(),
        Some("slowloris") => vec![Attack::Slowloris],
        Some("dashboards") => vec![Attack::IdleDashboard],
        Some("silent") => vec![Attack::Silent],
        Some(other) => {
            panic!("--attack takes mixed, slowloris, dashboards or silent, not {other}")
        }
    };
    Options {
        quick: args.iter().any(|a| a == "--quick"),
        json,
        agents: value("--agents").map(|n| n.parse().expect("--agents takes a number")),
        seconds: value("--seconds").map(|n| n.parse().expect("--seconds takes a number")),
        attack,
    }
}

/// The sizes of one run.
struct Plan {
    agents: Vec<usize>,
    attackers: usize,
    /// How long the agents call, per scenario, after all of them have registered.
    measure: Duration,
    idle_connections: usize,
    session_attempts: usize,
}

/// A process's resident memory in KiB (0 when it cannot be read).
fn rss_kib(pid: u32) -> u64 {
    common::rss_kib(pid).unwrap_or(0)
}

/// CPU time a process has used (user + system), from /proc (zero when it cannot be read).
/// Linux reports it in USER_HZ ticks, which are 1/100 s on every architecture it runs on.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |at: usize| {
        fields
            .get(at)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Busy and total CPU time of the whole machine, in ticks, from /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let numbers: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let total: u64 = numbers.iter().sum();
    // idle and iowait.
    let idle = numbers.get(3).copied().unwrap_or(0) + numbers.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Where the server keeps its data, as the server will see it: the PostgreSQL database the
/// test helpers made for this run when `MCP_COORDINATOR_DB_URL` is set, else the SQLite file.
fn location(db: &Db) -> Location {
    match common::postgres_url(&db.path()) {
        Some(url) => Location::Url(url),
        None => Location::File(db.path()),
    }
}

/// `SEEDED_LOCKS` live locks held by 100 sessions, and 100 active intents, in one transaction.
/// Seeded sessions heartbeat a day ahead so no sweep removes them mid-run. On a thread of its
/// own: the synchronous PostgreSQL client cannot run inside the async runtime.
fn seed(location: Location) {
    std::thread::spawn(move || {
        let store = Store::open(&location).expect("open the store to seed it");
        let now = SystemClock.now();
        let later = now.plus(Duration::from_secs(86_400));
        store
            .write(|tx| {
                support::seed::locks_held(tx, PROJECT, SEEDED_LOCKS, now, later)?;
                Ok::<_, mcp_session_coordinator::store::StoreError>(())
            })
            .expect("seed");
    })
    .join()
    .expect("the seeding thread");
}

/// An HTTP client for agents: its own keep-alive connection, as each real agent has.
fn agent_client() -> reqwest::Client {
    // reqwest is built here without a default TLS provider; one must be chosen first, even
    // for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("http client")
}

/// One POST to /mcp: the answer's status, its `Mcp-Session-Id`, and the JSON-RPC messages it
/// carried (SSE `data:` lines, or a plain JSON body).
async fn post(
    client: &reqwest::Client,
    url: &str,
    connection: Option<&str>,
    body: &Value,
) -> Result<(u16, Option<String>, Vec<Value>), String> {
    let mut request = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", REVISION)
        .body(body.to_string());
    if let Some(connection) = connection {
        request = request.header("mcp-session-id", connection);
    }
    let answer = request.send().await.map_err(|e| format!("send: {e}"))?;
    let status = answer.status().as_u16();
    let id = answer
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let sse = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let text = answer.text().await.map_err(|e| format!("read: {e}"))?;
    let messages = if sse {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            // Empty data is a "priming" event (an id to resume from), no message.
            .filter(|data| !data.is_empty())
            .map(|data| serde_json::from_str(data).map_err(|e| format!("SSE data: {e}")))
            .collect::<Result<_, _>>()?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(&text).map_err(|e| format!("JSON body: {e}"))?]
    };
    Ok((status, id, messages))
}

/// An open MCP connection over HTTP.
struct Mcp {
    client: reqwest::Client,
    url: String,
    connection: String,
    next_id: u64,
}

impl Mcp {
    /// `initialize` and `notifications/initialized`.
    async fn open(client: reqwest::Client, url: &str) -> Result<Self, String> {
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": REVISION, "capabilities": {},
            "clientInfo": {"name": "load-bench", "version": "1"}}});
        let (status, connection, _) = post(&client, url, None, &initialize).await?;
        let connection = match (status, connection) {
            (200, Some(connection)) => connection,
            (status, _) => return Err(format!("initialize answered {status}")),
        };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (status, _, _) = post(&client, url, Some(&connection), &initialized).await?;
        if status != 202 {
            return Err(format!("notifications/initialized answered {status}"));
        }
        Ok(Self {
            client,
            url: url.to_owned(),
            connection,
            next_id: 1,
        })
    }

    /// A tool call; its structured result, or why it failed (HTTP, JSON-RPC or tool error).
    async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let (status, _, messages) =
            post(&self.client, &self.url, Some(&self.connection), &request).await?;
        if status != 200 {
            return Err(format!("{tool}: HTTP {status}"));
        }
        let answer = messages
            .into_iter()
            .find(|m| m["id"] == id)
            .ok_or_else(|| format!("{tool}: no answer"))?;
        if let Some(error) = answer.get("error") {
            return Err(format!("{tool}: {error}"));
        }
        let result = &answer["result"];
        if result["isError"] == true {
            return Err(format!("{tool}: {}", result["content"]));
        }
        Ok(result["structuredContent"].clone())
    }

    /// DELETE: the server ends the connection's sessions and releases their locks at once.
    async fn close(&self) {
        let _ = self
            .client
            .delete(&self.url)
            .bearer_auth(TOKEN)
            .header("mcp-session-id", &self.connection)
            .header("mcp-protocol-version", REVISION)
            .send()
            .await;
    }
}

/// The calls agents make, for the tables: a cycle of `STEPS` of them, one a second
/// (lock_check stands in for lock_release when the shared file was taken).
const CALLS: [&str; 6] = [
    "session_heartbeat",
    "lock_acquire",
    "message_send",
    "lock_release",
    "conflict_check",
    "lock_check",
];
const STEPS: u64 = 5;

/// Round trips of a set of calls, summarized.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Latency {
    call: String,
    n: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn summarize(call: &str, mut samples: Vec<Duration>) -> Latency {
    if samples.is_empty() {
        return Latency {
            call: call.to_owned(),
            ..Latency::default()
        };
    }
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1e3
    };
    Latency {
        call: call.to_owned(),
        n: samples.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    }
}

/// What one agent saw while measured.
#[derive(Default)]
struct AgentLog {
    /// (index into `CALLS`, when it started after the measured start, round trip) of every
    /// call, failed ones included.
    samples: Vec<(usize, Duration, Duration)>,
    errors: u64,
    first_error: Option<String>,
    shared_grants: u64,
    shared_denials: u64,
}

impl AgentLog {
    fn failed(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }
}

/// One agent's calls from `start` (plus its own phase, so agents spread over the second) to
/// `end`, one a second.
async fn agent_loop(
    mut mcp: Mcp,
    index: usize,
    agents: usize,
    scenario: usize,
    start: Instant,
    end: Instant,
) -> (Mcp, AgentLog) {
    let mut log = AgentLog::default();
    let own = format!("agents/{index}/work.ts");
    let peer = format!("s{scenario}-agent-{}", (index + 1) % agents);
    let phase = Duration::from_secs(1).mul_f64(index as f64 / agents as f64);
    let mut next = start + phase;
    // The file the last lock_acquire was granted, which the next lock_release gives back.
    let mut held: Option<String> = None;
    let most_ticks = (end - start).as_secs() + 2;
    for tick in 0..most_ticks {
        if next >= end {
            break;
        }
        tokio::time::sleep_until(next).await;
        // Each agent starts its cycle at its own step, so every second carries the whole mix
        // rather than all agents making the same call in the same second.
        let turn = tick + index as u64;
        let step = turn % STEPS;
        let shared = (turn / STEPS) % 3 == (index % 3) as u64;
        let (tool, arguments) = match step {
            0 => ("session_heartbeat", json!({})),
            1 => {
                let file = if shared { SHARED_FILE } else { own.as_str() };
                (
                    "lock_acquire",
                    json!({"file_path": file, "ttl_seconds": 60}),
                )
            }
            2 => (
                "message_send",
                json!({"to_session": peer, "content": format!("step {tick} of agent {index}: done with {own}")}),
            ),
            3 => match &held {
                Some(file) => ("lock_release", json!({"file_path": file})),
                // The shared file was taken: nothing to give back; a look at who holds it.
                None => ("lock_check", json!({"file_path": SHARED_FILE})),
            },
            _ => (
                "conflict_check",
                json!({"intent_type": "file_edit", "file_paths": [own, SHARED_FILE,
                    format!("seed/{}/{}.ts", index % 10, (index * 37) % SEEDED_LOCKS)]}),
            ),
        };
        let started = Instant::now();
        let answer = mcp.call(tool, arguments).await;
        let call = CALLS.iter().position(|c| *c == tool).unwrap_or(0);
        log.samples.push((call, started - start, started.elapsed()));
        match answer {
            Ok(result) => {
                if tool == "lock_acquire" {
                    let granted = result["granted"] == true;
                    if shared {
                        if granted {
                            log.shared_grants += 1;
                        } else {
                            log.shared_denials += 1;
                        }
                    }
                    held = granted.then(|| {
                        if shared {
                            SHARED_FILE.into()
                        } else {
                            own.clone()
                        }
                    });
                } else if tool == "lock_release" {
                    held = None;
                }
            }
            Err(error) => log.failed(error),
        }
        next += Duration::from_secs(1);
        // A call that overran its second: keep the rate, do not burst to catch up.
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
    (mcp, log)
}

/// The kinds of attacking connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Sends a header line every few seconds and never ends the request.
    Slowloris,
    /// Opens the dashboard's event stream (with the token) through a small receive buffer and
    /// never reads it.
    IdleDashboard,
    /// Connects and sends nothing.
    Silent,
}

const ATTACKS: [Attack; 3] = [Attack::Slowloris, Attack::IdleDashboard, Attack::Silent];

#[derive(Debug, Default)]
struct AttackCounts {
    /// Connections made, first ones included.
    opened: AtomicU64,
    /// Connections the server closed (each then re-opened while the scenario lasts).
    closed_by_server: AtomicU64,
    connect_failures: AtomicU64,
}

/// One attacking slot: a connection of `kind`, re-opened whenever the server closes it, until
/// `stop`. Bounded in time by `stop` and in count by `MOST_REOPENS`.
async fn attacker(
    kind: Attack,
    address: std::net::SocketAddr,
    counts: Arc<[AttackCounts; 3]>,
    stop: CancellationToken,
) {
    const MOST_REOPENS: usize = 10_000;
    let counts = &counts[kind as usize];
    for _ in 0..MOST_REOPENS {
        let socket = match tokio::net::TcpSocket::new_v4() {
            Ok(socket) => socket,
            Err(_) => return,
        };
        if kind == Attack::IdleDashboard {
            // A small window: the kernel holds little of the stream for us, so whatever
            // the server does not drop waits in its own memory.
            let _ = socket.set_recv_buffer_size(4096);
        }
        let connected = tokio::select! {
            _ = stop.cancelled() => return,
            connected = socket.connect(address) => connected,
        };
        let Ok(mut stream) = connected else {
            counts.connect_failures.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
            }
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        let closed = match kind {
            Attack::Slowloris => slowloris(&mut stream, &stop).await,
            Attack::Silent => {
                let mut byte = [0u8; 1];
                tokio::select! {
                    _ = stop.cancelled() => false,
                    _ = stream.read(&mut byte) => true,
                }
            }
            Attack::IdleDashboard => idle_dashboard(&mut stream, &stop).await,
        };
        if !closed {
            return;
        }
        counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether the server closed the connection (rather than `stop` coming first).
async fn slowloris(stream: &mut tokio::net::TcpStream, stop: &CancellationToken) -> bool {
    let (mut reader, mut writer) = stream.split();
    if writer
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .is_err()
    {
        return true;
    }
    let mut buffer = [0u8; 512];
    // At most an hour of header lines; the run ends well before.
    for line in 0..1_200u32 {
        tokio::select! {
            _ = stop.cancelled() => return false,
            // Any answer (408, 431) or the end of the stream: the server gave up on us.
            _ = reader.read(&mut buffer) => return true,
            _ = tokio::time::sleep(SLOWLORIS_INTERVAL) => {
                let header = format!("X-Slow-{line}: still coming\r\n");
                if writer.write_all(header.as_bytes()).await.is_err() {
                    return true;
                }
            }
        }
    }
    true
}

/// Whether the server broke the connection. The stream is never read, so a clean close is
/// not seen; a reset is (the socket's pending error), checked every second.
async fn idle_dashboard(stream: &mut tokio::net::TcpStream, stop: &CancellationToken) -> bool {
    let request = format!(
        "GET /api/events?project={PROJECT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return true;
    }
    for _ in 0..3_600u32 {
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if matches!(stream.take_error(), Ok(Some(_)) | Err(_)) {
                    return true;
                }
            }
        }
    }
    true
}

/// What one scenario measured.
#[derive(Debug, Clone, serde::Serialize)]
struct Scenario {
    backend: String,
    agents: usize,
    attackers: usize,
    /// `mixed` (a third of each kind), or the one kind all attackers were.
    attack_kinds: String,
    seconds: f64,
    calls: usize,
    calls_per_sec: f64,
    all: Latency,
    by_call: Vec<Latency>,
    errors: u64,
    first_error: Option<String>,
    /// Agents that could not open a connection or register (not counted in `errors`).
    agents_failed: usize,
    shared_grants: u64,
    shared_denials: u64,
    /// Time to open and register every agent's connection.
    ramp_seconds: f64,
    rss_start_kib: u64,
    rss_end_kib: u64,
    /// CPU the server used while measured, in percent of one core (200 is both cores).
    server_cpu_percent: f64,
    /// CPU the load generator (this process) used, likewise.
    bench_cpu_percent: f64,
    /// How busy the machine's cores were, in percent of all of them (PostgreSQL included).
    machine_busy_percent: f64,
    /// Per kind of attack (slowloris, idle dashboard, silent): opened, closed by the server.
    attack_opened: [u64; 3],
    attack_closed_by_server: [u64; 3],
    attack_connect_failures: u64,
    /// Calls over `SLOW` that started in each second of the run: stalls that hit every call
    /// in flight show as bursts, and their period as the gaps between them.
    slow_by_second: Vec<u32>,
}

/// One scenario: `agents` agents for `measure`, with `attackers` hostile connections open.
async fn scenario(
    server: &HttpServer,
    backend: &str,
    number: usize,
    agents: usize,
    attackers: usize,
    measure: Duration,
    kinds: &[Attack],
) -> Scenario {
    let url = server.url("/mcp");
    let address: std::net::SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address");
    let rss_start_kib = rss_kib(server.pid());

    // The attack first, so agents connect and register under it too.
    let stop = CancellationToken::new();
    let counts: Arc<[AttackCounts; 3]> = Arc::default();
    let mut attack = Vec::new();
    let attack_kinds = if attackers == 0 {
        "none".to_owned()
    } else if kinds.len() == ATTACKS.len() {
        "mixed".to_owned()
    } else {
        format!("{kinds:?}")
    };
    for slot in 0..attackers {
        attack.push(tokio::spawn(attacker(
            kinds[slot % kinds.len()],
            address,
            counts.clone(),
            stop.clone(),
        )));
    }
    let opening = Instant::now();
    while counts
        .iter()
        .map(|c| c.opened.load(Ordering::Relaxed))
        .sum::<u64>()
        < attackers as u64
        && opening.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dashboards get their first snapshot and fill their buffers.
    if attackers > 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Connections and sessions, a few dozen at a time, as a team's agents start.
    let ramp = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut opening = Vec::new();
    for index in 0..agents {
        let (url, gate) = (url.clone(), gate.clone());
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut mcp = Mcp::open(agent_client(), &url).await?;
            mcp.call(
                "session_register",
                json!({"name": format!("s{number}-agent-{index}"), "project": PROJECT, "branch": "main"}),
            )
            .await?;
            Ok::<_, String>((index, mcp))
        }));
    }
    let mut ready = Vec::new();
    let mut agents_failed = 0;
    let mut first_error = None;
    for task in opening {
        match task.await.expect("an agent's start") {
            Ok(agent) => ready.push(agent),
            Err(error) => {
                agents_failed += 1;
                first_error.get_or_insert(format!("start: {error}"));
            }
        }
    }
    let ramp_seconds = ramp.elapsed().as_secs_f64();

    let start = Instant::now() + Duration::from_millis(200);
    let end = start + measure;
    let server_pid = server.pid().to_string();
    let cpu_before = (cpu_time(&server_pid), cpu_time("self"), machine_ticks());
    let running: Vec<_> = ready
        .into_iter()
        .map(|(index, mcp)| tokio::spawn(agent_loop(mcp, index, agents, number, start, end)))
        .collect();
    let mut logs = Vec::new();
    let mut connections = Vec::new();
    for task in running {
        let (mcp, log) = task.await.expect("an agent");
        connections.push(mcp);
        logs.push(log);
    }
    let seconds = start.elapsed().as_secs_f64();
    // Under load and attack still: the memory and CPU they cost.
    let rss_end_kib = rss_kib(server.pid());
    let percent = |used: Duration| 100.0 * used.as_secs_f64() / seconds;
    let server_cpu_percent = percent(cpu_time(&server_pid).saturating_sub(cpu_before.0));
    let bench_cpu_percent = percent(cpu_time("self").saturating_sub(cpu_before.1));
    let (busy, total) = machine_ticks();
    let machine_busy_percent = 100.0 * (busy.saturating_sub(cpu_before.2.0)) as f64
        / (total.saturating_sub(cpu_before.2.1)).max(1) as f64;
    stop.cancel();
    for task in attack {
        let _ = task.await;
    }
    for mcp in &connections {
        mcp.close().await;
    }

    let mut by_tool: Vec<Vec<Duration>> = vec![Vec::new(); CALLS.len()];
    let (mut errors, mut shared_grants, mut shared_denials) = (0, 0, 0);
    let mut slow_by_second = vec![0u32; measure.as_secs() as usize + 2];
    for log in logs {
        for (tool, at, took) in log.samples {
            by_tool[tool].push(took);
            if took > SLOW
                && let Some(count) = slow_by_second.get_mut(at.as_secs() as usize)
            {
                *count += 1;
            }
        }
        errors += log.errors;
        shared_grants += log.shared_grants;
        shared_denials += log.shared_denials;
        if first_error.is_none() {
            first_error = log.first_error;
        }
    }
    let all: Vec<Duration> = by_tool.iter().flatten().copied().collect();
    let calls = all.len();
    let load = |f: fn(&AttackCounts) -> &AtomicU64| {
        [0, 1, 2].map(|kind| f(&counts[kind]).load(Ordering::Relaxed))
    };
    Scenario {
        backend: backend.to_owned(),
        agents,
        attackers,
        attack_kinds,
        seconds,
        calls,
        calls_per_sec: calls as f64 / seconds,
        all: summarize("all", all),
        by_call: by_tool
            .into_iter()
            .enumerate()
            .map(|(tool, samples)| summarize(CALLS[tool], samples))
            .collect(),
        errors,
        first_error,
        agents_failed,
        shared_grants,
        shared_denials,
        ramp_seconds,
        rss_start_kib,
        rss_end_kib,
        server_cpu_percent,
        bench_cpu_percent,
        machine_busy_percent,
        attack_opened: load(|c| &c.opened),
        attack_closed_by_server: load(|c| &c.closed_by_server),
        attack_connect_failures: load(|c| &c.connect_failures).iter().sum(),
        slow_by_second,
    }
}

/// Memory of idle MCP connections, and of a flood of `initialize`.
#[derive(Debug, Clone, serde::Serialize)]
struct IdleMemory {
    connections: usize,
    opened: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    kib_per_connection: f64,
    attempts: usize,
    /// Connections opened beyond the first `connections` (the cap allowing).
    opened_beyond: usize,
    refused: usize,
    rss_after_attempts_kib: u64,
}

/// On a fresh server: RSS before and after opening `connections` MCP connections that then
/// sit idle, then after `attempts` `initialize` requests in all.
async fn idle_memory(db: &Db, connections: usize, attempts: usize) -> IdleMemory {
    let server = start_server(db);
    let url = server.url("/mcp");
    let client = agent_client();
    // One connection opened and closed first, so the allocator and the MCP service are warm
    // and "before" does not count first-use costs.
    if let Ok(warm) = Mcp::open(client.clone(), &url).await {
        warm.close().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = rss_kib(server.pid());
    let (opened, refused) = open_many(&client, &url, connections).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_kib = rss_kib(server.pid());
    let (more, more_refused) = open_many(&client, &url, attempts.saturating_sub(connections)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_attempts_kib = rss_kib(server.pid());
    drop(server);
    IdleMemory {
        connections,
        opened,
        rss_before_kib,
        rss_after_kib,
        kib_per_connection: (rss_after_kib.saturating_sub(rss_before_kib)) as f64
            / opened.max(1) as f64,
        attempts,
        opened_beyond: more,
        refused: refused + more_refused,
        rss_after_attempts_kib,
    }
}

/// Opens `count` MCP connections (16 handshakes in flight) and leaves them open; how many
/// opened and how many were refused or failed.
async fn open_many(client: &reqwest::Client, url: &str, count: usize) -> (usize, usize) {
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let (client, url, gate) = (client.clone(), url.to_owned(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            Mcp::open(client, &url).await.ok()
        }));
    }
    let mut opened = 0;
    for task in tasks {
        if let Ok(Some(_)) = task.await {
            opened += 1;
        }
    }
    (opened, count - opened)
}

/// `serve --http` on `db` with the token, and its tool calls' events not logged.
fn start_server(db: &Db) -> HttpServer {
    HttpServer::start(
        &db.path(),
        &[],
        &[
            ("MCP_COORDINATOR_TOKEN", TOKEN),
            ("MCP_COORDINATOR_LOG", "error"),
        ],
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    let mut plan = if options.quick {
        Plan {
            agents: vec![20],
            attackers: 50,
            // Long enough for every step of an agent's five-call cycle to run at least once.
            measure: Duration::from_secs(6),
            idle_connections: 100,
            session_attempts: 2_000,
        }
    } else {
        Plan {
            agents: vec![50, 200, 500],
            attackers: 500,
            measure: Duration::from_secs(20),
            idle_connections: 1_000,
            session_attempts: 20_000,
        }
    };
    if let Some(agents) = options.agents {
        plan.agents = vec![agents];
    }
    if let Some(seconds) = options.seconds {
        plan.measure = Duration::from_secs(seconds);
    }
    let backend = if common::postgres_server().is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let begun = std::time::Instant::now();
    let db = Db::new();
    let place = location(&db);
    println!(
        "mcp-session-coordinator load benchmark ({}; binary {BIN})\nbackend: {backend} ({place})",
        if options.quick { "quick smoke" } else { "full" },
    );
    let seeding = std::time::Instant::now();
    seed(place);
    println!(
        "seeded {SEEDED_LOCKS} locks held by 100 sessions and {} intents in {:.1} s",
        SEEDED_LOCKS / 10,
        seeding.elapsed().as_secs_f64()
    );

    let server = start_server(&db);
    println!(
        "\n{:<10} {:>6} {:>9} {:>7} {:>8} {:>7} {:>7} {:>8} {:>6} {:>8} {:>7}",
        "backend",
        "agents",
        "attackers",
        "calls",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "RSS MB",
        "ramp s"
    );
    let mut scenarios = Vec::new();
    for &agents in &plan.agents {
        for attackers in [0, plan.attackers] {
            let s = scenario(
                &server,
                backend,
                scenarios.len(),
                agents,
                attackers,
                plan.measure,
                &options.attack,
            )
            .await;
            println!(
                "{:<10} {:>6} {:>9} {:>7} {:>8.1} {:>7.2} {:>7.2} {:>8.1} {:>6} {:>8.1} {:>7.1}",
                s.backend,
                s.agents,
                s.attackers,
                s.calls,
                s.calls_per_sec,
                s.all.p50_ms,
                s.all.p99_ms,
                s.all.max_ms,
                s.errors + s.agents_failed as u64,
                mib(s.rss_end_kib),
                s.ramp_seconds
            );
            if let Some(error) = &s.first_error {
                println!("    first error: {error:.200}");
            }
            println!(
                "    CPU: server {:.0}%, load generator {:.0}% (of one core); machine {:.0}% busy",
                s.server_cpu_percent, s.bench_cpu_percent, s.machine_busy_percent
            );
            if s.slow_by_second.iter().any(|&n| n > 0) {
                println!(
                    "    calls over 10 ms, by second of the run: {:?}",
                    s.slow_by_second
                );
            }
            if attackers > 0 {
                println!(
                    "    attack ({}; slowloris / idle dashboards / silent): opened {:?}, closed by the server {:?}, connect failures {}",
                    s.attack_kinds,
                    s.attack_opened,
                    s.attack_closed_by_server,
                    s.attack_connect_failures
                );
            }
            scenarios.push(s);
            // The previous agents' sessions end on DELETE; a moment for the server to settle.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    println!("\np99 by call (ms)");
    print!("{:<6} {:>9}", "agents", "attackers");
    for tool in CALLS {
        print!(" {tool:>17}");
    }
    println!();
    for s in &scenarios {
        print!("{:<6} {:>9}", s.agents, s.attackers);
        for call in &s.by_call {
            if call.n == 0 {
                print!(" {:>17}", "-");
            } else {
                print!(" {:>17.2}", call.p99_ms);
            }
        }
        println!();
    }
    drop(server);

    let idle = idle_memory(&db, plan.idle_connections, plan.session_attempts).await;
    println!(
        "\nIdle MCP connections: {} opened of {}; RSS {:.1} MB → {:.1} MB, {:.1} KB each",
        idle.opened,
        idle.connections,
        mib(idle.rss_before_kib),
        mib(idle.rss_after_kib),
        idle.kib_per_connection
    );
    println!(
        "{} initialize attempts in all: {} more opened, {} refused or failed; RSS {:.1} MB",
        idle.attempts,
        idle.opened_beyond,
        idle.refused,
        mib(idle.rss_after_attempts_kib)
    );

    // Goals of issue 17, judged on the full run's sizes (a smoke run prints them too).
    let p99 = |agents: usize, attacked: bool| {
        scenarios
            .iter()
            .find(|s| s.agents == agents && (s.attackers > 0) == attacked)
            .map(|s| s.all.p99_ms)
    };
    println!("\nGoals (issue 17)");
    let mut goals = Vec::new();
    for &agents in &plan.agents {
        if let Some(p) = p99(agents, true) {
            goals.push((
                format!(
                    "{} hostile connections, {agents} agents: p99 ≤ 10 ms ({p:.1})",
                    plan.attackers
                ),
                p <= 10.0,
            ));
        }
    }
    let at = if options.quick { 20 } else { 200 };
    if let Some(p) = p99(at, false) {
        goals.push((
            format!(
                "{at} agents at 1 call/s: p99 ≤ 10 ms on SQLite ({p:.1}{})",
                if backend == "SQLite" {
                    ""
                } else {
                    ", here PostgreSQL"
                }
            ),
            p <= 10.0,
        ));
    }
    goals.push((
        format!(
            "{} session attempts: RSS ≤ 200 MB ({:.0} MB)",
            idle.attempts,
            mib(idle.rss_after_attempts_kib)
        ),
        idle.rss_after_attempts_kib <= 200 * 1024,
    ));
    for (goal, met) in &goals {
        println!("  {goal:<70} {}", verdict(*met));
    }
    println!("\ntook {:.0} s", begun.elapsed().as_secs_f64());

    let report = json!({
        "quick": options.quick,
        "backend": backend,
        "seeded_locks": SEEDED_LOCKS,
        "scenarios": scenarios,
        "idle_memory": idle,
        "goals": goals.iter().map(|(g, m)| json!({"goal": g, "met": m})).collect::<Vec<_>>(),
    });
    support::write_json(&options.json, &report);
    println!("JSON: {}", options.json.display());
}
