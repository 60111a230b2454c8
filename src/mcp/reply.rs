//! How tool answers look: the coordinator's result plus the caller's unread mail, or a
//! readable error.

use std::fmt;

use rmcp::model::{ContentBlock, IntoContents};
use schemars::JsonSchema;
use serde::Serialize;

use crate::coordinator::Unread;
use crate::error::Error;
use crate::model::Lock;

/// A successful answer. `unread_messages` rides along on every answer to a session with
/// unread mail, so a model notices messages without polling for them.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Answer<T> {
    #[serde(flatten)]
    pub body: T,
    /// Present when you have unread messages: read them with message_list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_messages: Option<Unread>,
    /// Locks you queued for (queue=true) that were granted since your last call: they are yours now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locks_granted: Vec<Lock>,
}

/// A failed call, answered as a tool result with `isError: true` and this text, which names
/// what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(String);

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for ToolError {
    fn from(error: Error) -> Self {
        if let Error::Store(store) = &error {
            tracing::error!(error = %store, "store failure");
        }
        Self(error.to_string())
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.0)]
    }
}
