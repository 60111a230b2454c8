//! Settings: command-line flags, each backed by the environment variable of the original
//! product description, so either way of configuring an MCP server works.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::cli::Command;
use crate::coordinator::Coordinator;
use crate::mcp::{ToolListing, ToolSelection};
use crate::store::{FileAccess, Location, Store, StoreError};
use crate::wake::Poker;

/// Where the database lives when nothing says otherwise, under the home directory.
const DEFAULT_DB: &str = ".mcp-session-coordinator/coordinator.db";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "mcp-session-coordinator",
    version,
    about = "An MCP server that coordinates several AI coding sessions on one codebase: file locks, intents, messages, conflict checks and shared context.",
    long_about = "An MCP server that coordinates several AI coding sessions on one codebase: file locks, \
intents, messages, conflict checks and shared context.\n\n\
Without a command, it is the MCP server: each AI session's MCP client starts its own instance, \
which speaks MCP over stdin/stdout. All instances on a machine share one SQLite database (WAL \
mode), so they see each other's sessions, locks and messages. Logs go to stderr.\n\n\
The commands are for people (status, locks, messages, send, context, release, end-session, \
doctor) and for enforcing coordination where every agent passes (hook claude-code, guard \
pre-commit, install-git-hook). They read and write the same database."
)]
pub struct Settings {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// SQLite database shared by every instance [default: ~/.mcp-session-coordinator/coordinator.db]
    #[arg(
        long,
        env = "MCP_COORDINATOR_DB_PATH",
        value_name = "PATH",
        global = true
    )]
    db_path: Option<PathBuf>,

    /// Open the database even through a symlink in a folder every user can write (like /tmp), or when another user owns the file; both are refused otherwise, since another user could have put them there to read or plant data
    #[arg(
        long,
        env = "MCP_COORDINATOR_ALLOW_UNSAFE_DB_PATH",
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    allow_unsafe_db_path: bool,

    /// PostgreSQL database shared by sessions on several machines, as postgres://user:password@host:5432/database; when set, every mode uses it instead of the SQLite file
    #[arg(
        long,
        env = "MCP_COORDINATOR_DB_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    db_url: Option<String>,

    /// Seconds between sweeps in which each instance removes stale sessions (releasing their locks and intents) and expired locks
    #[arg(
        long = "cleanup-interval",
        env = "MCP_CLEANUP_INTERVAL_SEC",
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        global = true
    )]
    cleanup_interval_sec: u64,

    /// Seconds without a heartbeat (or any tool call) after which a session is stale and gets swept; each instance heartbeats its own sessions three times per timeout
    #[arg(
        long = "session-timeout",
        env = "MCP_SESSION_TIMEOUT_SEC",
        value_name = "SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=604_800),
        global = true
    )]
    session_timeout_sec: u64,

    /// What to log to stderr, as a tracing filter: a level (error, warn, info, debug) or per module, like mcp_session_coordinator=debug,rmcp=info
    #[arg(
        long,
        env = "MCP_COORDINATOR_LOG",
        value_name = "FILTER",
        default_value = "mcp_session_coordinator=info,warn",
        global = true
    )]
    pub log: String,

    /// Which tools tools/list shows: all, core (register, lock, check, message), or a comma-separated mix of profiles and tool names. Unlisted tools still answer when called by name
    #[arg(
        long,
        env = "MCP_COORDINATOR_TOOLS",
        value_name = "PROFILE",
        default_value = "all",
        value_parser = ToolSelection::parse,
        global = true
    )]
    tools: ToolSelection,

    /// Deliver events (lock contention, grants from a queue, urgent messages, high conflicts, stale sessions) to this URL as JSON POSTs; repeatable, or comma-separated in the variable. Slack and Discord incoming webhooks read them as is
    #[arg(
        long = "webhook",
        env = "MCP_COORDINATOR_WEBHOOKS",
        value_name = "URL",
        value_delimiter = ',',
        hide_env_values = true,
        global = true
    )]
    pub webhooks: Vec<String>,

    /// List each tool's output schema too, for clients that validate structuredContent (off by default: it would triple what the model's context pays for the list)
    #[arg(long, env = "MCP_COORDINATOR_OUTPUT_SCHEMAS", global = true)]
    output_schemas: bool,
}

/// Why the coordinator could not start on its database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no home directory to put the database in; set MCP_COORDINATOR_DB_PATH or --db-path")]
    NoHome,
    #[error("cannot open the database at {database}")]
    Store {
        database: String,
        #[source]
        source: StoreError,
    },
    /// A refusal that names the path and what to do already.
    #[error(transparent)]
    Refused(StoreError),
}

impl Settings {
    /// The database file: the flag or variable when set (and not empty), else under home.
    pub fn db_path(&self) -> Result<PathBuf, OpenError> {
        if let Some(path) = self.db_path.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            return Ok(path.clone());
        }
        std::env::home_dir()
            .filter(|home| !home.as_os_str().is_empty())
            .map(|home| home.join(DEFAULT_DB))
            .ok_or(OpenError::NoHome)
    }

    /// The shared database: PostgreSQL when a URL is set (and not empty), else the SQLite file.
    pub fn location(&self) -> Result<Location, OpenError> {
        match self
            .db_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            Some(url) => Ok(Location::Url(url.to_owned())),
            None => self.db_path().map(Location::File),
        }
    }

    /// The coordinator over the shared database (created on first use), waking other
    /// processes' waiters when what this one does grants their requests. Its clock is the
    /// store's: the database server's when machines share it. A database file that cannot
    /// be written is refused here, before anything depends on it.
    pub fn coordinator(&self) -> Result<Coordinator, OpenError> {
        self.open(false)
    }

    /// [`Settings::coordinator`] for a command that only reads, which a read-only database
    /// file does not stop: it is opened read-only instead of refused.
    pub fn reader(&self) -> Result<Coordinator, OpenError> {
        self.open(true)
    }

    fn open(&self, read_only_fallback: bool) -> Result<Coordinator, OpenError> {
        let location = self.location()?;
        let access = FileAccess {
            allow_unsafe_path: self.allow_unsafe_db_path,
            read_only_fallback,
            own_folder: self
                .db_path
                .as_ref()
                .is_none_or(|p| p.as_os_str().is_empty()),
        };
        let store = Store::open_with(&location, access).map_err(|source| match source {
            StoreError::UnsafePath { .. } | StoreError::ReadOnly { .. } => {
                OpenError::Refused(source)
            }
            source => OpenError::Store {
                database: location.to_string(),
                source,
            },
        })?;
        let clock = store.clock();
        Ok(Coordinator::new(
            store,
            clock,
            self.session_timeout(),
            crate::clients::machine().to_owned(),
        )
        .with_notifier(Arc::new(Poker)))
    }

    /// A coordinator for looks that must never wait on `writer`'s transactions (the
    /// dashboard's snapshots): a second connection to a SQLite file, whose one connection is
    /// used by one call at a time; PostgreSQL's pool already serves calls side by side.
    pub fn side_reader(&self, writer: &Arc<Coordinator>) -> Result<Arc<Coordinator>, OpenError> {
        match self.location()? {
            Location::File(_) => self.coordinator().map(Arc::new),
            Location::Url(_) => Ok(writer.clone()),
        }
    }

    pub fn cleanup_interval(&self) -> Duration {
        Duration::from_secs(self.cleanup_interval_sec)
    }

    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.session_timeout_sec)
    }

    pub fn tool_listing(&self) -> ToolListing {
        ToolListing {
            selection: self.tools.clone(),
            output_schemas: self.output_schemas,
            session_tokens: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_defaults_match_the_product_description() {
        let settings = Settings::try_parse_from(["mcp-session-coordinator"]).expect("defaults");
        assert_eq!(settings.cleanup_interval(), Duration::from_secs(60));
        assert_eq!(settings.session_timeout(), Duration::from_secs(300));

        let settings = Settings::try_parse_from([
            "mcp-session-coordinator",
            "--db-path",
            "/tmp/x.db",
            "--cleanup-interval",
            "5",
            "--session-timeout",
            "30",
        ])
        .expect("flags");
        assert_eq!(settings.db_path().ok(), Some(PathBuf::from("/tmp/x.db")));
        assert!(settings.command.is_none(), "no command runs the server");

        let status = Settings::try_parse_from(["x", "status", "--db-path", "/tmp/y.db"])
            .expect("a global flag after the command");
        assert_eq!(status.db_path().ok(), Some(PathBuf::from("/tmp/y.db")));
        assert!(matches!(status.command, Some(Command::Status(_))));
        assert_eq!(settings.cleanup_interval(), Duration::from_secs(5));
        assert_eq!(settings.session_timeout(), Duration::from_secs(30));

        assert!(Settings::try_parse_from(["x", "--cleanup-interval", "0"]).is_err());
        assert!(
            !settings.allow_unsafe_db_path,
            "unsafe paths are refused by default"
        );
        let trusting = Settings::try_parse_from(["x", "status", "--allow-unsafe-db-path"])
            .expect("the escape hatch, after the command");
        assert!(trusting.allow_unsafe_db_path);

        let listing = Settings::try_parse_from(["x", "--tools", "core", "--output-schemas"])
            .expect("listing flags")
            .tool_listing();
        assert!(!listing.selection.is_all() && listing.output_schemas);
        assert!(Settings::try_parse_from(["x", "--tools", "everything"]).is_err());
        let serve = Settings::try_parse_from([
            "x",
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tools",
            "core",
            "--output-schemas",
        ])
        .expect("listing flags after serve, as serve --help shows them")
        .tool_listing();
        assert!(!serve.selection.is_all() && serve.output_schemas);

        let shared = Settings::try_parse_from([
            "x",
            "status",
            "--db-path",
            "/tmp/z.db",
            "--db-url",
            "postgres://team:pw@db:5432/coord",
        ])
        .expect("a URL");
        assert_eq!(
            shared.location().ok(),
            Some(Location::Url("postgres://team:pw@db:5432/coord".into())),
            "the URL wins over the file"
        );
        let blank = Settings::try_parse_from(["x", "--db-path", "/tmp/z.db", "--db-url", " "])
            .expect("an empty URL");
        assert_eq!(
            blank.location().ok(),
            Some(Location::File(PathBuf::from("/tmp/z.db")))
        );
    }
}
