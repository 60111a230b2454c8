//! TOML files (Codex's `config.toml`) edited with `toml_edit`, which keeps comments, spacing
//! and the order of tables: our `[mcp_servers.NAME]` table is added after them.

use std::path::Path;

use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::entry::Entry;
use crate::cli::CliError;

fn parse(path: &Path, text: &str) -> Result<DocumentMut, CliError> {
    text.parse::<DocumentMut>().map_err(|e| {
        CliError::Usage(format!(
            "cannot parse {} as TOML ({}); init leaves it as it is: fix it, or leave its client \
             out with --client",
            path.display(),
            e.to_string().trim()
        ))
    })
}

fn server(command: &str, args: &[String]) -> Table {
    let mut table = Table::new();
    table.insert("command", value(command));
    table.insert(
        "args",
        value(args.iter().map(String::as_str).collect::<Array>()),
    );
    table
}

/// Whether `item` is the server table init writes (however it is laid out).
fn same(item: &Item, command: &str, args: &[String]) -> bool {
    let Some(table) = item.as_table_like() else {
        return false;
    };
    let args_there: Option<Vec<&str>> = table
        .get("args")
        .and_then(Item::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect());
    table.len() == 2
        && table.get("command").and_then(Item::as_str) == Some(command)
        && args_there == Some(args.iter().map(String::as_str).collect())
}

/// `text` (empty for a new file) with `entries` in it.
pub fn apply(path: &Path, text: &str, entries: &[&Entry]) -> Result<String, CliError> {
    let mut doc = parse(path, text)?;
    for entry in entries {
        let Entry::TomlServer {
            table,
            name,
            command,
            args,
        } = entry
        else {
            continue;
        };
        if !doc.contains_key(table) {
            let mut parent = Table::new();
            parent.set_implicit(true);
            doc.insert(table, Item::Table(parent));
        }
        let parent = doc
            .get_mut(table)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{}: `{table}` is not a table; init leaves the file as it is",
                    path.display()
                ))
            })?;
        if parent
            .get(name)
            .is_some_and(|item| same(item, command, args))
        {
            continue;
        }
        parent.insert(name, Item::Table(server(command, args)));
    }
    Ok(doc.to_string())
}

/// `text` without `entries`; `None` when nothing is left in it.
pub fn remove(path: &Path, text: &str, entries: &[&Entry]) -> Result<Option<String>, CliError> {
    let mut doc = parse(path, text)?;
    for entry in entries {
        let Entry::TomlServer { table, name, .. } = entry else {
            continue;
        };
        let emptied = match doc.get_mut(table).and_then(Item::as_table_like_mut) {
            Some(parent) => {
                parent.remove(name);
                parent.is_empty()
            }
            None => false,
        };
        if emptied {
            doc.remove(table);
        }
    }
    let out = doc.to_string();
    Ok((!out.trim().is_empty()).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry::TomlServer {
            table: "mcp_servers".into(),
            name: "session-coordinator".into(),
            command: "mcp-session-coordinator".into(),
            args: vec![],
        }
    }

    #[test]
    fn the_server_table_follows_what_is_there_and_comes_out_again() {
        let path = Path::new("config.toml");
        let text = "# my settings\nmodel = \"o3\"   # fast\n\n[mcp_servers.other]\ncommand = \"x\"\n\n[projects.\"/src\"]\ntrust_level = \"trusted\"\n";
        let added = apply(path, text, &[&entry()]).expect("apply");
        // Beside its sibling server, every other line where it was.
        let ours = "\n[mcp_servers.session-coordinator]\ncommand = \"mcp-session-coordinator\"\nargs = []\n";
        assert_eq!(
            added,
            text.replace("command = \"x\"\n", &format!("command = \"x\"\n{ours}"))
        );
        assert_eq!(apply(path, &added, &[&entry()]).expect("again"), added);
        assert_eq!(
            remove(path, &added, &[&entry()])
                .expect("remove")
                .as_deref(),
            Some(text)
        );
        let fresh = apply(path, "", &[&entry()]).expect("new");
        assert_eq!(remove(path, &fresh, &[&entry()]).expect("remove"), None);
        assert!(apply(path, "model = ", &[&entry()]).is_err());
    }
}
