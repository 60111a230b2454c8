//! JSON files (`.mcp.json`, `.claude/settings.json`, `.vscode/mcp.json`, ...) edited through
//! a concrete syntax tree, so comments, blank lines, indentation and the order of everything
//! already there stay as they were: only our entries are added or taken out.

use std::path::Path;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};

use super::entry::{Entry, Ordered};
use crate::cli::CliError;

/// Comments and trailing commas are common in these files (VS Code writes JSONC); anything
/// looser is a mistake that writing around would hide.
/// Where hook groups live, in every client's format that has them.
const HOOKS: &str = "hooks";

fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

fn parse(path: &Path, text: &str) -> Result<CstRootNode, CliError> {
    CstRootNode::parse(text, &options()).map_err(|e| {
        CliError::Usage(format!(
            "cannot parse {} as JSON ({e}); init leaves it as it is: fix it, or leave its client \
             out with --client",
            path.display()
        ))
    })
}

fn input(value: &Ordered) -> CstInputValue {
    match value {
        Ordered::Str(s) => CstInputValue::String(s.clone()),
        Ordered::Num(n) => CstInputValue::Number(n.to_string()),
        Ordered::List(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Ordered::Map(fields) => {
            CstInputValue::Object(fields.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

fn not_object(path: &Path, what: &str) -> CliError {
    CliError::Usage(format!(
        "{} holds {what} that is not a JSON object; init leaves the file as it is",
        path.display()
    ))
}

/// The top-level object; `create` makes one in an empty file.
fn root_object(
    path: &Path,
    root: &CstRootNode,
    create: bool,
) -> Result<Option<CstObject>, CliError> {
    match root.value() {
        None if create => Ok(Some(root.object_value_or_set())),
        None => Ok(None),
        Some(value) => value
            .as_object()
            .map(Some)
            .ok_or_else(|| not_object(path, "a top-level value")),
    }
}

/// `object[name]` as an object, created when absent.
fn child_object(path: &Path, object: &CstObject, name: &str) -> Result<CstObject, CliError> {
    match object.get(name) {
        Some(prop) => prop
            .object_value()
            .ok_or_else(|| not_object(path, &format!("`{name}`"))),
        None => Ok(object.object_value_or_set(name)),
    }
}

fn same(node: Option<jsonc_parser::cst::CstNode>, value: &Ordered) -> bool {
    node.and_then(|n| n.to_serde_value()) == Some(value.to_value())
}

/// `text` (empty for a new file) with `entries` in it.
pub fn apply(path: &Path, text: &str, entries: &[&Entry]) -> Result<String, CliError> {
    let root = parse(path, text)?;
    let Some(object) = root_object(path, &root, true)? else {
        return Ok(text.to_owned());
    };
    for entry in entries {
        match entry {
            Entry::JsonServer {
                container,
                name,
                value,
            } => {
                let servers = child_object(path, &object, container)?;
                match servers.get(name) {
                    Some(prop) if same(prop.value(), value) => {}
                    Some(prop) => prop.set_value(input(value)),
                    None => {
                        servers.append(name, input(value));
                    }
                }
            }
            Entry::JsonField { name, value } if object.get(name).is_none() => {
                object.append(name, input(value));
            }
            Entry::JsonHook { event, group } => {
                let hooks = child_object(path, &object, HOOKS)?;
                let list = match hooks.get(event) {
                    Some(prop) => prop.array_value().ok_or_else(|| {
                        CliError::Usage(format!(
                            "{}: `hooks.{event}` is not a JSON array; init leaves the file as it is",
                            path.display()
                        ))
                    })?,
                    None => hooks.array_value_or_set(event),
                };
                if !list.elements().into_iter().any(|e| same(Some(e), group)) {
                    list.append(input(group));
                }
            }
            _ => {}
        }
    }
    let mut out = root.to_string();
    if text.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// `text` without `entries`; `None` when nothing of anyone else's is left in it.
pub fn remove(path: &Path, text: &str, entries: &[&Entry]) -> Result<Option<String>, CliError> {
    let root = parse(path, text)?;
    let Some(object) = root_object(path, &root, false)? else {
        return Ok(Some(text.to_owned()));
    };
    let mut fields = Vec::new();
    for entry in entries {
        match entry {
            Entry::JsonServer {
                container, name, ..
            } => {
                if let Some(servers) = object.object_value(container) {
                    if let Some(prop) = servers.get(name) {
                        prop.remove();
                    }
                    if servers.properties().is_empty()
                        && let Some(prop) = object.get(container)
                    {
                        prop.remove();
                    }
                }
            }
            Entry::JsonField { name, value } => fields.push((name, value)),
            Entry::JsonHook { event, group } => {
                let Some(hooks) = object.object_value(HOOKS) else {
                    continue;
                };
                if let Some(list) = hooks.array_value(event) {
                    for element in list.elements() {
                        if same(Some(element.clone()), group) {
                            element.remove();
                        }
                    }
                    if list.elements().is_empty()
                        && let Some(prop) = hooks.get(event)
                    {
                        prop.remove();
                    }
                }
                if hooks.properties().is_empty()
                    && let Some(prop) = object.get(HOOKS)
                {
                    prop.remove();
                }
            }
            _ => {}
        }
    }
    // A file left with only the fields init sets where absent holds nothing of anyone else's.
    let only_ours = object.properties().iter().all(|prop| {
        fields.iter().any(|(name, value)| {
            prop.decoded_name().as_deref() == Some(name.as_str()) && same(prop.value(), value)
        })
    });
    if only_ours {
        return Ok(None);
    }
    Ok(Some(root.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Entry {
        Entry::JsonServer {
            container: "mcpServers".into(),
            name: "session-coordinator".into(),
            value: Ordered::map(&[
                ("command", Ordered::str("mcp-session-coordinator")),
                ("args", Ordered::List(vec![])),
            ]),
        }
    }

    #[test]
    fn an_entry_goes_in_after_what_is_there_with_comments_kept_and_comes_out_again() {
        let path = Path::new("x.json");
        let text = "{\n    // mine\n    \"mcpServers\": {\n        \"zeta\": { \"command\": \"z\" }, // z\n    },\n    \"alpha\": 1\n}\n";
        let entry = server();
        let added = apply(path, text, &[&entry]).expect("apply");
        assert!(added.starts_with("{\n    // mine\n    \"mcpServers\": {\n        \"zeta\": { \"command\": \"z\" }, // z\n"), "{added}");
        assert!(
            added.find("zeta") < added.find("session-coordinator"),
            "{added}"
        );
        assert!(added.ends_with("\"alpha\": 1\n}\n"), "{added}");
        assert_eq!(
            apply(path, &added, &[&entry]).expect("again"),
            added,
            "idempotent"
        );
        let removed = remove(path, &added, &[&entry]).expect("remove");
        assert_eq!(removed.as_deref(), Some(text));
    }

    #[test]
    fn a_new_file_holds_only_our_entry_and_is_deleted_without_it() {
        let path = Path::new("x.json");
        let entry = server();
        let added = apply(path, "", &[&entry]).expect("apply");
        let value: serde_json::Value = serde_json::from_str(&added).expect("valid JSON");
        assert_eq!(
            value["mcpServers"]["session-coordinator"]["command"],
            "mcp-session-coordinator"
        );
        assert_eq!(remove(path, &added, &[&entry]).expect("remove"), None);
    }

    #[test]
    fn a_file_that_is_not_json_is_refused() {
        let error = apply(Path::new("x.json"), "{ \"a\": 1 \"b\": 2 }", &[&server()]);
        assert!(
            matches!(error, Err(CliError::Usage(text)) if text.contains("cannot parse x.json"))
        );
        let error = apply(Path::new("x.json"), "[1]", &[&server()]);
        assert!(error.is_err());
    }
}
