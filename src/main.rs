//! `mcp-session-coordinator`: the stdio MCP server an AI client starts for each session, and
//! the commands people and hooks run against the same database.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use mcp_session_coordinator::cli::Command;
use mcp_session_coordinator::config::Settings;
use mcp_session_coordinator::web::{self, Access, Mode};
use mcp_session_coordinator::wake::Wakeup;
use mcp_session_coordinator::{Coordinator, cli, mcp, webhooks};

fn main() -> ExitCode {
    run().unwrap_or_else(|error| {
        // One line a person (or a client's log) shows, not a backtrace: each cause after a
        // colon. A server that cannot start (a read-only or unsafe database) says why here.
        eprintln!("mcp-session-coordinator: {error:#}");
        ExitCode::FAILURE
    })
}

fn run() -> anyhow::Result<ExitCode> {
    let settings = Settings::parse();
    // stdout carries JSON-RPC (or a command's output) only; every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_new(&settings.log)
                .with_context(|| format!("invalid --log filter '{}'", settings.log))?,
        )
        .init();

    match &settings.command {
        Some(Command::Serve(args)) => {
            let access = args.access.access(args.http)?;
            let mode = Mode::Server {
                listing: settings.tool_listing(),
                cleanup_interval: settings.cleanup_interval(),
                max_mcp_connections: args.max_mcp_connections as usize,
            };
            let limit = args.access.max_connections;
            serve_http(&settings, args.http, access, limit, mode).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Dashboard(args)) => {
            let access = args.access.access(args.listen)?;
            let limit = args.access.max_connections;
            serve_http(&settings, args.listen, access, limit, Mode::Dashboard)
                .map(|()| ExitCode::SUCCESS)
        }
        Some(command) => Ok(cli::run(command, &settings)?),
        None => serve(&settings).map(|()| ExitCode::SUCCESS),
    }
}

/// The coordinator over the configured database, and the runtime a server runs on.
fn start(settings: &Settings) -> anyhow::Result<(Arc<Coordinator>, tokio::runtime::Runtime)> {
    let coordinator = Arc::new(settings.coordinator()?);
    tracing::info!(db = %settings.location()?, "coordinator starting");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok((coordinator, runtime))
}

/// The HTTP server or the dashboard, with webhook delivery when configured.
fn serve_http(
    settings: &Settings,
    listen: std::net::SocketAddr,
    access: Access,
    max_connections: Option<u32>,
    mode: Mode,
) -> anyhow::Result<()> {
    let (coordinator, runtime) = start(settings)?;
    let reader = settings.side_reader(&coordinator)?;
    runtime.block_on(async {
        let _webhooks = webhooks::spawn(coordinator.clone(), &settings.webhooks)?;
        web::serve(coordinator, reader, listen, access, max_connections, mode).await?;
        Ok(())
    })
}

fn serve(settings: &Settings) -> anyhow::Result<()> {
    let (coordinator, runtime) = start(settings)?;
    runtime.block_on(async {
        let _webhooks = webhooks::spawn(coordinator.clone(), &settings.webhooks)?;
        let wakeup = Wakeup::start();
        let listing = settings.tool_listing();
        mcp::serve_stdio(coordinator, wakeup, settings.cleanup_interval(), &listing).await;
        Ok::<_, anyhow::Error>(())
    })?;
    // A read of stdin may still be parked on a blocking thread; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
