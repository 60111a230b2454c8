//! The real binary as one shared HTTP server, and MCP clients that reach it over the network.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ClientHandler;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

use super::{BIN, Db, Lifecycle, Server, client_config, prepared};

/// A token long enough for the server to accept.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef-test";

/// `serve --http` (or `dashboard`) on a free loopback port; stopped (SIGTERM, then waited
/// for) when dropped.
pub struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl HttpServer {
    /// Starts the server on `db` with extra command-line `args` (after `serve`) and `env`.
    pub fn start(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = vec!["serve", "--http", "127.0.0.1:0"];
        command.extend_from_slice(args);
        Self::launch(db, &command, env)
    }

    /// [`HttpServer::start`] with the server's log (stderr, at its default level) written to `log`.
    pub fn start_logging(db: &Path, args: &[&str], log: &Path) -> Self {
        let mut command = vec!["serve", "--http", "127.0.0.1:0"];
        command.extend_from_slice(args);
        let file = std::fs::File::create(log).expect("log file");
        let info = [("MCP_COORDINATOR_LOG", "mcp_session_coordinator=info,warn")];
        Self::launch_with(db, &command, &info, Stdio::from(file))
    }

    /// Starts the `dashboard` command on `db`.
    pub fn dashboard(db: &Path) -> Self {
        Self::launch(db, &["dashboard", "--listen", "127.0.0.1:0"], &[])
    }

    /// Runs the binary with `args`, and finds where it listens in the first line it prints.
    pub fn launch(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch_with(db, args, env, Stdio::inherit())
    }

    fn launch_with(db: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut command = prepared(Path::new(BIN), db, env, None);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().expect("spawn the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address line");
        let base = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .map(|url| {
                let url = url.trim_end_matches(',').trim_end_matches("/mcp");
                url.trim_end_matches('/').to_owned()
            })
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Self { child, base }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An MCP client over Streamable HTTP, with `token` as its bearer token.
    pub async fn client(&self, lifecycle: Lifecycle, token: Option<&str>) -> Server {
        let handler = client_config(&lifecycle);
        self.client_with(handler, lifecycle, token).await
    }

    /// A client whose pushes (over the connection's SSE stream) go to `handler`.
    pub async fn client_with<H: ClientHandler>(
        &self,
        handler: H,
        lifecycle: Lifecycle,
        token: Option<&str>,
    ) -> Server<H> {
        self.connect(handler, lifecycle, token, &[]).await
    }

    /// A client whose person configured extra HTTP `headers` (a session token, say).
    pub async fn client_sending(
        &self,
        lifecycle: Lifecycle,
        headers: &[(&'static str, &str)],
    ) -> Server {
        let handler = client_config(&lifecycle);
        self.connect(handler, lifecycle, None, headers).await
    }

    async fn connect<H: ClientHandler>(
        &self,
        handler: H,
        lifecycle: Lifecycle,
        token: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Server<H> {
        install_tls_provider();
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url("/mcp"));
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let custom = headers
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_str(value).expect("header value"),
                )
            })
            .collect();
        config = config.custom_headers(custom);
        let transport = StreamableHttpClientTransport::from_config(config);
        Server::over(transport, handler, lifecycle, self.pid()).await
    }

    /// Stops the server with SIGTERM, as a service manager does, and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..500 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// reqwest (here without a built-in TLS provider) needs one chosen before any client is built.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Adds a person's token for `name` with the command people run; returns the token, which
/// it prints alone on its first line.
pub fn add_token(db: &Db, name: &str) -> String {
    let run = db.cli(&["token", "add", name]);
    let token = run
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(token.starts_with("mcpc_"), "{}", run.stdout);
    token
}

/// A plain HTTP client for the dashboard API and for refusal checks.
pub fn web() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// A webhook receiver on a fixed port, started and stopped at will.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<(String, Value)>>>,
    /// How long each POST takes to answer.
    pub slowness: Duration,
}

impl Receiver {
    pub fn on_free_port() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self {
            port,
            got: Arc::default(),
            slowness: Duration::ZERO,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook/secret-path", self.port)
    }

    pub async fn start(&self) -> tokio::task::JoinHandle<()> {
        let got = self.got.clone();
        let slowness = self.slowness;
        let app = axum::Router::new().route(
            "/hook/secret-path",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                    let got = got.clone();
                    async move {
                        tokio::time::sleep(slowness).await;
                        let kind = headers["x-coordinator-event"]
                            .to_str()
                            .unwrap_or("")
                            .to_owned();
                        got.lock().expect("lock").push((kind, body));
                        "ok"
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the receiver");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    pub fn received(&self) -> Vec<(String, Value)> {
        self.got.lock().expect("lock").clone()
    }
}
