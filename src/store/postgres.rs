//! The shared backend: one PostgreSQL database, for sessions on several machines.
//!
//! Writers take one transaction-scoped advisory lock ([`WRITE_LOCK`]) as the first statement of
//! every write transaction, then run at READ COMMITTED. That is SQLite's `BEGIN IMMEDIATE` by
//! PostgreSQL's means: writes are serialized, and because each writer starts after the previous
//! one committed, everything it reads is current and stays so until it commits. Row locks
//! (`SELECT ... FOR UPDATE`) were not enough: the rules check that no conflicting row exists (a
//! lock on a covering directory, an earlier queue entry), and a row that does not exist cannot
//! be locked. SERIALIZABLE would catch those, but it fails transactions that must then be run
//! again, and the domain's transactions are closures with effects after the commit (wake-ups),
//! written to run once. A coordinator commits a few thousand small transactions a second at
//! most, so one lock costs nothing that matters. Reads are REPEATABLE READ, READ ONLY: one
//! snapshot, never blocked by writers, like a SQLite read transaction.
//!
//! Every transaction learns the server's time on its first round trip, and the process keeps
//! the offset between that and its own clock ([`DbClock`]): expiry and liveness decisions on
//! every machine use the database's clock, so hosts with skewed clocks still agree.
//!
//! Connections are pooled (at most [`POOL_SIZE`] per process, opened as needed). A connection
//! found broken when a transaction begins is replaced and the transaction started again; a
//! server that cannot be reached is retried for [`CONNECT_PATIENCE`] before a call fails.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Config, SimpleQueryMessage};

use super::sql::{Conn, PgConn};
use super::tls::{Connector, LibpqEnv, SslMode, Tls};
use super::{OnWake, StoreError, StoreHealth, WRITE_LOCK_WAIT, pending, waits_refused};
use crate::clock::{Clock, SystemClock, Timestamp};

/// Migrations of the PostgreSQL schema, applied in order on start.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/001_schema.sql"),
    include_str!("migrations/postgres/002_edits_and_changes.sql"),
    include_str!("migrations/postgres/003_access_tokens.sql"),
];

/// The schema version this program migrates to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock every write transaction holds ("mcpcoord" in ASCII).
const WRITE_LOCK: i64 = 0x6d63_7063_6f6f_7264;
/// The URL's key, as Prisma names it, that says a pooler in transaction mode is in between.
const POOLER: &str = "pgbouncer";

/// The advisory lock held while migrating, so processes starting together migrate once.
const MIGRATE_LOCK: i64 = WRITE_LOCK + 1;

/// Most connections one process opens.
const POOL_SIZE: usize = 8;

/// How long a call keeps trying to reach an unreachable server.
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

/// How long the server lets a connection sit idle inside a transaction before ending it. Our
/// transactions never wait between statements, so an idle one belongs to a process that stopped
/// (suspended, its machine asleep, its network gone) while holding the write lock: ended within
/// half the writers' lock wait, it holds them up instead of failing them.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// The server's time in milliseconds since the Unix epoch.
const SERVER_TIME: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The settings every transaction runs under, set in the transaction itself: a pooler in
/// transaction mode hands each transaction whichever server connection is free, so nothing
/// may rest on a connection's session (PgBouncer refuses the `options` startup parameter too).
/// A writer waits for the write lock as long as on SQLite.
static SETTINGS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SET LOCAL lock_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {};",
        WRITE_LOCK_WAIT.as_millis(),
        IDLE_IN_TRANSACTION.as_millis()
    )
});
/// A transaction's first round trip: `opening`, then (behind a pooler) `DEALLOCATE ALL`, the
/// [`SETTINGS`], and `rest`.
///
/// Behind a pooler, a transaction first drops the prepared statements its server connection
/// holds: those of a client that stopped before closing them, or of one without
/// `pgbouncer=true`, would otherwise collide with this client's names (tokio-postgres numbers
/// each client's statements from `s0`). Nothing else relies on them: a pooled client closes
/// its own before each transaction ends.
fn first_trip(opening: &str, pooled: bool, rest: &str) -> String {
    let deallocate = if pooled { " DEALLOCATE ALL;" } else { "" };
    format!("{opening};{deallocate} {} {rest}", *SETTINGS)
}

/// The rest of a write transaction's first round trip: the write lock, and the server's clock.
static WRITE_REST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT pg_advisory_xact_lock({WRITE_LOCK}); {SERVER_TIME}"));
/// A read transaction opens its snapshot, then reads the server's clock.
const READ_OPENING: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

static BEGIN_WRITE: LazyLock<String> = LazyLock::new(|| first_trip("BEGIN", false, &WRITE_REST));
static BEGIN_READ: LazyLock<String> =
    LazyLock::new(|| first_trip(READ_OPENING, false, SERVER_TIME));
static POOLED_BEGIN_WRITE: LazyLock<String> =
    LazyLock::new(|| first_trip("BEGIN", true, &WRITE_REST));
static POOLED_BEGIN_READ: LazyLock<String> =
    LazyLock::new(|| first_trip(READ_OPENING, true, SERVER_TIME));

/// A round trip longer than this (a writer waited for the lock), unless the server is that far
/// away, says too little about when the server read its clock to correct ours by it.
const CLOCK_SAMPLE_LIMIT: Duration = Duration::from_millis(20);

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        use postgres::error::SqlState;
        if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            return StoreError::Busy;
        }
        let code = error.code();
        if code == Some(&SqlState::INVALID_SQL_STATEMENT_NAME)
            || code == Some(&SqlState::DUPLICATE_PSTATEMENT)
        {
            return StoreError::Postgres(format!(
                "{}: a prepared statement was lost between server connections, as behind a \
                 pooler in transaction mode (PgBouncer, Supavisor, RDS Proxy); add \
                 {POOLER}=true to the database URL",
                describe(&error)
            ));
        }
        StoreError::Postgres(describe(&error))
    }
}

/// The server's own message when there is one: `postgres::Error` alone says only "db error".
pub(super) fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// The connection is gone (closed, reset, never reached, or ended by the server: an
/// administrator, a restart), as opposed to a statement refused.
fn lost(error: &postgres::Error) -> bool {
    let ended = error
        .code()
        .is_some_and(|code| code.code().starts_with("57P") || code.code().starts_with("08"));
    error.is_closed() || error.as_db_error().is_none() || ended
}

/// The wall clock corrected to the database server's, by the offset the store measures.
#[derive(Debug, Clone)]
pub struct DbClock {
    offset: Arc<AtomicI64>,
}

impl Clock for DbClock {
    fn now(&self) -> Timestamp {
        let local = SystemClock.now().as_millis();
        Timestamp::from_millis(local.saturating_add(self.offset.load(Ordering::Relaxed)))
    }
}

struct Idle {
    connections: Vec<PgConn>,
    open: usize,
}

pub struct Postgres {
    config: Config,
    tls: Connector,
    ssl_mode: SslMode,
    /// Behind a pooler in transaction mode (`pgbouncer=true`): statements are prepared in
    /// each transaction and closed before it ends, since the next one may run on another
    /// server connection.
    pooler: bool,
    shown: String,
    idle: Mutex<Idle>,
    returned: Condvar,
    offset: Arc<AtomicI64>,
    /// The shortest round trip seen, in microseconds.
    shortest_trip: AtomicI64,
}

/// A pooled connection; back to the pool when dropped, unless broken or mid-transaction.
struct Pooled<'p> {
    pool: &'p Postgres,
    conn: Option<PgConn>,
    in_transaction: bool,
}

impl Pooled<'_> {
    fn conn(&mut self) -> Result<&mut PgConn, StoreError> {
        self.conn.as_mut().ok_or_else(|| StoreError::Unreachable {
            database: self.pool.shown.clone(),
            reason: "no connection".to_owned(),
        })
    }

    /// Closes a connection that failed, making room for a new one.
    fn discard(&mut self) {
        if self.conn.take().is_some() {
            self.pool.closed();
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.in_transaction || conn.client.is_closed() || std::thread::panicking() {
            drop(conn);
            self.pool.closed();
        } else {
            self.pool.give_back(conn);
        }
    }
}

impl Drop for Postgres {
    /// Closes the idle connections on a thread of their own: closing one blocks on its own
    /// small runtime, which panics on an async worker, where the last user of the store may
    /// well drop it.
    fn drop(&mut self) {
        let connections = std::mem::take(&mut self.idle().connections);
        if !connections.is_empty() {
            let _ = std::thread::spawn(move || drop(connections)).join();
        }
    }
}

impl Postgres {
    /// Connects to the database at `url` and brings its schema up to date; `env` is what libpq
    /// would read from the environment for TLS.
    pub fn open(url: &str, env: &LibpqEnv) -> Result<Self, StoreError> {
        let (mut config, tls, pooler) = read_url(url, env)?;
        // As libpq: TLS is for the network; a Unix socket is not encrypted whatever sslmode says.
        let local = config
            .get_hosts()
            .iter()
            .all(|host| matches!(host, postgres::config::Host::Unix(_)));
        let (ssl_mode, connector) = if local && !config.get_hosts().is_empty() {
            (postgres::config::SslMode::Disable, Connector::Plain)
        } else {
            tls.connector(env.home.as_deref())?
        };
        config
            .ssl_mode(ssl_mode)
            .application_name("mcp-session-coordinator")
            .connect_timeout(Duration::from_secs(5))
            .keepalives_idle(Duration::from_secs(30))
            // A connection whose server vanished (a partition) is known dead in about a
            // minute, the wake listener's included, which otherwise waits on it for good.
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let store = Self {
            shown: shown(&config),
            config,
            tls: connector,
            ssl_mode: tls.mode,
            pooler,
            idle: Mutex::new(Idle {
                connections: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            offset: Arc::new(AtomicI64::new(0)),
            shortest_trip: AtomicI64::new(i64::MAX),
        };
        if store.pooler {
            tracing::debug!(
                "{POOLER}=true: statements are prepared in each transaction; wake-ups across \
                 machines come from the 2-second look"
            );
        }
        store.migrate()?;
        // The clock is right before the first decision, even in a one-shot command (within
        // half a round trip: the server read its clock between sending and answering).
        let mut pooled = store.checkout()?;
        store.sample_clock(&mut pooled.conn()?.client, SERVER_TIME)?;
        drop(pooled);
        Ok(store)
    }

    /// The clock to decide by: this machine's, corrected to the server's.
    pub fn clock(&self) -> DbClock {
        DbClock {
            offset: self.offset.clone(),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed(&self) {
        self.idle().open -= 1;
        self.returned.notify_one();
    }

    fn give_back(&self, conn: PgConn) {
        self.idle().connections.push(conn);
        self.returned.notify_one();
    }

    /// An idle connection, a new one while fewer than [`POOL_SIZE`] are open, or the next one
    /// given back.
    fn checkout(&self) -> Result<Pooled<'_>, StoreError> {
        let mut idle = self.idle();
        loop {
            if let Some(conn) = idle.connections.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                    in_transaction: false,
                });
            }
            if idle.open < POOL_SIZE {
                idle.open += 1;
                drop(idle);
                let conn = self.connect().inspect_err(|_| self.closed())?;
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                    in_transaction: false,
                });
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A new connection, retried with growing pauses while the server cannot be reached (it
    /// restarts, the network blips). A refusal by the server itself (no such database, wrong
    /// password) is final at once.
    fn connect(&self) -> Result<PgConn, StoreError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let error = match self.tls.connect(&self.config) {
                Ok(client) => return Ok(PgConn::new(client)),
                Err(error) => error,
            };
            if let Some(reason) = super::tls::failure(&error, self.ssl_mode) {
                return Err(StoreError::Tls {
                    database: self.shown.clone(),
                    reason,
                });
            }
            if !lost(&error) {
                return Err(error.into());
            }
            if started.elapsed() >= CONNECT_PATIENCE {
                return Err(StoreError::Unreachable {
                    database: self.shown.clone(),
                    reason: describe(&error),
                });
            }
            tracing::debug!(error = %describe(&error), "database unreachable; retrying");
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Runs `sql`, which ends with [`SERVER_TIME`], and corrects the clock offset by it when the
    /// round trip was short enough to say when the server read its clock: within
    /// [`CLOCK_SAMPLE_LIMIT`], or twice the shortest round trip seen (a distant server).
    fn sample_clock(
        &self,
        client: &mut postgres::Client,
        sql: &str,
    ) -> Result<(), postgres::Error> {
        let sent = Instant::now();
        let before = SystemClock.now().as_millis();
        let messages = client.simple_query(sql)?;
        let after = SystemClock.now().as_millis();
        let trip = i64::try_from(sent.elapsed().as_micros()).unwrap_or(i64::MAX);
        let shortest = self
            .shortest_trip
            .fetch_min(trip, Ordering::Relaxed)
            .min(trip);
        let limit = i64::try_from(CLOCK_SAMPLE_LIMIT.as_micros()).unwrap_or(i64::MAX);
        if (trip <= limit || trip <= shortest.saturating_mul(2))
            && let Some(server) = last_integer(&messages)
        {
            let local = before + (after - before) / 2;
            self.offset.store(server - local, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Begins a transaction on a pooled connection, replacing connections found broken.
    fn begin(&self, write: bool) -> Result<Pooled<'_>, StoreError> {
        let sql: &str = match (write, self.pooler) {
            (true, false) => &BEGIN_WRITE,
            (false, false) => &BEGIN_READ,
            (true, true) => &POOLED_BEGIN_WRITE,
            (false, true) => &POOLED_BEGIN_READ,
        };
        let started = Instant::now();
        loop {
            let mut pooled = self.checkout()?;
            // From here until COMMIT or ROLLBACK succeeds, the connection is not reusable.
            pooled.in_transaction = true;
            match self.sample_clock(&mut pooled.conn()?.client, sql) {
                Ok(()) => return Ok(pooled),
                Err(error) if lost(&error) && started.elapsed() < CONNECT_PATIENCE => {
                    tracing::debug!(error = %describe(&error), "database connection lost; reconnecting");
                    pooled.discard();
                }
                Err(error) => {
                    pooled.discard();
                    return Err(error.into());
                }
            }
        }
    }

    /// Runs `work` in a transaction begun by [`Self::begin`]; committed when it returns `Ok`.
    pub fn run<T, E: From<StoreError>>(
        &self,
        write: bool,
        work: impl FnOnce(Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        if waits_refused() {
            return Err(StoreError::WouldWait.into());
        }
        let mut pooled = self.begin(write)?;
        let value = work(Conn::Postgres(RefCell::new(pooled.conn()?)));
        if self.pooler {
            // Closed before the transaction ends, on the server connection that has them.
            pooled.conn()?.forget_statements();
        }
        let announced = pooled.conn()?.take_announced();
        let end = match &value {
            // In the commit's round trip; PostgreSQL delivers the notifications on commit.
            Ok(_) if !announced.is_empty() => {
                format!("{}COMMIT", super::notify::notifications(&announced))
            }
            Ok(_) => "COMMIT".to_owned(),
            Err(_) => "ROLLBACK".to_owned(),
        };
        match pooled.conn()?.client.batch_execute(&end) {
            Ok(()) => pooled.in_transaction = false,
            Err(error) => {
                pooled.discard();
                if value.is_ok() {
                    return Err(StoreError::Postgres(describe(&error)).into());
                }
            }
        }
        value
    }

    /// See [`super::Store::listen_for_wakes`]: not behind a pooler in transaction mode.
    pub fn listen_for_wakes(&self, on_wake: OnWake) -> bool {
        !self.pooler && super::notify::spawn_listener(&self.config, &self.tls, on_wake)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut pooled = self.checkout()?;
        let client = &mut pooled.conn()?.client;
        // Nearly every start finds the schema current: one round trip, no lock. Anything else
        // (no table yet, an older or newer schema) is settled under the lock below.
        let current = client
            .simple_query("SELECT version FROM coordinator_schema")
            .ok()
            .and_then(|messages| last_integer(&messages));
        if current == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        let mut tx = client.transaction()?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATE_LOCK});
             CREATE TABLE IF NOT EXISTS coordinator_schema (version BIGINT NOT NULL);"
        ))?;
        let found: i64 = match tx.query_opt("SELECT version FROM coordinator_schema", &[])? {
            Some(row) => row.try_get(0)?,
            None => {
                tx.execute("INSERT INTO coordinator_schema (version) VALUES (0)", &[])?;
                0
            }
        };
        let pending = pending(found, MIGRATIONS)?;
        if !pending.is_empty() {
            for sql in pending {
                tx.batch_execute(sql)?;
            }
            tx.execute(
                "UPDATE coordinator_schema SET version = $1",
                &[&SCHEMA_VERSION],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Schema version, server version, size, and a check that the unread counters the
    /// triggers keep agree with the inboxes.
    pub fn health(&self) -> Result<StoreHealth, StoreError> {
        let mut pooled = self.checkout()?;
        // In a transaction: a pooler runs the statement's two round trips on one connection.
        let mut tx = pooled.conn()?.client.transaction()?;
        let row = tx.query_one(
            "SELECT (SELECT version FROM coordinator_schema),
                    current_setting('server_version'),
                    pg_database_size(current_database()),
                    (SELECT count(*) FROM sessions s WHERE s.unread <> (SELECT count(*) FROM inbox x
                         WHERE x.session_id = s.id AND x.read_at IS NULL)),
                    (SELECT CASE WHEN ssl THEN version END FROM pg_stat_ssl
                         WHERE pid = pg_backend_pid())",
            &[],
        )?;
        tx.commit()?;
        let drifted: i64 = row.try_get(3)?;
        let mode = self.ssl_mode.name();
        let link = row
            .try_get::<_, Option<String>>(4)?
            .unwrap_or_else(|| "none".to_owned());
        // Behind a pooler the server sees the pooler's connection, not this process's.
        let tls = if self.pooler {
            format!("sslmode={mode} to the pooler; the pooler's own link to the server: {link}")
        } else {
            format!("{link} (sslmode={mode})")
        };
        Ok(StoreHealth {
            read_only: false,
            database: self.shown.clone(),
            backend: "postgresql",
            journal_mode: None,
            schema_version: row.try_get(0)?,
            schema_expected: SCHEMA_VERSION,
            engine_version: format!("PostgreSQL {}", row.try_get::<_, String>(1)?),
            tls: Some(tls),
            size_bytes: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
            integrity: if drifted == 0 {
                vec!["ok".to_owned()]
            } else {
                vec![format!(
                    "{drifted} sessions' unread counters disagree with their inboxes"
                )]
            },
        })
    }
}

/// The last integer a simple query answered.
fn last_integer(messages: &[SimpleQueryMessage]) -> Option<i64> {
    messages.iter().rev().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => row.get(0).and_then(|text| text.parse().ok()),
        _ => None,
    })
}

/// What tokio-postgres reads of `url`, and what this program reads itself: the TLS settings
/// (completed by `env`) and whether a pooler in transaction mode is in between.
fn read_url(url: &str, env: &LibpqEnv) -> Result<(Config, Tls, bool), StoreError> {
    let (url, ours) = super::tls::take(url, &[POOLER])?;
    let pooler = match ours.last().map(|(_, value)| value.as_str()) {
        None | Some("false" | "0" | "no") => false,
        Some("true" | "1" | "yes") => true,
        Some(other) => {
            return Err(StoreError::BadUrl(format!(
                "{POOLER}={other} is not one of true, false"
            )));
        }
    };
    let (url, tls) = Tls::split(&url, env)?;
    let config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::BadUrl(e.to_string()))?;
    Ok((config, tls, pooler))
}

/// `url` without its password; unreadable URLs are shown by their scheme only.
pub fn shown_url(url: &str) -> String {
    match read_url(url, &LibpqEnv::default()) {
        Ok((config, ..)) => shown(&config),
        Err(_) => "postgres://…".to_owned(),
    }
}

/// The database's address without its password, for messages and `doctor`.
fn shown(config: &Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(name)) => name.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_address_leaves_the_password_out() {
        let config: Config = "postgres://team:s3cret@db.example:6543/coord"
            .parse()
            .expect("url");
        assert_eq!(shown(&config), "postgres://team@db.example:6543/coord");
    }

    #[test]
    fn a_bad_url_is_refused_before_connecting() {
        let err = Postgres::open("postgres://x@host:notaport/db", &LibpqEnv::default()).err();
        assert!(matches!(err, Some(StoreError::BadUrl(_))), "{err:?}");
        let err = Postgres::open(
            "postgres://x@db.example/db?sslmode=verify",
            &LibpqEnv::default(),
        )
        .err();
        assert!(matches!(err, Some(StoreError::BadUrl(_))), "{err:?}");
    }

    #[test]
    fn the_shown_address_reads_urls_with_any_sslmode() {
        assert_eq!(
            shown_url("postgres://team:pw@db.example/coord?sslmode=verify-full&sslrootcert=ca.pem"),
            "postgres://team@db.example:5432/coord"
        );
        assert_eq!(
            shown_url("postgres://team:pw@pool.example:6543/coord?pgbouncer=true"),
            "postgres://team@pool.example:6543/coord"
        );
    }
}
