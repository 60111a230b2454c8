//! The commands for people and for the hooks, with the shared flags each one takes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Database, Liveness, shared};
use crate::model::{Channel, ContextType, Priority};

/// The commands that run once and exit; the servers are [`super::Command`]'s other variants.
#[derive(Debug, Clone, Subcommand)]
pub enum CliCommand {
    /// Sessions, locks, queues, active intents and unread mail (every project unless --project)
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    Status(Scope),
    /// Live locks, with holder and time left
    #[command(args = shared(&[Database::augment_args]))]
    Locks(LocksArgs),
    /// A project's messages, newest first
    #[command(args = shared(&[Database::augment_args]))]
    Messages(MessagesArgs),
    /// Send a message to a project's sessions, as a person
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    Send(SendArgs),
    /// Shared context (decisions, discoveries, conventions, blockers, notes), searchable
    #[command(args = shared(&[Database::augment_args]))]
    Context(ContextArgs),
    /// Take a lock away from the session that holds it (needs --force); the holder is told
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    Release(ReleaseArgs),
    /// End a session: its locks are released and its intents cleared
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    EndSession(EndSessionArgs),
    /// Tokens for the people and agents who use `serve --http` and `dashboard`: each is
    /// recorded under its name, and one can be revoked without changing the others
    #[command(subcommand)]
    #[command(args = shared(&[Database::augment_args]))]
    Token(TokenCommand),
    /// Check the database: path, WAL mode, schema version, integrity, stale sessions
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    Doctor(JsonFlag),
    /// Hooks for AI clients, which refuse edits of files other sessions hold
    #[command(subcommand)]
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    Hook(HookClient),
    /// Git hooks, which refuse commits that would break another session's work
    #[command(subcommand)]
    #[command(args = shared(&[Database::augment_args, Liveness::augment_args]))]
    Guard(GuardKind),
    /// Install `guard pre-commit` as the pre-commit hook of a git repository
    InstallGitHook(InstallArgs),
    /// Wire a repository's AI clients to the coordinator: each detected client's MCP server
    /// entry and edit hooks, the git pre-commit guard, and a note for agents in AGENTS.md
    Init(InitArgs),
}

#[derive(Debug, Clone, Args)]
pub struct JsonFlag {
    /// Print the coordinator's answer as JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct Scope {
    /// Only this project
    #[arg(long, short)]
    pub project: Option<String>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Clone, Args)]
pub struct LocksArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// Only locks of this session (id)
    #[arg(long)]
    pub session: Option<String>,
    /// Only locks of sessions in this group
    #[arg(long)]
    pub group: Option<String>,
    /// Only locks on this path, or overlapping it
    #[arg(long)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MessagesArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// Only this channel: general, coordination, ideas, alerts, git
    #[arg(long, value_parser = word::<Channel>)]
    pub channel: Option<Channel>,
    /// Most messages to show (1 to 1000)
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
}

#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The project whose sessions get it
    #[arg(long, short)]
    pub project: String,
    /// One session (id or name) instead of the whole project
    #[arg(long, conflicts_with = "group")]
    pub to: Option<String>,
    /// Every live session of this group instead of the whole project
    #[arg(long)]
    pub group: Option<String>,
    /// general, coordination, ideas, alerts, git
    #[arg(long, default_value = "general", value_parser = word::<Channel>)]
    pub channel: Channel,
    /// low, normal, high, urgent (urgent is flagged on every answer the recipients get)
    #[arg(long, default_value = "normal", value_parser = word::<Priority>)]
    pub priority: Priority,
    /// The name to sign with [default: $USER]
    #[arg(long)]
    pub from: Option<String>,
    /// The message
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Clone, Args)]
pub struct ContextArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// Only this type: decision, discovery, convention, blocker, note
    #[arg(long = "type", value_parser = word::<ContextType>)]
    pub context_type: Option<ContextType>,
    /// Most entries to show (1 to 200)
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
    /// Words to search for, best match first
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// The locked path (or directory/glob key), relative to the project root
    pub path: String,
    /// The project the lock is in
    #[arg(long, short)]
    pub project: String,
    /// Only the lock of this session (id or name), when several share the path
    #[arg(long)]
    pub session: Option<String>,
    /// Confirm taking the lock from its holder
    #[arg(long)]
    pub force: bool,
    /// The name the holder is told did it [default: $USER]
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Clone, Args)]
pub struct EndSessionArgs {
    /// The session's id, or its name
    pub session: String,
    /// Look the name up in this project only
    #[arg(long, short)]
    pub project: Option<String>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Add a token for NAME and print it, once: only its hash is kept
    Add {
        /// Who will use it: one word of letters, digits and . _ @ - (alice, ci-bot)
        name: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// The tokens added, and which were revoked (never the tokens themselves)
    List {
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Stop NAME's token at once, on every server of this database and its open connections
    Revoke {
        name: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum HookClient {
    /// Claude Code hooks: SessionStart, PreToolUse (Edit, Write, MultiEdit, NotebookEdit),
    /// Stop and SessionEnd, read as JSON on stdin
    ClaudeCode(HookArgs),
    /// GitHub Copilot CLI hooks (.github/hooks/*.json), one command per event
    Copilot(CopilotArgs),
    /// Gemini CLI hooks: SessionStart, BeforeTool (write_file, replace), AfterAgent and
    /// SessionEnd, read as JSON on stdin
    GeminiCli(HookArgs),
    /// Codex CLI hooks: SessionStart, PreToolUse (apply_patch, every file of the patch), Stop
    /// and SessionEnd, read as JSON on stdin
    Codex(HookArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CopilotArgs {
    /// The event the hook entry runs for
    #[arg(value_enum)]
    pub event: CopilotEvent,
    #[command(flatten)]
    pub hook: HookArgs,
}

/// The Copilot CLI hook events the hook command handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CopilotEvent {
    SessionStart,
    PreToolUse,
    AgentStop,
    SessionEnd,
}

#[derive(Debug, Clone, Args)]
pub struct HookArgs {
    /// On an allowed edit, also lock what it changes exclusively for the editing session
    #[arg(long)]
    pub acquire: bool,
    /// What an edit locks: the functions, methods, classes it touches (Rust, TypeScript,
    /// JavaScript, Python, Go; other files whole), or always the whole file
    #[arg(long, value_enum, default_value_t = LockScope::Symbol)]
    pub scope: LockScope,
    /// How long an acquired lock lasts: until the change is committed (or undone, or the
    /// session ends), or `--ttl` seconds after the last edit
    #[arg(long, value_enum, default_value_t = Hold::Commit)]
    pub hold: Hold,
    /// Seconds an acquired lock lasts with `--hold ttl`; editing again renews it
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl: u64,
}

/// What a hook's edit lock covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockScope {
    Symbol,
    File,
}

/// How long a hook's edit lock lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Hold {
    Commit,
    Ttl,
}

#[derive(Debug, Clone, Subcommand)]
pub enum GuardKind {
    /// Refuse a commit that stages files (or functions) another live session holds
    /// exclusively, or that comes while another session of the project rebases or merges;
    /// warn of other worktrees' unmerged changes to the same code and of a stale base (git's
    /// pre-commit hook). Exits 3 when it refuses, 1 when it cannot check
    PreCommit,
    /// Release the committer's edit locks on what the commit carried (git's post-commit hook)
    PostCommit,
}

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// The repository [default: the one around the current directory]
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Replace a pre-commit hook that is not ours
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The repository [default: the one around the current directory]
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Only this client (repeatable) [default: the clients found on this machine or in the repository]
    #[arg(long = "client", value_enum, value_name = "NAME")]
    pub clients: Vec<InitClient>,
    /// Where the clients' entries go: the repository's files (shared with the team) or your own
    #[arg(long, value_enum, default_value = "project")]
    pub scope: InitScope,
    /// Print what would change as a unified diff, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Undo what init added: files it created are deleted, files it changed are restored
    #[arg(long, conflicts_with_all = ["clients", "scope", "command"])]
    pub remove: bool,
    /// How the clients start this program (split on spaces), e.g. "npx -y mcp-session-coordinator"
    #[arg(
        long,
        value_name = "COMMAND",
        default_value = "mcp-session-coordinator"
    )]
    pub command: String,
}

/// The AI clients `init` knows how to wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitClient {
    ClaudeCode,
    Codex,
    GeminiCli,
    Copilot,
    Cursor,
    Vscode,
}

/// Whose configuration `init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitScope {
    /// The repository's own files (.mcp.json, .claude/settings.json, ...), shared through git
    Project,
    /// Your configuration in the home folder (~/.claude.json, ~/.codex/config.toml, ...)
    User,
}

/// Reads one of the model's lower-case words, with the allowed list on a miss.
fn word<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, String> {
    text.parse()
}
