//! Shared context: knowledge that outlives a session, shared, searched and deleted.

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::params::{Parameters, lenient};
use crate::coordinator::{ContextDeleted, ContextList, ContextShared, NewContext};
use crate::ids::ContextId;
use crate::mcp::{Answer, CoordinatorServer, ToolError};
use crate::model::ContextType;

/// Arguments of `context_share`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextShare {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// decision, discovery, convention, blocker or note.
    pub context_type: ContextType,
    /// The knowledge itself, self-contained (name files and reasons).
    pub content: String,
    /// Project it belongs to; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Keywords that help find it, e.g. ["auth", "jwt"].
    #[serde(default, deserialize_with = "lenient::list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Vec<String>,
}

/// Arguments of `context_query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextQuery {
    /// Project to search; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only entries of this type.
    #[serde(default)]
    pub context_type: Option<ContextType>,
    /// Words to search for in content and tags; the newest 500 matches are ranked, best first.
    #[serde(default)]
    pub keyword: Option<String>,
    /// Most entries to return (default 20, max 200).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub limit: Option<u64>,
}

/// Arguments of `context_delete`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextDelete {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The entry to delete, e.g. "ctx-3".
    pub context_id: ContextId,
}

#[tool_router(router = context_tools, vis = "pub(in crate::mcp)")]
impl CoordinatorServer {
    #[tool(
        description = "Share knowledge other sessions should have: a decision, discovery, convention, blocker or note. It outlives your session and is found with context_query.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn context_share(
        &self,
        Parameters(args): Parameters<ContextShare>,
    ) -> Result<Json<Answer<ContextShared>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let entry = NewContext {
            session_id: session.clone(),
            context_type: args.context_type,
            content: args.content,
            project: args.project,
            tags: args.tags,
        };
        self.respond(Some(session), move |c| c.share_context(entry.clone()))
            .await
    }

    #[tool(
        description = "Search shared context (default: your project) by type and/or keyword, best match first; each entry has content, context_type, shared_by and created_at. Check it when you start a task.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn context_query(
        &self,
        Parameters(args): Parameters<ContextQuery>,
    ) -> Result<Json<Answer<ContextList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        self.respond(viewer.clone(), move |c| {
            c.query_context(
                viewer.as_deref(),
                args.project.as_deref(),
                args.context_type,
                args.keyword.as_deref(),
                args.limit,
            )
        })
        .await
    }

    #[tool(
        description = "Delete a shared context entry that is outdated or wrong; any session of its project may.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn context_delete(
        &self,
        Parameters(args): Parameters<ContextDelete>,
    ) -> Result<Json<Answer<ContextDeleted>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.delete_context(&session, args.context_id)
        })
        .await
    }
}
