//! Identifiers as callers see them.
//!
//! Rows are keyed by integers (compact, ordered, index-friendly); callers see them with a short
//! prefix (`int-42`, `msg-7`) so an id pasted into the wrong argument is caught and named. Session
//! ids are random rather than sequential so that ids from a deleted database are never reused.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A new random session id, `ses-` followed by 12 hex digits (48 random bits).
pub fn new_session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)?;
    let mut id = String::with_capacity(16);
    id.push_str("ses-");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    Ok(id)
}

/// A session's secret: 256 random bits, in hex. Only its [`token_hash`] is stored.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// What the database keeps of a token: its SHA-256, so a copy of the database lends nobody
/// the sessions' credentials.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Reads `int-42`, `42` or ` int-42 `; anything else is `None`.
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                let digits = text
                    .strip_prefix(concat!($prefix, "-"))
                    .unwrap_or(text);
                digits.parse::<i64>().ok().filter(|n| *n > 0).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "-{}"), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct IdVisitor;
                impl Visitor<'_> for IdVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("an id like ", $example))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).ok_or_else(|| {
                            E::custom(format!(
                                concat!("'{}' is not an id like ", $example),
                                v
                            ))
                        })
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        if v > 0 {
                            Ok($name(v))
                        } else {
                            Err(E::custom(concat!("ids are positive, like ", $example)))
                        }
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        i64::try_from(v)
                            .map_err(|_| E::custom(concat!("not an id like ", $example)))
                            .and_then(|v| self.visit_i64(v))
                    }
                }
                deserializer.deserialize_any(IdVisitor)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string" })
            }
        }
    };
}

numeric_id!(
    /// A lock grant, `lock-N`.
    LockId,
    "lock",
    "lock-12"
);
numeric_id!(
    /// An announced intent, `int-N`.
    IntentId,
    "int",
    "int-42"
);
numeric_id!(
    /// A message, `msg-N`.
    MessageId,
    "msg",
    "msg-7"
);
numeric_id!(
    /// A shared context entry, `ctx-N`.
    ContextId,
    "ctx",
    "ctx-3"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_ids_round_trip_and_accept_bare_numbers() {
        assert_eq!(IntentId(42).to_string(), "int-42");
        assert_eq!(IntentId::parse("int-42"), Some(IntentId(42)));
        assert_eq!(IntentId::parse(" 42 "), Some(IntentId(42)));
        assert_eq!(IntentId::parse("msg-42"), None);
        assert_eq!(IntentId::parse("int-0"), None);
        let from_number: Result<IntentId, _> = serde_json::from_value(serde_json::json!(7));
        assert_eq!(from_number.ok(), Some(IntentId(7)));
        let wrong: Result<IntentId, _> = serde_json::from_value(serde_json::json!("ctx-7"));
        assert!(wrong.is_err_and(|e| e.to_string().contains("int-42")));
    }

    #[test]
    fn session_ids_are_random_and_well_formed() {
        let a = new_session_id().ok();
        let b = new_session_id().ok();
        assert!(
            a.as_deref()
                .is_some_and(|id| id.len() == 16 && id.starts_with("ses-"))
        );
        assert_ne!(a, b);
    }
}
