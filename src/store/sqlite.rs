//! The embedded backend: one SQLite file in WAL mode, shared by the processes of one machine.
//!
//! Every server process opens the database file once and keeps that single connection (closing
//! any handle on a file drops all of the process's POSIX locks on it). A write is a
//! `BEGIN IMMEDIATE` transaction, so a check-then-write (is the path free? then grant it) is
//! atomic across processes. A deferred transaction that reads and then writes would fail at
//! once with `SQLITE_BUSY` in WAL mode when another process wrote in between, because SQLite
//! skips the busy handler to avoid deadlock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::file::{self, FileAccess};
use super::sql::Conn;
use super::{StoreError, StoreHealth, WRITE_LOCK_WAIT, pending, waits_refused, write_began};

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
    include_str!("migrations/sqlite/010_access_tokens.sql"),
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
        if waits_refused() {
            return false;
        }
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
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) if waits_refused() => {
                StoreError::WouldWait
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(error),
        }
    }
}

/// WAL pages at which a server's own writes still checkpoint, should its background
/// checkpoints stop (see [`Sqlite::checkpoint`]): 40 MB, a bound, not a rhythm.
const BACKSTOP_CHECKPOINT_PAGES: i64 = 10_000;

pub struct Sqlite {
    connection: Mutex<Connection>,
    /// The file, for the checkpoint connection; none for an in-memory or read-only database.
    path: Option<std::path::PathBuf>,
    /// A second connection that only checkpoints, opened at the first background checkpoint.
    checkpointer: Mutex<Option<Connection>>,
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
        let mut db = Self::configure(connection, prepared.read_only)?;
        db.path = (!prepared.read_only).then(|| path.to_path_buf());
        Ok(db)
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
            path: None,
            checkpointer: Mutex::new(None),
        })
    }

    /// Copies what the WAL holds back into the database file, on a connection of its own so
    /// that no call of this process waits for it. Passive: it takes no lock a writer or
    /// reader waits on, and gives way to a checkpoint another process runs.
    ///
    /// SQLite would otherwise copy the WAL back in the commit that fills it past 1,000 pages,
    /// and sync both files there: 2–6 ms once in about 80 lock operations, the whole of
    /// lock_acquire's p99 (measured). So once the checkpoint connection is open, this
    /// process's own writes checkpoint only past [`BACKSTOP_CHECKPOINT_PAGES`].
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let connection = match checkpointer.as_mut() {
            Some(connection) => connection,
            None => {
                let opened = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                self.connection().pragma_update(
                    None,
                    "wal_autocheckpoint",
                    BACKSTOP_CHECKPOINT_PAGES,
                )?;
                checkpointer.insert(opened)
            }
        };
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
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
        let mut connection = if waits_refused() {
            match self.connection.try_lock() {
                Ok(connection) => connection,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => return Err(StoreError::WouldWait.into()),
            }
        } else {
            self.connection()
        };
        let tx = connection
            .transaction_with_behavior(behavior)
            .map_err(StoreError::from)?;
        if write {
            write_began();
        }
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
            tls: None,
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

    /// The stdio server answers on its async thread only what needs no wait, and runs the
    /// rest again on a blocking thread: a refused call must have done nothing, and a look
    /// must not be refused for another process's write.
    #[test]
    fn without_waiting_refuses_a_held_write_lock_before_doing_anything() {
        use std::cell::Cell;

        use super::super::without_waiting;

        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("c.db");
        let store = Sqlite::open(&path, FileAccess::default()).expect("open");
        let other = Connection::open(&path).expect("another process's connection");
        other
            .execute_batch("BEGIN IMMEDIATE")
            .expect("hold the write lock");

        let ran = Cell::new(false);
        let write = |_: Conn<'_>| {
            ran.set(true);
            Ok::<_, StoreError>(())
        };
        let started = Instant::now();
        let refused = without_waiting(|| store.run(true, write));
        assert!(matches!(refused, Err(StoreError::WouldWait)), "{refused:?}");
        assert!(!ran.get(), "a refused write ran");
        assert!(started.elapsed() < Duration::from_millis(100), "it waited");
        let looked = without_waiting(|| store.run(false, |_| Ok::<_, StoreError>(7)));
        assert_eq!(
            looked.ok(),
            Some(7),
            "a read waits for no writer in WAL mode"
        );

        // Another thread of this process holds the connection: refused too.
        let held = store.connection();
        std::thread::scope(|scope| {
            let refused = scope
                .spawn(|| without_waiting(|| store.run(false, |_| Ok::<_, StoreError>(()))))
                .join()
                .expect("thread");
            assert!(matches!(refused, Err(StoreError::WouldWait)), "{refused:?}");
        });
        drop(held);

        other.execute_batch("COMMIT").expect("let go");
        without_waiting(|| store.run(true, write)).expect("a free write runs at once");
        assert!(ran.get());
        assert!(
            !waits_refused(),
            "the thread waits as usual again after without_waiting"
        );
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
