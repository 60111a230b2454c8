//! The web server: one coordinator that AI sessions on several machines reach over the
//! network (MCP over Streamable HTTP at `/mcp`, whose protocol side is `mcp::http`), and the
//! dashboard people watch it on (`/`, with its JSON API under `/api/`). `dashboard` serves the
//! page alone, over the database that stdio servers share.
//!
//! Every route passes the same checks first ([`access`]): Host, Origin, token; `/metrics`
//! too, so a Prometheus scrapes with a token of its own (`token add prometheus`).

mod access;
mod api;
mod connections;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

pub use access::{Access, AccessError};

use crate::coordinator::Coordinator;
use crate::liveness::{self, Activity, Keepalives};
use crate::mcp::{self, ToolListing};
use crate::metrics::Metrics;
use crate::wake::{self, Wakeup};

/// Largest request body: the longest tool argument (a message, a context entry) is a few
/// tens of kilobytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// What runs behind the listener.
pub enum Mode {
    /// MCP at /mcp beside the dashboard: a coordinator server, which sweeps and watches queues.
    Server {
        listing: ToolListing,
        cleanup_interval: Duration,
        /// Most MCP connections open at once.
        max_mcp_connections: usize,
    },
    /// The dashboard alone, looking at a database that stdio servers keep.
    Dashboard,
}

/// What the web server serves over.
pub struct Served {
    /// Where tool calls and the dashboard's actions write.
    pub coordinator: Arc<Coordinator>,
    /// Where the dashboard's looks, token checks and scrapes read (see `Database::side_reader`).
    pub reader: Arc<Coordinator>,
    /// What `/metrics` shows; `coordinator` reports its decisions to it.
    pub metrics: Arc<Metrics>,
}

/// Serves until SIGTERM/SIGINT, then ends the sessions its MCP connections registered.
pub async fn serve(
    served: Served,
    listen: SocketAddr,
    access: Access,
    max_connections: Option<u32>,
    mode: Mode,
) -> Result<(), HttpError> {
    let Served {
        coordinator,
        reader,
        metrics,
    } = served;
    let shutdown = CancellationToken::new();
    let dashboard = api::Dashboard {
        coordinator: coordinator.clone(),
        reader: reader.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        feeds: Arc::default(),
    };
    let mut app = Router::new()
        .route("/", get(api::page))
        .route("/app.js", get(api::script))
        .route("/style.css", get(api::style))
        // Browsers ask for it on their own; no icon, and no 404 in the console.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/api/snapshot", get(api::snapshot))
        .route("/api/events", get(api::events))
        .route("/api/context", get(api::context))
        .route("/api/viewer", get(api::viewer))
        .route("/metrics", get(api::metrics))
        .route("/api/locks/release", post(api::release))
        .route("/api/sessions/end", post(api::end_session))
        .route("/api/broadcast", post(api::broadcast))
        // A whole request of the API (its body included) within the deadline; the event
        // stream's answer starts at once, so it is not cut.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            connections::BODY_DEADLINE,
        ))
        .with_state(dashboard);

    let activity = Arc::new(Activity::default());
    let keepalives = Arc::new(Keepalives::by_activity(activity.clone()));
    let mut tasks = Vec::new();
    if let Mode::Server {
        listing,
        cleanup_interval,
        max_mcp_connections,
    } = &mode
    {
        let max_mcp_connections = *max_mcp_connections;
        let wakeup = Wakeup::start();
        wakeup.follow(&coordinator);
        let limits = mcp::Limits {
            max_body_bytes: MAX_BODY_BYTES,
            body_deadline: connections::BODY_DEADLINE,
            max_connections: max_mcp_connections,
        };
        let shared = mcp::Shared {
            coordinator: coordinator.clone(),
            metrics: metrics.clone(),
            wakeup: wakeup.clone(),
            keepalives: keepalives.clone(),
            activity,
        };
        let endpoint = mcp::endpoint(shared, listing, limits, shutdown.child_token());
        app = app.nest("/mcp", endpoint);
        tasks.push(liveness::spawn_sweeper(
            coordinator.clone(),
            *cleanup_interval,
        ));
        tasks.push(liveness::spawn_checkpoints(coordinator.clone()));
        tasks.push(wake::spawn_queue_watcher(
            coordinator.clone(),
            wakeup,
            *cleanup_interval,
        ));
        tasks.push(liveness::spawn_heartbeats(
            coordinator.clone(),
            keepalives.clone(),
            liveness::heartbeat_interval(coordinator.session_timeout()),
        ));
    }
    let access = Arc::new(access);
    tasks.push(access::People::watch(access.clone()));
    let app = app
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(access, access::check));
    let limit = connections::connection_limit(max_connections.map(|n| n as usize));

    let listener = connections::listen(listen).map_err(|source| HttpError::Bind {
        addr: listen,
        source,
    })?;
    let bound = listener.local_addr().map_err(HttpError::Serve)?;
    // One line on stdout for people and scripts (port 0 picks a free port).
    match mode {
        Mode::Server { .. } => println!(
            "mcp-session-coordinator: MCP at http://{bound}/mcp, dashboard at http://{bound}/"
        ),
        Mode::Dashboard => println!("mcp-session-coordinator: dashboard at http://{bound}/"),
    }
    tracing::info!(%bound, "listening");

    let stop = shutdown.clone();
    tokio::spawn(async move {
        let reason = crate::mcp::terminated().await;
        tracing::info!(reason, "shutting down");
        stop.cancel();
    });
    let served = connections::serve(listener, app, limit, shutdown.clone()).await;
    shutdown.cancel();
    for task in tasks {
        task.abort();
    }
    let ended = tokio::task::spawn_blocking(move || keepalives.release_all(&coordinator)).await;
    if let Err(error) = ended {
        tracing::error!(%error, "could not deregister sessions on exit");
    }
    served.map_err(HttpError::Serve)
}
