//! `hook claude-code`, `copilot`, `gemini-cli` and `codex`: coordination enforced inside the AI
//! client, whether or not the AI remembers to lock.
//!
//! The client runs the command at its hook events with the event as JSON on stdin, and reads a
//! decision as JSON on stdout. Whichever client sends it, an event means one of:
//! - a session starts: register a coordinator session for it (unless the AI's own MCP server
//!   already did), and tell the AI which one it is;
//! - a tool is about to write a file: deny it when another live session holds what the edit
//!   changes (the functions and classes it touches, or the whole file), with a reason the AI can
//!   act on; with `--acquire`, lock that for the editing session until the change is committed,
//!   and warn of the same code changed in another worktree (see `coordinator/changes.rs`);
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

mod input;
pub(super) mod words;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use input::Client;
use input::{Event, Part, Reply, Target};

use super::CliError;
use super::workspace::{self, GROUP_VAR, Me, NAME_VAR};
use crate::checkout::{self, Checkout};
use crate::clients;
use crate::coordinator::{
    Claim, Coordinator, EditCheck, EditLock, LockRequest, Registration, Worktree, settles,
};
use crate::diffs;
use crate::flags::{Hold, HookArgs, LockScope};
use crate::model::{LockType, Session};
use crate::paths;
use crate::patterns::{self, SYMBOL_SEPARATOR};
use crate::symbols;

/// What locking one key for an edit came to.
enum Locked {
    /// Granted to this session now, with what to tell the AI.
    Now(String, String),
    /// Held already (or covered), or left to a silent holder: nothing to say.
    Already,
    /// Another live session took it since the check: the edit is refused with this reason.
    Refused(String),
}

/// One file an edit writes, as the hook sees it.
struct Edit {
    checkout: Checkout,
    me: Me,
    /// What it locks: the file, or the items in it the edit touches.
    keys: Vec<String>,
    /// What stands on each key, in the same order, once checked.
    checks: Vec<EditCheck>,
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
            match (self.args.scope, self.args.hold) {
                (LockScope::Symbol, Hold::Commit) => {
                    "The functions and classes you edit are locked for you until you commit them"
                }
                (LockScope::Symbol, Hold::Ttl) => {
                    "The functions and classes you edit are locked for you"
                }
                (LockScope::File, Hold::Commit) => {
                    "Files you edit are locked for you until you commit them"
                }
                (LockScope::File, Hold::Ttl) => "Files you edit are locked for you",
            }
        } else {
            "Lock files before editing them (lock_acquire)"
        };
        Ok(Reply::Started(format!(
            "Session coordinator: this session is '{}' (session_id {}) in project '{}'. \
             {others} An edit of code another session holds is refused with who holds it. \
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
                who: None,
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

    /// Checks every key of every file first, so that an edit refused anywhere locks nothing;
    /// then, with `--acquire`, locks each key, records the change, and tells the AI who else
    /// changed the same code in another worktree.
    fn edits(&self, targets: &[Target], cwd: &Path) -> Result<Reply, CliError> {
        let mut edits = Vec::new();
        for target in targets {
            // Keys are relative to the checkout around the file itself (the session may have
            // `cd`-ed elsewhere); a file outside any coordinated project is no one's business.
            let Some((checkout, inside)) = checkout::locate(Path::new(&target.file), cwd) else {
                continue;
            };
            let Ok(file) = paths::normalize(&inside, None) else {
                continue;
            };
            let me = self.me(&checkout)?;
            if me.guessed {
                continue;
            }
            if let Some(session) = &me.hook {
                self.coordinator.heartbeat(&session.session_id)?;
            }
            let keys = self.keys(&checkout, &file, &target.part);
            edits.push(Edit {
                checkout,
                me,
                keys,
                checks: Vec::new(),
            });
        }
        for edit in &mut edits {
            for key in &edit.keys {
                let check = self.check(edit, key)?;
                if let Some(first) = check.blockers.first() {
                    return Ok(Reply::Deny(words::refusal(
                        key,
                        first,
                        &check.blockers,
                        self.coordinator.now(),
                    )));
                }
                edit.checks.push(check);
            }
        }
        let mut notes = Vec::new();
        let mut granted: Vec<(String, String)> = Vec::new();
        let mut acting = Vec::new();
        for edit in &edits {
            let session = self.acting(edit)?;
            if let (Some(session), true) = (&session, self.args.acquire) {
                for (key, check) in edit.keys.iter().zip(&edit.checks) {
                    match self.lock(edit, session, key, check)? {
                        Locked::Now(holder, note) => {
                            granted.push((holder, key.clone()));
                            notes.push(note);
                        }
                        Locked::Already => {}
                        Locked::Refused(reason) => {
                            // Refused anywhere, the edit locks nothing.
                            for (holder, key) in &granted {
                                self.coordinator.release_lock(holder, key)?;
                            }
                            return Ok(Reply::Deny(reason));
                        }
                    }
                }
            }
            acting.push(session);
        }
        for (edit, session) in edits.iter().zip(&acting) {
            let root = edit.checkout.root_text();
            if let Some(session) = session {
                self.coordinator.record_changes(
                    session,
                    &edit.keys,
                    Worktree {
                        root: &root,
                        branch: edit.checkout.branch.as_deref(),
                    },
                )?;
            }
            let elsewhere = self.coordinator.changes_elsewhere(
                &edit.me.project,
                &edit.me.own_ids(),
                &edit.keys,
                &root,
            )?;
            notes.extend(elsewhere.iter().map(|change| {
                format!(
                    "Session coordinator: your edit goes on, but {}",
                    words::elsewhere(change)
                )
            }));
        }
        Ok(if notes.is_empty() {
            Reply::Nothing
        } else {
            Reply::Note(notes.join(" "))
        })
    }

    /// The keys an edit of `file` locks: the named items it touches, or the whole file when
    /// it cannot be placed in any (a new file, a rewrite, an unknown language, text outside
    /// every item, text not found).
    fn keys(&self, checkout: &Checkout, file: &str, part: &Part) -> Vec<String> {
        let whole = vec![file.to_owned()];
        if self.args.scope == LockScope::File {
            return whole;
        }
        let texts = match part {
            Part::Whole => return whole,
            Part::Cell(id) => return vec![format!("{file}{SYMBOL_SEPARATOR}{id}")],
            Part::Text(texts) => texts,
        };
        let Some(language) = symbols::Language::of(file) else {
            return whole;
        };
        let Ok(source) = std::fs::read(checkout.root.join(file)) else {
            return whole;
        };
        let source = String::from_utf8_lossy(&source);
        let mut ranges = Vec::new();
        for (old, every) in texts {
            match symbols::find(&source, old, *every) {
                Some(found) => ranges.extend(found),
                None => return whole,
            }
        }
        match symbols::touched(language, &source, &ranges) {
            Some(names) if !names.is_empty() => names
                .into_iter()
                .map(|name| format!("{file}{SYMBOL_SEPARATOR}{name}"))
                .collect(),
            _ => whole,
        }
    }

    /// What stands on an edit of `key`, after releasing the edit locks of other sessions whose
    /// change is no longer in their worktree (committed without the guard, or undone).
    fn check(&self, edit: &Edit, key: &str) -> Result<EditCheck, CliError> {
        let root = edit.checkout.root_text();
        let look = || {
            self.coordinator
                .edit_check(&edit.me.project, &edit.me.own_ids(), key, Some(&root))
        };
        let check = look()?;
        let now = self.coordinator.now();
        let mut settled = false;
        for lock in check.blockers.iter().filter(|l| settles(l, now)) {
            let Some(worktree) = lock.worktree.as_deref() else {
                continue;
            };
            let file = patterns::file_of(&lock.file_path);
            let Ok(touch) = diffs::worktree_touch(Path::new(worktree), file) else {
                continue;
            };
            let changed = touch.keys(file);
            if !changed
                .iter()
                .any(|k| patterns::overlaps(k, &lock.file_path))
            {
                settled |= self.coordinator.release_settled(lock)?;
            }
        }
        Ok(if settled { look()? } else { check })
    }

    /// The session an edit is made as: the AI's own, else the hook's own in this project,
    /// else (with `--acquire`) one the hook registers for the client's session.
    fn acting(&self, edit: &Edit) -> Result<Option<String>, CliError> {
        if let Some(session) = edit.me.acting() {
            return Ok(Some(session.session_id.clone()));
        }
        if edit.me.hook.is_some() || !self.args.acquire {
            // The hook's session works in another project: moving it would drop its locks.
            return Ok(None);
        }
        Ok(self
            .register(&edit.me, &edit.checkout)?
            .map(|session| session.session_id))
    }

    /// Locks `key` for the edit as `acting` (or as the own session already holding it): a
    /// note on what is now locked, nothing to say, or a refusal when another hook took the key
    /// between the check and this grant.
    fn lock(
        &self,
        edit: &Edit,
        acting: &str,
        key: &str,
        check: &EditCheck,
    ) -> Result<Locked, CliError> {
        // One of the client's sessions already holds it exclusively (or a file, directory or
        // item around it): the edit is covered, and acquiring as another of them would collide.
        let covered = check.own.iter().any(|l| {
            l.lock_type == LockType::Exclusive
                && l.file_path != key
                && patterns::covers(&l.file_path, key)
        });
        if covered {
            return Ok(Locked::Already);
        }
        let now = self.coordinator.now();
        // Outside git nothing is ever committed: there the lock lasts its TTL.
        let until_commit = self.args.hold == Hold::Commit && edit.checkout.is_git();
        let ttl = Duration::from_secs(self.args.ttl);
        // Renew (or upgrade) as the session holding this very key, unless that would shorten
        // a longer lock it took itself.
        let holder = check.own.iter().find(|l| l.file_path == key);
        let session = match holder {
            // A lock the AI took itself with lock_acquire keeps its own rules.
            Some(lock)
                if until_commit
                    && lock.lock_type == LockType::Exclusive
                    && lock.last_edit_at.is_none() =>
            {
                return Ok(Locked::Already);
            }
            Some(lock)
                if !until_commit
                    && lock.lock_type == LockType::Exclusive
                    && lock.expires_at >= now.plus(ttl) =>
            {
                return Ok(Locked::Already);
            }
            Some(lock) => lock.session_id.clone(),
            None => acting.to_owned(),
        };
        let outcome = self.coordinator.acquire_lock(LockRequest {
            ttl_seconds: Some(self.args.ttl),
            edit: Some(EditLock {
                worktree: edit.checkout.root_text(),
                until_commit,
            }),
            ..LockRequest::new(&session, key, LockType::Exclusive)
        })?;
        if outcome.renewed {
            return Ok(Locked::Already);
        }
        if outcome.granted {
            return Ok(Locked::Now(session, words::locked(key, &outcome, now)));
        }
        // Not granted: another hook may have taken the key since the check, and then the edit
        // must not go on. Otherwise it is a silent holder not swept yet, or a request queued
        // first: only live holders refuse an edit (invariant 16).
        let again = self.check(edit, key)?;
        Ok(match again.blockers.first() {
            Some(first) => Locked::Refused(words::refusal(key, first, &again.blockers, now)),
            None => Locked::Already,
        })
    }
}
