//! Messages: send one to a session, a group or the project, read your inbox, mark it read.

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::params::{Parameters, lenient};
use crate::coordinator::{Inbox, InboxQuery, MarkedRead, Outgoing, Sender, Sent};
use crate::ids::MessageId;
use crate::mcp::{Answer, CoordinatorServer, ToolError};
use crate::model::{Channel, Priority};

/// Arguments of `message_send`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSend {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub from_session: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Recipient's session id or name; omit (and to_group) to broadcast to every live session of your project.
    #[serde(default)]
    pub to_session: Option<String>,
    /// Send to every live session of this group instead.
    #[serde(default)]
    pub to_group: Option<String>,
    /// general (default), coordination (hand-offs, requests), ideas, alerts (breakage), git.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// low, normal (default), high, urgent (flagged in every answer the recipient gets).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The message text.
    pub content: String,
}

/// Arguments of `message_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageList {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Only messages of this channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Only unread messages (default false).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub unread_only: Option<bool>,
    /// Only messages since a UTC time ("2026-11-24T14:05:00Z") or for a duration back ("15m", "2h").
    #[serde(default)]
    pub since: Option<String>,
    /// Most messages to return (default 50, max 500).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub limit: Option<u64>,
    /// Also mark the returned messages as read (default false).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub mark_read: Option<bool>,
}

/// Arguments of `message_mark_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageMarkRead {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Messages to mark, e.g. ["msg-7"]; omit to mark all unread messages.
    #[serde(default, deserialize_with = "lenient::list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub message_ids: Vec<MessageId>,
}

#[tool_router(router = message_tools, vis = "pub(in crate::mcp)")]
impl CoordinatorServer {
    #[tool(
        description = "Send a message to one session (to_session: its id or name), to a group (to_group), or else to every live session of your project. Returns message_id and who received it.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn message_send(
        &self,
        Parameters(args): Parameters<MessageSend>,
    ) -> Result<Json<Answer<Sent>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.from_session, args.session_token, "from_session")
            .await?;
        let message = Outgoing {
            from: Sender::Session(session.clone()),
            to_session: args.to_session,
            to_group: args.to_group,
            channel: args.channel.unwrap_or(Channel::General),
            priority: args.priority.unwrap_or(Priority::Normal),
            content: args.content,
        };
        self.respond(Some(session), move |c| c.send_message(message.clone()))
            .await
    }

    #[tool(
        description = "Read your inbox, newest first: messages sent to you and broadcasts to your project, each with read state; unread_count tells how many remain unread.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn message_list(
        &self,
        Parameters(args): Parameters<MessageList>,
    ) -> Result<Json<Answer<Inbox>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let query = InboxQuery {
            session_id: session.clone(),
            channel: args.channel,
            unread_only: args.unread_only.unwrap_or(false),
            since: args.since,
            limit: args.limit,
            mark_read: args.mark_read.unwrap_or(false),
        };
        self.respond(Some(session), move |c| c.list_messages(query.clone()))
            .await
    }

    #[tool(
        description = "Mark messages as read (all unread ones when message_ids is omitted), which clears them from the unread_messages count carried by every answer.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn message_mark_read(
        &self,
        Parameters(args): Parameters<MessageMarkRead>,
    ) -> Result<Json<Answer<MarkedRead>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.mark_read(&session, &args.message_ids)
        })
        .await
    }
}
