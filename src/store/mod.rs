//! The store: the one place that knows SQL.
//!
//! Two backends sit behind [`Store`], chosen at start: an embedded SQLite file (the default, for
//! the sessions of one machine) and a PostgreSQL database (for sessions on several machines).
//! Work happens inside [`Store::read`] or [`Store::write`]: a read is one consistent snapshot;
//! a write holds the database's single write lock from its start (SQLite's `BEGIN IMMEDIATE`,
//! a PostgreSQL advisory lock), so a check-then-write (is the path free? then grant it) is
//! atomic across every process, whichever the backend.
//!
//! The table-specific statements live in the submodules, as methods on [`ReadTx`] (queries)
//! and [`WriteTx`] (changes), written once for both databases (see `sql.rs`); a read
//! transaction therefore cannot write, by construction.

mod changes;
mod context;
mod events;
mod file;
mod intents;
mod locks;
mod messages;
mod notify;
mod postgres;
mod sessions;
pub(crate) mod sql;
mod sqlite;
mod tally;
mod tls;
mod tokens;

use std::cell::Cell;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use changes::NewChange;
pub use context::ContextQuery;
pub use events::{Cursor, EventRow, NewEvent};
pub use file::FileAccess;
pub use intents::{IntentFilter, NewIntent, Overlap};
pub use locks::{LockFilter, NewLock, NewWaiter};
pub use messages::{InboxFilter, MarkRead, NewMessage};
pub use sessions::SessionFilter;
pub use tally::{Counts, Outbox};
pub use tls::LibpqEnv;

use crate::clock::{Clock, SystemClock};
use sql::{Arg, Conn, Row};

/// How long a write waits for the database's write lock, held by another process's write
/// transaction, before it fails as [`StoreError::Busy`]: the same bound on either backend.
const WRITE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How often a server checkpoints SQLite's write-ahead log: often enough that the log stays
/// a few thousand pages at the most a machine writes, rarely enough to cost nothing idle.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The PostgreSQL channel that carries wake-ups between machines; a notification's payload is
/// the wake address of the process it is for.
pub const WAKE_CHANNEL: &str = "mcp_coordinator_wake";

/// Called with the wake address of each wake-up announced on any machine, or with `None` when
/// some may have been missed (see [`Store::listen_for_wakes`]).
pub type OnWake = Box<dyn Fn(Option<&str>) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the coordinator database stayed locked by another process for {}s; try again",
        WRITE_LOCK_WAIT.as_secs()
    )]
    Busy,
    #[error("cannot create the database folder {path}")]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database file {path}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing the database path {path}: {reason}; pass --allow-unsafe-db-path (or set MCP_COORDINATOR_ALLOW_UNSAFE_DB_PATH=1) if you trust it"
    )]
    UnsafePath { path: PathBuf, reason: String },
    #[error(
        "cannot write the database {what} {path}: {reason}; fix its permissions or point --db-path elsewhere"
    )]
    ReadOnly {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "the database has schema version {found} and this program needs {known}, but it is read-only, so it cannot be upgraded; start a server with write access to it once"
    )]
    ReadOnlyOutdated { found: i64, known: i64 },
    #[error(
        "the database at {path} could not switch to WAL mode (it reports '{mode}'); WAL needs a local filesystem, not a network share: for sessions on several machines use PostgreSQL (MCP_COORDINATOR_DB_URL)"
    )]
    NotWal { path: PathBuf, mode: String },
    #[error(
        "the database has schema version {found}, newer than this program knows ({known}); upgrade mcp-session-coordinator"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error(
        "MCP_COORDINATOR_DB_URL is not a PostgreSQL URL like postgres://user:password@host:5432/database: {0}"
    )]
    BadUrl(String),
    #[error(
        "the PostgreSQL database at {database} cannot be reached ({reason}); try again once it is up"
    )]
    Unreachable { database: String, reason: String },
    #[error("TLS to the PostgreSQL database at {database} failed: {reason}")]
    Tls { database: String, reason: String },
    #[error("PostgreSQL error: {0}")]
    Postgres(String),
    /// Under [`without_waiting`], a call that would have waited for the connection or for
    /// another process's write lock. The caller runs the call again where waiting is fine.
    #[error("the call would have waited for the database; run it again on a blocking thread")]
    WouldWait,
}

impl StoreError {
    /// Whether the call was refused by [`without_waiting`] before it changed anything.
    pub fn would_wait(&self) -> bool {
        matches!(self, StoreError::WouldWait)
    }
}

thread_local! {
    /// Set by [`without_waiting`] on this thread until a write transaction begins.
    static WAITS_REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` so that its store calls never wait: a transaction that would wait for this
/// process's connection (in use by another thread) or for another process's write lock fails
/// at once with [`StoreError::WouldWait`], and so does any call on PostgreSQL, which waits on
/// the network. That holds until a write transaction of `work` begins; its later
/// transactions wait as usual. A refused `work` has therefore written nothing, and running
/// it again elsewhere repeats no write.
///
/// The stdio server answers on its one async thread this way, without handing each call to
/// a blocking thread and back (two thread wake-ups, most of a call's time), and hands over
/// only the calls that would wait.
pub fn without_waiting<T>(work: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            WAITS_REFUSED.set(self.0);
        }
    }
    let _restore = Restore(WAITS_REFUSED.replace(true));
    work()
}

/// Whether this thread's store calls must not wait now.
fn waits_refused() -> bool {
    WAITS_REFUSED.get()
}

/// A write transaction began: what follows it may wait, since a retry would repeat it.
fn write_began() {
    WAITS_REFUSED.set(false);
}

/// Where the shared database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file, shared by the processes of one machine.
    File(PathBuf),
    /// A PostgreSQL URL, shared by processes on any machine that reaches the server.
    Url(String),
}

impl std::fmt::Display for Location {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(&postgres::shown_url(url)),
        }
    }
}

// One per process, so the size of the SQLite variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<postgres::Postgres>),
}

pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens the database at `location`, creating and migrating its schema when needed; a
    /// file is checked as [`FileAccess::default`] says (private, safe, writable).
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        Self::open_with(location, FileAccess::default(), &LibpqEnv::default())
    }

    /// [`Store::open`], with a file checked as `access` says, and a PostgreSQL URL completed
    /// by `libpq` as libpq completes it.
    pub fn open_with(
        location: &Location,
        access: FileAccess,
        libpq: &LibpqEnv,
    ) -> Result<Self, StoreError> {
        let backend = match location {
            Location::File(path) => Backend::Sqlite(sqlite::Sqlite::open(path, access)?),
            Location::Url(url) => {
                Backend::Postgres(Box::new(postgres::Postgres::open(url, libpq)?))
            }
        };
        Ok(Self { backend })
    }

    /// Opens the SQLite file at `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        Self::open(&Location::File(path.to_path_buf()))
    }

    /// A private in-memory database, for tests of the rules above the store.
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Sqlite(sqlite::Sqlite::open_in_memory()?),
        })
    }

    /// The clock every rule decides by: the machine's own for a local file, the database
    /// server's when the database is shared by machines whose clocks may disagree.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match &self.backend {
            Backend::Sqlite(_) => Arc::new(SystemClock),
            Backend::Postgres(pg) => Arc::new(pg.clock()),
        }
    }

    /// Runs `work` in a read transaction: one consistent snapshot, never blocked by writers.
    pub fn read<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&ReadTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let work = |conn: Conn<'_>| work(&ReadTx { conn });
        match &self.backend {
            Backend::Sqlite(db) => db.run(false, work),
            Backend::Postgres(db) => db.run(false, work),
        }
    }

    /// Runs `work` in a transaction that holds the database's write lock from the start, so
    /// what it reads cannot change before it writes. Committed when `work` returns `Ok`,
    /// rolled back otherwise.
    pub fn write<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let work = |conn: Conn<'_>| {
            work(&WriteTx {
                read: ReadTx { conn },
            })
        };
        match &self.backend {
            Backend::Sqlite(db) => db.run(true, work),
            Backend::Postgres(db) => db.run(true, work),
        }
    }

    /// Copies SQLite's write-ahead log back into the database file without making anyone
    /// wait; a server runs it every [`CHECKPOINT_EVERY`], and from its first run on the
    /// process's own writes no longer checkpoint. Nothing to do on PostgreSQL.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.checkpoint(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Calls `on_wake` with the address of every wake-up announced on any machine, from a
    /// thread of its own, for as long as the process lives; after a lost connection it calls
    /// it with `None` once listening again, since what was announced meanwhile is lost. False
    /// where nothing needs it or can carry it: on SQLite (one machine, whose wake sockets
    /// reach every process) and behind a pooler in transaction mode (no `LISTEN` there).
    pub fn listen_for_wakes(&self, on_wake: OnWake) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => false,
            Backend::Postgres(db) => db.listen_for_wakes(on_wake),
        }
    }

    /// What `doctor` reports of the database itself.
    pub fn health(&self) -> Result<StoreHealth, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.health(),
            Backend::Postgres(db) => db.health(),
        }
    }
}

/// The migrations of `all` a database at schema version `found` has yet to apply; a schema
/// newer than this program knows is refused rather than misread.
fn pending<'m>(found: i64, all: &'m [&'m str]) -> Result<&'m [&'m str], StoreError> {
    let applied = usize::try_from(found).unwrap_or(usize::MAX);
    all.get(applied..).ok_or(StoreError::SchemaTooNew {
        found,
        known: all.len() as i64,
    })
}

/// What `doctor` reports of the database itself. Opening it already migrated it (or refused),
/// so the schema is shown as a fact; the integrity check is what can still fail.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct StoreHealth {
    /// The SQLite file, or the PostgreSQL URL without its password.
    pub database: String,
    /// "sqlite" or "postgresql".
    pub backend: &'static str,
    /// SQLite only: "wal" when several processes can share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_mode: Option<String>,
    pub schema_version: i64,
    /// The version this program migrates to.
    pub schema_expected: i64,
    /// SQLite only: opened read-only, because the file cannot be written (a command that
    /// only reads); servers refuse to start on it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// The database engine and its version.
    pub engine_version: String,
    /// PostgreSQL only: how this process's connection is protected ("TLSv1.3 (sslmode=...)"
    /// or "none (sslmode=...)").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    pub size_bytes: u64,
    /// `["ok"]`, or the problems found (SQLite's `integrity_check`; on PostgreSQL, the unread
    /// counters checked against the inboxes).
    pub integrity: Vec<String>,
}

impl StoreHealth {
    pub fn is_sound(&self) -> bool {
        self.integrity.iter().all(|line| line == "ok")
    }
}

/// A read transaction: the queries.
pub struct ReadTx<'c> {
    conn: Conn<'c>,
}

/// A write transaction: the changes, plus every query of [`ReadTx`].
pub struct WriteTx<'c> {
    read: ReadTx<'c>,
}

impl WriteTx<'_> {
    /// Tells the processes waiting at `addresses`, on every machine, that something arrived:
    /// on PostgreSQL a `NOTIFY` on [`WAKE_CHANNEL`], sent with the commit and only if it
    /// commits.
    pub fn announce(&self, addresses: &[String]) {
        self.conn.announce(addresses);
    }
}

impl<'c> Deref for WriteTx<'c> {
    type Target = ReadTx<'c>;

    fn deref(&self) -> &ReadTx<'c> {
        &self.read
    }
}

/// Reads a word column (`lock_type`, `status`, ...) into its enum.
/// The bounds of every `file#Symbol` key of `file`: they sort after `file#` and before `file$`
/// ('$' follows '#'), so one index range finds a file's symbols.
fn symbols_of(file: &str) -> [Arg<'static>; 2] {
    [
        Arg::text(format!("{file}{}", crate::patterns::SYMBOL_SEPARATOR)),
        Arg::text(format!("{file}$")),
    ]
}

fn word<T>(row: &Row<'_>, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unexpected {column} '{text}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_rolls_back() {
        let store = Store::open_in_memory().expect("store");
        let result: Result<(), StoreError> = store.write(|tx| {
            tx.conn.execute("UPDATE counters SET value = 41", &[])?;
            Err(StoreError::Corrupt("stop".into()))
        });
        assert!(result.is_err());
        let value: Result<i64, StoreError> = store.read(|tx| {
            tx.conn
                .query_one("SELECT value FROM counters", &[], |r| r.get(0))
        });
        assert_eq!(value.ok(), Some(0));
    }

    /// A session of project "app", registered and last seen at `now`.
    fn session(id: &str, now: crate::clock::Timestamp) -> crate::model::Session {
        crate::model::Session {
            session_id: id.into(),
            name: id.into(),
            project: "app".into(),
            branch: None,
            working_directory: None,
            registered_at: now,
            last_heartbeat: now,
            wake: None,
            group: None,
            client_pid: None,
            client_ref: None,
            who: None,
        }
    }

    #[test]
    fn another_machines_process_id_is_not_taken_for_one_of_ours() {
        let store = Store::open_in_memory().expect("open");
        let now = crate::clock::Timestamp::from_millis(1);
        let session = |id: &str| crate::model::Session {
            client_pid: Some(4242),
            ..session(id, now)
        };
        let found = store
            .write(|tx| {
                tx.insert_session(&session("here"), "this-machine")?;
                tx.insert_session(&session("there"), "another-machine")?;
                tx.live_client_sessions(now, "this-machine")
            })
            .expect("sessions");
        let ids: Vec<(&str, Option<u32>)> = found
            .iter()
            .map(|s| (s.session_id.as_str(), s.client_pid))
            .collect();
        assert_eq!(ids, [("here", Some(4242))]);
    }

    #[test]
    fn unread_counters_follow_the_inbox() {
        use crate::clock::Timestamp;
        use crate::model::{Channel, Priority};

        let store = Store::open_in_memory().expect("open");
        let now = Timestamp::from_millis(1);
        let counted = |store: &Store| -> ((i64, i64), (i64, i64)) {
            store
                .read(|tx| {
                    let kept = tx.unread("s")?;
                    let real = tx.conn.query_one(
                        "SELECT count(*), coalesce(sum(m.priority = 'urgent'), 0)
                         FROM inbox x JOIN messages m ON m.id = x.message_id
                         WHERE x.session_id = 's' AND x.read_at IS NULL",
                        &[],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?;
                    Ok::<_, StoreError>((kept, real))
                })
                .expect("count")
        };
        let ids = store
            .write(|tx| {
                tx.insert_session(&session("s", now), "this-machine")?;
                let mut ids = Vec::new();
                for priority in [Priority::Urgent, Priority::Normal, Priority::Urgent] {
                    let id = tx.insert_message(&NewMessage {
                        project: "app",
                        from_session: None,
                        from_name: "x",
                        to_session: Some("s"),
                        to_group: None,
                        channel: Channel::General,
                        priority,
                        content: "hi",
                        now,
                    })?;
                    tx.deliver(id, "s")?;
                    ids.push(id);
                }
                Ok::<_, StoreError>(ids)
            })
            .expect("deliver");
        let (kept, real) = counted(&store);
        assert_eq!(kept, (3, 2));
        assert_eq!(kept, real);
        store
            .write(|tx| {
                tx.mark_read("s", ids[0], now)?;
                tx.mark_read("s", ids[0], now)?;
                tx.conn.execute(
                    "DELETE FROM inbox WHERE message_id = ?1",
                    &sql::args![ids[1].0],
                )?;
                Ok::<_, StoreError>(())
            })
            .expect("read and remove");
        let (kept, real) = counted(&store);
        assert_eq!(
            kept,
            (1, 1),
            "reading twice counts once; a removed unread row is gone"
        );
        assert_eq!(kept, real);
    }
}
