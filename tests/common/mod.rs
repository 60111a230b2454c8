//! Spawning the real server binary and speaking MCP to it, as an AI client does.

pub mod history;
pub mod http;
pub mod raw;
pub mod replay;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-session-coordinator");

/// What `tools/list` shows under `--tools core`, sorted by name.
pub const CORE_TOOLS: [&str; 7] = [
    "conflict_check",
    "lock_acquire",
    "lock_check",
    "lock_release",
    "message_list",
    "message_send",
    "session_register",
];

/// How many times longer the load, chaos and fuzz tests run: `COORDINATOR_SOAK=N` (default 1)
/// turns them into a soak without slowing down CI.
pub fn soak() -> usize {
    std::env::var("COORDINATOR_SOAK")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Variables a developer (or an outer git hook) may have set, which tests must not inherit.
pub const NOT_INHERITED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "MCP_COORDINATOR_SESSION",
    "MCP_COORDINATOR_PROJECT",
    "MCP_COORDINATOR_CLIENT_PID",
    "MCP_COORDINATOR_SESSION_NAME",
    "MCP_COORDINATOR_GROUP",
    "MCP_SESSION_TIMEOUT_SEC",
    "MCP_CLEANUP_INTERVAL_SEC",
    "MCP_COORDINATOR_TOOLS",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "MCP_COORDINATOR_OUTPUT_SCHEMAS",
    "MCP_COORDINATOR_DB_URL",
];

/// Keeps git away from the developer's own configuration (a global hooks path, commit
/// signing, template hooks) in tests that run it.
pub const PLAIN_GIT: &[(&str, &str)] = &[
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_TEMPLATE_DIR", ""),
];

/// The PostgreSQL server the suite runs against instead of SQLite files, when
/// `MCP_COORDINATOR_DB_URL` is set: an address of that server (its database is only used to
/// create the tests' own). Each [`Db`] then gets a database of its own there.
pub fn postgres_server() -> Option<&'static str> {
    static SERVER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| {
            std::env::var("MCP_COORDINATOR_DB_URL")
                .ok()
                .filter(|url| !url.trim().is_empty())
        })
        .as_deref()
}

/// [`postgres_server`], for a test that only means something on PostgreSQL. Such a test is
/// `#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]`, so that a SQLite run lists
/// it as ignored and the PostgreSQL pass runs it (`--include-ignored`); run on SQLite all the
/// same, it fails rather than pass having checked nothing.
pub fn postgres_only() -> &'static str {
    postgres_server().unwrap_or_else(|| {
        panic!(
            "needs PostgreSQL: scripts/with-postgres cargo test --test integration -- \
             --include-ignored --skip sqlite::"
        )
    })
}

/// The name of the PostgreSQL database standing for the database file `db` in a PostgreSQL
/// run: derived from the file's path, so every process of a test finds the same one.
pub fn postgres_name(db: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    postgres_server()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    db.hash(&mut hasher);
    Some(format!("coordinator_test_{:016x}", hasher.finish()))
}

/// The URL of the database [`postgres_name`] names, on the test server.
pub fn postgres_url(db: &Path) -> Option<String> {
    let (server, name) = (postgres_server()?, postgres_name(db)?);
    let mut config: postgres::Config = client_url(server).parse().expect("MCP_COORDINATOR_DB_URL");
    config.dbname(&name);
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let (host, port) = match (config.get_hosts().first(), config.get_ports().first()) {
        (Some(postgres::config::Host::Tcp(host)), port) => (host.clone(), *port.unwrap_or(&5432)),
        _ => panic!("MCP_COORDINATOR_DB_URL must name a TCP host"),
    };
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    // The server URL's settings (sslmode, pgbouncer) hold for every test database.
    let query = server
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Some(format!(
        "postgres://{user}{password}@{host}:{port}/{name}{query}"
    ))
}

/// Runs `work` on a connection to the test server's database `url`, on a thread of its own
/// (the synchronous client cannot run inside the tests' async runtime).
/// `url` as the tests' own client reads it: straight to the server when the coordinator goes
/// through PgBouncer (`scripts/with-postgres` names both addresses), without the settings only
/// the coordinator knows (`pgbouncer`), and without TLS.
fn client_url(url: &str) -> String {
    let url = match (
        std::env::var("MCP_TEST_PGBOUNCER_ADDR"),
        std::env::var("MCP_TEST_PG_ADDR"),
    ) {
        (Ok(bouncer), Ok(server)) => url.replacen(&bouncer, &server, 1),
        _ => url.to_owned(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("pgbouncer=") && !pair.starts_with("sslrootcert="))
        .map(|pair| {
            if pair.starts_with("sslmode=") {
                "sslmode=prefer"
            } else {
                pair
            }
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

pub fn on_postgres<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> T {
    let url = client_url(url);
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        work(&mut client)
    })
    .join()
    .expect("PostgreSQL work")
}

/// The variables that point a process at database `db`: the file, and in a PostgreSQL run the
/// URL of the database standing for it (which wins).
pub fn database_env(db: &Path) -> Vec<(&'static str, String)> {
    let mut env = vec![("MCP_COORDINATOR_DB_PATH", db.display().to_string())];
    env.extend(postgres_url(db).map(|url| ("MCP_COORDINATOR_DB_URL", url)));
    env
}

/// A database in a fresh temporary folder, shared by the servers a test spawns; in a
/// PostgreSQL run, a fresh database on the test server, dropped with it.
pub struct Db {
    dir: TempDir,
}

// Clippy's new_without_default asks for it where the benches make these helpers public.
impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Db {
    pub fn new() -> Self {
        let db = Self {
            dir: tempfile::tempdir().expect("temporary folder"),
        };
        if let (Some(server), Some(name)) = (postgres_server(), postgres_name(&db.path())) {
            on_postgres(server, move |client| {
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create the test database");
            });
        }
        db
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("coordinator.db")
    }

    /// A server with default settings.
    pub async fn server(&self) -> Server {
        Server::spawn(
            &self.path(),
            &[],
            Lifecycle::Initialize(ProtocolVersion::V_2025_06_18),
        )
        .await
    }

    /// A server with extra environment variables (timeouts, intervals).
    pub async fn server_with(&self, env: &[(&str, &str)]) -> Server {
        Server::spawn(
            &self.path(),
            env,
            Lifecycle::Initialize(ProtocolVersion::V_2025_06_18),
        )
        .await
    }
}

impl Db {
    /// Stops `server` (SIGSTOP) at a moment it holds no write transaction. A process stopped
    /// inside one (a heartbeat every third of its session timeout) keeps every writer of the
    /// database waiting until it resumes, which is not what these tests are about.
    pub async fn stop(&self, server: &Server) {
        self.stop_when(server, false).await;
    }

    /// Stops `server` (SIGSTOP) at a moment it is writing (`writing`) or is not, trying again
    /// until it is caught so. Panics, with the server running, if it never is.
    pub async fn stop_when(&self, server: &Server, writing: bool) {
        for _ in 0..200 {
            server.signal("STOP");
            // Lets the database act on what the process sent before it stopped.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.writable() != writing {
                return;
            }
            server.signal("CONT");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never stopped the server with writing = {writing}");
    }

    /// Whether no process holds the database's write lock now.
    fn writable(&self) -> bool {
        match postgres_url(&self.path()) {
            Some(url) => on_postgres(&url, |client| {
                let held: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                         WHERE l.locktype = 'advisory' AND l.granted \
                         AND d.datname = current_database()",
                        &[],
                    )
                    .expect("read pg_locks")
                    .get(0);
                held == 0
            }),
            None => {
                let conn = rusqlite::Connection::open(self.path()).expect("open the database");
                conn.busy_timeout(Duration::from_millis(100))
                    .expect("set the busy timeout");
                conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok()
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let (Some(server), Some(name)) = (postgres_server(), postgres_name(&self.path())) {
            on_postgres(server, move |client| {
                // Servers a test left running are disconnected; a failure leaves a database
                // behind in a throwaway cluster, nothing worse.
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            });
        }
    }
}

/// How the client starts its MCP session.
#[derive(Clone)]
pub enum Lifecycle {
    /// The `initialize` handshake, negotiating this version.
    Initialize(ProtocolVersion),
    /// The sessionless `server/discover` lifecycle of 2026-07-28.
    Discover,
}

/// A spawned server and the client connected to it; `H` handles what the server pushes.
pub struct Server<H: ClientHandler = ClientConfig> {
    pub client: RunningService<RoleClient, H>,
    pub pid: u32,
}

/// What `Server::spawn` sets up unless a test overrides it.
fn command(db: &Path, env: &[(&str, &str)], cwd: Option<&Path>) -> Command {
    command_for(Path::new(BIN), db, env, cwd)
}

fn command_for(program: &Path, db: &Path, env: &[(&str, &str)], cwd: Option<&Path>) -> Command {
    let mut command = Command::from(prepared(program, db, env, cwd));
    command.stderr(Stdio::inherit());
    command
}

/// `program` on database `db`, with `env` over an environment cleared of what a test must
/// not inherit, in `cwd`.
pub(crate) fn prepared(
    program: &Path,
    db: &Path,
    env: &[(&str, &str)],
    cwd: Option<&Path>,
) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    for variable in NOT_INHERITED {
        command.env_remove(variable);
    }
    command
        .envs(database_env(db))
        .env("MCP_COORDINATOR_LOG", "warn");
    command.envs(env.iter().copied());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command
}

impl Server {
    pub async fn spawn(db: &Path, env: &[(&str, &str)], lifecycle: Lifecycle) -> Self {
        Self::spawn_in(db, env, lifecycle, None).await
    }

    pub async fn spawn_in(
        db: &Path,
        env: &[(&str, &str)],
        lifecycle: Lifecycle,
        cwd: Option<&Path>,
    ) -> Self {
        let config = client_config(&lifecycle);
        Server::connect(command(db, env, cwd), config, lifecycle).await
    }
}

/// The test client's side of the handshake.
pub(crate) fn client_config(lifecycle: &Lifecycle) -> ClientConfig {
    let mut config = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("integration-test", "1"),
    );
    if let Lifecycle::Initialize(version) = lifecycle {
        config.protocol_version = version.clone();
    }
    config
}

impl<H: ClientHandler> Server<H> {
    /// A server whose pushes go to `handler`. With `Lifecycle::Initialize`, the version
    /// negotiated is the one in `handler.get_info()`.
    pub async fn spawn_handler(db: &Path, handler: H, lifecycle: Lifecycle) -> Self {
        Self::connect(command(db, &[], None), handler, lifecycle).await
    }

    async fn connect(command: Command, handler: H, lifecycle: Lifecycle) -> Self {
        let transport = TokioChildProcess::new(command).expect("spawn the server binary");
        let pid = transport.id().expect("child pid");
        Self::over(transport, handler, lifecycle, pid).await
    }

    /// The client's handshake over any transport (a child's stdio, HTTP), with the server
    /// process `pid` at the other end.
    pub(crate) async fn over<T, E, A>(
        transport: T,
        handler: H,
        lifecycle: Lifecycle,
        pid: u32,
    ) -> Self
    where
        T: rmcp::transport::IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let client = match lifecycle {
            Lifecycle::Initialize(_) => handler.serve(transport).await.expect("initialize"),
            Lifecycle::Discover => handler
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("discover"),
        };
        Self { client, pid }
    }

    pub async fn raw(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(arguments) = args else {
            panic!("tool arguments must be an object");
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
    }

    /// Calls a tool that must succeed; returns its structured answer.
    pub async fn call(&self, tool: &str, args: Value) -> Value {
        let result = self.raw(tool, args.clone()).await;
        assert_ne!(
            result.is_error,
            Some(true),
            "{tool}({args}) failed: {}",
            text(&result)
        );
        let structured = result
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool} returned no structuredContent"));
        let as_text: Value = serde_json::from_str(&text(&result)).expect("text is JSON");
        assert_eq!(as_text, structured, "{tool}: the text copy matches");
        structured
    }

    /// Calls a tool that must fail with a tool error; returns the error text.
    pub async fn call_err(&self, tool: &str, args: Value) -> String {
        let result = self.raw(tool, args.clone()).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool}({args}) should fail: {result:?}"
        );
        text(&result)
    }

    /// Registers a session and returns its id.
    pub async fn register(&self, name: &str, project: &str, branch: &str) -> String {
        let answer = self
            .call(
                "session_register",
                json!({"name": name, "project": project, "branch": branch}),
            )
            .await;
        assert_eq!(answer["status"], "registered");
        answer["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned()
    }

    /// Closes stdin (as a client does when it quits) and waits for the process to exit.
    pub async fn quit(self) {
        let _ = self.client.cancel().await;
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }
}

pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A process's resident memory in KiB, from /proc; `None` when it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether a process still exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Waits until `pid` has exited, up to `limit`.
pub async fn wait_exit(pid: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

/// What a command of the binary printed, and how it exited.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub ok: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Db {
    /// Runs a command of the binary on this database: `args`, extra `env`, in `cwd`, with
    /// `stdin` as its input.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>, stdin: &str) -> Run {
        self.run_program(Path::new(BIN), args, env, cwd, stdin)
    }

    /// [`Db::run`] for any `program` (git, a client that runs the binary), in the same
    /// environment: this database, git without personal configuration, nothing inherited
    /// that a test must set itself.
    pub fn run_program(
        &self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: Option<&Path>,
        stdin: &str,
    ) -> Run {
        run_on(program, &self.path(), args, env, cwd, stdin)
    }

    /// Runs a command that must succeed; returns what it printed.
    pub fn cli(&self, args: &[&str]) -> Run {
        let run = self.run(args, &[], None, "");
        assert!(run.ok, "{args:?} failed: {}{}", run.stdout, run.stderr);
        run
    }

    /// A server on this database started through `program` (a wrapper script that runs the
    /// binary), working in `cwd`.
    pub async fn server_through(&self, program: &Path, cwd: Option<&Path>) -> Server {
        let version = ProtocolVersion::V_2025_06_18;
        Server::connect(
            command_for(program, &self.path(), &[], cwd),
            client_config(&Lifecycle::Initialize(version.clone())),
            Lifecycle::Initialize(version),
        )
        .await
    }

    /// A server on this database whose client process is `client_pid` (as if a separate AI
    /// client had started it), working in `cwd`.
    pub async fn server_of_client(&self, client_pid: &str, cwd: Option<&Path>) -> Server {
        Server::spawn_in(
            &self.path(),
            &[("MCP_COORDINATOR_CLIENT_PID", client_pid)],
            Lifecycle::Initialize(ProtocolVersion::V_2025_06_18),
            cwd,
        )
        .await
    }
}

/// [`Db::run_program`] on the database file `db`, which need not be a [`Db`]'s.
pub fn run_on(
    program: &Path,
    db: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
    stdin: &str,
) -> Run {
    use std::io::Write;
    let env: Vec<(&str, &str)> = PLAIN_GIT.iter().chain(env).copied().collect();
    let mut command = prepared(program, db, &env, cwd);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("wait for the binary");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ok: output.status.success(),
        code: output.status.code(),
    }
}
