//! MCP over Streamable HTTP: one server process for many clients.
//!
//! Each MCP connection (a 2025-revision session, opened by `initialize`) gets its own
//! [`CoordinatorServer`], so it remembers its own sessions, acts only for them (or for those
//! whose token it shows, [`Trust::Connection`]), and ends them when the client closes the
//! connection or leaves it idle. A 2026-07-28 request has no connection: it is served alone,
//! and proves its session with `session_token` on every call.

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::{CoordinatorServer, ToolListing, Trust};
use crate::coordinator::Coordinator;
use crate::liveness::Keepalives;
use crate::wake::Wakeup;

pub type HttpService = StreamableHttpService<CoordinatorServer, LocalSessionManager>;

/// An MCP connection without a request for this long is closed, and its sessions end (as a
/// stdio server's do when its client exits). Long enough for a person's pause; a client that
/// vanished without closing holds its sessions this long, its locks no longer than their TTL.
const IDLE_CONNECTION: Duration = Duration::from_secs(30 * 60);

/// The `/mcp` endpoint. Host and Origin checks are left to the HTTP layer, which applies them
/// to every route alike.
pub fn http_service(
    coordinator: Arc<Coordinator>,
    wakeup: Arc<Wakeup>,
    keepalives: Arc<Keepalives>,
    listing: &ToolListing,
    max_body_bytes: usize,
    shutdown: CancellationToken,
) -> HttpService {
    // The tool router and the listing are built once; each connection clones them.
    let listing = ToolListing {
        session_tokens: true,
        ..listing.clone()
    };
    let prototype = CoordinatorServer::new(
        coordinator,
        keepalives,
        wakeup,
        None,
        None,
        &listing,
        Trust::Connection,
    );
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(IDLE_CONNECTION);
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(shutdown);
    StreamableHttpService::new(
        move || Ok(prototype.for_connection()),
        Arc::new(sessions),
        config,
    )
}
