//! Keeping our sessions alive, and sweeping everyone's dead ones.
//!
//! An AI forgets to heartbeat, so the process does it for the sessions its connection
//! registered ([`Keepalive`]), and deregisters them when it exits cleanly. Over HTTP a client
//! can vanish without a word, so a connection's sessions are heartbeated only while its client
//! shows signs of life ([`Activity`]), and end when the connection is dropped. A process that
//! dies without exiting cleanly (SIGKILL, a crash, a pulled plug) stops heartbeating; every
//! other process runs the sweeper, which removes its sessions after the timeout and so frees
//! its locks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::coordinator::{Coordinator, Registration};

/// The sessions one connection registered, most recent last.
#[derive(Debug, Default)]
pub struct Keepalive {
    sessions: Mutex<Vec<(String, Registration)>>,
    /// The HTTP connection (`Mcp-Session-Id`) whose client keeps these sessions alive; unset
    /// for stdio, and for a request without a connection while it is answered.
    connection: OnceLock<String>,
}

impl Keepalive {
    /// Ties this keepalive to its HTTP connection, whose activity it beats by from now on.
    pub fn attach(&self, connection: &str) {
        // The first id is the connection's for its whole life; a second call is a no-op.
        let _ = self.connection.set(connection.to_owned());
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Vec<(String, Registration)>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn remember(&self, session_id: &str, registration: Registration) {
        let mut sessions = self.sessions();
        sessions.retain(|(id, _)| id != session_id);
        sessions.push((session_id.to_owned(), registration));
    }

    pub fn forget(&self, session_id: &str) {
        self.sessions().retain(|(id, _)| id != session_id);
    }

    /// Whether this connection registered the session.
    pub fn holds(&self, session_id: &str) -> bool {
        self.sessions().iter().any(|(id, _)| id == session_id)
    }

    /// The session calls default to: the most recently registered one.
    pub fn current(&self) -> Option<String> {
        self.sessions().last().map(|(id, _)| id.clone())
    }

    /// The session this connection registered under that name in that project, if any.
    pub fn find(&self, name: &str, project: &str) -> Option<String> {
        self.sessions()
            .iter()
            .rev()
            .find(|(_, r)| r.name.trim() == name.trim() && r.project.trim() == project.trim())
            .map(|(id, _)| id.clone())
    }

    fn snapshot(&self) -> Vec<(String, Registration)> {
        self.sessions().clone()
    }

    /// Heartbeats every kept session; one swept meanwhile (a suspended machine) is revived
    /// under its id and told what it lost.
    pub fn beat(&self, coordinator: &Coordinator) {
        for (id, registration) in self.snapshot() {
            // Ended or taken over since the snapshot: reviving it would bring it back.
            if !self.holds(&id) {
                continue;
            }
            match coordinator.revive(&id, &registration) {
                Ok(true) => {
                    tracing::warn!(session_id = %id, "session had been swept; registered it again")
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(session_id = %id, %error, "heartbeat failed"),
            }
        }
    }

    /// Deregisters every kept session, releasing their locks; returns how many were ended.
    pub fn release_all(&self, coordinator: &Coordinator) -> usize {
        let mut ended = 0;
        for (id, _) in self.snapshot() {
            // Forgotten first, so a heartbeat running meanwhile does not revive it.
            self.forget(&id);
            match coordinator.deregister(&id) {
                Ok(gone) => {
                    ended += 1;
                    tracing::info!(session_id = %id, locks_released = gone.locks_released, "session deregistered on exit");
                }
                // Already ended (by a person, or a sweep while suspended): nothing to do.
                Err(crate::Error::UnknownSession { .. }) => {}
                Err(error) => {
                    tracing::warn!(session_id = %id, %error, "could not deregister on exit")
                }
            }
        }
        ended
    }
}

/// When each HTTP connection's client last showed it is still there: a request, or an event
/// stream it holds open. A stdio server lives as long as its client (the client's exit closes
/// its pipe), but an HTTP client can vanish without a word (mcp-remote and others never send
/// DELETE), so over HTTP the server heartbeats a session only while its client is active.
#[derive(Debug, Default)]
pub struct Activity {
    seen: Mutex<HashMap<String, Seen>>,
    /// Connections being opened (an `initialize` not answered yet): counted against the limit
    /// with the open ones, so clients opening at once cannot pass it together.
    opening: Arc<Mutex<usize>>,
}

/// A place among the open connections, held while a connection is being opened.
#[derive(Debug)]
pub struct Reserved {
    opening: Arc<Mutex<usize>>,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        *opening = opening.saturating_sub(1);
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    last: Instant,
    streams: usize,
}

impl Activity {
    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request came on this connection.
    pub fn touch(&self, connection: &str) {
        self.record(connection, 0);
    }

    /// The client holds an event stream of this connection open until the guard is dropped.
    pub fn stream(self: &Arc<Self>, connection: &str) -> OpenStream {
        self.record(connection, 1);
        OpenStream {
            activity: self.clone(),
            connection: connection.to_owned(),
        }
    }

    /// A sign of life now, with `opened` more streams; the key is copied only the first time
    /// (this runs on every request).
    fn record(&self, connection: &str, opened: usize) {
        let now = Instant::now();
        let mut seen = self.seen();
        match seen.get_mut(connection) {
            Some(known) => {
                known.last = now;
                known.streams += opened;
            }
            None => {
                seen.insert(
                    connection.to_owned(),
                    Seen {
                        last: now,
                        streams: opened,
                    },
                );
            }
        }
    }

    /// The client ended the connection (DELETE).
    pub fn forget(&self, connection: &str) {
        self.seen().remove(connection);
    }

    /// Whether the client holds a stream open or sent a request within `within`.
    pub fn active(&self, connection: &str, within: Duration) -> bool {
        self.seen()
            .get(connection)
            .is_some_and(|seen| seen.streams > 0 || seen.last.elapsed() < within)
    }

    /// A place for one more connection when fewer than `limit` are open or being opened;
    /// else how many there are.
    pub fn reserve(&self, limit: usize) -> Result<Reserved, usize> {
        let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self.seen().len() + *opening;
        if open >= limit {
            return Err(open);
        }
        *opening += 1;
        Ok(Reserved {
            opening: self.opening.clone(),
        })
    }

    /// The connections whose client showed no sign of life for `idle`: no request, no stream.
    pub fn idle(&self, idle: Duration) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|(_, seen)| seen.streams == 0 && seen.last.elapsed() >= idle)
            .map(|(connection, _)| connection.clone())
            .collect()
    }

    /// Drops what is known of connections idle for longer than `idle` (the server has closed
    /// them by then), so the map does not grow with every client that ever connected.
    fn prune(&self, idle: Duration) {
        self.seen()
            .retain(|_, seen| seen.streams > 0 || seen.last.elapsed() < idle);
    }
}

/// An event stream a client holds open; its end counts as the client's last sign of life.
#[derive(Debug)]
pub struct OpenStream {
    activity: Arc<Activity>,
    connection: String,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let now = Instant::now();
        if let Some(seen) = self.activity.seen().get_mut(&self.connection) {
            seen.streams = seen.streams.saturating_sub(1);
            seen.last = now;
        }
    }
}

/// The keepalives of a process's open connections (one for stdio, one per MCP connection over
/// HTTP), heartbeated together. A connection's keepalive leaves the list when it is dropped.
#[derive(Debug, Default)]
pub struct Keepalives {
    open: Mutex<Vec<Weak<Keepalive>>>,
    /// Over HTTP: what the clients did, by which a connection's sessions live; `None` for
    /// stdio, whose one connection lives as long as the process.
    activity: Option<Arc<Activity>>,
}

impl Keepalives {
    /// Keepalives whose connections live by their clients' activity (an HTTP server's).
    pub fn by_activity(activity: Arc<Activity>) -> Self {
        Self {
            open: Mutex::default(),
            activity: Some(activity),
        }
    }

    /// A keepalive for a new connection.
    pub fn open(&self) -> Arc<Keepalive> {
        let keepalive = Arc::new(Keepalive::default());
        self.list().push(Arc::downgrade(&keepalive));
        keepalive
    }

    fn live(&self) -> Vec<Arc<Keepalive>> {
        self.list().iter().filter_map(Weak::upgrade).collect()
    }

    /// The list, without the keepalives of connections that are gone.
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Keepalive>>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|k| k.strong_count() > 0);
        open
    }

    /// Heartbeats the sessions of every connection whose client was active within `within`
    /// (every connection, for stdio). A request being answered without a connection counts as
    /// activity while it runs (a long wait for a lock).
    pub fn beat(&self, coordinator: &Coordinator, within: Duration) {
        if let Some(activity) = &self.activity {
            activity.prune(IDLE_CONNECTION);
        }
        for keepalive in self.live() {
            let active = match (&self.activity, keepalive.connection.get()) {
                (Some(activity), Some(connection)) => activity.active(connection, within),
                _ => true,
            };
            if active {
                keepalive.beat(coordinator);
            }
        }
    }

    /// Makes every connection forget a session (taken over by another, or ended).
    pub fn forget_everywhere(&self, session_id: &str) {
        for keepalive in self.live() {
            keepalive.forget(session_id);
        }
    }

    /// Deregisters the sessions of every open connection (the process is exiting).
    pub fn release_all(&self, coordinator: &Coordinator) -> usize {
        self.live()
            .iter()
            .map(|keepalive| keepalive.release_all(coordinator))
            .sum()
    }
}

/// Deregisters an HTTP connection's sessions when the connection is dropped (the client
/// closed its MCP session, or it went idle past the server's limit), as a stdio server does
/// when its process exits. Armed by the handshake: a stateless request is dropped after its
/// answer, and the session it registered must outlive it.
pub struct Farewell {
    coordinator: Arc<Coordinator>,
    keepalive: Arc<Keepalive>,
    armed: AtomicBool,
}

impl Farewell {
    pub fn new(coordinator: Arc<Coordinator>, keepalive: Arc<Keepalive>) -> Self {
        Self {
            coordinator,
            keepalive,
            armed: AtomicBool::new(false),
        }
    }

    pub fn arm(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Farewell {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let (coordinator, keepalive) = (self.coordinator.clone(), self.keepalive.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || keepalive.release_all(&coordinator));
            }
            Err(_) => {
                keepalive.release_all(&coordinator);
            }
        }
    }
}

/// An HTTP connection without a request for this long is closed, and its sessions end (as a
/// stdio server's do when its client exits). Long enough for a person's pause; a client that
/// vanished without closing stops being heartbeated long before (see [`Activity`]).
pub const IDLE_CONNECTION: Duration = Duration::from_secs(30 * 60);

/// How often to heartbeat: three beats per timeout, so one late beat is harmless.
pub fn heartbeat_interval(session_timeout: Duration) -> Duration {
    (session_timeout / 3).max(Duration::from_millis(100))
}

/// Heartbeats the sessions of every open connection every `every`.
pub fn spawn_heartbeats(
    coordinator: Arc<Coordinator>,
    keepalive: Arc<Keepalives>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (coordinator, keepalive) = (coordinator.clone(), keepalive.clone());
            if let Err(error) =
                tokio::task::spawn_blocking(move || keepalive.beat(&coordinator, every)).await
            {
                tracing::error!(%error, "heartbeat task failed");
            }
        }
    })
}

/// Checkpoints the database in the background from now on (see
/// [`crate::store::Store::checkpoint`]), so that no call waits for it.
pub fn spawn_checkpoints(coordinator: Arc<Coordinator>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(crate::store::CHECKPOINT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let c = coordinator.clone();
            match tokio::task::spawn_blocking(move || c.checkpoint()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "checkpoint failed; will retry"),
                Err(error) => tracing::error!(%error, "checkpoint task failed"),
            }
        }
    })
}

/// Sweeps stale sessions and expired locks every `every`, starting now.
pub fn spawn_sweeper(coordinator: Arc<Coordinator>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let coordinator = coordinator.clone();
            match tokio::task::spawn_blocking(move || coordinator.sweep()).await {
                Ok(Ok(report)) => {
                    for session in &report.stale_sessions {
                        tracing::info!(
                            session_id = %session.session_id,
                            name = %session.name,
                            project = %session.project,
                            "swept stale session; its locks and intents were released"
                        );
                    }
                    if report.expired_locks > 0 || report.finished_intents > 0 {
                        tracing::debug!(
                            expired_locks = report.expired_locks,
                            finished_intents = report.finished_intents,
                            "swept"
                        );
                    }
                }
                Ok(Err(error)) => tracing::warn!(%error, "sweep failed; will retry"),
                Err(error) => tracing::error!(%error, "sweep task failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(name: &str) -> Registration {
        Registration {
            name: name.into(),
            project: "app".into(),
            branch: None,
            working_directory: None,
            ..Registration::default()
        }
    }

    #[test]
    fn the_most_recent_registration_is_the_default() {
        let keepalive = Keepalive::default();
        assert_eq!(keepalive.current(), None);
        keepalive.remember("ses-1", registration("a"));
        keepalive.remember("ses-2", registration("b"));
        assert_eq!(keepalive.current().as_deref(), Some("ses-2"));
        assert_eq!(keepalive.find("a", "app").as_deref(), Some("ses-1"));
        assert_eq!(keepalive.find("a", "other"), None);
        keepalive.forget("ses-2");
        assert_eq!(keepalive.current().as_deref(), Some("ses-1"));
    }

    #[test]
    fn a_connection_is_active_while_it_streams_or_lately_asked() {
        let activity = Arc::new(Activity::default());
        let window = Duration::from_millis(50);
        assert!(!activity.active("c1", window), "never seen");
        activity.touch("c1");
        assert!(activity.active("c1", window));
        std::thread::sleep(window * 2);
        assert!(!activity.active("c1", window), "a request long ago");
        let stream = activity.stream("c1");
        std::thread::sleep(window * 2);
        assert!(activity.active("c1", window), "an open stream");
        drop(stream);
        assert!(activity.active("c1", window), "its end is a sign of life");
        std::thread::sleep(window * 2);
        assert!(!activity.active("c1", window), "gone quiet after it closed");
        assert_eq!(activity.idle(window), ["c1"]);
        let place = activity.reserve(2).expect("one open, one being opened");
        assert_eq!(activity.reserve(2).err(), Some(2), "the limit counts both");
        drop(place);
        assert!(
            activity.reserve(2).is_ok(),
            "a place comes back with its answer"
        );
        activity.prune(window);
        assert!(activity.seen().is_empty(), "forgotten once idle");
        activity.touch("c2");
        activity.forget("c2");
        assert!(!activity.active("c2", window), "ended by DELETE");
    }

    #[test]
    fn three_beats_per_timeout() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(300)),
            Duration::from_secs(100)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_millis(30)),
            Duration::from_millis(100)
        );
    }
}
