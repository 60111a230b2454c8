//! The SQLite store: the one place that knows SQL.
//!
//! Every server process opens the database file once and keeps that single connection (closing
//! any handle on a file drops all of the process's POSIX locks on it). Work happens inside
//! [`Store::read`] or [`Store::write`]; a write is a `BEGIN IMMEDIATE` transaction, so a
//! check-then-write (is the path free? then grant it) is atomic across processes. A deferred
//! transaction that reads and then writes would fail at once with `SQLITE_BUSY` in WAL mode when
//! another process wrote in between, because SQLite skips the busy handler to avoid deadlock.
//!
//! The table-specific statements live in the submodules, as methods on [`ReadTx`] (queries)
//! and [`WriteTx`] (changes); a read transaction therefore cannot write, by construction.

mod context;
mod events;
mod intents;
mod locks;
mod messages;
mod sessions;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

pub use context::ContextQuery;
pub use events::{Cursor, EventRow, NewEvent};
pub use intents::{IntentFilter, NewIntent, Overlap};
pub use locks::{LockFilter, NewLock, NewWaiter};
pub use messages::{InboxFilter, MarkRead, NewMessage};
pub use sessions::SessionFilter;

/// Numbered migrations, applied in order on open; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_queues_patterns_history.sql"),
    include_str!("migrations/003_session_wake.sql"),
    include_str!("migrations/004_resource_capacity.sql"),
    include_str!("migrations/005_unread_counters.sql"),
    include_str!("migrations/006_groups_and_clients.sql"),
    include_str!("migrations/007_tokens_and_events.sql"),
];

/// How long a write waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The first pause while another process holds the write lock; pauses double up to
/// [`LONGEST_BUSY_PAUSE`].
const FIRST_BUSY_PAUSE: Duration = Duration::from_micros(50);
const LONGEST_BUSY_PAUSE: Duration = Duration::from_millis(5);

/// How long the pause before retry `n` (from 0) is.
fn busy_pause(n: u32) -> Duration {
    FIRST_BUSY_PAUSE
        .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
        .min(LONGEST_BUSY_PAUSE)
}

/// Waits out another process's write transaction. SQLite's own busy timeout sleeps 1 ms, then
/// 2, 5, 10 and more, where a commit here takes tens of microseconds: processes contending for
/// the write lock spent most of their time asleep. This starts at 50 µs and doubles up to 5 ms,
/// for [`BUSY_TIMEOUT`] in all.
fn busy_wait() -> impl FnMut(i32) -> bool + Send + 'static {
    busy_wait_with(std::thread::sleep)
}

fn busy_wait_with(
    mut sleep: impl FnMut(Duration) + Send + 'static,
) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut waited = Duration::ZERO;
    move |retry| {
        if retry == 0 {
            waited = Duration::ZERO;
        }
        if waited >= BUSY_TIMEOUT {
            return false;
        }
        let pause = busy_pause(u32::try_from(retry).unwrap_or(0));
        sleep(pause);
        waited += pause;
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the coordinator database stayed locked by another process for {}s; try again",
        BUSY_TIMEOUT.as_secs()
    )]
    Busy,
    #[error("cannot create the database folder {path}")]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database at {path} could not switch to WAL mode (it reports '{mode}'); WAL needs a local filesystem, not a network share"
    )]
    NotWal { path: PathBuf, mode: String },
    #[error(
        "the database has schema version {found}, newer than this program knows ({known}); upgrade mcp-session-coordinator"
    )]
    SchemaTooNew { found: i64, known: usize },
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(error),
        }
    }
}

pub struct Store {
    connection: Mutex<Connection>,
}

impl Store {
    /// Opens (creating it and its folder if needed) the database shared by every process.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::CreateFolder {
                path: folder.to_path_buf(),
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut connection = Connection::open_with_flags(path, flags)?;
        connection.busy_handler(Some(busy_wait()))?;
        let mode: String =
            connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        Self::configure(connection)
    }

    /// A private in-memory database, for tests of the rules above the store.
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory()?;
        Self::configure(connection)
    }

    fn configure(mut connection: Connection) -> Result<Self, StoreError> {
        // NORMAL is durable across process crashes in WAL mode; only an OS crash or power loss
        // can lose the last commits, and it costs a fraction of FULL's fsyncs.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.set_prepared_statement_cache_capacity(64);
        // Plans must not depend on bound values: otherwise SQLite marks a join's statement for
        // re-preparation whenever rusqlite clears its bindings on return to the cache, and
        // every call re-parses and re-plans it (measured: about a third of a lock_check).
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        migrate(&mut connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction has already rolled it back (the transaction's drop), so
        // the connection behind a poisoned lock is still consistent and usable.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` in a read transaction: one consistent snapshot, never blocked by writers.
    pub fn read<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&ReadTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut connection = self.connection();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let value = work(&ReadTx { conn: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction: it holds the database's write lock from
    /// the start, so what it reads cannot change before it writes. Committed when `work`
    /// returns `Ok`, rolled back otherwise.
    pub fn write<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut connection = self.connection();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = work(&WriteTx {
            read: ReadTx { conn: &tx },
        })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }
}

/// What `doctor` reports of the database itself. Opening it already switched it to WAL and
/// migrated it (or refused), so the journal mode and schema are shown as facts; the integrity
/// check is what can still fail.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct StoreHealth {
    pub database: PathBuf,
    /// "wal" when several processes can share it.
    pub journal_mode: String,
    pub schema_version: i64,
    /// The version this program migrates to.
    pub schema_expected: i64,
    pub sqlite_version: String,
    pub size_bytes: u64,
    /// `PRAGMA integrity_check`: `["ok"]`, or the problems found.
    pub integrity: Vec<String>,
}

impl StoreHealth {
    pub fn is_sound(&self) -> bool {
        self.integrity.iter().all(|line| line == "ok")
    }
}

impl Store {
    /// Checks the database: journal mode, schema version, and a full integrity check (which
    /// reads every page, so it is for `doctor`, not for a hot path).
    pub fn health(&self) -> Result<StoreHealth, StoreError> {
        let connection = self.connection();
        let pragma = |name: &str| -> Result<String, StoreError> {
            Ok(connection
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|value| match value {
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })?)
        };
        let journal_mode = pragma("journal_mode")?;
        let schema_version = pragma("user_version")?.parse().unwrap_or(-1);
        let page_count: u64 = pragma("page_count")?.parse().unwrap_or(0);
        let page_size: u64 = pragma("page_size")?.parse().unwrap_or(0);
        let mut stmt = connection.prepare("PRAGMA integrity_check")?;
        let integrity = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let database = connection
            .path()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(":memory:"));
        Ok(StoreHealth {
            database,
            journal_mode,
            schema_version,
            schema_expected: MIGRATIONS.len() as i64,
            sqlite_version: rusqlite::version().to_owned(),
            size_bytes: page_count * page_size,
            integrity,
        })
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let applied = usize::try_from(found).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found,
            known: MIGRATIONS.len(),
        });
    }
    if applied < MIGRATIONS.len() {
        for sql in &MIGRATIONS[applied..] {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// A read transaction: the queries.
pub struct ReadTx<'c> {
    conn: &'c Connection,
}

/// A write transaction: the changes, plus every query of [`ReadTx`].
pub struct WriteTx<'c> {
    read: ReadTx<'c>,
}

impl<'c> Deref for WriteTx<'c> {
    type Target = ReadTx<'c>;

    fn deref(&self) -> &ReadTx<'c> {
        &self.read
    }
}

/// Reads a word column (`lock_type`, `status`, ...) into its enum.
fn word<T>(
    row: &rusqlite::Row<'_>,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unexpected {column} '{text}'").into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/folder/coordinator.db");
        Store::open(&path).expect("first open creates folder and schema");
        Store::open(&path).expect("second open finds the schema current");

        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99)
            .expect("bump version");
        drop(conn);
        let err = Store::open(&path).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("schema version 99")));
    }

    #[test]
    fn a_failed_write_rolls_back() {
        let store = Store::open_in_memory().expect("store");
        let result: Result<(), StoreError> = store.write(|tx| {
            tx.conn
                .execute("UPDATE counters SET value = 41", [])
                .map_err(StoreError::from)?;
            Err(StoreError::Corrupt("stop".into()))
        });
        assert!(result.is_err());
        let value: Result<i64, StoreError> = store.read(|tx| {
            Ok(tx
                .conn
                .query_row("SELECT value FROM counters", [], |r| r.get(0))?)
        });
        assert_eq!(value.ok(), Some(0));
    }

    #[test]
    fn cached_joins_are_not_prepared_again_in_each_transaction() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Store::open(&dir.path().join("c.db")).expect("open");
        let sql = "SELECT count(*) FROM locks l JOIN sessions s ON s.id = l.session_id
                   WHERE l.project = ?1";
        let mut reprepared = 0;
        for _ in 0..3 {
            reprepared = store
                .read(|tx| {
                    let mut stmt = tx.conn.prepare_cached(sql)?;
                    let _: i64 = stmt.query_row(["app"], |row| row.get(0))?;
                    Ok::<_, StoreError>(stmt.get_status(rusqlite::StatementStatus::RePrepare))
                })
                .expect("read");
        }
        assert_eq!(reprepared, 0, "the statement cache is defeated");
    }

    #[test]
    fn unread_counters_follow_the_inbox() {
        use crate::clock::Timestamp;
        use crate::model::{Channel, Priority, Session};

        let store = Store::open_in_memory().expect("open");
        let now = Timestamp::from_millis(1);
        let counted = |store: &Store| -> ((i64, i64), (i64, i64)) {
            store
                .read(|tx| {
                    let kept = tx.unread("s")?;
                    let real = tx.conn.query_row(
                        "SELECT count(*), coalesce(sum(m.priority = 'urgent'), 0)
                         FROM inbox x JOIN messages m ON m.id = x.message_id
                         WHERE x.session_id = 's' AND x.read_at IS NULL",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?;
                    Ok::<_, StoreError>((kept, real))
                })
                .expect("count")
        };
        let ids = store
            .write(|tx| {
                tx.insert_session(&Session {
                    session_id: "s".into(),
                    name: "s".into(),
                    project: "app".into(),
                    branch: None,
                    working_directory: None,
                    registered_at: now,
                    last_heartbeat: now,
                    wake: None,
                    group: None,
                    client_pid: None,
                    client_ref: None,
                })?;
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
                tx.conn
                    .execute("DELETE FROM inbox WHERE message_id = ?1", [ids[1].0])?;
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

    #[test]
    fn busy_pauses_start_short_and_give_up_after_the_timeout() {
        assert_eq!(busy_pause(0), Duration::from_micros(50));
        assert_eq!(busy_pause(3), Duration::from_micros(400));
        assert_eq!(busy_pause(7), LONGEST_BUSY_PAUSE);
        assert_eq!(busy_pause(40), LONGEST_BUSY_PAUSE, "no overflow");
        let slept = std::sync::Arc::new(Mutex::new(Duration::ZERO));
        let total = slept.clone();
        let mut wait = busy_wait_with(move |pause| {
            *total.lock().unwrap_or_else(PoisonError::into_inner) += pause;
        });
        let mut retries = 0;
        while wait(retries) {
            retries += 1;
            assert!(retries < 100_000, "never gives up");
        }
        let slept = *slept.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            (BUSY_TIMEOUT..BUSY_TIMEOUT + LONGEST_BUSY_PAUSE).contains(&slept),
            "gave up after {slept:?}"
        );
        assert!((2_000..2_100).contains(&retries), "{retries} retries");
        assert!(wait(0), "a new wait starts afresh");
    }
}
