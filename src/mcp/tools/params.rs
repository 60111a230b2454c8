//! Reading tool arguments as a language model sends them, for every feature alike.
//!
//! Each feature module declares its own argument types; their field doc comments are the
//! parameter descriptions in each tool's input schema. Reading is forgiving where models
//! commonly slip (a number sent as `"600"`, one path sent as a string instead of a list,
//! `"Exclusive"` for `exclusive`) and strict where a slip would silently change the meaning
//! (an unknown argument name is refused, naming the ones that exist).

use std::borrow::Cow;

use rmcp::ErrorData;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::mcp::ToolError;

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
pub(super) mod lenient {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;
    use crate::mcp::tools::conflicts::ConflictCheck;
    use crate::mcp::tools::intents::IntentClear;
    use crate::mcp::tools::locks::LockAcquire;
    use crate::mcp::tools::messages::{MessageList, MessageMarkRead};
    use crate::model::LockType;
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
