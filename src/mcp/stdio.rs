//! One AI session's server process: MCP over stdin/stdout until the client goes away.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;

use super::{CoordinatorServer, ToolListing, Trust};
use crate::checkout::Checkout;
use crate::coordinator::Coordinator;
use crate::liveness::{self, Keepalives};
use crate::wake::{self, Wakeup};

/// Serves MCP on stdio until stdin closes or a termination signal arrives, then deregisters
/// the sessions this connection registered, releasing their locks. Meanwhile it heartbeats
/// them and sweeps everyone's stale sessions every `cleanup_interval`.
pub async fn serve_stdio(
    coordinator: Arc<Coordinator>,
    wakeup: Arc<Wakeup>,
    cleanup_interval: Duration,
    listing: &ToolListing,
) {
    let keepalives = Arc::new(Keepalives::default());
    // The checkout's top folder, not the client's folder inside it: hooks and the git guard
    // of the same checkout must compute the same keys.
    let root = std::env::current_dir()
        .ok()
        .map(|dir| Checkout::around(&dir).root_text());
    let server = CoordinatorServer::new(
        coordinator.clone(),
        keepalives.clone(),
        wakeup.clone(),
        root,
        crate::clients::client_pid(),
        listing,
        Trust::Process,
    )
    .answering_inline();
    // Held past the server's end, so its sessions can be ended then.
    let keepalive = server.keepalive.clone();
    let sweeper = liveness::spawn_sweeper(coordinator.clone(), cleanup_interval);
    let checkpoints = liveness::spawn_checkpoints(coordinator.clone());
    let watcher = wake::spawn_queue_watcher(coordinator.clone(), wakeup, cleanup_interval);
    let heartbeats = liveness::spawn_heartbeats(
        coordinator.clone(),
        keepalives,
        liveness::heartbeat_interval(coordinator.session_timeout()),
    );

    let reason = tokio::select! {
        reason = serve(server) => reason,
        reason = terminated() => reason,
    };
    tracing::info!(reason, "shutting down");
    sweeper.abort();
    checkpoints.abort();
    watcher.abort();
    heartbeats.abort();
    let ended = tokio::task::spawn_blocking(move || keepalive.release_all(&coordinator)).await;
    if let Err(error) = ended {
        tracing::error!(%error, "could not deregister sessions on exit");
    }
}

async fn serve(server: CoordinatorServer) -> &'static str {
    match server.serve(crate::platform::stdio::streams()).await {
        Ok(running) => match running.waiting().await {
            Ok(_) => "stdin closed",
            Err(error) => {
                tracing::error!(%error, "MCP service failed");
                "MCP service failed"
            }
        },
        Err(error) => {
            tracing::warn!(%error, "the client left before the session started");
            "client left before initialization"
        }
    }
}

/// Resolves when the process is asked to stop.
#[cfg(unix)]
pub async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for termination signals");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = hup.recv() => "SIGHUP",
    }
}

#[cfg(not(unix))]
pub async fn terminated() -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "Ctrl-C",
        Err(_) => std::future::pending().await,
    }
}
