//! `mcp-session-coordinator`: the stdio MCP server an AI client starts for each session.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use mcp_session_coordinator::clock::SystemClock;
use mcp_session_coordinator::config::Settings;
use mcp_session_coordinator::store::Store;
use mcp_session_coordinator::wake::{Poker, Wakeup};
use mcp_session_coordinator::{Coordinator, mcp};

fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    // stdout carries JSON-RPC only; every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_new(&settings.log)
                .with_context(|| format!("invalid --log filter '{}'", settings.log))?,
        )
        .init();

    let db_path = settings.db_path().map_err(|e| anyhow!(e))?;
    let store = Store::open(&db_path)
        .with_context(|| format!("cannot open the database at {}", db_path.display()))?;
    tracing::info!(db = %db_path.display(), "coordinator starting");
    let coordinator = Arc::new(
        Coordinator::new(store, Arc::new(SystemClock), settings.session_timeout())
            .with_notifier(Arc::new(Poker)),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let wakeup = Wakeup::start();
        let listing = settings.tool_listing();
        mcp::serve_stdio(coordinator, wakeup, settings.cleanup_interval(), &listing).await
    });
    // A read of stdin may still be parked on a blocking thread; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
