//! The embedded backend: one SQLite file in WAL mode, shared by the processes of one machine.
//!
//! Every server process opens the database file once and keeps that single connection (closing
//! any handle on a file drops all of the process's POSIX locks on it). A write is a
//! `BEGIN IMMEDIATE` transaction, so a check-then-write (is the path free? then grant it) is
//! atomic across processes. A deferred transaction that reads and then writes would fail at
//! once with `SQLITE_BUSY` in WAL mode when another process wrote in between, because SQLite
//! skips the busy handler to avoid deadlock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::file::{self, FileAccess};
use super::sql::Conn;
use super::{StoreError, StoreHealth, WRITE_LOCK_WAIT, pending};

/// Numbered migrations, applied in order on open; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/001_initial.sql"),
    include_str!("migrations/sqlite/002_queues_patterns_history.sql"),
    include_str!("migrations/sqlite/003_session_wake.sql"),
    include_str!("migrations/sqlite/004_resource_capacity.sql"),
    include_str!("migrations/sqlite/005_unread_counters.sql"),
    include_str!("migrations/sqlite/006_groups_and_clients.sql"),
    include_str!("migrations/sqlite/007_tokens_and_events.sql"),
    include_str!("migrations/sqlite/008_client_host.sql"),
    include_str!("migrations/sqlite/009_edits_and_changes.sql"),
];

/// The schema version this program migrates to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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
/// for [`WRITE_LOCK_WAIT`] in all.
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
        if waited >= WRITE_LOCK_WAIT {
            return false;
        }
        let pause = busy_pause(u32::try_from(retry).unwrap_or(0));
        sleep(pause);
        waited += pause;
        true
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(error),
        }
    }
}

pub struct Sqlite {
    connection: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating it and its folder if needed) the database shared by every process,
    /// after the checks of [`file::prepare`]: read-only when the file cannot be written and
    /// `access` accepts that.
    ///
    /// Several processes starting at once on a new file meet each other's locks while one of
    /// them switches it to WAL and creates the schema. Where SQLite refuses a lock upgrade at
    /// once (busy without waiting, so as not to deadlock) rather than waiting, the whole open
    /// is tried again, for as long as a write would wait.
    pub fn open(path: &Path, access: FileAccess) -> Result<Self, StoreError> {
        let deadline = Instant::now() + WRITE_LOCK_WAIT;
        loop {
            match Self::open_once(path, access) {
                Err(StoreError::Busy) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                opened => return opened,
            }
        }
    }

    fn open_once(path: &Path, access: FileAccess) -> Result<Self, StoreError> {
        let prepared = file::prepare(path, access)?;
        let flags = if prepared.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut connection = Connection::open_with_flags(path, flags)?;
        connection.busy_handler(Some(busy_wait()))?;
        if !prepared.read_only {
            let mode: String =
                connection
                    .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::NotWal {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        Self::configure(connection, prepared.read_only)
    }

    /// A private in-memory database, for tests of the rules above the store.
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory()?;
        Self::configure(connection, false)
    }

    fn configure(mut connection: Connection, read_only: bool) -> Result<Self, StoreError> {
        // NORMAL is durable across process crashes in WAL mode; only an OS crash or power loss
        // can lose the last commits, and it costs a fraction of FULL's fsyncs.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.set_prepared_statement_cache_capacity(64);
        // Plans must not depend on bound values: otherwise SQLite marks a join's statement for
        // re-preparation whenever rusqlite clears its bindings on return to the cache, and
        // every call re-parses and re-plans it (measured: about a third of a lock_check).
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        if read_only {
            // Nothing can be migrated; a schema this program cannot read is refused.
            let found: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            if !pending(found, MIGRATIONS)?.is_empty() {
                return Err(StoreError::ReadOnlyOutdated {
                    found,
                    known: SCHEMA_VERSION,
                });
            }
        } else {
            migrate(&mut connection)?;
        }
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

    /// Runs `work` in a transaction that takes the write lock at its start (`write`) or at
    /// its first write (never, for a reader); committed when `work` returns `Ok`.
    pub fn run<T, E: From<StoreError>>(
        &self,
        write: bool,
        work: impl FnOnce(Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let behavior = if write {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let mut connection = self.connection();
        let tx = connection
            .transaction_with_behavior(behavior)
            .map_err(StoreError::from)?;
        let value = work(Conn::Sqlite(&tx))?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Journal mode, schema version, and a full integrity check (which reads every page, so it
    /// is for `doctor`, not for a hot path).
    pub fn health(&self) -> Result<StoreHealth, StoreError> {
        let connection = self.connection();
        let journal_mode: String =
            connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        let schema_version: i64 =
            connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let page_count: i64 =
            connection.pragma_query_value(None, "page_count", |row| row.get(0))?;
        let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let mut stmt = connection.prepare("PRAGMA integrity_check")?;
        let integrity = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StoreHealth {
            database: connection.path().unwrap_or(":memory:").to_owned(),
            read_only: connection.is_readonly(rusqlite::MAIN_DB)?,
            backend: "sqlite",
            journal_mode: Some(journal_mode),
            schema_version,
            schema_expected: SCHEMA_VERSION,
            engine_version: format!("SQLite {}", rusqlite::version()),
            size_bytes: u64::try_from(page_count.saturating_mul(page_size)).unwrap_or(0),
            integrity,
        })
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let pending = pending(found, MIGRATIONS)?;
    if !pending.is_empty() {
        for sql in pending {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/folder/coordinator.db");
        Sqlite::open(&path, FileAccess::default()).expect("first open creates folder and schema");
        Sqlite::open(&path, FileAccess::default()).expect("second open finds the schema current");

        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99)
            .expect("bump version");
        drop(conn);
        let err = Sqlite::open(&path, FileAccess::default())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("schema version 99")));
    }

    #[test]
    fn cached_joins_are_not_prepared_again_in_each_transaction() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Sqlite::open(&dir.path().join("c.db"), FileAccess::default()).expect("open");
        let sql = "SELECT count(*) FROM locks l JOIN sessions s ON s.id = l.session_id
                   WHERE l.project = ?1";
        let mut reprepared = 0;
        for _ in 0..3 {
            let connection = store.connection();
            let mut stmt = connection.prepare_cached(sql).expect("prepare");
            let _: i64 = stmt.query_row(["app"], |row| row.get(0)).expect("count");
            reprepared = stmt.get_status(rusqlite::StatementStatus::RePrepare);
        }
        assert_eq!(reprepared, 0, "the statement cache is defeated");
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
            (WRITE_LOCK_WAIT..WRITE_LOCK_WAIT + LONGEST_BUSY_PAUSE).contains(&slept),
            "gave up after {slept:?}"
        );
        assert!((2_000..2_100).contains(&retries), "{retries} retries");
        assert!(wait(0), "a new wait starts afresh");
    }
}
