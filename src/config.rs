//! What the parsed flags configure: the shared database and the coordinator over it, the
//! tool listing, and who may use a server on the network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::Coordinator;
use crate::flags;
use crate::mcp::ToolListing;
use crate::store::{FileAccess, LibpqEnv, Location, Store, StoreError};
use crate::wake::Poker;
use crate::web::{Access, AccessError};

/// Where the database lives when nothing says otherwise, under the home directory.
const DEFAULT_DB: &str = ".mcp-session-coordinator/coordinator.db";

/// The shared database as the flags name it: where it is, whether to trust a path another
/// user could have planted, and when a session counts as stale. Every mode opens its
/// coordinator through it.
#[derive(Debug, Clone)]
pub struct Database {
    db_path: Option<PathBuf>,
    db_url: Option<String>,
    allow_unsafe_path: bool,
    session_timeout: Duration,
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

impl Database {
    pub fn new(database: &flags::Database, liveness: &flags::Liveness) -> Self {
        Self {
            db_path: database.db_path.clone(),
            db_url: database.db_url.clone(),
            allow_unsafe_path: database.allow_unsafe_db_path,
            session_timeout: liveness.session_timeout,
        }
    }

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

    /// [`Database::coordinator`] for a command that only reads, which a read-only database
    /// file does not stop: it is opened read-only instead of refused.
    pub fn reader(&self) -> Result<Coordinator, OpenError> {
        self.open(true)
    }

    fn open(&self, read_only_fallback: bool) -> Result<Coordinator, OpenError> {
        let location = self.location()?;
        let access = FileAccess {
            allow_unsafe_path: self.allow_unsafe_path,
            read_only_fallback,
            own_folder: self
                .db_path
                .as_ref()
                .is_none_or(|p| p.as_os_str().is_empty()),
        };
        let libpq = LibpqEnv {
            sslmode: std::env::var("PGSSLMODE").ok(),
            sslrootcert: std::env::var("PGSSLROOTCERT").ok(),
            home: std::env::home_dir(),
        };
        let store = Store::open_with(&location, access, &libpq).map_err(|source| match source {
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
            self.session_timeout,
            crate::platform::machine().to_owned(),
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
}

/// How the MCP servers list their tools; the HTTP server adds `session_token` itself.
pub fn tool_listing(listing: &flags::Listing) -> ToolListing {
    ToolListing {
        selection: listing.tools.clone(),
        output_schemas: listing.output_schemas,
        session_tokens: false,
    }
}

/// The checks every request to a server listening on `listen` passes.
pub fn access(flags: &flags::Access, listen: SocketAddr) -> Result<Access, AccessError> {
    Access::new(
        listen,
        flags.token.clone(),
        &flags.allowed_hosts,
        &flags.allowed_origins,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(args: &[&str]) -> Database {
        let flags =
            flags::try_parse_from(std::iter::once("x").chain(args.iter().copied())).expect("flags");
        Database::new(&flags.database, &flags.liveness)
    }

    #[test]
    fn the_flags_name_the_database_and_the_tool_listing() {
        let settings = database(&["--db-path", "/tmp/x.db", "--session-timeout", "30"]);
        assert_eq!(settings.db_path().ok(), Some(PathBuf::from("/tmp/x.db")));
        assert_eq!(settings.session_timeout, Duration::from_secs(30));
        let status = database(&["status", "--db-path", "/tmp/y.db"]);
        assert_eq!(status.db_path().ok(), Some(PathBuf::from("/tmp/y.db")));
        assert!(!settings.allow_unsafe_path);
        assert!(database(&["status", "--allow-unsafe-db-path"]).allow_unsafe_path);

        let shared = database(&[
            "status",
            "--db-path",
            "/tmp/z.db",
            "--db-url",
            "postgres://team:pw@db:5432/coord",
        ]);
        assert_eq!(
            shared.location().ok(),
            Some(Location::Url("postgres://team:pw@db:5432/coord".into())),
            "the URL wins over the file"
        );
        let blank = database(&["--db-path", "/tmp/z.db", "--db-url", " "]);
        assert_eq!(
            blank.location().ok(),
            Some(Location::File(PathBuf::from("/tmp/z.db")))
        );

        let flags = flags::try_parse_from(["x", "--tools", "core", "--output-schemas"])
            .expect("listing flags");
        let listing = tool_listing(&flags.listing);
        assert!(!listing.selection.is_all() && listing.output_schemas);
        assert!(
            !listing.session_tokens,
            "only the HTTP server asks for tokens"
        );
    }
}
