//! What `init` puts into one file, kept as data: the same value writes the entry, recognises
//! it on the next run (so a second `init` changes nothing) and, read back from the manifest,
//! takes it out again on `--remove` even after the file was edited by hand.

use serde::{Deserialize, Serialize};

/// A JSON value whose object keys keep the order they are written in. serde_json's own map
/// sorts keys (its `preserve_order` feature would change every tool answer), and a person
/// reading `{"type": "command", "command": ...}` expects that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ordered {
    Str(String),
    Num(u64),
    List(Vec<Ordered>),
    Map(Vec<(String, Ordered)>),
}

impl Ordered {
    pub fn map(fields: &[(&str, Ordered)]) -> Self {
        Self::Map(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    pub fn str(text: &str) -> Self {
        Self::Str(text.to_owned())
    }

    pub fn strs(texts: &[String]) -> Self {
        Self::List(texts.iter().map(|t| Self::Str(t.clone())).collect())
    }

    /// The value as serde_json sees it, for comparing with what a file holds: key order
    /// does not make two entries different.
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Self::Str(s) => serde_json::Value::String(s.clone()),
            Self::Num(n) => serde_json::Value::from(*n),
            Self::List(items) => items.iter().map(Self::to_value).collect(),
            Self::Map(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// One thing `init` adds to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// `container.name = value` in a JSON file: an MCP server entry (`mcpServers`, or VS Code's
    /// `servers`).
    JsonServer {
        container: String,
        name: String,
        value: Ordered,
    },
    /// A top-level field set only where absent (Copilot's hook file `version`); never removed
    /// from a file someone else wrote, where it was there before.
    JsonField { name: String, value: Ordered },
    /// One hook group appended to `hooks.<event>`, a JSON array.
    JsonHook { event: String, group: Ordered },
    /// `[table.name]` in a TOML file, with a command and its arguments (Codex).
    TomlServer {
        table: String,
        name: String,
        command: String,
        args: Vec<String>,
    },
    /// A marked section of a Markdown file (AGENTS.md).
    Section { text: String },
    /// A whole file that is ours when it says so (the git pre-commit hook).
    Script { text: String, private: bool },
}
