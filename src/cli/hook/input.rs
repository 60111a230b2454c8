//! What each client's hook sends and reads: its events, the files its tools write (and what
//! of them), and the answer in its format.

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::CliError;
use crate::clients;
use crate::flags::CopilotEvent;
use crate::patterns;

/// Claude Code's tools that write files, and the argument naming the file.
const CLAUDE_EDITING_TOOLS: &[(&str, &str)] = &[
    ("Edit", "file_path"),
    ("Write", "file_path"),
    ("MultiEdit", "file_path"),
    ("NotebookEdit", "notebook_path"),
];

/// Copilot CLI's tools that write files; their arguments name the file `path`.
const COPILOT_EDITING_TOOLS: &[&str] = &["edit", "create", "str_replace_editor"];

/// Gemini CLI's tools that write files; their arguments name the file `file_path`.
const GEMINI_EDITING_TOOLS: &[&str] = &["write_file", "replace"];

/// The client whose hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    ClaudeCode,
    /// GitHub Copilot CLI, with the event its hook entry runs for.
    Copilot(CopilotEvent),
    /// Gemini CLI, whose hook input has Claude Code's fields under its own event names.
    Gemini,
    /// Codex CLI, whose hook input has Claude Code's fields; it edits through `apply_patch`.
    Codex,
}

/// What an event asks, whichever client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    Start,
    /// A tool is about to write these files (one, but for a Codex patch).
    Edit(Vec<Target>),
    Alive,
    End,
    /// Anything else: no answer.
    Other,
}

/// A file a tool is about to write, and what of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub file: String,
    pub part: Part,
}

/// What of a file an edit writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    /// All of it: a new file, a rewrite, a deletion, a move.
    Whole,
    /// Text replaced where it is found: each old text, and whether every occurrence is.
    Text(Vec<(String, bool)>),
    /// One notebook cell, by its id.
    Cell(String),
}

/// One hook event: what it asks, where, and the client's id for its session.
#[derive(Debug)]
pub(super) struct Incoming {
    pub event: Event,
    pub cwd: Option<String>,
    pub session: Option<String>,
}

/// The fields of Claude Code's hook input that matter here; it sends more.
#[derive(Debug, Deserialize)]
struct ClaudeInput {
    hook_event_name: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_input: Option<Value>,
}

/// The fields of Copilot CLI's hook input that matter here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CopilotInput {
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    tool_name: Option<String>,
    /// The tool's arguments: a JSON text (an object in some versions).
    #[serde(default)]
    tool_args: Option<Value>,
}

impl Client {
    pub(super) fn parse(self, input: &str) -> Result<Incoming, CliError> {
        let unreadable = |e: serde_json::Error| {
            CliError::Usage(format!(
                "the hook reads the client's hook event as JSON on stdin: {e}"
            ))
        };
        match self {
            Client::ClaudeCode => {
                let input: ClaudeInput = serde_json::from_str(input).map_err(unreadable)?;
                let event = match input.hook_event_name.as_str() {
                    "SessionStart" => Event::Start,
                    "PreToolUse" => {
                        claude_edit(&input).map_or(Event::Other, |edit| Event::Edit(vec![edit]))
                    }
                    "Stop" | "SubagentStop" => Event::Alive,
                    "SessionEnd" => Event::End,
                    _ => Event::Other,
                };
                Ok(Incoming {
                    event,
                    cwd: input.cwd,
                    session: input.session_id.map(|id| format!("claude-code:{id}")),
                })
            }
            Client::Gemini => {
                let input: ClaudeInput = serde_json::from_str(input).map_err(unreadable)?;
                let event = match input.hook_event_name.as_str() {
                    "SessionStart" => Event::Start,
                    "BeforeTool" => {
                        gemini_edit(&input).map_or(Event::Other, |edit| Event::Edit(vec![edit]))
                    }
                    "AfterAgent" => Event::Alive,
                    "SessionEnd" => Event::End,
                    _ => Event::Other,
                };
                Ok(Incoming {
                    event,
                    cwd: input.cwd,
                    session: input.session_id.map(|id| format!("gemini-cli:{id}")),
                })
            }
            Client::Codex => {
                let input: ClaudeInput = serde_json::from_str(input).map_err(unreadable)?;
                let event = match input.hook_event_name.as_str() {
                    "SessionStart" => Event::Start,
                    "PreToolUse" => codex_edit(&input).map_or(Event::Other, Event::Edit),
                    "Stop" => Event::Alive,
                    "SessionEnd" => Event::End,
                    _ => Event::Other,
                };
                Ok(Incoming {
                    event,
                    cwd: input.cwd,
                    session: input.session_id.map(|id| format!("codex:{id}")),
                })
            }
            Client::Copilot(kind) => {
                let input: CopilotInput = serde_json::from_str(input).map_err(unreadable)?;
                let event = match kind {
                    CopilotEvent::SessionStart => Event::Start,
                    CopilotEvent::PreToolUse => {
                        copilot_edit(&input).map_or(Event::Other, |edit| Event::Edit(vec![edit]))
                    }
                    CopilotEvent::AgentStop => Event::Alive,
                    CopilotEvent::SessionEnd => Event::End,
                };
                // Copilot names no session: its process stands for it.
                let session = clients::client_pid().map(|pid| format!("copilot:{pid}"));
                Ok(Incoming {
                    event,
                    cwd: input.cwd,
                    session,
                })
            }
        }
    }

    /// The name a hook registers its session under when none is given.
    pub(super) fn session_name(self, session: &str) -> String {
        let tail = session.rsplit(':').next().unwrap_or(session);
        let short: String = tail.chars().take(8).collect();
        match self {
            Client::ClaudeCode => format!("claude-{short}"),
            Client::Copilot(_) => format!("copilot-{short}"),
            Client::Gemini => format!("gemini-{short}"),
            Client::Codex => format!("codex-{short}"),
        }
    }

    /// The reply in the client's format; empty when there is nothing to say.
    pub(super) fn render(self, reply: &Reply) -> String {
        let (event, fields) = match (self, reply) {
            (_, Reply::Nothing) => return String::new(),
            // Codex reads Claude Code's answers.
            (Client::ClaudeCode | Client::Codex, Reply::Started(context)) => {
                ("SessionStart", json!({ "additionalContext": context }))
            }
            // No permissionDecision: the person's own permission rules still apply to the edit.
            (Client::ClaudeCode | Client::Codex, Reply::Note(context)) => {
                ("PreToolUse", json!({ "additionalContext": context }))
            }
            (Client::ClaudeCode | Client::Codex, Reply::Deny(reason)) => (
                "PreToolUse",
                json!({ "permissionDecision": "deny", "permissionDecisionReason": reason }),
            ),
            (Client::Copilot(_), Reply::Deny(reason)) => {
                return format!(
                    "{}\n",
                    json!({ "permissionDecision": "deny", "permissionDecisionReason": reason })
                );
            }
            // Copilot reads nothing else from a hook.
            (Client::Copilot(_), _) => return String::new(),
            // Gemini CLI reads a denial at the top level, and a session's context at its start.
            (Client::Gemini, Reply::Deny(reason)) => {
                return format!("{}\n", json!({ "decision": "deny", "reason": reason }));
            }
            (Client::Gemini, Reply::Started(context)) => {
                ("SessionStart", json!({ "additionalContext": context }))
            }
            (Client::Gemini, Reply::Note(_)) => return String::new(),
        };
        let mut fields = fields;
        if let Some(object) = fields.as_object_mut() {
            object.insert("hookEventName".into(), json!(event));
        }
        format!("{}\n", json!({ "hookSpecificOutput": fields }))
    }
}

/// What the hook answers.
#[derive(Debug)]
pub(super) enum Reply {
    Nothing,
    /// A session started: who it is in the coordinator.
    Started(String),
    /// The edit goes on, with something the AI should know: what is now locked for it, and
    /// who else changed the same code elsewhere.
    Note(String),
    Deny(String),
}

/// What a Claude Code tool call writes, if it is an editing one.
fn claude_edit(input: &ClaudeInput) -> Option<Target> {
    let tool = input.tool_name.as_deref()?;
    let (_, argument) = CLAUDE_EDITING_TOOLS
        .iter()
        .find(|(name, _)| *name == tool)?;
    let args = input.tool_input.as_ref()?;
    let file = args.get(*argument)?.as_str()?;
    let part = match tool {
        "Edit" => replacement(args, "old_string", "replace_all"),
        "MultiEdit" => {
            let edits = args.get("edits").and_then(Value::as_array);
            let texts: Option<Vec<(String, bool)>> = edits.map(|edits| {
                edits
                    .iter()
                    .filter_map(|e| match replacement(e, "old_string", "replace_all") {
                        Part::Text(mut one) => one.pop(),
                        _ => None,
                    })
                    .collect()
            });
            match texts {
                Some(texts) if !texts.is_empty() && Some(texts.len()) == edits.map(Vec::len) => {
                    Part::Text(texts)
                }
                _ => Part::Whole,
            }
        }
        // A new cell goes between others; replacing or deleting one touches only that one.
        "NotebookEdit" => match (
            args.get("cell_id").and_then(Value::as_str),
            args.get("edit_mode").and_then(Value::as_str),
        ) {
            (Some(id), mode) if mode != Some("insert") && patterns::is_symbol(id) => {
                Part::Cell(id.to_owned())
            }
            _ => Part::Whole,
        },
        _ => Part::Whole,
    };
    Some(Target {
        file: file.to_owned(),
        part,
    })
}

/// A replacement's old text from `args`, or the whole file when it has none.
fn replacement(args: &Value, old: &str, every: &str) -> Part {
    match args.get(old).and_then(Value::as_str) {
        Some(text) if !text.is_empty() => Part::Text(vec![(
            text.to_owned(),
            args.get(every).and_then(Value::as_bool).unwrap_or(false),
        )]),
        _ => Part::Whole,
    }
}

/// What a Gemini CLI tool call writes, if it is an editing one.
fn gemini_edit(input: &ClaudeInput) -> Option<Target> {
    let tool = input.tool_name.as_deref()?;
    if !GEMINI_EDITING_TOOLS.contains(&tool) {
        return None;
    }
    let args = input.tool_input.as_ref()?;
    let file = args.get("file_path")?.as_str()?;
    let part = match tool {
        "replace" => match replacement(args, "old_string", "") {
            Part::Text(mut texts) => {
                let expected = args.get("expected_replacements").and_then(Value::as_u64);
                if let Some(first) = texts.first_mut() {
                    first.1 = expected.is_some_and(|n| n > 1);
                }
                Part::Text(texts)
            }
            other => other,
        },
        _ => Part::Whole,
    };
    Some(Target {
        file: file.to_owned(),
        part,
    })
}

/// What a Copilot CLI tool call writes, if it is an editing one.
fn copilot_edit(input: &CopilotInput) -> Option<Target> {
    let tool = input.tool_name.as_deref()?;
    if !COPILOT_EDITING_TOOLS.contains(&tool) {
        return None;
    }
    let args = match input.tool_args.as_ref()? {
        Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    let file = args
        .get("path")
        .or_else(|| args.get("file_path"))?
        .as_str()?;
    let part = match args.get("old_str") {
        Some(_) => replacement(&args, "old_str", ""),
        None => replacement(&args, "old_string", ""),
    };
    Some(Target {
        file: file.to_owned(),
        part,
    })
}

/// What a Codex `apply_patch` call writes: its patch text comes as `tool_input.command`.
fn codex_edit(input: &ClaudeInput) -> Option<Vec<Target>> {
    if input.tool_name.as_deref()? != "apply_patch" {
        return None;
    }
    let tool_input = input.tool_input.as_ref()?;
    let patch = match tool_input {
        Value::String(text) => text.as_str(),
        other => other.get("command")?.as_str()?,
    };
    let targets = patch_targets(patch);
    (!targets.is_empty()).then_some(targets)
}

/// Every file a patch in Codex's `apply_patch` format adds, updates, deletes or moves to, in
/// the order first named. An update is placed by each hunk's old lines (context and removed
/// lines); anything else, or a hunk with no old lines, writes the whole file.
fn patch_targets(patch: &str) -> Vec<Target> {
    const WHOLE: &[&str] = &["*** Add File: ", "*** Delete File: ", "*** Move to: "];
    const UPDATE: &str = "*** Update File: ";
    let mut targets: Vec<Target> = Vec::new();
    // The updated file (its index in `targets`) and the old lines of the hunk being read.
    let mut updating: Option<usize> = None;
    let mut old: Vec<&str> = Vec::new();
    let mut changed = false;
    for line in patch.lines() {
        let header = line.starts_with("*** ") || line.starts_with("@@");
        if header || line == "*** End Patch" {
            place(&mut targets, updating, &mut old, &mut changed);
        }
        if let Some(path) = line.strip_prefix(UPDATE).map(str::trim) {
            updating = (!path.is_empty()).then(|| named(&mut targets, path, false));
        } else if let Some(path) = WHOLE
            .iter()
            .find_map(|h| line.strip_prefix(h))
            .map(str::trim)
        {
            // A file moved away is rewritten whole too.
            if line.starts_with("*** Move to: ")
                && let Some(from) = updating.and_then(|i| targets.get_mut(i))
            {
                from.part = Part::Whole;
            }
            updating = None;
            if !path.is_empty() {
                named(&mut targets, path, true);
            }
        } else if header || updating.is_none() {
            continue;
        } else if let Some(kept) = line.strip_prefix(' ') {
            old.push(kept);
        } else if let Some(removed) = line.strip_prefix('-') {
            old.push(removed);
            changed = true;
        } else if line.starts_with('+') {
            changed = true;
        }
    }
    place(&mut targets, updating, &mut old, &mut changed);
    // An update with no hunk to place writes the whole file.
    for target in &mut targets {
        if matches!(&target.part, Part::Text(texts) if texts.is_empty()) {
            target.part = Part::Whole;
        }
    }
    targets
}

/// The index of `path` among `targets`, added if new; `whole` makes it a whole-file write.
fn named(targets: &mut Vec<Target>, path: &str, whole: bool) -> usize {
    let at = match targets.iter().position(|t| t.file == path) {
        Some(at) => at,
        None => {
            targets.push(Target {
                file: path.to_owned(),
                part: Part::Text(Vec::new()),
            });
            targets.len() - 1
        }
    };
    if whole {
        targets[at].part = Part::Whole;
    }
    at
}

/// Ends the hunk being read: its old lines place it in the updated file; a change with no old
/// line to find (an insertion with no context) makes it a whole-file write.
fn place(targets: &mut [Target], at: Option<usize>, old: &mut Vec<&str>, changed: &mut bool) {
    let text = old.join("\n");
    let hunk = std::mem::take(changed);
    old.clear();
    let Some(target) = at.and_then(|i| targets.get_mut(i)) else {
        return;
    };
    if !hunk {
        return;
    }
    match &mut target.part {
        Part::Text(texts) if !text.trim().is_empty() => texts.push((text, false)),
        part => *part = Part::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(file: &str) -> Target {
        Target {
            file: file.to_owned(),
            part: Part::Whole,
        }
    }

    fn codex(tool: &str, tool_input: Value) -> ClaudeInput {
        ClaudeInput {
            hook_event_name: "PreToolUse".into(),
            session_id: Some("s".into()),
            cwd: Some("/repo".into()),
            tool_name: Some(tool.into()),
            tool_input: Some(tool_input),
        }
    }

    fn patch_files(patch: &str) -> Vec<String> {
        patch_targets(patch).into_iter().map(|t| t.file).collect()
    }

    #[test]
    fn a_patch_names_every_file_it_adds_updates_deletes_or_moves_to() {
        let patch = "*** Begin Patch\n\
                     *** Add File: src/new.rs\n\
                     +fn main() {}\n\
                     *** Update File: src/lib.rs\n\
                     *** Move to: src/core.rs\n\
                     @@ fn old()\n\
                     -old\n\
                     +new\n\
                     *** Delete File: /abs/gone.rs\n\
                     *** Update File: src/lib.rs\n\
                     *** End Patch\n";
        assert_eq!(
            patch_files(patch),
            ["src/new.rs", "src/lib.rs", "src/core.rs", "/abs/gone.rs"]
        );
        assert!(
            patch_targets(patch).iter().all(|t| t.part == Part::Whole),
            "added, moved (both ends) and deleted files are written whole"
        );
    }

    #[test]
    fn a_patch_update_is_placed_by_each_hunks_old_lines() {
        let patch = "*** Begin Patch\n\
                     *** Update File: src/a.rs\n\
                     @@ fn one()\n \
                     let x = 1;\n\
                     -x\n\
                     +x + 1\n\
                     @@\n \
                     fn two() {\n\
                     -    2\n\
                     +    3\n\
                     *** Update File: src/b.rs\n\
                     @@\n\
                     +appended\n\
                     *** End Patch\n";
        let targets = patch_targets(patch);
        assert_eq!(
            targets[0].part,
            Part::Text(vec![
                ("let x = 1;\nx".to_owned(), false),
                ("fn two() {\n    2".to_owned(), false)
            ])
        );
        assert_eq!(
            targets[1].part,
            Part::Whole,
            "an insertion with no context cannot be placed"
        );
    }

    #[test]
    fn gemini_and_copilot_edits_say_what_they_replace() {
        let gemini = |tool: &str, args: Value| {
            gemini_edit(&ClaudeInput {
                hook_event_name: "BeforeTool".into(),
                tool_name: Some(tool.into()),
                tool_input: Some(args),
                ..codex(tool, json!({}))
            })
            .map(|t| t.part)
        };
        assert_eq!(
            gemini(
                "replace",
                json!({"file_path": "a.py", "old_string": "x", "new_string": "y",
                       "expected_replacements": 3})
            ),
            Some(Part::Text(vec![("x".into(), true)]))
        );
        assert_eq!(
            gemini("write_file", json!({"file_path": "a.py", "content": "x"})),
            Some(Part::Whole)
        );
        let copilot = |tool: &str, args: Value| {
            copilot_edit(&CopilotInput {
                cwd: None,
                tool_name: Some(tool.into()),
                tool_args: Some(Value::String(args.to_string())),
            })
            .map(|t| t.part)
        };
        assert_eq!(
            copilot(
                "str_replace_editor",
                json!({"command": "str_replace", "path": "a.go", "old_str": "x", "new_str": "y"})
            ),
            Some(Part::Text(vec![("x".into(), false)]))
        );
        assert_eq!(
            copilot("create", json!({"path": "a.go", "file_text": "x"})),
            Some(Part::Whole)
        );
    }

    #[test]
    fn claude_code_edits_say_what_they_replace() {
        let input = |tool: &str, args: Value| ClaudeInput {
            tool_name: Some(tool.into()),
            tool_input: Some(args),
            ..codex(tool, json!({}))
        };
        let part = |tool: &str, args: Value| claude_edit(&input(tool, args)).map(|t| t.part);
        assert_eq!(
            part(
                "Edit",
                json!({"file_path": "a.rs", "old_string": "x", "new_string": "y"})
            ),
            Some(Part::Text(vec![("x".into(), false)]))
        );
        assert_eq!(
            part(
                "MultiEdit",
                json!({"file_path": "a.rs", "edits": [
                    {"old_string": "x", "new_string": "y"},
                    {"old_string": "z", "new_string": "w", "replace_all": true}]})
            ),
            Some(Part::Text(vec![("x".into(), false), ("z".into(), true)]))
        );
        assert_eq!(
            part("Write", json!({"file_path": "a.rs", "content": "x"})),
            Some(Part::Whole)
        );
        assert_eq!(
            part(
                "Edit",
                json!({"file_path": "a.rs", "old_string": "", "new_string": "y"})
            ),
            Some(Part::Whole),
            "an empty old text places nothing"
        );
        assert_eq!(
            part(
                "NotebookEdit",
                json!({"notebook_path": "n.ipynb", "cell_id": "c-1", "new_source": "x"})
            ),
            Some(Part::Cell("c-1".into()))
        );
        assert_eq!(
            part(
                "NotebookEdit",
                json!({"notebook_path": "n.ipynb", "cell_id": "c-1", "edit_mode": "insert"})
            ),
            Some(Part::Whole)
        );
        assert_eq!(part("Read", json!({"file_path": "a.rs"})), None);
    }

    #[test]
    fn a_patch_line_that_only_mentions_a_header_names_nothing() {
        let patch = "*** Begin Patch\n*** Update File: a.rs\n+// *** Add File: b.rs\n\
                     -*** Delete File: c.rs\n*** End Patch";
        assert_eq!(patch_files(patch), ["a.rs"]);
    }

    #[test]
    fn codex_apply_patch_calls_are_edits_and_other_tools_are_not() {
        let patch = "*** Begin Patch\n*** Update File: a.rs\n*** End Patch";
        let a = Some(vec![whole("a.rs")]);
        assert_eq!(
            codex_edit(&codex("apply_patch", json!({ "command": patch }))),
            a
        );
        assert_eq!(codex_edit(&codex("apply_patch", json!(patch))), a);
        assert_eq!(
            codex_edit(&codex("Bash", json!({ "command": patch }))),
            None
        );
        assert_eq!(
            codex_edit(&codex("apply_patch", json!({ "command": "" }))),
            None
        );
    }

    #[test]
    fn codex_events_are_read_and_answered_like_claude_codes() {
        let input = json!({
            "hook_event_name": "PreToolUse", "session_id": "abc", "cwd": "/repo",
            "tool_name": "apply_patch", "tool_use_id": "t", "turn_id": "u",
            "transcript_path": null, "model": "m", "permission_mode": "default",
            "tool_input": { "command": "*** Begin Patch\n*** Add File: x\n+1\n*** End Patch" },
        });
        let incoming = Client::Codex.parse(&input.to_string()).expect("parsed");
        assert_eq!(incoming.event, Event::Edit(vec![whole("x")]));
        assert_eq!(incoming.session.as_deref(), Some("codex:abc"));
        let answer: Value =
            serde_json::from_str(&Client::Codex.render(&Reply::Deny("held".into()))).expect("json");
        assert_eq!(
            answer,
            json!({ "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "held",
            }})
        );
    }
}
