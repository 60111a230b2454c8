//! What `tools/list` shows: every tool, or a smaller set, with or without output schemas.
//!
//! Each tool definition a client lists costs the model context tokens on every turn. The core
//! set (register, lock, check, message) is enough for most sessions. Tools left out of the list
//! stay callable by name, and all 20 names of the original product answer in every profile.
//! Output schemas describe `structuredContent` for clients that validate it. They are three
//! quarters of the list's size and models rarely see them, so they are opt-in.

use std::collections::BTreeSet;
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

use super::CoordinatorServer;

/// The tools a session needs to coordinate at all.
pub const CORE: &[&str] = &[
    "session_register",
    "lock_acquire",
    "lock_release",
    "lock_check",
    "conflict_check",
    "message_send",
    "message_list",
];

/// Which tools `tools/list` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSelection {
    /// `None` for every tool.
    names: Option<BTreeSet<String>>,
}

/// How a server lists its tools.
#[derive(Debug, Clone, Default)]
pub struct ToolListing {
    pub selection: ToolSelection,
    /// Whether definitions carry their `outputSchema`.
    pub output_schemas: bool,
    /// Whether arguments list `session_token`: only an HTTP server checks who acts for a
    /// session, and a stdio client's model need not pay for the argument in every turn.
    pub session_tokens: bool,
}

impl ToolSelection {
    /// Reads `all`, `core`, tool names, or a comma-separated mix (`core,intent_announce`).
    pub fn parse(text: &str) -> Result<Self, String> {
        // Every process parses the default, `all`, hooks included; the names need every tool's
        // schema built (2 ms of a 6.5 ms hook call, measured), so only a tool's name reads them.
        let mut known: Option<BTreeSet<String>> = None;
        let mut names = BTreeSet::new();
        let mut all = false;
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => all = true,
                "core" => names.extend(CORE.iter().map(|n| (*n).to_owned())),
                name => {
                    let known = known.get_or_insert_with(|| {
                        CoordinatorServer::tools()
                            .list_all()
                            .into_iter()
                            .map(|tool| tool.name.into_owned())
                            .collect()
                    });
                    if !known.contains(name) {
                        return Err(format!(
                            "unknown tool or profile '{name}'; use all, core, or tool names: {}",
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    names.insert(name.to_owned());
                }
            }
        }
        if all {
            return Ok(Self::default());
        }
        if names.is_empty() {
            return Err("name at least one tool or profile (all, core)".to_owned());
        }
        Ok(Self { names: Some(names) })
    }

    pub fn is_all(&self) -> bool {
        self.names.is_none()
    }

    fn shows(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|names| names.contains(name))
    }
}

impl ToolListing {
    /// The definitions to list, sorted by name.
    pub fn listed(&self, all: Vec<Tool>) -> Vec<Tool> {
        all.into_iter()
            .filter(|tool| self.selection.shows(&tool.name))
            .map(|mut tool| {
                let mut input = without_dialect(&tool.input_schema);
                portable(&mut input, Nulls::Omit);
                if !self.session_tokens
                    && let Some(serde_json::Value::Object(properties)) = input.get_mut("properties")
                {
                    properties.remove("session_token");
                }
                tool.input_schema = Arc::new(input);
                tool.output_schema = match tool.output_schema {
                    Some(schema) if self.output_schemas => {
                        let mut output = without_dialect(&schema);
                        portable(&mut output, Nulls::Allow);
                        Some(Arc::new(output))
                    }
                    _ => None,
                };
                tool
            })
            .collect()
    }

    /// A line for the instructions when some tools are not listed, so the model knows of them.
    pub fn unlisted_note(&self, all: &[Tool]) -> Option<String> {
        let hidden: Vec<&str> = all
            .iter()
            .map(|tool| tool.name.as_ref())
            .filter(|name| !self.selection.shows(name))
            .collect();
        (!hidden.is_empty())
            .then(|| format!(" Also callable, though not listed: {}.", hidden.join(", ")))
    }
}

/// A schema without its `$schema` line: MCP already fixes the dialect (2020-12), and the line
/// costs every listed tool about 15 tokens.
fn without_dialect(schema: &JsonObject) -> JsonObject {
    let mut schema = schema.clone();
    schema.remove("$schema");
    schema
}

/// What a schema says of `null` where Rust has an `Option`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nulls {
    /// Arguments: an optional argument is left out, so the schema need not mention null.
    Omit,
    /// Results: a field may be null, said with `anyOf`.
    Allow,
}

/// Rewrites what schemars writes for Rust types into what every client's validator reads:
/// no `type` arrays (`["integer", "null"]`: Gemini's function declarations and the Inspector's
/// strict mode reject them) and no formats outside JSON Schema's list (`uint64`: Ajv warns
/// `unknown format` on each one). The bounds stay (`minimum: 0`), so nothing is lost.
fn portable(schema: &mut JsonObject, nulls: Nulls) {
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        schema.remove("format");
    }
    if let Some(Value::Array(types)) = schema.get("type").cloned() {
        let (null, others): (Vec<Value>, Vec<Value>) = types.into_iter().partition(|t| t == "null");
        let single = |t: Value| serde_json::json!({ "type": t });
        match (others.len(), null.is_empty(), nulls) {
            (1, _, Nulls::Omit) | (1, true, _) => {
                schema.insert("type".into(), others[0].clone());
            }
            _ => {
                schema.remove("type");
                let mut any: Vec<Value> = others.into_iter().map(single).collect();
                if !null.is_empty() && nulls == Nulls::Allow {
                    any.push(single("null".into()));
                }
                schema.insert("anyOf".into(), Value::Array(any));
            }
        }
    }
    if nulls == Nulls::Omit
        && let Some(Value::Array(any)) = schema.get("anyOf")
        && any.len() == 2
        && let Some(other) = any.iter().find(|s| s.get("type") != Some(&"null".into()))
        && any.iter().any(|s| s.get("type") == Some(&"null".into()))
        && let Value::Object(other) = other.clone()
    {
        schema.remove("anyOf");
        for (key, value) in other {
            schema.entry(key).or_insert(value);
        }
    }
    for value in schema.values_mut() {
        match value {
            Value::Object(inner) => portable(inner, nulls),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        portable(inner, nulls);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The formats JSON Schema 2020-12 defines; validators know these and no others.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_read_profiles_and_names() {
        assert!(ToolSelection::parse("all").expect("all").is_all());
        let core = ToolSelection::parse(" core ").expect("core");
        assert!(core.shows("lock_acquire") && !core.shows("context_share"));
        let more = ToolSelection::parse("core,intent_announce").expect("mix");
        assert!(more.shows("intent_announce") && more.shows("session_register"));
        let error = ToolSelection::parse("core,lock_aquire").expect_err("typo");
        assert!(
            error.contains("'lock_aquire'") && error.contains("lock_acquire"),
            "{error}"
        );
        assert!(ToolSelection::parse(" , ").is_err());
        assert!(
            ToolSelection::parse("all,lock_aquire").is_err(),
            "every word is checked"
        );
    }

    /// Every schema node of every listed tool, arguments and results.
    fn nodes(value: &Value, out: &mut Vec<JsonObject>) {
        match value {
            Value::Object(map) => {
                out.push(map.clone());
                map.values().for_each(|v| nodes(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| nodes(v, out)),
            _ => {}
        }
    }

    #[test]
    fn listed_schemas_use_only_portable_json_schema() {
        let listing = ToolListing {
            output_schemas: true,
            session_tokens: true,
            ..ToolListing::default()
        };
        let listed = listing.listed(CoordinatorServer::tools().list_all());
        assert_eq!(listed.len(), 20);
        let mut all = Vec::new();
        for tool in &listed {
            nodes(&Value::Object((*tool.input_schema).clone()), &mut all);
            let output = tool.output_schema.as_ref().expect("output schema");
            nodes(&Value::Object((**output).clone()), &mut all);
        }
        for node in &all {
            assert!(!node.get("type").is_some_and(Value::is_array), "{node:?}");
            if let Some(Value::String(format)) = node.get("format") {
                assert!(STANDARD_FORMATS.contains(&format.as_str()), "{node:?}");
            }
        }
        // The bounds the formats implied are kept, and results still allow null.
        let acquire = listed
            .iter()
            .find(|t| t.name == "lock_acquire")
            .expect("lock_acquire");
        let ttl = &acquire.input_schema["properties"]["ttl_seconds"];
        assert_eq!(ttl["type"], "integer", "{ttl}");
        // The limits the coordinator enforces, so a client's own check agrees with it.
        assert_eq!(ttl["minimum"], 1, "{ttl}");
        assert_eq!(
            ttl["maximum"],
            crate::coordinator::MAX_TTL.as_secs(),
            "{ttl}"
        );
        let wait = &acquire.input_schema["properties"]["wait_seconds"];
        assert_eq!(
            wait["maximum"],
            crate::coordinator::MAX_WAIT.as_secs(),
            "{wait}"
        );
        let output = serde_json::to_string(&acquire.output_schema).expect("json");
        assert!(output.contains(r#"{"type":"null"}"#), "{output}");
    }

    #[test]
    fn every_core_tool_exists() {
        let all = CoordinatorServer::tools().list_all();
        for name in CORE {
            assert!(all.iter().any(|t| t.name == *name), "{name}");
        }
    }
}
