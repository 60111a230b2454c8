//! Intents: say what you are about to do, move it along, list them, clear yours.

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::params::{Parameters, lenient};
use crate::coordinator::{
    self, Announced, IntentCleared, IntentListQuery, IntentRequest, IntentUpdated,
};
use crate::ids::IntentId;
use crate::mcp::{Answer, CoordinatorServer, ToolError};
use crate::model::{IntentStatus, IntentType};

/// Arguments of `intent_announce`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentAnnounce {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// What you are about to do.
    pub intent_type: IntentType,
    /// What it acts on: the file for file_edit/refactor, the branch for git operations (default: your branch), a component for build/test.
    #[serde(default)]
    pub target: Option<String>,
    /// One line on what and why, shown to other sessions.
    #[serde(default)]
    pub description: Option<String>,
    /// Files it will touch, relative to the project root.
    #[serde(default, deserialize_with = "lenient::list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub files: Vec<String>,
}

/// Arguments of `intent_update`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentUpdate {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The intent_id from intent_announce, e.g. "int-42".
    pub intent_id: IntentId,
    /// in_progress when you start, completed or abandoned when you stop.
    pub status: IntentStatus,
    /// A new description, e.g. what is left to do.
    #[serde(default)]
    pub description: Option<String>,
}

/// Arguments of `intent_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentList {
    /// Only intents of this type.
    #[serde(default)]
    pub intent_type: Option<IntentType>,
    /// Only intents of this session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Only intents of this project; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only intents of sessions in this group.
    #[serde(default)]
    pub group: Option<String>,
    /// Also show completed and abandoned intents (default false).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub include_finished: Option<bool>,
    /// Most intents to return (default 100, max 1000).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub limit: Option<u64>,
}

/// Arguments of `intent_clear`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentClear {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The intent_id from intent_announce, e.g. "int-42".
    pub intent_id: IntentId,
}

#[tool_router(router = intent_tools, vis = "pub(in crate::mcp)")]
impl CoordinatorServer {
    #[tool(
        description = "Announce what you are about to do so other sessions can avoid clashing with it. Returns intent_id and the conflicts it already has; safe_to_proceed false means stop and coordinate first. Set it in_progress when you start and completed when done (intent_update), or clear it (intent_clear).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn intent_announce(
        &self,
        Parameters(args): Parameters<IntentAnnounce>,
    ) -> Result<Json<Answer<Announced>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let request = IntentRequest {
            session_id: session.clone(),
            intent_type: args.intent_type,
            target: args.target,
            description: args.description,
            files: args.files,
        };
        self.respond(Some(session), move |c| c.announce_intent(request.clone()))
            .await
    }

    #[tool(
        description = "Move your intent along: in_progress when you start, completed or abandoned when you stop. Finished intents no longer appear in conflict checks.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn intent_update(
        &self,
        Parameters(args): Parameters<IntentUpdate>,
    ) -> Result<Json<Answer<IntentUpdated>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.update_intent(
                &session,
                args.intent_id,
                args.status,
                args.description.as_deref(),
            )
        })
        .await
    }

    #[tool(
        description = "List active intents (default: your project), optionally of one type or session; include_finished adds completed and abandoned ones.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn intent_list(
        &self,
        Parameters(args): Parameters<IntentList>,
    ) -> Result<Json<Answer<coordinator::IntentList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        let query = IntentListQuery {
            project: args.project,
            session_id: args.session_id,
            group: args.group,
            intent_type: args.intent_type,
            include_finished: args.include_finished.unwrap_or(false),
            limit: args.limit,
        };
        self.respond(viewer.clone(), move |c| {
            c.list_intents(viewer.as_deref(), query.clone())
        })
        .await
    }

    #[tool(
        description = "Remove your intent once it is done or dropped, so it stops showing up in other sessions' conflict checks.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn intent_clear(
        &self,
        Parameters(args): Parameters<IntentClear>,
    ) -> Result<Json<Answer<IntentCleared>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.clear_intent(&session, args.intent_id)
        })
        .await
    }
}
