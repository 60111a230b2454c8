//! MCP over Streamable HTTP: one server process for many clients.
//!
//! Each MCP connection (a 2025-revision session, opened by `initialize`) gets its own
//! [`CoordinatorServer`], so it remembers its own sessions, acts only for them (or for those
//! whose token it shows, [`Trust::Connection`]), and ends them when the client closes the
//! connection or leaves it idle. A 2026-07-28 request has no connection: it is served alone,
//! and proves its session with `session_token` on every call, or with the
//! [`SESSION_TOKEN_HEADER`] its person configured once.
//!
//! rmcp serves the protocol; [`edge`] in front of it does what real clients need of the wire
//! and rmcp leaves to the server: no empty priming events for clients older than 2025-11-25,
//! JSON-RPC errors for malformed requests, 200 for DELETE, and a record of each connection's
//! activity, by which its sessions live ([`Activity`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{CoordinatorServer, ToolListing, Trust};
use crate::coordinator::Coordinator;
use crate::liveness::{Activity, IDLE_CONNECTION, Keepalives, Reserved};
use crate::metrics::Metrics;
use crate::wake::Wakeup;

/// A header a person can put in their client's HTTP configuration so that the model never
/// handles a token: it stands for `session_token` on every call, and `session_register` with it
/// continues the same session from any connection.
pub const SESSION_TOKEN_HEADER: &str = "coordinator-session-token";

/// Shortest token a client may bring in [`SESSION_TOKEN_HEADER`]: it proves a session, so it
/// must not be guessable.
pub const MIN_SESSION_TOKEN_CHARS: usize = 16;

/// The first revision whose clients read an SSE event with empty data (a "priming" event, for
/// resuming a stream); older clients (TypeScript SDK 1.23, Gemini CLI) parse it as JSON and
/// drop the connection.
const PRIMING_SINCE: &str = "2025-11-25";

/// What a request without `MCP-Protocol-Version` speaks (the 2025-06-18 transport rule).
const ASSUMED_REVISION: &str = "2025-03-26";

/// What the `/mcp` endpoint's connections share with the rest of the server.
pub struct Shared {
    pub coordinator: Arc<Coordinator>,
    /// Counts the tool calls (`/metrics`).
    pub metrics: Arc<Metrics>,
    pub wakeup: Arc<Wakeup>,
    pub keepalives: Arc<Keepalives>,
    pub activity: Arc<Activity>,
}

/// The `/mcp` endpoint. Host, Origin and bearer checks are left to the HTTP layer, which
/// applies them to every route alike.
pub fn endpoint(
    shared: Shared,
    listing: &ToolListing,
    limits: Limits,
    shutdown: CancellationToken,
) -> Router {
    let Shared {
        coordinator,
        metrics,
        wakeup,
        keepalives,
        activity,
    } = shared;
    let idle = coordinator.session_timeout();
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
    )
    .counting(metrics);
    let edge = Arc::new(Edge {
        activity: activity.clone(),
        takes_token: prototype.tools_taking_a_token(),
        limits,
    });
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(IDLE_CONNECTION);
    let sessions = Arc::new(sessions);
    tokio::spawn(close_idle(
        sessions.clone(),
        activity,
        idle,
        shutdown.clone(),
    ));
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(limits.max_body_bytes)
        .with_cancellation_token(shutdown);
    let service =
        StreamableHttpService::new(move || Ok(prototype.for_connection()), sessions, config);
    Router::new()
        .fallback_service(service)
        .layer(axum::middleware::from_fn_with_state(edge, self::edge))
}

/// What one client may take of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Time to send a whole request body.
    pub body_deadline: Duration,
    /// Most MCP connections open at once; each holds its own server state (~60 KB).
    pub max_connections: usize,
}

/// Closes the MCP connections whose clients showed no sign of life for a session timeout:
/// their sessions are swept by then, and a client that comes back opens a new connection.
/// Without this a connection would hold its memory for rmcp's 30-minute idle limit.
async fn close_idle(
    sessions: Arc<LocalSessionManager>,
    activity: Arc<Activity>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval((idle / 3).max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        for connection in activity.idle(idle) {
            activity.forget(&connection);
            if let Err(error) = sessions.close_session(&connection.as_str().into()).await {
                tracing::debug!(%error, %connection, "closing an idle connection");
            }
        }
    }
}

/// What [`edge`] knows.
struct Edge {
    activity: Arc<Activity>,
    /// Tools with a `session_token` argument, which [`SESSION_TOKEN_HEADER`] fills in.
    takes_token: BTreeSet<String>,
    limits: Limits,
}

/// In front of rmcp's service: see the module documentation.
async fn edge(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let connection = header_text(&parts.headers, "mcp-session-id");
    if let Some(connection) = &connection {
        edge.activity.touch(connection);
    }
    let brought = match brought_token(&parts.headers) {
        Ok(token) => token,
        Err(why) => return plain(StatusCode::BAD_REQUEST, &why),
    };
    if let Some(token) = &brought {
        // rmcp hands the request's parts to the tools: session_register finds it there.
        parts.extensions.insert(BroughtToken(token.clone()));
    }
    let mut revision = header_text(&parts.headers, "mcp-protocol-version");
    let method = parts.method.clone();
    // A place among the open connections, held for an `initialize` until its answer names the
    // new connection (which then counts by itself).
    let mut reserved = None;
    let body = if method == Method::POST && is_json(&parts.headers) {
        let limits = edge.limits;
        let read = axum::body::to_bytes(body, limits.max_body_bytes);
        let bytes = match tokio::time::timeout(limits.body_deadline, read).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "the request body is larger than {} bytes",
                        limits.max_body_bytes
                    ),
                );
            }
            Err(_) => {
                return plain(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the request body took longer than {} s to arrive",
                        limits.body_deadline.as_secs()
                    ),
                );
            }
        };
        let opening = connection.is_none();
        match edge.read_message(bytes, brought.as_deref(), opening) {
            Ok(read) => {
                revision = revision.or(read.revision);
                reserved = read.reserved;
                read.body
            }
            Err(response) => return *response,
        }
    } else {
        body
    };

    let mut response = next.run(Request::from_parts(parts, body)).await;

    if method == Method::DELETE && response.status() == StatusCode::ACCEPTED {
        // The connection is ended at once; clients accept 200 or 204 (the Python SDK warns on
        // every close otherwise).
        *response.status_mut() = StatusCode::OK;
        if let Some(connection) = &connection {
            edge.activity.forget(connection);
        }
    }
    // A new connection's id arrives with the answer to its `initialize`.
    if let Some(opened) = header_text(response.headers(), "mcp-session-id") {
        edge.activity.touch(&opened);
    }
    drop(reserved);
    if !is_event_stream(response.headers()) {
        return response;
    }
    let revision = revision.unwrap_or_else(|| ASSUMED_REVISION.to_owned());
    let primes = revision.as_str() >= PRIMING_SINCE;
    // A stream the client holds open (GET) keeps its connection's sessions alive.
    let open = (method == Method::GET && response.status() == StatusCode::OK)
        .then(|| connection.map(|c| edge.activity.stream(&c)))
        .flatten();
    if primes && open.is_none() {
        return response;
    }
    response.map(|body| {
        let events = body.into_data_stream().filter_map(move |frame| {
            let _still_open = &open;
            match frame {
                Ok(event) if !primes => for_old_client(&event).map(Ok),
                frame => Some(frame),
            }
        });
        Body::from_stream(events)
    })
}

/// An event as a client older than 2025-11-25 can take it: without data, none at all; and
/// without `id` and `retry`. Such a client (TypeScript SDK 1.23) takes any event id as a cue to
/// resume the stream once it ends, and asks again for every answered request.
fn for_old_client(event: &Bytes) -> Option<Bytes> {
    let Ok(text) = std::str::from_utf8(event) else {
        return Some(event.clone());
    };
    if is_empty_event(text) {
        return None;
    }
    let resumable = |line: &str| line.starts_with("id:") || line.starts_with("retry:");
    if !text.lines().any(resumable) {
        return Some(event.clone());
    }
    let mut kept: String = text
        .lines()
        .filter(|line| !line.is_empty() && !resumable(line))
        .flat_map(|line| [line, "\n"])
        .collect();
    kept.push('\n');
    Some(Bytes::from(kept))
}

impl Edge {
    /// Checks a POSTed JSON-RPC message, fills in the brought token, and reads the revision the
    /// message speaks when it says (`initialize`, or the 2026-07-28 per-request `_meta`).
    fn read_message(
        &self,
        bytes: Bytes,
        brought: Option<&str>,
        opening: bool,
    ) -> Result<Read, Box<Response>> {
        let mut message: Value = serde_json::from_slice(&bytes).map_err(|error| {
            Box::new(rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32700,
                &format!("Parse error: the body is not JSON ({error})"),
            ))
        })?;
        let Some(object) = message.as_object_mut() else {
            // A batch (2025-03-26) or not JSON-RPC at all: rmcp answers those.
            return Ok(Read {
                body: Body::from(bytes),
                revision: None,
                reserved: None,
            });
        };
        let id = object.get("id").cloned().unwrap_or(Value::Null);
        let method = object.get("method").and_then(Value::as_str).unwrap_or("");
        let revision = match method {
            "initialize" => object
                .get("params")
                .and_then(|p| p.get("protocolVersion"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => object
                .get("params")
                .and_then(|p| p.get("_meta"))
                .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let mut reserved = None;
        if method == "initialize" && opening {
            match self.activity.reserve(self.limits.max_connections) {
                Ok(place) => reserved = Some(place),
                Err(open) => {
                    return Err(Box::new(rpc_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        id,
                        -32000,
                        &format!(
                            "this server has {open} MCP connections open, its limit (--max-mcp-connections); close clients you no longer use, or try again once idle ones are closed"
                        ),
                    )));
                }
            }
        }
        let read = |body: Body, revision: Option<String>| Read {
            body,
            revision,
            reserved,
        };
        if matches!(method, "initialize" | "server/discover") {
            log_client(object, revision.as_deref());
        }
        if method != "tools/call" {
            return Ok(read(Body::from(bytes), revision));
        }
        let invalid = |problem: &str| {
            Box::new(rpc_error(
                StatusCode::OK,
                id.clone(),
                -32602,
                &format!("Invalid params: {problem}"),
            ))
        };
        let Some(params) = object.get_mut("params").and_then(Value::as_object_mut) else {
            return Err(invalid(
                "tools/call needs `params`: an object with the tool's `name` and its `arguments`",
            ));
        };
        let Some(tool) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(invalid("`name` must be the name of a tool (a string)"));
        };
        let arguments = params
            .entry("arguments")
            .or_insert_with(|| Value::Object(Default::default()));
        if arguments.is_null() {
            *arguments = Value::Object(Default::default());
        }
        let Some(arguments) = arguments.as_object_mut() else {
            return Err(invalid(&format!(
                "`arguments` must be an object of {tool}'s arguments by name, not {}",
                kind(arguments)
            )));
        };
        let Some(token) = brought.filter(|_| self.takes_token.contains(&tool)) else {
            return Ok(read(Body::from(bytes), revision));
        };
        let passed = arguments
            .get("session_token")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty());
        if passed {
            return Ok(read(Body::from(bytes), revision));
        }
        arguments.insert("session_token".into(), Value::String(token.to_owned()));
        let body = serde_json::to_vec(&message).map_or_else(|_| Body::from(bytes), Body::from);
        Ok(read(body, revision))
    }
}

/// A POSTed message as [`edge`] passes it on.
struct Read {
    body: Body,
    /// The revision the message says it speaks, if it says.
    revision: Option<String>,
    /// The place an `initialize` holds among the open connections.
    reserved: Option<Reserved>,
}

/// The token a client's configuration brought in [`SESSION_TOKEN_HEADER`], checked by
/// [`edge`]: a request with a bad one never reaches the tools.
#[derive(Debug, Clone)]
pub struct BroughtToken(pub String);

/// The name of the access token (`token add NAME`) a request came with, put in the request's
/// extensions by the HTTP layer's access check: what the server records as who did what.
/// Requests with the shared token, or to a server without tokens, have none.
#[derive(Debug, Clone)]
pub struct TokenHolder(pub String);

/// The token a client's configuration brings in [`SESSION_TOKEN_HEADER`], if any.
fn brought_token(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(value) = headers.get(SESSION_TOKEN_HEADER) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .map(str::trim)
        .map_err(|_| "the Coordinator-Session-Token header must be plain ASCII".to_owned())?;
    if token.chars().count() < MIN_SESSION_TOKEN_CHARS {
        return Err(format!(
            "the Coordinator-Session-Token header must be at least {MIN_SESSION_TOKEN_CHARS} random characters (e.g. `openssl rand -hex 16`); it proves your session"
        ));
    }
    Ok(Some(token.to_owned()))
}

/// Who opens a connection (or discovers the server without one), from the message itself.
fn log_client(message: &serde_json::Map<String, Value>, revision: Option<&str>) {
    let params = message.get("params");
    let info = params.and_then(|p| p.get("clientInfo")).or_else(|| {
        params
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get("io.modelcontextprotocol/clientInfo"))
    });
    let field = |name: &str| info.and_then(|i| i.get(name)).and_then(Value::as_str);
    super::client_connected(
        field("name"),
        field("version"),
        revision.unwrap_or(ASSUMED_REVISION),
        "http",
    );
}

/// Whether an SSE event carries no data: the priming events (`id: 0`, `retry: 3000`,
/// `data:`) that clients of the 2025-11-25 revision on resume by, and older ones choke on.
/// Comments (keep-alives, `:`) are not events and pass.
fn is_empty_event(text: &str) -> bool {
    let mut data = false;
    for line in text.lines().filter(|line| !line.is_empty()) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        match field {
            "" => return false,
            "data" => {
                if !value.trim().is_empty() {
                    return false;
                }
                data = true;
            }
            _ => {}
        }
    }
    data
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn media_type(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers, header::CONTENT_TYPE) == "application/json"
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    media_type(headers, header::CONTENT_TYPE) == "text/event-stream"
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn plain(status: StatusCode, why: &str) -> Response {
    let mut response = (status, json!({ "error": why }).to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_events_without_data_are_empty() {
        assert!(is_empty_event("id: 0\nretry: 3000\ndata: \n\n"));
        assert!(is_empty_event("data:\n\n"));
        assert!(!is_empty_event(":\n\n"), "a keep-alive comment");
        assert!(!is_empty_event(
            "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"
        ));
        assert!(!is_empty_event("retry: 3000\n\n"), "no data line at all");
    }

    #[test]
    fn old_clients_get_events_without_ids() {
        let answer = Bytes::from_static(b"data: {\"id\":1}\nid: 1/0\n\n");
        assert_eq!(
            for_old_client(&answer).as_deref(),
            Some(&b"data: {\"id\":1}\n\n"[..])
        );
        let priming = Bytes::from_static(b"id: 0\nretry: 3000\ndata:\n\n");
        assert_eq!(for_old_client(&priming), None);
        let plain = Bytes::from_static(b"data: {}\n\n");
        assert_eq!(for_old_client(&plain), Some(plain.clone()));
        let comment = Bytes::from_static(b":\n\n");
        assert_eq!(for_old_client(&comment), Some(comment.clone()));
    }

    #[test]
    fn a_brought_token_must_be_long() {
        let mut headers = HeaderMap::new();
        assert_eq!(brought_token(&headers), Ok(None));
        headers.insert(SESSION_TOKEN_HEADER, HeaderValue::from_static("short"));
        let why = brought_token(&headers).expect_err("too short");
        assert!(why.contains("Coordinator-Session-Token") && why.contains("16"));
        headers.insert(
            SESSION_TOKEN_HEADER,
            HeaderValue::from_static(" 0123456789abcdef0123 "),
        );
        assert_eq!(
            brought_token(&headers),
            Ok(Some("0123456789abcdef0123".to_owned()))
        );
    }
}
