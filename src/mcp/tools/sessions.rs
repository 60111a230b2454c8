//! Sessions: register one, keep it alive, look at one or all, end it.
//!
//! Registering is where a connection learns the session it acts for from then on, and where a
//! token brought by the client's configuration (over HTTP) is tied to the session it stands for.

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::params::Parameters;
use crate::coordinator::{
    self, Claim, Deregistered, Heartbeat, Registered, Registration, SessionDetails,
};
use crate::ids::token_hash;
use crate::mcp::http::{BroughtToken, TokenHolder};
use crate::mcp::{Answer, CoordinatorServer, ToolError, Trust};

/// Arguments of `session_register`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRegister {
    /// Short name of this session's task, shown to other sessions, e.g. "feature-auth".
    pub name: String,
    /// Project (repository) name; sessions coordinate only within one project, e.g. "my-app".
    pub project: String,
    /// Git branch this session works on, e.g. "feature/auth".
    #[serde(default)]
    pub branch: Option<String>,
    /// Absolute path of this session's checkout; absolute file paths inside it become
    /// project-relative. Defaults to the server's working directory.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Group (team) inside the project, e.g. "frontend"; others can list and message it.
    #[serde(default)]
    pub group: Option<String>,
    /// On a shared HTTP server: the session_token of your session, to continue it (from any connection).
    #[serde(default)]
    pub session_token: Option<String>,
}

/// Arguments of tools that act for a session and need nothing else.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionOnly {
    /// Your session id from session_register; may be omitted once this connection registered one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
}

/// Arguments of `session_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionList {
    /// Only sessions of this project; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only sessions on this git branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// Only sessions of this group.
    #[serde(default)]
    pub group: Option<String>,
}

/// Arguments of `session_get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionGet {
    /// The session to describe (any session, not only yours); defaults to yours.
    #[serde(default)]
    pub session_id: Option<String>,
}

#[tool_router(router = session_tools, vis = "pub(in crate::mcp)")]
impl CoordinatorServer {
    #[tool(
        description = "Register this AI session; call once before coordinating. Returns session_id (later calls from this connection may omit it) and session_token (on a shared HTTP server, pass it on every later call), the timeout after which a silent session is removed, and the other live sessions of the project. Registering again with the same name and project continues the same session (on a shared server: with its session_token; without it a live session's name is refused as taken).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn session_register(
        &self,
        Parameters(args): Parameters<SessionRegister>,
        extensions: rmcp::model::Extensions,
    ) -> Result<Json<Answer<Registered>>, ToolError> {
        let args = args?;
        // A token the client's configuration brings (over HTTP) names the session it stands
        // for, from any connection; unknown yet, it becomes the new session's token.
        let parts = extensions.get::<axum::http::request::Parts>();
        let brought = parts
            .and_then(|parts| parts.extensions.get::<BroughtToken>())
            .map(|BroughtToken(token)| token.clone());
        let who = parts
            .and_then(|parts| parts.extensions.get::<TokenHolder>())
            .map(|TokenHolder(name)| name.clone());
        let registration = Registration {
            name: args.name,
            project: args.project,
            branch: args.branch,
            working_directory: args.working_directory.or_else(|| self.default_root.clone()),
            group: args.group,
            wake: self.wakeup.address(),
            client_pid: self.client_pid,
            client_ref: brought
                .as_deref()
                .map(|token| format!("token:{}", token_hash(token))),
            token_hash: None,
            who,
        };
        let resume = match args.session_token.filter(|t| !t.trim().is_empty()) {
            Some(token) => Some(self.prove(token).await?),
            None => self
                .keepalive
                .find(&registration.name, &registration.project),
        };
        let keepalive = self.keepalive.clone();
        let keepalives = self.keepalives.clone();
        let unique_name = self.trust == Trust::Connection;
        // Only a resumed session (same id as `resume`) can have mail waiting.
        self.respond(resume.clone(), move |c| {
            let claim = Claim {
                resume: resume.as_deref(),
                unique_name,
                token: brought.as_deref(),
            };
            let registered = c.register(registration.clone(), claim)?;
            let id = &registered.session.session_id;
            // Continued from here (a client that reconnected): the connection it left must no
            // longer heartbeat it, nor end it when it closes.
            keepalives.forget_everywhere(id);
            keepalive.remember(
                id,
                Registration {
                    token_hash: Some(token_hash(&registered.session_token)),
                    ..registration.clone()
                },
            );
            Ok(registered)
        })
        .await
    }

    #[tool(
        description = "Keep a session alive. This server already heartbeats the session it registered while it runs, and every call counts as one; call this after long idle stretches or for a session registered elsewhere.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn session_heartbeat(
        &self,
        Parameters(args): Parameters<SessionOnly>,
    ) -> Result<Json<Answer<Heartbeat>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| c.heartbeat(&session))
            .await
    }

    #[tool(
        description = "List live sessions (default: your project) with how many locks and active intents each holds, to see who else is working on the codebase.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_list(
        &self,
        Parameters(args): Parameters<SessionList>,
    ) -> Result<Json<Answer<coordinator::SessionList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        self.respond(viewer.clone(), move |c| {
            c.list_sessions(
                viewer.as_deref(),
                args.project.as_deref(),
                args.branch.as_deref(),
                args.group.as_deref(),
            )
        })
        .await
    }

    #[tool(
        description = "Describe one session: name, project, branch, working directory, last heartbeat, its locks and its active intents.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_get(
        &self,
        Parameters(args): Parameters<SessionGet>,
    ) -> Result<Json<Answer<SessionDetails>>, ToolError> {
        let target = self.target(args?.session_id)?;
        let viewer = self.viewer(None);
        self.respond(viewer.clone(), move |c| {
            c.get_session(viewer.as_deref(), &target)
        })
        .await
    }

    #[tool(
        description = "End a session when its work is done: releases all its locks and clears its intents (locks_released tells how many). The server also does this when its process exits.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn session_deregister(
        &self,
        Parameters(args): Parameters<SessionOnly>,
    ) -> Result<Json<Answer<Deregistered>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let keepalives = self.keepalives.clone();
        self.respond(None, move |c| {
            // Forgotten first, so no heartbeat revives it in between.
            keepalives.forget_everywhere(&session);
            c.deregister(&session)
        })
        .await
    }
}
