//! `/metrics` on `serve --http` and `dashboard`: scraped over HTTP after real MCP clients
//! worked, and scraped by a real Prometheus (Debian's, which scripts/test installs).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

use crate::common::http::{HttpServer, Receiver, add_token, web};
use crate::common::{Db, Lifecycle};

const LEGACY: Lifecycle = Lifecycle::Initialize(ProtocolVersion::V_2025_11_25);

async fn scrape(server: &HttpServer, token: &str) -> String {
    let response = web()
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    response.text().await.expect("text")
}

/// The value of the sample named exactly `name` (with its labels), if the scrape has it.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn a_scrape_shows_sessions_locks_queues_calls_and_webhooks() {
    let db = Db::new();
    let watcher = add_token(&db, "prometheus");
    let alice_token = add_token(&db, "alice");
    // A webhook endpoint that is down: its backlog and failures show.
    let down = Receiver::on_free_port();
    let server = HttpServer::start(&db.path(), &["--webhook", &down.url()], &[]);
    let refused = web().get(server.url("/metrics")).send().await.expect("GET");
    assert_eq!(
        refused.status(),
        401,
        "the same access rules as every route"
    );

    let alice = server.client(LEGACY, Some(&alice_token)).await;
    let bob = server.client(LEGACY, Some(&alice_token)).await;
    alice.register("alice", "web", "main").await;
    bob.register("bob", "web", "main").await;
    alice
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    let denied = bob
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    assert_eq!(denied["granted"], false);
    bob.call(
        "lock_acquire",
        json!({"file_path": "src/app.rs", "queue": true}),
    )
    .await;
    let waiting = scrape(&server, &watcher).await;
    assert_eq!(sample(&waiting, "mcp_coordinator_queue_depth"), Some(1.0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    alice
        .call("lock_release", json!({"file_path": "src/app.rs"}))
        .await;
    let unknown = alice
        .client
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");

    let text = scrape(&server, &watcher).await;
    let expect = |name: &str, value: f64| {
        assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
    };
    expect("mcp_coordinator_sessions{state=\"live\"}", 2.0);
    expect("mcp_coordinator_sessions{state=\"stale\"}", 0.0);
    expect("mcp_coordinator_locks_held", 1.0);
    expect("mcp_coordinator_queue_depth", 0.0);
    expect(
        "mcp_coordinator_lock_requests_total{outcome=\"granted\"}",
        1.0,
    );
    expect(
        "mcp_coordinator_lock_requests_total{outcome=\"refused\"}",
        1.0,
    );
    expect(
        "mcp_coordinator_lock_requests_total{outcome=\"queued\"}",
        1.0,
    );
    expect("mcp_coordinator_queue_wait_seconds_count", 1.0);
    let waited = sample(&text, "mcp_coordinator_queue_wait_seconds_sum").expect("sum");
    assert!((0.3..10.0).contains(&waited), "{waited}");
    expect(
        "mcp_coordinator_tool_calls_total{tool=\"lock_acquire\",outcome=\"ok\"}",
        3.0,
    );
    expect(
        "mcp_coordinator_tool_calls_total{tool=\"session_register\",outcome=\"ok\"}",
        2.0,
    );
    expect(
        "mcp_coordinator_tool_call_duration_seconds_count{tool=\"lock_acquire\"}",
        3.0,
    );
    expect(
        "mcp_coordinator_tool_calls_total{tool=\"unknown\",outcome=\"error\"}",
        1.0,
    );
    expect("mcp_coordinator_database_errors_total", 0.0);
    // Labelled by scheme, host and port and a digest of the URL: never its path.
    let endpoint = format!("{{endpoint=\"http://127.0.0.1:{}/… ", down.port);
    let labelled = |text: &str, metric: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{metric}{endpoint}")))
            .and_then(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let backlog = labelled(&text, "mcp_coordinator_webhook_backlog_events");
    assert!(backlog.is_some_and(|b| b >= 1.0), "{backlog:?} in\n{text}");
    assert!(
        !text.contains("/hook/secret-path"),
        "the endpoint's path is secret"
    );
    // The deliverer retries the endpoint that is down; each failure shows.
    let mut failures = 0.0;
    for _ in 0..100 {
        let text = scrape(&server, &watcher).await;
        failures = labelled(&text, "mcp_coordinator_webhook_failures").unwrap_or_default();
        if failures >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures >= 1.0, "no failure counted");
    alice.quit().await;
    bob.quit().await;
}

#[tokio::test]
async fn the_dashboard_shows_what_stdio_servers_do() {
    let db = Db::new();
    let stdio = db.server().await;
    stdio.register("alice", "web", "main").await;
    stdio
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;
    // No token anywhere: the dashboard on loopback is open, /metrics too.
    let dashboard = HttpServer::dashboard(&db.path());
    let text = web()
        .get(dashboard.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert_eq!(
        sample(&text, "mcp_coordinator_sessions{state=\"live\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "mcp_coordinator_locks_held"), Some(1.0));
    stdio.quit().await;
}

/// A Prometheus server, stopped when dropped.
struct Prometheus {
    child: Child,
    api: String,
}

impl Prometheus {
    /// Starts Debian's `prometheus` scraping `target` (host:port) every second with `token`.
    fn scraping(dir: &Path, target: &str, token: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: coordinator\n    authorization:\n      \
                 credentials: {token}\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("config");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run prometheus ({error}): install Debian's prometheus package \
                     (scripts/test does)"
                )
            });
        Self {
            child,
            api: format!("http://127.0.0.1:{port}/api/v1/query"),
        }
    }

    /// The value of the instant `query`'s first series, once Prometheus has one.
    async fn value(&self, query: &str) -> Option<String> {
        let url = reqwest::Url::parse_with_params(&self.api, &[("query", query)]).ok()?;
        let answer: Value = web().get(url).send().await.ok()?.json().await.ok()?;
        answer["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_scrapes_it_with_its_own_token() {
    let db = Db::new();
    let token = add_token(&db, "prometheus");
    let agent = add_token(&db, "agent");
    let server = HttpServer::start(&db.path(), &[], &[]);
    let client = server.client(LEGACY, Some(&agent)).await;
    client.register("alice", "web", "main").await;
    client
        .call("lock_acquire", json!({"file_path": "src/app.rs"}))
        .await;

    let dir = tempfile::tempdir().expect("dir");
    let target = server.base.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::scraping(dir.path(), &target, &token);
    let mut seen = (None, None, None);
    for _ in 0..300 {
        seen = (
            prometheus.value("up{job=\"coordinator\"}").await,
            prometheus.value("mcp_coordinator_locks_held").await,
            prometheus
                .value("mcp_coordinator_tool_calls_total{tool=\"lock_acquire\",outcome=\"ok\"}")
                .await,
        );
        if seen.0.as_deref() == Some("1") && seen.1.is_some() && seen.2.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen.0.as_deref(),
        Some("1"),
        "the scrape succeeds: {seen:?}"
    );
    assert_eq!(seen.1.as_deref(), Some("1"), "{seen:?}");
    assert_eq!(seen.2.as_deref(), Some("1"), "{seen:?}");
    let quantile = prometheus
        .value(
            "histogram_quantile(0.99, mcp_coordinator_tool_call_duration_seconds_bucket{tool=\"lock_acquire\"})",
        )
        .await;
    assert!(
        quantile
            .as_deref()
            .and_then(|q| q.parse::<f64>().ok())
            .is_some(),
        "Prometheus reads the histogram: {quantile:?}"
    );
    client.quit().await;
}
