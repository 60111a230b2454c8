//! `hook claude-code`, `copilot`, `gemini-cli` and `codex`: coordination enforced inside the AI
//! client, whether or not the AI remembers to lock.
//!
//! The client runs the command at its hook events with the event as JSON on stdin, and reads a
//! decision as JSON on stdout. Whichever client sends it, an event means one of:
//! - a session starts: register a coordinator session for it (unless the AI's own MCP server
//!   already did), and tell the AI which one it is;
//! - a tool is about to write a file: deny it when another live session holds the file, with a
//!   reason the AI can act on; with `--acquire`, lock the file for the editing session when free;
//! - a reply ended: a heartbeat, so a session waiting for its person stays (for up to one
//!   session timeout, like any silent session);
//! - the session ends: deregister the session the hook registered, releasing its locks.
//!
//! Claude Code (<https://code.claude.com/docs/en/hooks>) names the event in its input and reads
//! `hookSpecificOutput`; Gemini CLI (`BeforeTool`, ...) sends the same fields and reads a denial
//! as a top-level `decision`; GitHub Copilot CLI (`.github/hooks/*.json`) runs one command per event,
//! so the event is an argument, and reads `permissionDecision` at the top level; Codex CLI
//! (`hooks.json`) sends and reads Claude Code's fields, but edits through `apply_patch`, whose
//! patch text (`tool_input.command`) names every file it writes. Whatever is not
//! an edit passes without a word. A failure (a database it cannot open, bad input) exits
//! non-zero, which the clients report without blocking the edit: coordination must not stop
//! people from working when it is itself broken.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::CliError;
use super::table::{clock, countdown};
use super::workspace::{self, GROUP_VAR, Me, NAME_VAR};
use crate::checkout::{self, Checkout};
use crate::clients;
use crate::coordinator::{Claim, Coordinator, LockRequest, Registration};
use crate::flags::{CopilotEvent, HookArgs};
use crate::model::{Lock, LockType, Session};
use crate::paths;

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
enum Event {
    Start,
    /// A tool is about to write these files (one, but for a Codex patch).
    Edit(Vec<String>),
    Alive,
    End,
    /// Anything else: no answer.
    Other,
}

/// One hook event: what it asks, where, and the client's id for its session.
#[derive(Debug)]
struct Incoming {
    event: Event,
    cwd: Option<String>,
    session: Option<String>,
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
    fn parse(self, input: &str) -> Result<Incoming, CliError> {
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
                        claude_edit(&input).map_or(Event::Other, |file| Event::Edit(vec![file]))
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
                        gemini_edit(&input).map_or(Event::Other, |file| Event::Edit(vec![file]))
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
                        copilot_edit(&input).map_or(Event::Other, |file| Event::Edit(vec![file]))
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
    fn session_name(self, session: &str) -> String {
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
    fn render(self, reply: &Reply) -> String {
        let (event, fields) = match (self, reply) {
            (_, Reply::Nothing) => return String::new(),
            // Codex reads Claude Code's answers.
            (Client::ClaudeCode | Client::Codex, Reply::Started(context)) => {
                ("SessionStart", json!({ "additionalContext": context }))
            }
            // No permissionDecision: the person's own permission rules still apply to the edit.
            (Client::ClaudeCode | Client::Codex, Reply::Locked(context)) => {
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
            (Client::Gemini, Reply::Locked(_)) => return String::new(),
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
enum Reply {
    Nothing,
    /// A session started: who it is in the coordinator.
    Started(String),
    /// The edit goes on, and the file is now locked for the session.
    Locked(String),
    Deny(String),
}

/// Answers one hook event; the text is what the client reads on stdout (empty: carry on).
pub fn run(
    coordinator: &Coordinator,
    client: Client,
    args: &HookArgs,
    input: &str,
) -> Result<String, CliError> {
    let incoming = client.parse(input)?;
    let cwd = incoming
        .cwd
        .clone()
        .or_else(|| workspace::var("CLAUDE_PROJECT_DIR"))
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .ok_or_else(|| CliError::Usage("no working directory in the hook input".into()))?;
    let hook = Hook {
        coordinator,
        client,
        args,
        client_ref: incoming.session,
    };
    let reply = match &incoming.event {
        Event::Start => hook.session_start(&Checkout::around(&cwd))?,
        Event::Edit(files) => hook.edits(files, &cwd)?,
        Event::Alive => hook.heartbeat(&Checkout::around(&cwd))?,
        Event::End => hook.session_end(&Checkout::around(&cwd))?,
        Event::Other => Reply::Nothing,
    };
    Ok(client.render(&reply))
}

struct Hook<'a> {
    coordinator: &'a Coordinator,
    client: Client,
    args: &'a HookArgs,
    /// The client's id for its session (`claude-code:<session_id>`): how the hook's own
    /// coordinator session is found again. Without it the hook registers nothing.
    client_ref: Option<String>,
}

impl Hook<'_> {
    fn me(&self, checkout: &Checkout) -> Result<Me, CliError> {
        workspace::identify(self.coordinator, checkout, self.client_ref.as_deref())
    }

    fn session_start(&self, checkout: &Checkout) -> Result<Reply, CliError> {
        let me = self.me(checkout)?;
        // The AI's own MCP server registered it already (a /clear or a resume): use that one.
        let session = match me.ai_session() {
            Some(session) => session.clone(),
            None => match self.register(&me, checkout)? {
                Some(session) => session,
                None => return Ok(Reply::Nothing),
            },
        };
        let others = self
            .coordinator
            .list_sessions(None, Some(&session.project), None, None)?
            .sessions
            .into_iter()
            .filter(|s| s.session.session_id != session.session_id)
            .map(|s| match s.session.branch {
                Some(branch) => format!("{} (on {branch})", s.session.name),
                None => s.session.name,
            })
            .collect::<Vec<_>>();
        let others = if others.is_empty() {
            "No other session is active in it.".to_owned()
        } else {
            format!("Also active in it: {}.", others.join(", "))
        };
        let locking = if self.args.acquire {
            "Files you edit are locked for you"
        } else {
            "Lock files before editing them (lock_acquire)"
        };
        Ok(Reply::Started(format!(
            "Session coordinator: this session is '{}' (session_id {}) in project '{}'. \
             {others} An edit of a file another session holds is refused with who holds it. \
             {locking}; when you use the session-coordinator MCP tools, pass \
             session_id=\"{}\" instead of registering again.",
            session.name, session.session_id, session.project, session.session_id
        )))
    }

    /// Registers, or continues, the hook's own session for the client's session; `None` when
    /// the client names no session to find it by again.
    fn register(&self, me: &Me, checkout: &Checkout) -> Result<Option<Session>, CliError> {
        let Some(client_ref) = &self.client_ref else {
            return Ok(None);
        };
        let name = workspace::var(NAME_VAR).unwrap_or_else(|| self.client.session_name(client_ref));
        let registered = self.coordinator.register(
            Registration {
                name,
                project: me.project.clone(),
                branch: checkout.branch.clone(),
                working_directory: Some(checkout.root_text()),
                group: workspace::var(GROUP_VAR),
                wake: None,
                client_pid: clients::client_pid(),
                client_ref: Some(client_ref.clone()),
                token_hash: None,
            },
            Claim::default(),
        )?;
        Ok(Some(registered.session))
    }

    /// Keeps the hook's session alive between replies, for up to one session timeout.
    fn heartbeat(&self, checkout: &Checkout) -> Result<Reply, CliError> {
        let me = self.me(checkout)?;
        if let Some(session) = me.hook.as_ref() {
            self.coordinator.heartbeat(&session.session_id)?;
        }
        Ok(Reply::Nothing)
    }

    fn session_end(&self, checkout: &Checkout) -> Result<Reply, CliError> {
        let me = self.me(checkout)?;
        if let Some(session) = me.hook.as_ref() {
            self.coordinator.deregister(&session.session_id)?;
        }
        Ok(Reply::Nothing)
    }

    /// Checks every file first, so that a patch refused for one file locks none of the others;
    /// then, with `--acquire`, locks each.
    fn edits(&self, files: &[String], cwd: &Path) -> Result<Reply, CliError> {
        for file in files {
            if let Reply::Deny(reason) = self.edit(Path::new(file), cwd, false)? {
                return Ok(Reply::Deny(reason));
            }
        }
        let mut locked = Vec::new();
        for file in files {
            match self.edit(Path::new(file), cwd, self.args.acquire)? {
                Reply::Locked(context) => locked.push(context),
                Reply::Deny(reason) => return Ok(Reply::Deny(reason)),
                _ => {}
            }
        }
        Ok(if locked.is_empty() {
            Reply::Nothing
        } else {
            Reply::Locked(locked.join(" "))
        })
    }

    fn edit(&self, file: &Path, cwd: &Path, acquire: bool) -> Result<Reply, CliError> {
        // Keys are relative to the checkout around the file itself (the session may have
        // `cd`-ed elsewhere); a file outside any coordinated project is no one's business.
        let Some((checkout, inside)) = checkout::locate(file, cwd) else {
            return Ok(Reply::Nothing);
        };
        let Ok(key) = paths::normalize(&inside, None) else {
            return Ok(Reply::Nothing);
        };
        let me = self.me(&checkout)?;
        if me.guessed {
            return Ok(Reply::Nothing);
        }
        if let Some(session) = &me.hook {
            self.coordinator.heartbeat(&session.session_id)?;
        }
        let check = self
            .coordinator
            .edit_check(&me.project, &me.own_ids(), &key)?;
        if let Some(first) = check.blockers.first() {
            return Ok(Reply::Deny(self.refusal(&key, first, &check.blockers)));
        }
        // One of the client's sessions already holds it exclusively (or a directory around it):
        // the edit is covered, and acquiring as another of them would collide with it.
        let covered = check
            .own
            .iter()
            .any(|l| l.lock_type == LockType::Exclusive && l.file_path != key);
        if !acquire || covered {
            return Ok(Reply::Nothing);
        }
        let now = self.coordinator.now();
        let ttl = Duration::from_secs(self.args.ttl);
        // Renew (or upgrade) as the session holding this very key, unless that would shorten
        // a longer lock it took itself; else act as the AI.
        let holder = check.own.iter().find(|l| l.file_path == key);
        let acting = match (holder, me.acting(), &me.hook) {
            (Some(lock), _, _)
                if lock.lock_type == LockType::Exclusive && lock.expires_at >= now.plus(ttl) =>
            {
                return Ok(Reply::Nothing);
            }
            (Some(lock), _, _) => lock.session_id.clone(),
            (None, Some(session), _) => session.session_id.clone(),
            // The hook's session works in another project: moving it would drop its locks.
            (None, None, Some(_)) => return Ok(Reply::Nothing),
            (None, None, None) => match self.register(&me, &checkout)? {
                Some(session) => session.session_id,
                None => return Ok(Reply::Nothing),
            },
        };
        let outcome = self.coordinator.acquire_lock(LockRequest {
            ttl_seconds: Some(self.args.ttl),
            ..LockRequest::new(&acting, &key, LockType::Exclusive)
        })?;
        // Not granted although no live session holds it: a silent holder not swept yet, or a
        // request queued first. Only live holders refuse an edit (invariant 16).
        if !outcome.granted || outcome.renewed {
            return Ok(Reply::Nothing);
        }
        Ok(Reply::Locked(
            match (outcome.expires_at, outcome.fencing_token) {
                (Some(expires), Some(token)) => format!(
                    "Session coordinator: {key} is now locked exclusively for you (fencing token \
                 {token}, until {}, {}); editing it again renews the lock. lock_release it when \
                 you are done with it.",
                    clock(expires),
                    countdown(now, expires)
                ),
                _ => format!("Session coordinator: {key} is now locked exclusively for you."),
            },
        ))
    }

    /// Why the edit is refused, and what the AI can do about it.
    fn refusal(&self, key: &str, first: &Lock, blockers: &[Lock]) -> String {
        let now = self.coordinator.now();
        let mut reasons = Vec::new();
        for lock in blockers {
            let what = if lock.file_path == key {
                key.to_owned()
            } else {
                format!("{} (which covers {key})", lock.file_path)
            };
            let (how, why) = match lock.lock_type {
                LockType::Shared => ("shared", ": they rely on it not changing"),
                _ => ("exclusively", ""),
            };
            reasons.push(format!(
                "{what} is locked {how} by '{}' until {} ({}){why}",
                lock.holder_name,
                clock(lock.expires_at),
                countdown(now, lock.expires_at)
            ));
        }
        let holder = &first.holder_name;
        format!(
            "{}. Do not edit it now: message them (message_send to_session='{holder}'), or queue \
             with lock_acquire(file_path='{key}', queue=true) and edit once the lock is yours.",
            reasons.join("; ")
        )
    }
}

/// The file a Claude Code tool call writes, if it is an editing one.
fn claude_edit(input: &ClaudeInput) -> Option<String> {
    let tool = input.tool_name.as_deref()?;
    let (_, argument) = CLAUDE_EDITING_TOOLS
        .iter()
        .find(|(name, _)| *name == tool)?;
    let path = input.tool_input.as_ref()?.get(*argument)?.as_str()?;
    Some(path.to_owned())
}

/// The file a Gemini CLI tool call writes, if it is an editing one.
fn gemini_edit(input: &ClaudeInput) -> Option<String> {
    let tool = input.tool_name.as_deref()?;
    if !GEMINI_EDITING_TOOLS.contains(&tool) {
        return None;
    }
    let path = input.tool_input.as_ref()?.get("file_path")?.as_str()?;
    Some(path.to_owned())
}

/// The file a Copilot CLI tool call writes, if it is an editing one.
fn copilot_edit(input: &CopilotInput) -> Option<String> {
    let tool = input.tool_name.as_deref()?;
    if !COPILOT_EDITING_TOOLS.contains(&tool) {
        return None;
    }
    let args = match input.tool_args.as_ref()? {
        Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    let path = args
        .get("path")
        .or_else(|| args.get("file_path"))?
        .as_str()?;
    Some(path.to_owned())
}

/// The files a Codex `apply_patch` call writes: its patch text comes as `tool_input.command`.
fn codex_edit(input: &ClaudeInput) -> Option<Vec<String>> {
    if input.tool_name.as_deref()? != "apply_patch" {
        return None;
    }
    let tool_input = input.tool_input.as_ref()?;
    let patch = match tool_input {
        Value::String(text) => text.as_str(),
        other => other.get("command")?.as_str()?,
    };
    let files = patch_files(patch);
    (!files.is_empty()).then_some(files)
}

/// Every path a patch in Codex's `apply_patch` format adds, updates, deletes or moves to.
fn patch_files(patch: &str) -> Vec<String> {
    const HEADERS: &[&str] = &[
        "*** Add File: ",
        "*** Update File: ",
        "*** Delete File: ",
        "*** Move to: ",
    ];
    let mut files: Vec<String> = Vec::new();
    for line in patch.lines() {
        let Some(path) = HEADERS.iter().find_map(|h| line.strip_prefix(h)) else {
            continue;
        };
        let path = path.trim();
        if !path.is_empty() && !files.iter().any(|f| f == path) {
            files.push(path.to_owned());
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codex(tool: &str, tool_input: Value) -> ClaudeInput {
        ClaudeInput {
            hook_event_name: "PreToolUse".into(),
            session_id: Some("s".into()),
            cwd: Some("/repo".into()),
            tool_name: Some(tool.into()),
            tool_input: Some(tool_input),
        }
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
        assert_eq!(
            codex_edit(&codex("apply_patch", json!({ "command": patch }))),
            Some(vec!["a.rs".to_owned()])
        );
        assert_eq!(
            codex_edit(&codex("apply_patch", json!(patch))),
            Some(vec!["a.rs".to_owned()])
        );
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
        assert_eq!(incoming.event, Event::Edit(vec!["x".to_owned()]));
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
