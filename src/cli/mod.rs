//! The commands: for people who run the agents, and for the hooks that enforce coordination.
//!
//! Each command opens the database the servers share and calls the same [`Coordinator`]; no
//! rule is decided here. People get tables (coloured on a terminal) or, with `--json`, the
//! coordinator's own answer for scripts. The hook and the git guard work out who is asking
//! from the process tree and the checkout ([`workspace`]), then ask the coordinator. `init`
//! writes the clients' configuration that runs them, and opens no database.

mod git;
mod hook;
mod init;
mod people;
mod table;
mod tokens;
mod workspace;

use std::process::ExitCode;

use crate::config::{Database, OpenError};
use crate::coordinator::Coordinator;
use crate::flags::{CliCommand, GuardKind, HookClient, JsonFlag};
use crate::store::Location;

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
pub fn run(command: &CliCommand, database: &Database) -> Result<ExitCode, CliError> {
    // A person's command on a mistyped path must not leave a new, empty database behind.
    // Commands that only read open a read-only database read-only; the others refuse it.
    let open_for = |purpose: Purpose| {
        existing(database, purpose)?.ok_or_else(|| {
            CliError::Usage(format!(
                "no database at {}: no server has run with this path (set --db-path or \
                 MCP_COORDINATOR_DB_PATH to the one your servers use)",
                database
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
        CliCommand::Status(args) => ok(people::status(&read()?, args)?),
        CliCommand::Locks(args) => ok(people::locks(&read()?, args)?),
        CliCommand::Messages(args) => ok(people::messages(&read()?, args)?),
        CliCommand::Send(args) => ok(people::send(&open()?, args)?),
        CliCommand::Context(args) => ok(people::context(&read()?, args)?),
        CliCommand::Release(args) => ok(people::release(&open()?, args)?),
        CliCommand::EndSession(args) => ok(people::end_session(&open()?, args)?),
        CliCommand::Token(command) => ok(tokens::run(database, command, &open, &read)?),
        CliCommand::Doctor(args) => match people::doctor(database, args)? {
            (text, true) => ok(text),
            (text, false) => (text, ExitCode::FAILURE),
        },
        CliCommand::Hook(client) => {
            let (client, args) = match client {
                HookClient::ClaudeCode(args) => (hook::Client::ClaudeCode, args),
                HookClient::Copilot(args) => (hook::Client::Copilot(args.event), &args.hook),
                HookClient::GeminiCli(args) => (hook::Client::Gemini, args),
                HookClient::Codex(args) => (hook::Client::Codex, args),
            };
            let input = read_stdin()?;
            ok(hook::run(&database.coordinator()?, client, args, &input)?)
        }
        CliCommand::Guard(GuardKind::PreCommit) => match git::pre_commit(database)? {
            (text, true) => ok(text),
            (text, false) => (text, ExitCode::from(git::REFUSED)),
        },
        CliCommand::Guard(GuardKind::PostCommit) => ok(git::post_commit(database)?),
        CliCommand::InstallGitHook(args) => ok(git::install(database, args)?),
        CliCommand::Init(args) => init::run(database, args)?,
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
fn existing(database: &Database, purpose: Purpose) -> Result<Option<Coordinator>, CliError> {
    match database.location()? {
        Location::File(path) if !path.exists() => Ok(None),
        _ if purpose == Purpose::Read => Ok(Some(database.reader()?)),
        _ => Ok(Some(database.coordinator()?)),
    }
}
