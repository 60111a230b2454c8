//! `hook claude-code`: coordination enforced inside Claude Code, whether or not the AI
//! remembers to lock.
//!
//! Claude Code runs the command at its hook events with the event as JSON on stdin, and reads
//! the decision as JSON on stdout (<https://code.claude.com/docs/en/hooks>):
//! - `SessionStart`: registers a coordinator session for this Claude Code session (unless the
//!   AI's own MCP server already did), and tells the AI which one it is;
//! - `PreToolUse` of Edit, Write, MultiEdit, NotebookEdit: denies an edit of a file another
//!   live session holds, with a reason the AI can act on; with `--acquire`, locks the file for
//!   the editing session when it is free;
//! - `Stop` (the end of every reply): a heartbeat, so a session waiting for its person stays;
//! - `SessionEnd`: deregisters the session the hook registered, releasing its locks.
//!
//! Whatever is not an edit passes without a word. A failure (a database it cannot open, bad
//! input) exits non-zero, which Claude Code reports without blocking the edit: coordination
//! must not stop people from working when it is itself broken.

use serde::Deserialize;
use serde_json::{Value, json};

use super::table::{clock, countdown};
use super::workspace::{self, Checkout, GROUP_VAR, Me, NAME_VAR};
use super::{ClaudeCodeArgs, CliError};
use crate::clients;
use crate::coordinator::{Coordinator, LockRequest, Registration};
use crate::model::{Lock, LockType, Session};
use crate::paths;

/// The tools that write files, and the argument naming the file.
const EDITING_TOOLS: &[(&str, &str)] = &[
    ("Edit", "file_path"),
    ("Write", "file_path"),
    ("MultiEdit", "file_path"),
    ("NotebookEdit", "notebook_path"),
];

/// The fields of Claude Code's hook input that matter here; it sends more.
#[derive(Debug, Deserialize)]
struct HookInput {
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

/// Answers one hook event; the text is what Claude Code reads on stdout (empty: carry on).
pub fn run(
    coordinator: &Coordinator,
    args: &ClaudeCodeArgs,
    input: &str,
) -> Result<String, CliError> {
    let input: HookInput = serde_json::from_str(input).map_err(|e| {
        CliError::Usage(format!(
            "hook claude-code reads Claude Code's hook event as JSON on stdin: {e}"
        ))
    })?;
    let dir = input
        .cwd
        .clone()
        .or_else(|| workspace::var("CLAUDE_PROJECT_DIR"))
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .ok_or_else(|| CliError::Usage("no working directory in the hook input".into()))?;
    let checkout = Checkout::around(&dir);
    let client_ref = input
        .session_id
        .as_deref()
        .map(|id| format!("claude-code:{id}"));
    let hook = Hook {
        coordinator,
        args,
        checkout,
        client_ref,
        claude_session: input.session_id.clone().unwrap_or_default(),
    };
    match input.hook_event_name.as_str() {
        "SessionStart" => hook.session_start(),
        "PreToolUse" => hook.pre_tool_use(&input),
        "Stop" | "SubagentStop" => hook.heartbeat().map(|()| String::new()),
        "SessionEnd" => hook.session_end(),
        _ => Ok(String::new()),
    }
}

struct Hook<'a> {
    coordinator: &'a Coordinator,
    args: &'a ClaudeCodeArgs,
    checkout: Checkout,
    /// `claude-code:<session_id>`: how the hook's own session is found again.
    client_ref: Option<String>,
    claude_session: String,
}

impl Hook<'_> {
    fn me(&self) -> Result<Me, CliError> {
        workspace::identify(self.coordinator, &self.checkout, self.client_ref.as_deref())
    }

    /// The session this hook registered for the Claude Code session, if it is alive.
    fn hook_session<'m>(&self, me: &'m Me) -> Option<&'m Session> {
        me.own
            .iter()
            .find(|s| s.client_ref.is_some() && s.client_ref == self.client_ref)
    }

    fn session_start(&self) -> Result<String, CliError> {
        self.coordinator.sweep()?;
        let me = self.me()?;
        // The AI's own MCP server registered it already (a /clear or a resume): use that one.
        let session = match me.own.iter().rev().find(|s| s.client_ref.is_none()) {
            Some(session) => session.clone(),
            None => self.register(&me)?,
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
        let context = format!(
            "Session coordinator: this Claude Code session is '{}' (session_id {}) in project '{}'. \
             {others} An edit of a file another session holds is refused with who holds it. \
             {locking}; when you use the session-coordinator MCP tools, pass \
             session_id=\"{}\" instead of registering again.",
            session.name, session.session_id, session.project, session.session_id
        );
        Ok(answer(
            "SessionStart",
            json!({ "additionalContext": context }),
        ))
    }

    /// Registers, or continues, the hook's own session for this Claude Code session.
    fn register(&self, me: &Me) -> Result<Session, CliError> {
        let short: String = self.claude_session.chars().take(8).collect();
        let name = workspace::var(NAME_VAR).unwrap_or_else(|| format!("claude-{short}"));
        let previous = self.hook_session(me);
        let resume = match previous {
            Some(s) if s.name == name && s.project == me.project => Some(s.session_id.clone()),
            // Renamed or moved: end the old one rather than leave a twin behind.
            Some(s) => {
                self.coordinator.deregister(&s.session_id)?;
                None
            }
            None => None,
        };
        let registered = self.coordinator.register(
            Registration {
                name,
                project: me.project.clone(),
                branch: self.checkout.branch.clone(),
                working_directory: Some(self.checkout.root_text()),
                group: workspace::var(GROUP_VAR),
                wake: None,
                client_pid: clients::client_pid(),
                client_ref: self.client_ref.clone(),
            },
            resume.as_deref(),
        )?;
        Ok(registered.session)
    }

    fn heartbeat(&self) -> Result<(), CliError> {
        let me = self.me()?;
        if let Some(session) = self.hook_session(&me) {
            self.coordinator.heartbeat(&session.session_id)?;
        }
        Ok(())
    }

    fn session_end(&self) -> Result<String, CliError> {
        let me = self.me()?;
        if let Some(session) = self.hook_session(&me) {
            self.coordinator.deregister(&session.session_id)?;
        }
        Ok(String::new())
    }

    fn pre_tool_use(&self, input: &HookInput) -> Result<String, CliError> {
        let Some(file) = edited_file(input) else {
            return Ok(String::new());
        };
        // A file outside this checkout is no business of this project's sessions.
        let Ok(key) = paths::normalize(&file, Some(&self.checkout.root_text())) else {
            return Ok(String::new());
        };
        self.coordinator.sweep()?;
        let me = self.me()?;
        if let Some(session) = self.hook_session(&me) {
            self.coordinator.heartbeat(&session.session_id)?;
        }
        let blockers = self
            .coordinator
            .edit_blockers(&me.project, &me.own_ids(), &key, None)?;
        if !blockers.is_empty() {
            return Ok(deny(&self.refusal(&key, &blockers)));
        }
        if !self.args.acquire {
            return Ok(String::new());
        }
        let acting = match me.acting() {
            Some(session) => session.session_id.clone(),
            None => self.register(&me)?.session_id,
        };
        let outcome = self.coordinator.acquire_lock(LockRequest {
            ttl_seconds: Some(self.args.ttl),
            ..LockRequest::new(&acting, &key, LockType::Exclusive)
        })?;
        if !outcome.granted {
            let reason = outcome
                .reason
                .unwrap_or_else(|| format!("{key} could not be locked for this session"));
            return Ok(deny(&reason));
        }
        if outcome.renewed {
            return Ok(String::new());
        }
        let now = self.coordinator.now();
        let context = match (outcome.expires_at, outcome.fencing_token) {
            (Some(expires), Some(token)) => format!(
                "Session coordinator: {key} is now locked exclusively for you (fencing token \
                 {token}, until {}, {}); editing it again renews the lock. lock_release it when \
                 you are done with it.",
                clock(expires),
                countdown(now, expires)
            ),
            _ => format!("Session coordinator: {key} is now locked exclusively for you."),
        };
        // No permissionDecision: the person's own permission rules still apply to the edit.
        Ok(answer(
            "PreToolUse",
            json!({ "additionalContext": context }),
        ))
    }

    /// Why the edit is refused, and what the AI can do about it.
    fn refusal(&self, key: &str, blockers: &[Lock]) -> String {
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
        let holder = &blockers[0].holder_name;
        format!(
            "{}. Do not edit it now: message them (message_send to_session='{holder}'), or queue \
             with lock_acquire(file_path='{key}', queue=true) and edit once the lock is yours.",
            reasons.join("; ")
        )
    }
}

/// The file an editing tool call writes, if this is one.
fn edited_file(input: &HookInput) -> Option<String> {
    let tool = input.tool_name.as_deref()?;
    let (_, argument) = EDITING_TOOLS.iter().find(|(name, _)| *name == tool)?;
    let path = input.tool_input.as_ref()?.get(*argument)?.as_str()?;
    Some(path.to_owned())
}

/// Claude Code's hook output: `hookSpecificOutput` for the event, as one JSON line.
fn answer(event: &str, mut fields: Value) -> String {
    if let Some(object) = fields.as_object_mut() {
        object.insert("hookEventName".into(), json!(event));
    }
    format!("{}\n", json!({ "hookSpecificOutput": fields }))
}

fn deny(reason: &str) -> String {
    answer(
        "PreToolUse",
        json!({ "permissionDecision": "deny", "permissionDecisionReason": reason }),
    )
}
