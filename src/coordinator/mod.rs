//! The coordination rules, over the store and independent of any protocol.
//!
//! [`Coordinator`] is what every adapter calls: the MCP tools, the command line and its hooks,
//! the dashboard's HTTP API, the webhook deliverer. Each public method is one transaction.
//! Methods that act for a session take its id, refuse an unknown one, and count the call as a
//! heartbeat; methods that only look take an optional `viewer` whose project is the default
//! scope.
//!
//! The rules themselves (what blocks a lock request in `rule.rs`, conflict severities in
//! `conflicts.rs`) are pure functions over plain values, tested without a database.
//!
//! Answers and errors are sentences for the agents and people who read them, and they may name
//! the product's tools and their arguments ("lock_release withdraws the request", "wait for it
//! with wait_seconds"): the 20 tool names of the original contract are the product's
//! vocabulary, which agents also meet in the hooks' refusals and the commands' output, whatever
//! the transport. Nothing else of MCP enters this layer: no rmcp types, no JSON-RPC, no
//! transport; the adapters turn answers into their protocol.

mod changes;
mod conflicts;
mod context;
mod events;
mod guard;
mod intents;
mod locks;
mod messages;
mod operator;
mod queue;
mod rule;
mod sessions;
mod tally;
mod tokens;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

pub use changes::{Worktree, settles};
pub use conflicts::{Conflict, ConflictQuery, ConflictReport, StaleBase};
pub use context::{ContextDeleted, ContextList, ContextShared, NewContext};
use events::Occurrence;
pub use events::{Due, Event, EventKind};
pub use guard::{CommitCheck, EditCheck};
pub use intents::Announced;
pub use intents::{IntentCleared, IntentList, IntentListQuery, IntentRequest, IntentUpdated};
pub use locks::{
    EditLock, LockList, LockListQuery, LockOutcome, LockRequest, LockStatus, MAX_TTL, MAX_WAIT,
    Released,
};
pub use messages::{Inbox, InboxQuery, MarkedRead, Outgoing, Sender, Sent};
pub use operator::{Contested, Diagnosis, ForceReleased, Overview, Queued, SessionState, Toucher};
pub use queue::{LockDecision, Notifier, Observer, SessionLocks, Silent};
pub use sessions::{
    Claim, Deregistered, Heartbeat, Peer, Registered, Registration, SessionDetails, SessionList,
};
pub use tally::Tally;
pub use tokens::{ACCESS_TOKEN_PREFIX, Holder, IssuedToken};

use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::model::{Lock, Session};
use crate::paths;
use crate::patterns::{self, RESOURCE_PREFIX};
use crate::store::{self, OnWake, ReadTx, Store, WriteTx};

/// Longest name, project or branch, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest intent target or description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4_000;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16_000;
/// Longest shared context entry, in characters.
pub const MAX_CONTEXT_CHARS: usize = 32_000;
/// Most paths in one call.
pub const MAX_FILES: usize = 200;

/// A read-only call refreshes its session's heartbeat only when the last one is older than
/// this, so reads stay reads; writes refresh it in their own transaction for free.
const HEARTBEAT_RESOLUTION: Duration = Duration::from_secs(1);

/// Completed and abandoned intents are kept this long for the record, then swept.
const FINISHED_INTENT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Lock events are kept this long, for replaying and checking the history.
const LOCK_EVENT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a committed change waits for its branch to be merged before it is forgotten: a
/// branch left this long is abandoned, or merged where no guard saw it.
const CHANGE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct Coordinator {
    store: Store,
    clock: Arc<dyn Clock>,
    session_timeout: Duration,
    notifier: Arc<dyn Notifier>,
    /// Set once by a server that counts what it decides (`/metrics`).
    observer: OnceLock<Arc<dyn Observer>>,
    /// The machine this process runs on, recorded beside the client process ids of the
    /// sessions it registers: a shared database holds other machines' process ids too.
    machine: String,
}

/// Unread mail, piggybacked on every answer to a session that has some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Unread {
    /// Unread messages in the session's inbox.
    pub count: i64,
    /// How many of them are urgent.
    pub urgent: i64,
}

/// What an answer to a session carries besides its result.
#[derive(Debug, Default)]
pub struct News {
    pub unread: Option<Unread>,
    pub granted: Vec<Lock>,
}

/// What one sweep removed.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Sessions removed for missing heartbeats (their locks and intents went with them).
    pub stale_sessions: Vec<Session>,
    pub expired_locks: usize,
    pub finished_intents: usize,
}

impl Coordinator {
    /// `machine` names the machine this process runs on (the binary passes
    /// `platform::machine()`); the coordinator is told rather than reading the host itself, so
    /// the rules below the adapters never touch the environment.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        session_timeout: Duration,
        machine: String,
    ) -> Self {
        Self {
            store,
            clock,
            session_timeout,
            notifier: Arc::new(Silent),
            observer: OnceLock::new(),
            machine,
        }
    }

    /// Calls `on_wake` with the wake address of every grant and message committed on any
    /// machine (`None` after a gap in listening); see [`Store::listen_for_wakes`].
    pub fn listen_for_wakes(&self, on_wake: OnWake) -> bool {
        self.store.listen_for_wakes(on_wake)
    }

    /// Tells `observer` what this coordinator decides from now on; only the first one set
    /// is told.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    /// Wakes waiting processes through `notifier` when their queued requests are granted.
    pub fn with_notifier(self, notifier: Arc<dyn Notifier>) -> Self {
        Self { notifier, ..self }
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The coordinator's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sessions whose last heartbeat is before this are stale.
    fn alive_since(&self, now: Timestamp) -> Timestamp {
        now.minus(self.session_timeout)
    }

    /// The session a write acts for, with its heartbeat refreshed in the same transaction when
    /// older than [`HEARTBEAT_RESOLUTION`]: rewriting the session row and its index on every
    /// call cost each write a fifth of its time, for a precision nothing needs.
    fn acting(tx: &WriteTx<'_>, session_id: &str, now: Timestamp) -> Result<Session> {
        match tx.session(session_id)? {
            Some(session) if !heartbeat_due(&session, now) => Ok(session),
            Some(_) => tx
                .touch_session(session_id, now)?
                .ok_or_else(|| Error::unknown_session(session_id)),
            None => Err(Error::unknown_session(session_id)),
        }
    }

    /// Runs a read for an optional viewing session, then records the call as its heartbeat
    /// when the last one is older than [`HEARTBEAT_RESOLUTION`].
    fn look<T>(
        &self,
        viewer: Option<&str>,
        work: impl FnOnce(&ReadTx<'_>, Option<&Session>, Timestamp) -> Result<T>,
    ) -> Result<T> {
        let now = self.now();
        let (value, touch) = self.store.read(|tx| {
            let session = match viewer {
                Some(id) => Some(tx.session(id)?.ok_or_else(|| Error::unknown_session(id))?),
                None => None,
            };
            let touch = session.as_ref().is_some_and(|s| heartbeat_due(s, now));
            Ok::<_, Error>((work(tx, session.as_ref(), now)?, touch))
        })?;
        if let (true, Some(id)) = (touch, viewer) {
            self.store.write(|tx| tx.touch_session(id, now).map(drop))?;
        }
        Ok(value)
    }

    /// What an answer to `session_id` carries besides its result: its unread mail, and the
    /// locks granted to it from the queue that it has not been told about (telling it now
    /// marks them reported). One look; a write only when there is a grant to report.
    pub fn news(&self, session_id: &str) -> Result<News> {
        let now = self.now();
        let ((count, urgent), granted) = self.store.read(|tx| {
            Ok::<_, Error>((
                tx.unread(session_id)?,
                tx.unreported_locks(session_id, now)?,
            ))
        })?;
        // Taken and marked in one transaction, so a grant committed since the look is never
        // marked unseen.
        let granted = if granted.is_empty() {
            granted
        } else {
            self.store.write(|tx| {
                let locks = tx.unreported_locks(session_id, now)?;
                tx.mark_locks_reported(session_id)?;
                Ok::<_, Error>(locks)
            })?
        };
        Ok(News {
            unread: (count > 0).then_some(Unread { count, urgent }),
            granted,
        })
    }

    /// See [`Store::checkpoint`].
    pub fn checkpoint(&self) -> Result<()> {
        Ok(self.store.checkpoint()?)
    }

    /// Runs `work` unless it would wait for the database (see [`store::without_waiting`]):
    /// `None` then, with nothing changed, so the caller can run it where waiting is fine.
    pub fn without_waiting<T>(&self, work: impl FnOnce(&Self) -> Result<T>) -> Option<Result<T>> {
        match store::without_waiting(|| work(self)) {
            Err(error) if error.would_wait() => None,
            done => Some(done),
        }
    }

    /// Removes sessions that missed their heartbeats (releasing their locks and intents), expired
    /// locks, and old finished intents. Every server process runs this periodically.
    pub fn sweep(&self) -> Result<SweepReport> {
        let (report, wakes) = self.store.write(|tx| {
            let now = self.now();
            let report = SweepReport {
                stale_sessions: tx.delete_stale_sessions(self.alive_since(now), now)?,
                expired_locks: tx.delete_expired_locks(now)?,
                finished_intents: tx
                    .delete_finished_intents(now.minus(FINISHED_INTENT_RETENTION))?,
            };
            tx.delete_lock_events(now.minus(LOCK_EVENT_RETENTION))?;
            tx.delete_old_changes(now.minus(CHANGE_RETENTION))?;
            tx.prune_events(now.minus(events::EVENT_RETENTION))?;
            for session in &report.stale_sessions {
                events::record(
                    tx,
                    Occurrence {
                        kind: EventKind::StaleSession,
                        project: &session.project,
                        subject: &session.session_id,
                        text: &format!(
                            "Session '{}' went silent for over {}s and was removed; its locks and intents were released",
                            session.name,
                            self.session_timeout.as_secs()
                        ),
                        data: serde_json::json!({
                            "session_id": session.session_id,
                            "name": session.name,
                            "last_heartbeat": session.last_heartbeat,
                        }),
                        who: session.who.as_deref(),
                    },
                    now,
                )?;
            }
            let wakes = self.promote_everywhere(tx, now)?;
            Ok::<_, Error>((report, wakes))
        })?;
        self.wake(&wakes);
        Ok(report)
    }
}

/// A required piece of text: trimmed, not empty, not longer than `max` characters.
fn required_text(argument: &'static str, value: &str, max: usize) -> Result<String> {
    optional_text(argument, Some(value), max)?
        .ok_or_else(|| Error::invalid(argument, "must not be empty"))
}

/// Optional text: trimmed; empty counts as absent.
fn optional_text(
    argument: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let chars = value.chars().count();
    if chars > max {
        return Err(Error::invalid(
            argument,
            format!("is {chars} characters long; the limit is {max}"),
        ));
    }
    Ok(Some(value.to_owned()))
}

/// A one-line label (name, project, branch, group): like [`optional_text`], of visible
/// characters only (see [`invisible`]).
fn optional_label(argument: &'static str, value: Option<&str>) -> Result<Option<String>> {
    let value = optional_text(argument, value, MAX_NAME_CHARS)?;
    if let Some(value) = &value {
        visible(argument, value)?;
    }
    Ok(value)
}

/// Refuses `value` when it holds a character [`invisible`] finds, naming it as U+XXXX.
fn visible(argument: &'static str, value: &str) -> Result<()> {
    match invisible(value) {
        None => Ok(()),
        Some((c, kind)) => Err(Error::invalid(
            argument,
            format!(
                "contains U+{:04X}, {kind}; use a single line of visible characters",
                u32::from(c)
            ),
        )),
    }
}

/// The first character of `value` that would make it show something other than what it is,
/// and what kind it is. Names, branches and folders are read by people (tables, the
/// dashboard, a refusal naming the holder) and by models: a line break or an escape sequence
/// forges lines of output, a bidi control (U+202E) shows text in another order than it is
/// stored, and a zero-width character makes two different names look the same.
fn invisible(value: &str) -> Option<(char, &'static str)> {
    value.chars().find_map(|c| {
        let kind = match c {
            _ if c.is_control() => "a control character",
            '\u{2028}' | '\u{2029}' => "a line or paragraph separator",
            '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}' => "a bidirectional control, which reorders how the text around it shows",
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => {
                "a zero-width character, which makes different names look the same"
            }
            _ => return None,
        };
        Some((c, kind))
    })
}

fn required_label(argument: &'static str, value: &str) -> Result<String> {
    optional_label(argument, Some(value))?
        .ok_or_else(|| Error::invalid(argument, "must not be empty"))
}

/// Whether a call at `now` should be recorded as the session's heartbeat.
fn heartbeat_due(session: &Session, now: Timestamp) -> bool {
    now.as_millis() - session.last_heartbeat.as_millis()
        > i64::try_from(HEARTBEAT_RESOLUTION.as_millis()).unwrap_or(i64::MAX)
}

/// Normalizes a path argument into a lock key, naming the argument when it is refused.
fn path_key(argument: &'static str, raw: &str, working_directory: Option<&str>) -> Result<String> {
    if let Some(name) = raw.trim().strip_prefix(RESOURCE_PREFIX) {
        return resource_key(argument, name);
    }
    let key = paths::normalize(raw, working_directory)
        .map_err(|e| Error::invalid(argument, e.to_string()))?;
    if patterns::is_resource(&key) {
        // `./resource:GPU` would otherwise be a second resource, spelled past the name rules.
        return Err(Error::invalid(
            argument,
            format!(
                "'{raw}' reaches a resource through a path; write it as {key}, without a directory"
            ),
        ));
    }
    Ok(key)
}

/// Longest resource name accepted.
const MAX_RESOURCE_NAME: usize = 64;

/// `resource:NAME`, lower-cased (a model may write `Playwright` one time and `playwright` the next).
fn resource_key(argument: &'static str, name: &str) -> Result<String> {
    let name = name.trim().to_lowercase();
    let valid = (1..=MAX_RESOURCE_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(Error::invalid(
            argument,
            format!(
                "'{RESOURCE_PREFIX}{name}' is not a resource name: use 1 to {MAX_RESOURCE_NAME} letters, digits, '.', '_' or '-' after '{RESOURCE_PREFIX}' (e.g. {RESOURCE_PREFIX}playwright)"
            ),
        ));
    }
    Ok(format!("{RESOURCE_PREFIX}{name}"))
}

/// A count limit: `default` when absent, refused outside `1..=max`.
fn limit(value: Option<u64>, default: usize, max: usize) -> Result<usize> {
    match value {
        None => Ok(default),
        Some(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
        Some(n) => Err(Error::invalid(
            "limit",
            format!("{n} is out of range; allowed: 1 to {max} (default {default})"),
        )),
    }
}

/// The project a look is scoped to: the one asked for, else the viewer's, else every project.
fn scope<'a>(project: Option<&'a str>, viewer: Option<&'a Session>) -> Option<&'a str> {
    project
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .or(viewer.map(|s| s.project.as_str()))
}

/// The working directory that resolves absolute paths for a viewer looking at `project`: its
/// own, when it belongs to that project.
fn root_for<'a>(viewer: Option<&'a Session>, project: &str) -> Option<&'a str> {
    viewer
        .filter(|s| s.project == project)
        .and_then(|s| s.working_directory.as_deref())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A coordinator on a private in-memory database with a hand-moved clock.

    use super::*;
    use crate::clock::ManualClock;

    pub const TIMEOUT: Duration = Duration::from_secs(300);

    pub struct Harness {
        pub coordinator: Coordinator,
        pub clock: Arc<ManualClock>,
    }

    impl Harness {
        pub fn new() -> Self {
            let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_000_000_000)));
            let store = Store::open_in_memory().expect("in-memory store");
            Self {
                coordinator: Coordinator::new(store, clock.clone(), TIMEOUT, "here".into()),
                clock,
            }
        }

        /// Registers a session rooted at `/work/<name>` and returns its id.
        pub fn session(&self, name: &str, project: &str, branch: Option<&str>) -> String {
            self.coordinator
                .register(
                    Registration {
                        name: name.into(),
                        project: project.into(),
                        branch: branch.map(Into::into),
                        working_directory: Some(format!("/work/{name}")),
                        ..Registration::default()
                    },
                    Claim::default(),
                )
                .expect("register")
                .session
                .session_id
        }

        /// Registers a session in a group and returns its id.
        pub fn member(&self, name: &str, project: &str, group: &str) -> String {
            self.coordinator
                .register(
                    Registration {
                        name: name.into(),
                        project: project.into(),
                        group: Some(group.into()),
                        ..Registration::default()
                    },
                    Claim::default(),
                )
                .expect("register")
                .session
                .session_id
        }

        pub fn advance(&self, by: Duration) {
            self.clock.advance(by);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn the_sweep_removes_stale_sessions_with_their_locks() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        h.coordinator
            .acquire_lock(LockRequest::new(
                &a,
                "x.ts",
                crate::model::LockType::Exclusive,
            ))
            .expect("lock");
        h.advance(Duration::from_secs(200));
        h.coordinator.heartbeat(&b).expect("b beats");
        h.advance(Duration::from_secs(150));

        let report = h.coordinator.sweep().expect("sweep");
        let swept: Vec<_> = report
            .stale_sessions
            .iter()
            .map(|s| &s.session_id)
            .collect();
        assert_eq!(swept, vec![&a]);
        let outcome = h
            .coordinator
            .acquire_lock(LockRequest::new(
                &b,
                "x.ts",
                crate::model::LockType::Exclusive,
            ))
            .expect("lock");
        assert!(outcome.granted, "a's lock went with a");
        assert!(matches!(
            h.coordinator.heartbeat(&a),
            Err(Error::UnknownSession { .. })
        ));
    }

    #[test]
    fn looking_counts_as_a_heartbeat() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        h.advance(Duration::from_secs(290));
        h.coordinator
            .check_lock(Some(&a), None, "x.ts", None)
            .expect("check");
        h.advance(Duration::from_secs(290));
        assert!(
            h.coordinator
                .sweep()
                .expect("sweep")
                .stale_sessions
                .is_empty()
        );
    }

    #[test]
    fn limits_and_text_are_validated_with_the_argument_named() {
        assert_eq!(limit(None, 50, 500).ok(), Some(50));
        let err = limit(Some(0), 50, 500).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid argument `limit`: 0 is out of range; allowed: 1 to 500 (default 50)")
        );
        assert!(required_text("name", "   ", 10).is_err());
        assert_eq!(
            required_text("name", " ab ", 10).ok().as_deref(),
            Some("ab")
        );
        assert!(required_text("name", "abcdefghijk", 10).is_err());
        assert!(required_label("branch", "a\nb").is_err());
    }

    #[test]
    fn labels_refuse_what_does_not_show_naming_the_argument_and_the_character() {
        let refused = |argument, value: &str| {
            optional_label(argument, Some(value))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            refused("name", "admin\u{202E}gnp.exe"),
            "invalid argument `name`: contains U+202E, a bidirectional control, which reorders \
             how the text around it shows; use a single line of visible characters"
        );
        for (value, code) in [
            ("a\nb", "U+000A"),
            ("a\u{0}b", "U+0000"),
            ("a\u{1b}[31mb", "U+001B"),
            ("a\u{85}b", "U+0085"),
            ("a\u{2028}b", "U+2028"),
            ("a\u{2029}b", "U+2029"),
            ("a\u{202A}b", "U+202A"),
            ("a\u{2066}b", "U+2066"),
            ("a\u{2069}b", "U+2069"),
            ("a\u{200E}b", "U+200E"),
            ("a\u{200F}b", "U+200F"),
            ("a\u{061C}b", "U+061C"),
            ("a\u{200B}b", "U+200B"),
            ("a\u{200D}b", "U+200D"),
            ("a\u{2060}b", "U+2060"),
            ("\u{FEFF}ab", "U+FEFF"),
        ] {
            let error = refused("group", value);
            assert!(
                error.starts_with(&format!("invalid argument `group`: contains {code},")),
                "{value:?}: {error}"
            );
        }
        for fine in [
            "feature/auth-2",
            "Zoë's café",
            "機能-ブランチ",
            "עברית",
            "🚀 launch",
        ] {
            assert_eq!(
                optional_label("branch", Some(fine))
                    .ok()
                    .flatten()
                    .as_deref(),
                Some(fine)
            );
        }
        assert!(required_label("name", "a\u{200B}").is_err(), "required too");
    }
}
