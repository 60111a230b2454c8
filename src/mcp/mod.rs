//! The MCP adapter: 20 tools over the coordinator.
//!
//! One [`CoordinatorServer`] serves one MCP connection. It remembers the sessions that
//! connection registered ([`Keepalive`]) so later calls may omit `session_id`, and so the
//! process can heartbeat them and deregister them when it exits. Every tool parses its
//! arguments, runs one coordinator call on the blocking pool (a write may wait on another
//! process's transaction), and shapes the answer.

mod catalog;
mod params;
mod reply;
mod resources;
mod stdio;
mod tools;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CacheScope, ErrorData, Implementation, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::{Json, ServerHandler, tool_handler};

pub use catalog::{ToolListing, ToolSelection};
pub use reply::{Answer, ToolError};
pub use stdio::serve_stdio;

use crate::coordinator::Coordinator;
use crate::liveness::Keepalive;
use crate::wake::Wakeup;

/// Read by the model when it connects: the workflow in a few lines.
const INSTRUCTIONS: &str = "Coordinates several AI sessions working on one codebase. \
Start with session_register (name, project, branch); later calls from this connection may omit session_id. \
Before editing a file: lock_acquire it (exclusive), and lock_release it when done. \
Before a commit, push, rebase, merge or a risky edit: conflict_check, and intent_announce what you will do; \
intent_update/intent_clear it when finished. \
Answers carry unread_messages when others wrote to you: read them with message_list. \
Share decisions and discoveries with context_share; check context_query when starting a task.";

#[derive(Clone)]
pub struct CoordinatorServer {
    coordinator: Arc<Coordinator>,
    keepalive: Arc<Keepalive>,
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
}

impl CoordinatorServer {
    pub fn new(
        coordinator: Arc<Coordinator>,
        keepalive: Arc<Keepalive>,
        wakeup: Arc<Wakeup>,
        default_root: Option<String>,
        client_pid: Option<u32>,
        listing: &ToolListing,
    ) -> Self {
        let tool_router = Self::tools();
        let all = tool_router.list_all();
        let instructions = match listing.unlisted_note(&all) {
            Some(note) => format!("{INSTRUCTIONS}{note}"),
            None => INSTRUCTIONS.to_owned(),
        };
        Self {
            coordinator,
            keepalive,
            wakeup,
            default_root,
            client_pid,
            subscriptions: Arc::default(),
            listed: Arc::new(listing.listed(all)),
            instructions: instructions.into(),
            tool_router,
        }
    }

    /// The session a call acts for: the one named, else the one this connection registered.
    fn acting(&self, named: Option<String>, argument: &str) -> Result<String, ToolError> {
        named
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .or_else(|| self.keepalive.current())
            .ok_or_else(|| {
                ToolError::new(format!(
                    "invalid arguments: `{argument}` is required: call session_register first (this connection then remembers the session), or pass the session_id it returned"
                ))
            })
    }

    /// The session a look is made by, if known: the one named, else this connection's.
    fn viewer(&self, named: Option<String>) -> Option<String> {
        named
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .or_else(|| self.keepalive.current())
    }

    /// Runs `work` on the blocking pool and answers with its result plus `session`'s unread
    /// mail.
    async fn respond<T: Send + 'static>(
        &self,
        session: Option<String>,
        work: impl FnOnce(&Coordinator) -> crate::Result<T> + Send + 'static,
    ) -> Result<Json<Answer<T>>, ToolError> {
        let coordinator = self.coordinator.clone();
        tokio::task::spawn_blocking(move || {
            let body = work(&coordinator)?;
            let (unread_messages, locks_granted) = match session {
                Some(id) => (
                    coordinator.unread(&id).unwrap_or_else(|error| {
                        tracing::warn!(%error, "could not count unread messages");
                        None
                    }),
                    coordinator
                        .take_granted_from_queue(&id)
                        .unwrap_or_else(|error| {
                            tracing::warn!(%error, "could not report locks granted from the queue");
                            Vec::new()
                        }),
                ),
                None => (None, Vec::new()),
            };
            Ok(Json(Answer {
                body,
                unread_messages,
                locks_granted,
            }))
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "tool task failed");
            ToolError::new(format!("internal error: {error}"))
        })?
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CoordinatorServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(self.instructions.to_string())
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
