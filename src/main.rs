//! `mcp-session-coordinator`: the stdio MCP server an AI client starts for each session, the
//! shared HTTP server, and the commands people and hooks run against the same database.

use std::process::ExitCode;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use mcp_session_coordinator::flags::{self, Command, Flags};
use mcp_session_coordinator::modes;

fn main() -> ExitCode {
    let flags = flags::parse();
    run(&flags).unwrap_or_else(|error| {
        // One line a person (or a client's log) shows, not a backtrace: each cause after a
        // colon. A server that cannot start (a read-only or unsafe database) says why here.
        eprintln!("mcp-session-coordinator: {error:#}");
        ExitCode::FAILURE
    })
}

fn run(flags: &Flags) -> anyhow::Result<ExitCode> {
    // stdout carries JSON-RPC (or a command's output) only; every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_new(&flags.log)
                .with_context(|| format!("invalid --log filter '{}'", flags.log))?,
        )
        .init();

    let code = match &flags.command {
        None => modes::stdio(flags).map(|()| ExitCode::SUCCESS)?,
        Some(Command::Serve(serve)) => modes::serve(flags, serve).map(|()| ExitCode::SUCCESS)?,
        Some(Command::Dashboard(dashboard)) => {
            modes::dashboard(flags, dashboard).map(|()| ExitCode::SUCCESS)?
        }
        Some(Command::Cli(command)) => modes::command(flags, command)?,
    };
    Ok(code)
}
