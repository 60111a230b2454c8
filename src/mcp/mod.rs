//! The MCP adapter: 20 tools over the coordinator.
//!
//! One [`CoordinatorServer`] serves one MCP connection. It remembers the sessions that
//! connection registered ([`Keepalive`]) so later calls may omit `session_id`, and so the
//! process can heartbeat them and deregister them when it exits. Every tool parses its
//! arguments, runs one coordinator call (on the blocking pool, since a write may wait on
//! another process's transaction; a stdio server runs what need not wait in place), and
//! shapes the answer.

mod caller;
mod catalog;
mod http;
mod reply;
mod resources;
mod stdio;
mod tools;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CacheScope, ErrorData, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::{Json, ServerHandler, tool_handler};

pub use caller::Trust;
pub use catalog::{ToolListing, ToolSelection};
pub use http::{Limits, Shared, TokenHolder, endpoint};
pub use reply::{Answer, ToolError};
pub use stdio::{serve_stdio, terminated};

use crate::coordinator::{Coordinator, News};
use crate::liveness::{Farewell, Keepalive, Keepalives};
use crate::metrics::Metrics;
use crate::wake::Wakeup;

/// Read by the model when it connects: the workflow in a few lines.
const INSTRUCTIONS: &str = "Coordinates several AI sessions working on one codebase. \
Start with session_register (name, project, branch); later calls from this connection may omit session_id. \
Before editing a file: lock_acquire it (exclusive), and lock_release it when done. \
Before a commit, push, rebase, merge or a risky edit: conflict_check, and intent_announce what you will do; \
intent_update/intent_clear it when finished. \
Answers carry unread_messages when others wrote to you: read them with message_list. \
Share decisions and discoveries with context_share; check context_query when starting a task.";

/// The same for the shared server, where a client may have no connection to remember its
/// session by (MCP 2026-07-28 has none): the model carries the token, as that revision means
/// state to travel.
const SHARED_INSTRUCTIONS: &str = "Coordinates several AI sessions working on one codebase, on a shared server. \
Start with session_register (name, project, branch). It returns session_token: pass session_token on every later call \
(the server knows your session by it; only a client that keeps one MCP connection open may leave it out. \
The same name registered again without it is refused as taken). \
Before editing a file: lock_acquire it (exclusive), and lock_release it when done. \
Before a commit, push, rebase, merge or a risky edit: conflict_check, and intent_announce what you will do; \
intent_update/intent_clear it when finished. \
Answers carry unread_messages when others wrote to you: read them with message_list. \
Share decisions and discoveries with context_share; check context_query when starting a task.";

/// One line per client that connects, whatever the transport and revision, so a person can
/// see who uses the server and which revision each negotiated.
fn client_connected(name: Option<&str>, version: Option<&str>, revision: &str, transport: &str) {
    tracing::info!(
        client = %name.unwrap_or("?"),
        version = %version.unwrap_or("?"),
        revision = %revision,
        transport = %transport,
        "client connected"
    );
}

#[derive(Clone)]
pub struct CoordinatorServer {
    coordinator: Arc<Coordinator>,
    keepalive: Arc<Keepalive>,
    trust: Trust,
    /// Sessions this connection proved with their token, and the token: checked again at
    /// each use, so a token replaced by a new registration stops working here too.
    proven: Arc<Mutex<BTreeMap<String, String>>>,
    /// Ends this connection's sessions when an HTTP connection goes away.
    farewell: Option<Arc<Farewell>>,
    /// Every connection's sessions of this process, so that one connection's session taken
    /// over or ended by another is forgotten by the first.
    keepalives: Arc<Keepalives>,
    /// Rings when a queued request of this process was granted.
    wakeup: Arc<Wakeup>,
    /// Where sessions registered without a working_directory are rooted: the directory the MCP
    /// client started this process in, which is the checkout for a stdio server.
    default_root: Option<String>,
    /// The AI client process that started this server, recorded on the sessions it registers
    /// so that hooks and git guards run by the same client recognize them (see `clients`).
    client_pid: Option<u32>,
    /// What this connection subscribed to with `resources/subscribe`.
    subscriptions: Arc<resources::Subscriptions>,
    tool_router: ToolRouter<Self>,
    /// What `tools/list` answers, computed once.
    listed: Arc<Vec<Tool>>,
    instructions: Arc<str>,
    /// Whether calls may run on the async thread when they need not wait (stdio; see
    /// [`Self::respond`]).
    inline: bool,
    /// Where the shared server counts its calls (`/metrics`); none on stdio.
    metrics: Option<Arc<Metrics>>,
}

impl CoordinatorServer {
    /// A server whose first connection's sessions are kept alive among `keepalives`.
    pub fn new(
        coordinator: Arc<Coordinator>,
        keepalives: Arc<Keepalives>,
        wakeup: Arc<Wakeup>,
        default_root: Option<String>,
        client_pid: Option<u32>,
        listing: &ToolListing,
        trust: Trust,
    ) -> Self {
        let tool_router = Self::tools();
        let all = tool_router.list_all();
        let base = match trust {
            Trust::Process => INSTRUCTIONS,
            Trust::Connection => SHARED_INSTRUCTIONS,
        };
        let instructions = match listing.unlisted_note(&all) {
            Some(note) => format!("{base}{note}"),
            None => base.to_owned(),
        };
        let keepalive = keepalives.open();
        let farewell = (trust == Trust::Connection)
            .then(|| Arc::new(Farewell::new(coordinator.clone(), keepalive.clone())));
        Self {
            coordinator,
            keepalive,
            trust,
            proven: Arc::default(),
            farewell,
            keepalives,
            wakeup,
            default_root,
            client_pid,
            subscriptions: Arc::default(),
            listed: Arc::new(listing.listed(all)),
            instructions: instructions.into(),
            tool_router,
            inline: false,
            metrics: None,
        }
    }

    /// The same server counting its tool calls, and those that fail on the database, in
    /// `metrics`.
    pub fn counting(self, metrics: Arc<Metrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }

    /// The same server answering calls on its async thread when they need not wait: for the
    /// stdio server, whose one client sends one request at a time.
    pub fn answering_inline(self) -> Self {
        Self {
            inline: true,
            ..self
        }
    }

    /// Every tool. rmcp adds routers together, so each feature's module keeps its own and this
    /// is the one place that names them all; `tools/list` sorts the result by name.
    fn tools() -> ToolRouter<Self> {
        Self::session_tools()
            + Self::lock_tools()
            + Self::intent_tools()
            + Self::message_tools()
            + Self::conflict_tools()
            + Self::context_tools()
    }

    /// The tools whose `session_token` argument a client's configured token fills in
    /// (`session_register` reads the header itself: there it may start a session).
    fn tools_taking_a_token(&self) -> std::collections::BTreeSet<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .filter(|tool| tool.name != "session_register")
            .filter(|tool| {
                tool.input_schema
                    .get("properties")
                    .and_then(|p| p.get("session_token"))
                    .is_some()
            })
            .map(|tool| tool.name.into_owned())
            .collect()
    }

    /// The same server for a new connection: its own sessions, proofs and subscriptions.
    fn for_connection(&self) -> Self {
        let keepalive = self.keepalives.open();
        Self {
            farewell: self
                .farewell
                .as_ref()
                .map(|_| Arc::new(Farewell::new(self.coordinator.clone(), keepalive.clone()))),
            keepalive,
            proven: Arc::default(),
            subscriptions: Arc::default(),
            ..self.clone()
        }
    }

    /// Answers with `work`'s result plus `session`'s news. A stdio server runs it right here,
    /// on its one async thread, when it can run without waiting for the database; otherwise,
    /// and always over HTTP, it runs on the blocking pool, since a write may wait seconds on
    /// another process's transaction and must not stall the runtime.
    async fn respond<T: Send + 'static>(
        &self,
        session: Option<String>,
        work: impl Fn(&Coordinator) -> crate::Result<T> + Send + 'static,
    ) -> Result<Json<Answer<T>>, ToolError> {
        if self.inline {
            let session = session.as_deref();
            if let Some(done) = self
                .coordinator
                .without_waiting(|c| answer(c, session, &work))
            {
                return Ok(Json(self.counted(done)?));
            }
        }
        self.respond_on_pool(session, work).await
    }

    /// [`Self::respond`] always on the blocking pool: for work that runs programs (git).
    async fn respond_on_pool<T: Send + 'static>(
        &self,
        session: Option<String>,
        work: impl Fn(&Coordinator) -> crate::Result<T> + Send + 'static,
    ) -> Result<Json<Answer<T>>, ToolError> {
        let coordinator = self.coordinator.clone();
        let done =
            tokio::task::spawn_blocking(move || answer(&coordinator, session.as_deref(), &work))
                .await
                .map_err(|error| {
                    tracing::error!(%error, "tool task failed");
                    ToolError::new(format!("internal error: {error}"))
                })?;
        Ok(Json(self.counted(done)?))
    }

    /// `done`, having counted a failure of the database.
    fn counted<T>(&self, done: crate::Result<T>) -> crate::Result<T> {
        if let (Err(crate::Error::Store(_)), Some(metrics)) = (&done, &self.metrics) {
            metrics.database_failed();
        }
        done
    }
}

/// `work`'s result and `session`'s news. News that cannot be read is left out of the answer
/// (the work is done), unless reading it would wait: then the whole answer is tried again
/// where waiting is fine, which repeats no write (see [`Coordinator::without_waiting`]).
fn answer<T>(
    coordinator: &Coordinator,
    session: Option<&str>,
    work: &impl Fn(&Coordinator) -> crate::Result<T>,
) -> crate::Result<Answer<T>> {
    let body = work(coordinator)?;
    let news = match session.map(|id| coordinator.news(id)) {
        None => News::default(),
        Some(Ok(news)) => news,
        Some(Err(error)) if error.would_wait() => return Err(error),
        Some(Err(error)) => {
            tracing::warn!(%error, "could not report unread messages and granted locks");
            News::default()
        }
    };
    Ok(Answer {
        body,
        unread_messages: news.unread,
        locks_granted: news.granted,
    })
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CoordinatorServer {
    // `enable_logging` is deprecated with 2026-07-28's removal of logging; 2025 clients (and the
    // conformance suite) still call logging/setLevel.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_logging()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(self.instructions.to_string())
    }

    /// What `#[tool_handler]` would write, timed and counted for `/metrics`.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        // Only the tools' own names become labels: a client cannot add label sets.
        let counted = self.metrics.as_ref().map(|metrics| {
            let tool = if self.tool_router.has_route(&request.name) {
                request.name.to_string()
            } else {
                "unknown".to_owned()
            };
            (metrics, tool, std::time::Instant::now())
        });
        let answered = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await;
        if let Some((metrics, tool, started)) = counted {
            let ok = match &answered {
                Ok(rmcp::model::CallToolResponse::Complete(result)) => {
                    result.is_error != Some(true)
                }
                Ok(_) => true,
                Err(_) => false,
            };
            metrics.tool_called(&tool, ok, started.elapsed());
        }
        answered
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut result = ListToolsResult::with_all_items(self.listed.to_vec());
        // Cache hints exist from 2026-07-28 on; the same as rmcp's generated handler gives.
        if context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
        {
            result = result.with_ttl_ms(0).with_cache_scope(CacheScope::Public);
        }
        Ok(result)
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        // A connection with a handshake lives until the client ends it; stateless requests
        // (2026-07-28) have none, and their sessions live by their calls alone.
        if let Some(farewell) = &self.farewell {
            farewell.arm();
        }
        // Over HTTP its sessions live by its client's activity, which the edge records by the
        // connection's id (see `http::edge`).
        let connection = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|id| id.to_str().ok());
        match connection {
            Some(connection) => self.keepalive.attach(connection),
            None => {
                if let Some(peer) = context.peer.peer_info() {
                    client_connected(
                        Some(&peer.client_info.name),
                        Some(&peer.client_info.version),
                        peer.protocol_version.as_str(),
                        "stdio",
                    );
                }
            }
        }
    }

    /// Answers as rmcp would; a stdio client of 2026-07-28 has no handshake, and this is where
    /// it says who it is (over HTTP the edge logs it).
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::DiscoverResult, ErrorData> {
        if self.trust == Trust::Process {
            let client = context.meta.client_info();
            let revision = context.meta.protocol_version();
            client_connected(
                client.as_ref().map(|c| c.name.as_str()),
                client.as_ref().map(|c| c.version.as_str()),
                revision.as_ref().map_or("?", |r| r.as_str()),
                "stdio",
            );
        }
        Ok(rmcp::model::DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    /// Accepted so clients of the 2025 revisions that set a level get no error (2026-07-28
    /// drops logging; rmcp answers those itself). The server logs to stderr (and, over
    /// HTTP, to its own output) and sends no log notifications: there is nothing to filter.
    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    /// Prompts are declared (clients and the conformance suite expect the list to answer) and
    /// the list is empty: the workflow is in the instructions and the tool descriptions.
    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Err(ErrorData::invalid_params(
            format!("no prompt '{}': this server has none", request.name),
            None,
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(resources::list())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.read(&request.uri).await.map(Into::into)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(resources::accepted(requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.listen_modern(context).await
    }

    // Deprecated only for 2026-07-28 sessions, which use `listen`; clients of 2025 revisions
    // still subscribe this way.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscribe_legacy(&request.uri, context.peer).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.unsubscribe_legacy(&request.uri);
        Ok(())
    }
}
