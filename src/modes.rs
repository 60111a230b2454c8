//! What the binary runs, one function per mode: the stdio MCP server, the shared HTTP server,
//! the dashboard alone, or a command. Each turns the parsed flags into what its adapter takes
//! and runs it to the end.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{self, CliError};
use crate::config::{self, Database, OpenError};
use crate::coordinator::Coordinator;
use crate::flags::{self, CliCommand, Flags};
use crate::mcp;
use crate::metrics::Metrics;
use crate::wake::Wakeup;
use crate::web::{self, Access, AccessError, HttpError, Mode};
use crate::webhooks::{self, WebhookError};

/// Why a mode could not start, or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Webhooks(#[from] WebhookError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Command(#[from] CliError),
}

/// The MCP server over stdin/stdout, until the client closes it or a signal ends it.
pub fn stdio(flags: &Flags) -> Result<(), ModeError> {
    let (coordinator, runtime) = start(&database(flags), Threads::One)?;
    // A person who runs the binary by hand would otherwise see it wait in silence.
    if std::io::stdin().is_terminal() {
        eprintln!(
            "mcp-session-coordinator: this is the MCP server, waiting for an MCP client on \
             stdin (your AI client starts it; see `mcp-session-coordinator --help` for the \
             commands people run). Ctrl-D or Ctrl-C ends it."
        );
    }
    runtime.block_on(async {
        let _webhooks = webhooks::spawn(coordinator.clone(), &flags.webhooks.urls)?;
        let listing = config::tool_listing(&flags.listing);
        let wakeup = Wakeup::start();
        wakeup.follow(&coordinator);
        mcp::serve_stdio(coordinator, wakeup, flags.sweeps.cleanup_interval, &listing).await;
        Ok::<_, ModeError>(())
    })?;
    // A read of stdin may still be parked on a blocking thread; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// `serve`: MCP over Streamable HTTP beside the dashboard, until a signal.
pub fn serve(flags: &Flags, serve: &flags::Serve) -> Result<(), ModeError> {
    let mode = Mode::Server {
        listing: config::tool_listing(&flags.listing),
        cleanup_interval: flags.sweeps.cleanup_interval,
        max_mcp_connections: serve.max_mcp_connections as usize,
    };
    let access = config::access(&serve.access, serve.http)?;
    let limit = serve.access.max_connections;
    web_server(flags, serve.http, access, limit, mode)
}

/// `dashboard`: the page and its API alone, until a signal.
pub fn dashboard(flags: &Flags, dashboard: &flags::Dashboard) -> Result<(), ModeError> {
    let access = config::access(&dashboard.access, dashboard.listen)?;
    let limit = dashboard.access.max_connections;
    web_server(flags, dashboard.listen, access, limit, Mode::Dashboard)
}

/// A command for people or hooks; its exit code says whether it passed.
pub fn command(flags: &Flags, command: &CliCommand) -> Result<ExitCode, ModeError> {
    Ok(cli::run(command, &database(flags))?)
}

fn database(flags: &Flags) -> Database {
    Database::new(&flags.database, &flags.liveness)
}

/// How many threads a server's async runtime runs on.
enum Threads {
    /// A stdio server answers one client, which sends one request at a time: on one thread,
    /// a request's tasks (rmcp's reader, its service loop, the handler) hand over to each other
    /// without waking another thread, measured at about a third of a call's time.
    One,
    /// The HTTP server serves many clients at once, on both cores.
    Two,
}

/// The coordinator over the configured database, and the runtime a server runs on.
fn start(
    database: &Database,
    threads: Threads,
) -> Result<(Arc<Coordinator>, tokio::runtime::Runtime), ModeError> {
    let coordinator = Arc::new(database.coordinator()?);
    tracing::info!(db = %database.location()?, "coordinator starting");
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::Two => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    };
    let runtime = builder.enable_all().build().map_err(ModeError::Runtime)?;
    Ok((coordinator, runtime))
}

/// The HTTP server or the dashboard, with webhook delivery when configured.
fn web_server(
    flags: &Flags,
    listen: SocketAddr,
    access: Access,
    max_connections: Option<u32>,
    mode: Mode,
) -> Result<(), ModeError> {
    let database = database(flags);
    let (coordinator, runtime) = start(&database, Threads::Two)?;
    let reader = database.side_reader(&coordinator)?;
    let endpoints = flags
        .webhooks
        .urls
        .iter()
        .map(|url| (url.clone(), webhooks::label(url)))
        .collect();
    // Outside the runtime: a PostgreSQL connection made here runs one of its own.
    let access = access.with_people(reader.clone(), listen)?;
    let metrics = Arc::new(Metrics::new(endpoints));
    coordinator.observe(metrics.clone());
    runtime.block_on(async {
        let _webhooks = webhooks::spawn(coordinator.clone(), &flags.webhooks.urls)?;
        let web = web::Served {
            coordinator,
            reader,
            metrics,
        };
        web::serve(web, listen, access, max_connections, mode).await?;
        Ok(())
    })
}
