//! The commands: for people who run the agents, and for the hooks that enforce coordination.
//!
//! Each command opens the database the servers share and calls the same [`Coordinator`]; no
//! rule is decided here. People get tables (coloured on a terminal) or, with `--json`, the
//! coordinator's own answer for scripts. The hook and the git guard work out who is asking
//! from the process tree and the checkout ([`workspace`]), then ask the coordinator.

mod git;
mod hook;
mod people;
mod table;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{OpenError, Settings};
use crate::coordinator::Coordinator;
use crate::model::{Channel, ContextType, Priority};
use crate::store::Location;

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Sessions, locks, queues, active intents and unread mail (every project unless --project)
    Status(Scope),
    /// Live locks, with holder and time left
    Locks(LocksArgs),
    /// A project's messages, newest first
    Messages(MessagesArgs),
    /// Send a message to a project's sessions, as a person
    Send(SendArgs),
    /// Shared context (decisions, discoveries, conventions, blockers, notes), searchable
    Context(ContextArgs),
    /// Take a lock away from the session that holds it (needs --force); the holder is told
    Release(ReleaseArgs),
    /// End a session: its locks are released and its intents cleared
    EndSession(EndSessionArgs),
    /// Check the database: path, WAL mode, schema version, integrity, stale sessions
    Doctor(JsonFlag),
    /// Hooks for AI clients, which refuse edits of files other sessions hold
    #[command(subcommand)]
    Hook(HookClient),
    /// Git hooks, which refuse commits that would break another session's work
    #[command(subcommand)]
    Guard(GuardKind),
    /// Install `guard pre-commit` as the pre-commit hook of a git repository
    InstallGitHook(InstallArgs),
    /// One shared server: MCP over Streamable HTTP at /mcp, with the dashboard at /
    Serve(crate::web::ServeArgs),
    /// The web dashboard alone, over the database the stdio servers share
    Dashboard(crate::web::DashboardArgs),
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
pub enum HookClient {
    /// Claude Code hooks: SessionStart, PreToolUse (Edit, Write, MultiEdit, NotebookEdit),
    /// Stop and SessionEnd, read as JSON on stdin
    ClaudeCode(HookArgs),
    /// GitHub Copilot CLI hooks (.github/hooks/*.json), one command per event
    Copilot(CopilotArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CopilotArgs {
    /// The event the hook entry runs for
    #[arg(value_enum)]
    pub event: hook::CopilotEvent,
    #[command(flatten)]
    pub hook: HookArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HookArgs {
    /// On an allowed edit, also lock the file exclusively for the editing session
    #[arg(long)]
    pub acquire: bool,
    /// Seconds an acquired lock lasts; editing again renews it
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl: u64,
}

#[derive(Debug, Clone, Subcommand)]
pub enum GuardKind {
    /// Refuse a commit that stages files another live session holds exclusively, or that
    /// comes while another session of the project rebases or merges (git's pre-commit hook).
    /// Exits 3 when it refuses, 1 when it cannot check
    PreCommit,
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

/// Reads one of the model's lower-case words, with the allowed list on a miss.
fn word<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, String> {
    text.parse()
}

/// Why a command failed, in words for the person or hook that ran it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Coordinator(#[from] crate::Error),
    /// The command line asks for something it cannot have.
    #[error("{0}")]
    Usage(String),
    /// The cause is part of the text (not a source, which the binary would print again).
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |error| Self::Io { context, error }
    }
}

/// Runs a command; its text goes to stdout, and its exit code says whether it passed.
pub fn run(command: &Command, settings: &Settings) -> Result<ExitCode, CliError> {
    // A person's command on a mistyped path must not leave a new, empty database behind.
    // Commands that only read open a read-only database read-only; the others refuse it.
    let open_for = |purpose: Purpose| {
        existing(settings, purpose)?.ok_or_else(|| {
            CliError::Usage(format!(
                "no database at {}: no server has run with this path (set --db-path or \
                 MCP_COORDINATOR_DB_PATH to the one your servers use)",
                settings
                    .location()
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            ))
        })
    };
    let open = || open_for(Purpose::Write);
    let read = || open_for(Purpose::Read);
    let ok = |text: String| (text, ExitCode::SUCCESS);
    let (text, code) = match command {
        Command::Status(args) => ok(people::status(&read()?, args)?),
        Command::Locks(args) => ok(people::locks(&read()?, args)?),
        Command::Messages(args) => ok(people::messages(&read()?, args)?),
        Command::Send(args) => ok(people::send(&open()?, args)?),
        Command::Context(args) => ok(people::context(&read()?, args)?),
        Command::Release(args) => ok(people::release(&open()?, args)?),
        Command::EndSession(args) => ok(people::end_session(&open()?, args)?),
        Command::Doctor(args) => match people::doctor(settings, args)? {
            (text, true) => ok(text),
            (text, false) => (text, ExitCode::FAILURE),
        },
        Command::Hook(client) => {
            let (client, args) = match client {
                HookClient::ClaudeCode(args) => (hook::Client::ClaudeCode, args),
                HookClient::Copilot(args) => (hook::Client::Copilot(args.event), &args.hook),
            };
            let input = read_stdin()?;
            ok(hook::run(&settings.coordinator()?, client, args, &input)?)
        }
        Command::Guard(GuardKind::PreCommit) => match git::pre_commit(settings)? {
            (text, true) => ok(text),
            (text, false) => (text, ExitCode::from(git::REFUSED)),
        },
        Command::InstallGitHook(args) => ok(git::install(settings, args)?),
        Command::Serve(_) | Command::Dashboard(_) => {
            return Err(CliError::Usage(
                "serve and dashboard are servers; the binary starts them itself".to_owned(),
            ));
        }
    };
    print!("{text}");
    Ok(code)
}

fn read_stdin() -> Result<String, CliError> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
        .map_err(CliError::io("cannot read the hook's input on stdin"))?;
    Ok(input)
}

/// The name a person acts under: the one given, else the login name.
fn person(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "operator".to_owned())
}

/// Shared by commands that take `--json`: the answer as pretty JSON, else `text()`.
fn show<T: serde::Serialize>(
    value: &T,
    output: &JsonFlag,
    text: impl FnOnce(&T) -> String,
) -> Result<String, CliError> {
    if output.json {
        Ok(format!("{}\n", serde_json::to_string_pretty(value)?))
    } else {
        Ok(text(value))
    }
}

/// What a command does with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Only reads (a look, a check): a read-only file is opened read-only.
    Read,
    /// Writes: a read-only file is refused, as a server refuses it.
    Write,
}

/// A coordinator for a command that must not create a database where none is. A PostgreSQL
/// database exists or refuses the connection, so only a file is looked for.
fn existing(settings: &Settings, purpose: Purpose) -> Result<Option<Coordinator>, CliError> {
    match settings.location()? {
        Location::File(path) if !path.exists() => Ok(None),
        _ if purpose == Purpose::Read => Ok(Some(settings.reader()?)),
        _ => Ok(Some(settings.coordinator()?)),
    }
}
