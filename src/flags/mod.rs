//! Every command-line flag, and which commands take which.
//!
//! Without a command the binary is the stdio MCP server, whose flags sit at the top level
//! ([`Flags`]). A command takes those of them that have an effect there, written before or
//! after its name and listed in its `--help`; elsewhere clap refuses them as it refuses any
//! unknown flag. Every flag also reads the environment variable of the original product
//! description, so either way of configuring an MCP server works; those variables are a
//! compatibility contract, and so are the flags' names, defaults and ranges.
//!
//! This module only parses: `config` turns the parsed values into a database location, a
//! coordinator and a tool listing, and `modes` runs what the command line asks for.

mod commands;
mod servers;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use commands::{
    CliCommand, ContextArgs, CopilotArgs, CopilotEvent, EndSessionArgs, GuardKind, Hold, HookArgs,
    HookClient, InitArgs, InitClient, InitScope, InstallArgs, JsonFlag, LockScope, LocksArgs,
    MessagesArgs, ReleaseArgs, Scope, SendArgs, TokenCommand,
};
pub use servers::{Access, Dashboard, Serve};

use crate::mcp::ToolSelection;

/// The command line. Read it with [`parse`]: the derived `Parser::parse` would not refuse a
/// stdio server's flag written before a command that does not take it.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mcp-session-coordinator",
    version,
    about = "An MCP server that coordinates several AI coding sessions on one codebase: file locks, intents, messages, conflict checks and shared context.",
    long_about = "An MCP server that coordinates several AI coding sessions on one codebase: file locks, \
intents, messages, conflict checks and shared context.\n\n\
Without a command, it is the MCP server: each AI session's MCP client starts its own instance, \
which speaks MCP over stdin/stdout. All instances on a machine share one SQLite database (WAL \
mode), or with --db-url one PostgreSQL database across machines, so they see each other's \
sessions, locks and messages. Logs go to stderr.\n\n\
To set up a repository for every AI client it finds (MCP server entries, edit hooks, the git \
guard, a note for agents), run init there. The other commands are for people (status, locks, \
messages, send, context, release, end-session, doctor) and for enforcing coordination where every \
agent passes (hook claude-code, guard pre-commit, install-git-hook). They read and write the same \
database."
)]
pub struct Flags {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub database: Database,

    #[command(flatten)]
    pub sweeps: Sweeps,

    #[command(flatten)]
    pub liveness: Liveness,

    /// What to log to stderr, as a tracing filter: a level (error, warn, info, debug) or per module, like mcp_session_coordinator=debug,rmcp=info
    #[arg(
        long,
        env = "MCP_COORDINATOR_LOG",
        value_name = "FILTER",
        default_value = "mcp_session_coordinator=info,warn",
        global = true
    )]
    pub log: String,

    #[command(flatten)]
    pub listing: Listing,

    #[command(flatten)]
    pub webhooks: Webhooks,
}

/// The shared database. Its place matters to every command, even to `install-git-hook`,
/// which writes it into the hook; trusting an unsafe path matters to those that open it.
#[derive(Debug, Clone, Args)]
pub struct Database {
    /// SQLite database shared by every instance [default: ~/.mcp-session-coordinator/coordinator.db]
    #[arg(
        long,
        env = "MCP_COORDINATOR_DB_PATH",
        value_name = "PATH",
        global = true
    )]
    pub db_path: Option<PathBuf>,

    /// Open the database even through a symlink in a folder every user can write (like /tmp), or when another user owns the file; both are refused otherwise, since another user could have put them there to read or plant data
    #[arg(
        long,
        env = "MCP_COORDINATOR_ALLOW_UNSAFE_DB_PATH",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_unsafe_db_path: bool,

    /// PostgreSQL database shared by sessions on several machines, as postgres://user:password@host:5432/database; when set, every mode uses it instead of the SQLite file
    #[arg(
        long,
        env = "MCP_COORDINATOR_DB_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub db_url: Option<String>,
}

/// When a session counts as stale: for every mode that tells live sessions from dead ones.
#[derive(Debug, Clone, Args)]
pub struct Liveness {
    /// Seconds without a heartbeat (or any tool call) after which a session is stale and gets swept; each instance heartbeats its own sessions three times per timeout
    #[arg(
        long = "session-timeout",
        env = "MCP_SESSION_TIMEOUT_SEC",
        value_name = "SECONDS",
        default_value = "300",
        value_parser = seconds(604_800)
    )]
    pub session_timeout: Duration,
}

/// How often a coordinator server sweeps stale sessions and expired locks.
#[derive(Debug, Clone, Args)]
pub struct Sweeps {
    /// Seconds between sweeps in which each instance removes stale sessions (releasing their locks and intents) and expired locks
    #[arg(
        long = "cleanup-interval",
        env = "MCP_CLEANUP_INTERVAL_SEC",
        value_name = "SECONDS",
        default_value = "60",
        value_parser = seconds(86_400)
    )]
    pub cleanup_interval: Duration,
}

/// What `tools/list` shows, for the servers that speak MCP.
#[derive(Debug, Clone, Args)]
pub struct Listing {
    /// Which tools tools/list shows: all, core (register, lock, check, message), or a comma-separated mix of profiles and tool names. Unlisted tools still answer when called by name
    #[arg(
        long,
        env = "MCP_COORDINATOR_TOOLS",
        value_name = "PROFILE",
        default_value = "all",
        value_parser = ToolSelection::parse
    )]
    pub tools: ToolSelection,

    /// List each tool's output schema too, for clients that validate structuredContent (off by default: it would triple what the model's context pays for the list)
    #[arg(long, env = "MCP_COORDINATOR_OUTPUT_SCHEMAS")]
    pub output_schemas: bool,
}

/// Where the servers deliver the coordinator's events.
#[derive(Debug, Clone, Args)]
pub struct Webhooks {
    /// Deliver events (lock contention, grants from a queue, urgent messages, high conflicts, stale sessions) to this URL as JSON POSTs; repeatable, or comma-separated in the variable. Slack and Discord incoming webhooks read them as is
    #[arg(
        long = "webhook",
        env = "MCP_COORDINATOR_WEBHOOKS",
        value_name = "URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub urls: Vec<String>,
}

/// A command instead of the stdio server.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Cli(CliCommand),
    /// One shared server: MCP over Streamable HTTP at /mcp, with the dashboard at /
    #[command(args = shared(&[
        Database::augment_args,
        Sweeps::augment_args,
        Liveness::augment_args,
        Listing::augment_args,
        Webhooks::augment_args,
    ]))]
    Serve(Serve),
    /// The web dashboard alone, over the database the stdio servers share
    #[command(args = shared(&[
        Database::augment_args,
        Liveness::augment_args,
        Webhooks::augment_args,
    ]))]
    Dashboard(Dashboard),
}

/// Adds a group of [`Flags`] to a command, as `Args::augment_args` does.
type Group = fn(clap::Command) -> clap::Command;

/// The flags of `groups` a command takes beside its own, those not global already. They are
/// global on the command so that clap merges them with the stdio server's flags of the same
/// id: a value written before the command's name reaches the command, and one written after
/// it reaches [`Flags`], where the modes read every one of them. Global also carries them
/// down to a command's own commands (`hook claude-code`). Without their display order, the
/// command's `--help` lists them after its own flags.
fn shared(groups: &[Group]) -> Vec<Arg> {
    groups
        .iter()
        .flat_map(|augment| {
            augment(clap::Command::new("shared"))
                .get_arguments()
                .filter(|arg| !arg.is_global_set())
                .map(|arg| arg.clone().global(true).display_order(None))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A whole number of seconds from 1 to `max`.
fn seconds(max: u64) -> impl clap::builder::TypedValueParser<Value = Duration> {
    clap::builder::TypedValueParser::map(
        clap::value_parser!(u64).range(1..=max),
        Duration::from_secs,
    )
}

/// The process's command line; on a mistake, clap's message and exit code.
pub fn parse() -> Flags {
    try_parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
}

/// Parses `args` (the program's name first).
pub fn try_parse_from<I, T>(args: I) -> Result<Flags, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Flags::command();
    let matches = command.try_get_matches_from_mut(args)?;
    refuse_misplaced(&command, &matches)?;
    Flags::from_arg_matches(&matches)
}

/// Clap takes a top-level flag wherever it is written before the command's name; this refuses
/// one that the command does not take, in clap's words for the same flag written after it.
fn refuse_misplaced(top: &clap::Command, matches: &ArgMatches) -> Result<(), clap::Error> {
    let mut command = top;
    let mut at = matches;
    while let Some((name, sub)) = at.subcommand() {
        let Some(found) = command.find_subcommand(name) else {
            break;
        };
        command = found;
        at = sub;
    }
    let taken = |id: &clap::Id| command.get_arguments().any(|arg| arg.get_id() == id);
    let misplaced = top.get_arguments().find(|arg| {
        matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            && !taken(arg.get_id())
    });
    let Some(arg) = misplaced else {
        return Ok(());
    };
    let mut error = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(command);
    let name = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
    error.insert(ContextKind::InvalidArg, ContextValue::String(name));
    error.insert(
        ContextKind::Usage,
        ContextValue::StyledStr(command.clone().render_usage()),
    );
    Err(error)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        try_parse_from(std::iter::once("mcp-session-coordinator").chain(args.iter().copied()))
    }

    #[test]
    fn flags_parse_and_defaults_match_the_product_description() {
        let defaults = parse(&[]).expect("defaults");
        assert_eq!(defaults.sweeps.cleanup_interval, Duration::from_secs(60));
        assert_eq!(defaults.liveness.session_timeout, Duration::from_secs(300));

        let flags = parse(&[
            "--db-path",
            "/tmp/x.db",
            "--cleanup-interval",
            "5",
            "--session-timeout",
            "30",
        ])
        .expect("flags");
        assert_eq!(flags.database.db_path, Some(PathBuf::from("/tmp/x.db")));
        assert!(flags.command.is_none(), "no command runs the server");

        let status =
            parse(&["status", "--db-path", "/tmp/y.db"]).expect("a global flag after the command");
        assert_eq!(status.database.db_path, Some(PathBuf::from("/tmp/y.db")));
        assert!(matches!(
            status.command,
            Some(Command::Cli(CliCommand::Status(_)))
        ));
        assert_eq!(flags.sweeps.cleanup_interval, Duration::from_secs(5));
        assert_eq!(flags.liveness.session_timeout, Duration::from_secs(30));

        assert!(parse(&["--cleanup-interval", "0"]).is_err());
        assert!(
            !flags.database.allow_unsafe_db_path,
            "unsafe paths are refused by default"
        );
        let trusting = parse(&["status", "--allow-unsafe-db-path"])
            .expect("the escape hatch, after the command");
        assert!(trusting.database.allow_unsafe_db_path);

        let listing = parse(&["--tools", "core", "--output-schemas"])
            .expect("listing flags")
            .listing;
        assert!(!listing.tools.is_all() && listing.output_schemas);
        assert!(parse(&["--tools", "everything"]).is_err());
        let serve = parse(&[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tools",
            "core",
            "--output-schemas",
        ])
        .expect("listing flags after serve, as serve --help shows them")
        .listing;
        assert!(!serve.tools.is_all() && serve.output_schemas);
    }

    #[test]
    fn a_flag_counts_before_or_after_the_name_of_a_command_that_takes_it() {
        for args in [
            &["--tools", "core", "--output-schemas", "serve"][..],
            &["serve", "--tools", "core", "--output-schemas"],
            &[
                "--tools",
                "all",
                "serve",
                "--tools",
                "core",
                "--output-schemas",
            ],
        ] {
            let flags = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(matches!(flags.command, Some(Command::Serve(_))), "{args:?}");
            assert!(
                !flags.listing.tools.is_all() && flags.listing.output_schemas,
                "{args:?}: the last --tools counts, wherever it is written"
            );
        }
        for args in [
            &["--session-timeout", "7", "hook", "claude-code"][..],
            &["hook", "--session-timeout", "7", "claude-code"],
            &["hook", "claude-code", "--session-timeout", "7"],
            &["guard", "pre-commit", "--session-timeout", "7"],
        ] {
            let flags = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                flags.liveness.session_timeout,
                Duration::from_secs(7),
                "{args:?}"
            );
        }
        let dashboard = parse(&[
            "--webhook",
            "http://a/",
            "dashboard",
            "--webhook",
            "http://b/",
        ])
        .expect("webhooks on the dashboard");
        assert_eq!(dashboard.webhooks.urls, ["http://b/"]);
        let unsafe_path = parse(&["--allow-unsafe-db-path", "locks"]).expect("before locks");
        assert!(unsafe_path.database.allow_unsafe_db_path);
        let placed = parse(&["--db-path", "/tmp/h.db", "install-git-hook"]).expect("the hook's db");
        assert_eq!(placed.database.db_path, Some(PathBuf::from("/tmp/h.db")));
    }

    #[test]
    fn a_flag_is_refused_where_it_has_no_effect_wherever_it_is_written() {
        for args in [
            &["status", "--tools", "core"][..],
            &["--tools", "core", "status"],
            &["--output-schemas", "dashboard"],
            &["dashboard", "--cleanup-interval", "5"],
            &["--cleanup-interval", "5", "hook", "claude-code"],
            &["hook", "copilot", "session-start", "--webhook", "http://a/"],
            &["--webhook", "http://a/", "send", "-p", "app", "hi"],
            &["locks", "--session-timeout", "5"],
            &["--session-timeout", "5", "context"],
            &["--allow-unsafe-db-path", "install-git-hook"],
            &["install-git-hook", "--session-timeout", "5"],
            &["init", "--session-timeout", "5"],
            &["--token", "t"],
            &["status", "--token", "t"],
        ] {
            let error = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(
                error.kind(),
                ErrorKind::UnknownArgument,
                "{args:?}: {error}"
            );
        }
        let before = parse(&["--tools", "core", "status"])
            .err()
            .map(|e| e.to_string());
        let after = parse(&["status", "--tools", "core"])
            .err()
            .map(|e| e.to_string());
        assert_eq!(before, after, "the same words either way");
    }

    /// The flags of the stdio server a command takes (and so lists in its `--help`).
    fn shared_flags(path: &[&str]) -> BTreeSet<String> {
        let mut top = Flags::command();
        top.build();
        let stdio: BTreeSet<String> = top
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .filter(|long| long != "help" && long != "version")
            .collect();
        let mut command = &top;
        for name in path {
            command = command
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("no command {name}"));
        }
        command
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .filter(|long| stdio.contains(long))
            .collect()
    }

    #[test]
    fn each_command_lists_the_flags_that_have_an_effect_there_and_no_other() {
        let every = ["db-path", "db-url", "log"];
        let opens = [&every[..], &["allow-unsafe-db-path"]].concat();
        let judges = [&opens[..], &["session-timeout"]].concat();
        let servers = [&judges[..], &["webhook"]].concat();
        let mcp = [
            &servers[..],
            &["cleanup-interval", "tools", "output-schemas"],
        ]
        .concat();
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &mcp),
            (&["serve"], &mcp),
            (&["dashboard"], &servers),
            (&["status"], &judges),
            (&["send"], &judges),
            (&["release"], &judges),
            (&["end-session"], &judges),
            (&["doctor"], &judges),
            (&["hook"], &judges),
            (&["hook", "claude-code"], &judges),
            (&["hook", "copilot"], &judges),
            (&["guard", "pre-commit"], &judges),
            (&["locks"], &opens),
            (&["messages"], &opens),
            (&["context"], &opens),
            (&["install-git-hook"], &every),
            (&["init"], &every),
            (&["hook", "gemini-cli"], &judges),
        ];
        for (path, expected) in cases {
            let expected: BTreeSet<String> = expected.iter().map(|f| (*f).to_owned()).collect();
            assert_eq!(shared_flags(path), expected, "{path:?}");
        }
        let mut top = Flags::command();
        let help = top.render_long_help().to_string();
        assert!(!help.contains("--token"), "the stdio server takes no token");
    }
}
