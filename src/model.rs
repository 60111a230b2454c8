//! The nouns of coordination, as every caller (an MCP tool, a command, the dashboard's API)
//! sees them.
//!
//! Field names are a contract inherited from the original product description (`session_id`,
//! `holder_name`, `shared_by`, ...): prompts written for it must keep working.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{ContextId, IntentId, LockId, MessageId};

/// Declares an enum of lower-case words, read leniently (`Exclusive`, `in-progress`) because
/// language models vary their spelling, and refused with the list of allowed words otherwise.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
        #[schemars(inline)]
        pub enum $name {
            $( #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Reads a word, ignoring case, surrounding blanks, and `-` for `_`.
            pub fn parse(text: &str) -> Option<Self> {
                let word = text.trim().to_ascii_lowercase().replace('-', "_");
                match word.as_str() {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The allowed words, for error messages.
            pub fn allowed() -> String {
                [$($text),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                $name::parse(text).ok_or_else(|| {
                    format!("unknown value '{text}'; allowed values: {}", $name::allowed())
                })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct WordVisitor;
                impl Visitor<'_> for WordVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "one of: {}", $name::allowed())
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(WordVisitor)
            }
        }
    };
}

word_enum!(
    /// How a lock constrains other sessions on the same path.
    LockType {
        Exclusive = "exclusive",
        Shared = "shared",
        Intent = "intent",
    }
);

impl LockType {
    /// The lock matrix: may a session take `self` while another session holds `held`?
    /// `exclusive` excludes every exclusive and shared holder, `shared` excludes exclusive
    /// holders, and `intent` is advisory: it neither blocks nor is blocked.
    pub fn is_blocked_by(self, held: LockType) -> bool {
        use LockType::*;
        matches!(
            (self, held),
            (Exclusive, Exclusive) | (Exclusive, Shared) | (Shared, Exclusive)
        )
    }
}

word_enum!(
    /// What a session is about to do.
    IntentType {
        FileEdit = "file_edit",
        GitCommit = "git_commit",
        GitPush = "git_push",
        GitRebase = "git_rebase",
        GitMerge = "git_merge",
        Build = "build",
        Test = "test",
        Refactor = "refactor",
        DependencyChange = "dependency_change",
    }
);

impl IntentType {
    pub fn is_git(self) -> bool {
        use IntentType::*;
        matches!(self, GitCommit | GitPush | GitRebase | GitMerge)
    }

    /// Operations that change files, and so clash with readers and other writers.
    pub fn is_write(self) -> bool {
        use IntentType::*;
        matches!(self, FileEdit | Refactor | DependencyChange)
    }

    /// Operations that carry the session's changes towards others': where an unmerged change
    /// elsewhere to the same code, or a stale base, shows.
    pub fn carries_changes(self) -> bool {
        use IntentType::*;
        matches!(self, GitCommit | GitPush | GitMerge)
    }

    /// Operations that rewrite history or the working tree under everyone else's feet.
    pub fn rewrites_history(self) -> bool {
        matches!(self, IntentType::GitRebase | IntentType::GitMerge)
    }
}

word_enum!(
    /// Where an intent is in its life: announced → in_progress → completed | abandoned.
    IntentStatus {
        Announced = "announced",
        InProgress = "in_progress",
        Completed = "completed",
        Abandoned = "abandoned",
    }
);

impl IntentStatus {
    /// Active intents are the ones other sessions must take into account.
    pub fn is_active(self) -> bool {
        matches!(self, IntentStatus::Announced | IntentStatus::InProgress)
    }
}

word_enum!(
    /// A message channel.
    Channel {
        General = "general",
        Coordination = "coordination",
        Ideas = "ideas",
        Alerts = "alerts",
        Git = "git",
    }
);

word_enum!(
    /// How soon a message should be read.
    Priority {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
);

word_enum!(
    /// What kind of knowledge a context entry holds.
    ContextType {
        Decision = "decision",
        Discovery = "discovery",
        Convention = "convention",
        Blocker = "blocker",
        Note = "note",
    }
);

word_enum!(
    /// How much a conflict matters; `high` means do not proceed.
    Severity {
        Low = "low",
        Medium = "medium",
        High = "high",
    }
);

word_enum!(
    /// What a conflict is about.
    ConflictType {
        FileLock = "file_lock",
        Resource = "resource",
        Intent = "intent",
        GitOperation = "git_operation",
        Branch = "branch",
        UnmergedChange = "unmerged_change",
    }
);

/// A registered AI session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Session {
    pub session_id: String,
    pub name: String,
    pub project: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// The group (a team inside the project) the session belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub registered_at: Timestamp,
    pub last_heartbeat: Timestamp,
    /// Where to wake the session's server process when something arrives for it.
    #[serde(skip)]
    pub wake: Option<String>,
    /// The AI client process that started it (see `clients`), on this machine.
    #[serde(skip)]
    pub client_pid: Option<u32>,
    /// The client's own id for it, for sessions a hook registered.
    #[serde(skip)]
    pub client_ref: Option<String>,
    /// Whose token registered it on a shared server (see `token add`); absent for stdio
    /// sessions and the shared token, which name nobody.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
}

/// A person's or agent's token for the shared server, as `token list` shows it: never the
/// token itself, which only its holder has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AccessToken {
    pub name: String,
    pub created_at: Timestamp,
    /// When it stopped working; absent while it works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A session with what it currently holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SessionActivity {
    #[serde(flatten)]
    pub session: Session,
    pub locks_held: i64,
    pub active_intents: i64,
    /// Messages in its inbox it has not read yet.
    pub unread: i64,
}

/// A lock some session holds on a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Lock {
    pub lock_id: LockId,
    pub project: String,
    /// The normalized, project-relative path.
    pub file_path: String,
    pub lock_type: LockType,
    pub session_id: String,
    pub holder_name: String,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    /// Strictly increasing across the database: a later grant always carries a larger token.
    pub fencing_token: i64,
    /// The worktree (its top folder) an edit lock is scoped to: a session in another worktree
    /// edits another file on disk, and is warned rather than refused. Absent: the whole project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    /// Present on a lock a hook took for an edit, held until the change is committed (then
    /// `expires_at` is [`Timestamp::UNTIL_COMMIT`]): the time of the last edit under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_edit_at: Option<Timestamp>,
}

/// What a session changed (a file, or a symbol in it) and has not merged yet, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Change {
    pub project: String,
    /// `path` or `path#Symbol`, project-relative.
    pub file_path: String,
    pub session_id: String,
    pub session_name: String,
    /// The top folder of the worktree the change is in.
    pub worktree: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit that carries it; absent while it is uncommitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub changed_at: Timestamp,
}

/// A request waiting in a key's FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Waiter {
    /// 1 for the head of the queue.
    pub position: usize,
    pub session_id: String,
    pub session_name: String,
    /// The key waited for (a file, directory or glob that overlaps the one asked about).
    pub file_path: String,
    pub lock_type: LockType,
    pub queued_at: Timestamp,
    /// When a `wait_seconds` request gives up; absent for `queue=true`, which waits until
    /// granted, cancelled or its session ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<Timestamp>,
    /// FIFO order across the database.
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub project: String,
    /// How long the lock lasts once granted.
    #[serde(skip)]
    pub ttl: std::time::Duration,
    /// Where to wake the waiting process when granted.
    #[serde(skip)]
    pub wake: Option<String>,
    /// The waiting session's last heartbeat, to drop waiters of dead sessions.
    #[serde(skip)]
    pub last_heartbeat: Timestamp,
}

/// An announced operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Intent {
    pub intent_id: IntentId,
    pub session_id: String,
    pub session_name: String,
    pub project: String,
    pub intent_type: IntentType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Normalized paths the intent touches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    pub status: IntentStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A message in a session's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Message {
    pub message_id: MessageId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_session: Option<String>,
    pub from_name: String,
    /// Absent for a broadcast to the whole project or a group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_session: Option<String>,
    /// The group it was sent to, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_group: Option<String>,
    pub channel: Channel,
    pub priority: Priority,
    pub content: String,
    pub created_at: Timestamp,
    pub read: bool,
}

/// A piece of shared knowledge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ContextEntry {
    pub context_id: ContextId,
    pub project: String,
    pub context_type: ContextType,
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The name of the session that shared it.
    pub shared_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_matrix() {
        use LockType::*;
        let blocked = |want: LockType, held: LockType| want.is_blocked_by(held);
        assert!(blocked(Exclusive, Exclusive));
        assert!(blocked(Exclusive, Shared));
        assert!(!blocked(Exclusive, Intent));
        assert!(blocked(Shared, Exclusive));
        assert!(!blocked(Shared, Shared));
        assert!(!blocked(Shared, Intent));
        for held in LockType::ALL {
            assert!(!blocked(Intent, *held), "intent is never blocked");
        }
    }

    #[test]
    fn words_are_read_leniently_and_refused_with_the_allowed_list() {
        assert_eq!(
            IntentStatus::parse(" In-Progress "),
            Some(IntentStatus::InProgress)
        );
        let err = serde_json::from_value::<LockType>(serde_json::json!("bogus"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown value 'bogus'; allowed values: exclusive, shared, intent")
        );
    }

    #[test]
    fn enum_schemas_list_their_words_inline() {
        let schema = schemars::schema_for!(Channel);
        let value = serde_json::to_value(&schema).unwrap_or_default();
        assert_eq!(
            value.get("enum"),
            Some(&serde_json::json!([
                "general",
                "coordination",
                "ideas",
                "alerts",
                "git"
            ]))
        );
    }
}
