//! Tool arguments as a language model sends them.
//!
//! Field doc comments are the parameter descriptions in each tool's input schema. Reading is
//! forgiving where models commonly slip (a number sent as `"600"`, one path sent as a string
//! instead of a list, `"Exclusive"` for `exclusive`) and strict where a slip would silently change
//! the meaning (an unknown argument name is refused, naming the ones that exist).

use std::borrow::Cow;

use rmcp::ErrorData;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::reply::ToolError;
use crate::ids::{ContextId, IntentId, MessageId};
use crate::model::{Channel, ContextType, IntentStatus, IntentType, LockType, Priority};

/// A tool's arguments, or the reason they could not be read.
///
/// rmcp's own `Parameters` turns a deserialization failure into a JSON-RPC `-32602` error,
/// which clients show the model as an opaque failure. This extractor always succeeds and
/// carries the failure to the tool, which answers it as a readable tool error
/// (`isError: true`). The `#[tool]` macro finds the input schema by this type's name.
pub struct Parameters<T>(pub Result<T, ToolError>);

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        Ok(Self(parse(arguments)))
    }
}

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = T::json_schema(generator);
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties
                .values_mut()
                .filter_map(Value::as_object_mut)
                .for_each(tidy);
        }
        schema
    }
}

/// Trims what schemars writes for an optional argument. Absence from `required` already says
/// it is optional; the `null` alternatives, empty defaults and integer formats it adds only
/// cost the model tokens on every `tools/list`.
fn tidy(property: &mut Map<String, Value>) {
    let empty_default = match property.get("default") {
        Some(Value::Null) => true,
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    };
    if empty_default {
        property.remove("default");
    }
    if let Some(Value::Array(types)) = property.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            property.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = property.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if property
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| format.starts_with("int") || format.starts_with("uint"))
    {
        property.remove("format");
    }
}

/// Reads arguments, naming the argument at fault (`ttl_seconds: invalid type ...`).
pub fn parse<T: DeserializeOwned>(arguments: JsonObject) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        let problem = error.inner().to_string();
        if path == "." {
            ToolError::new(format!("invalid arguments: {problem}"))
        } else {
            ToolError::new(format!("invalid argument `{path}`: {problem}"))
        }
    })
}

/// Forgiving readers for scalar and list arguments.
mod lenient {
    use serde::Deserialize;
    use serde::de::{self, Deserializer};
    use serde_json::Value;

    pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| {
                    de::Error::custom(format!("{n} is not a whole number of 0 or more"))
                }),
            Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| {
                de::Error::custom(format!("'{s}' is not a whole number of 0 or more"))
            }),
            Some(other) => Err(de::Error::custom(format!("{other} is not a whole number"))),
        }
    }

    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(Some(true)),
                "false" | "no" | "0" => Ok(Some(false)),
                _ => Err(de::Error::custom(format!("'{s}' is not true or false"))),
            },
            Some(other) => Err(de::Error::custom(format!("{other} is not true or false"))),
        }
    }

    /// A list, also accepted as a single item or as a JSON array inside a string.
    pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: serde::de::DeserializeOwned,
    {
        let value = match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) if s.trim_start().starts_with('[') => {
                serde_json::from_str::<Value>(&s).map_err(de::Error::custom)?
            }
            Some(value) => value,
        };
        let items = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_json::from_value(item)
                    .map_err(|e| de::Error::custom(format!("item {i}: {e}")))
            })
            .collect()
    }
}

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

/// Arguments of `lock_acquire`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockAcquire {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// File to lock, relative to the project root (or absolute inside your working directory). src/auth/ locks a directory, src/**/*.test.ts a glob, resource:NAME something that is not a file (resource:playwright).
    pub file_path: String,
    /// exclusive (default): you edit it, no one else may lock it; shared: you read it, blocks exclusive locks; intent: advisory, never blocks, others get warned.
    #[serde(default)]
    pub lock_type: Option<LockType>,
    /// Seconds until the lock expires unless renewed by acquiring again (default 900, max 86400).
    #[serde(default, deserialize_with = "lenient::integer")]
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl_seconds: Option<u64>,
    /// If taken, wait up to this many seconds (max 300) in the first-come-first-served queue; returns the moment it is granted, else granted false with queue_position.
    #[serde(default, deserialize_with = "lenient::integer")]
    #[schemars(range(max = 300))]
    pub wait_seconds: Option<u64>,
    /// If taken, stay queued and go on working: it is granted to you automatically when freed, and you are told (a coordination message, locks_granted on your next answer). lock_release withdraws it.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub queue: Option<bool>,
    /// For resource:NAME only: how many sessions may hold it at once (default 1). Set once per project.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub capacity: Option<u64>,
}

/// Arguments of `lock_release`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockRelease {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The locked file (or directory/glob), spelled any way that names the same path. Also withdraws your queued request for it.
    pub file_path: String,
}

/// Arguments of `lock_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockList {
    /// Only locks held by this session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Only locks on this path or overlapping it (directory/glob locks covering it; for a directory or glob, the locks under it).
    #[serde(default)]
    pub file_path: Option<String>,
    /// Only locks of this project; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only locks of sessions in this group.
    #[serde(default)]
    pub group: Option<String>,
    /// Most locks to return (default 100, max 1000).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub limit: Option<u64>,
}

/// Arguments of `lock_check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockCheck {
    /// The file to check, relative to the project root.
    pub file_path: String,
    /// Project to look in; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Your session id, to resolve the project and absolute paths; may be omitted once this connection registered one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// A fencing_token you were granted: token_valid in the answer says whether it is still the current lock on this path (check before writing after a long pause).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub fencing_token: Option<u64>,
}

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

/// Arguments of `conflict_check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConflictCheck {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// What you are about to do; with file_paths and no intent_type, an edit is assumed.
    #[serde(default)]
    pub intent_type: Option<IntentType>,
    /// Files you are about to touch, relative to the project root.
    #[serde(default, deserialize_with = "lenient::list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub file_paths: Vec<String>,
    /// What the operation acts on: a branch for git operations (default: your branch), else a file or component.
    #[serde(default)]
    pub target: Option<String>,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
        let serde_json::Value::Object(object) = value else {
            return Err("not an object".into());
        };
        parse(object).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_argument_and_the_allowed_values() {
        let err = read::<LockAcquire>(json!({"file_path": "a", "lock_type": "bogus"})).err();
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid argument `lock_type`: unknown value 'bogus'; allowed values: exclusive, shared, intent"
            )
        );
        let err = read::<LockAcquire>(json!({"lock_type": "shared"})).err();
        assert_eq!(
            err.as_deref(),
            Some("invalid arguments: missing field `file_path`")
        );
        let err = read::<LockAcquire>(json!({"file_path": "a", "ttl": 5})).err();
        assert!(
            err.is_some_and(|e| e.contains("unknown field `ttl`") && e.contains("`ttl_seconds`"))
        );
        let err = read::<LockAcquire>(json!({"file_path": "a", "ttl_seconds": "soon"})).err();
        assert!(err.is_some_and(|e| e.starts_with("invalid argument `ttl_seconds`")));
        let err = read::<IntentClear>(json!({"intent_id": "msg-4"})).err();
        assert!(err.is_some_and(|e| e.contains("`intent_id`") && e.contains("int-42")));
    }

    #[test]
    fn optional_arguments_are_described_without_nulls() {
        let schema =
            serde_json::to_value(schemars::schema_for!(Parameters<LockAcquire>)).expect("schema");
        let ttl = &schema["properties"]["ttl_seconds"];
        assert_eq!(ttl["type"], "integer");
        assert!(ttl.get("default").is_none() && ttl.get("format").is_none());
        assert_eq!(
            schema["properties"]["lock_type"]["enum"],
            json!(["exclusive", "shared", "intent"])
        );
        assert_eq!(schema["required"], json!(["file_path"]));
        for property in schema["properties"]
            .as_object()
            .expect("properties")
            .values()
        {
            assert!(
                property["description"].is_string(),
                "every argument is described"
            );
        }
    }

    #[test]
    fn common_slips_are_forgiven() {
        let args = read::<LockAcquire>(
            json!({"file_path": "a", "lock_type": "Exclusive", "ttl_seconds": "600"}),
        )
        .expect("lenient");
        assert_eq!(
            (args.lock_type, args.ttl_seconds),
            (Some(LockType::Exclusive), Some(600))
        );
        let args = read::<ConflictCheck>(json!({"file_paths": "src/a.ts"})).expect("single path");
        assert_eq!(args.file_paths, ["src/a.ts"]);
        let args = read::<ConflictCheck>(json!({"file_paths": "[\"a\", \"b\"]"}))
            .expect("stringified list");
        assert_eq!(args.file_paths, ["a", "b"]);
        let args = read::<MessageList>(json!({"unread_only": "true", "limit": 5.0})).expect("flag");
        assert_eq!((args.unread_only, args.limit), (Some(true), Some(5)));
        let args = read::<MessageMarkRead>(json!({"message_ids": ["msg-3", 4]})).expect("ids");
        assert_eq!(args.message_ids, [MessageId(3), MessageId(4)]);
    }
}
