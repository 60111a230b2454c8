//! Waking a process the moment something arrives for its sessions: a queued lock request
//! granted, a message delivered.
//!
//! Server processes share only the database, so the process that grants a queued request (by
//! releasing the lock it waited for) or sends a message pokes the receiver's process directly:
//! each process listens on a socket of its own (which kind depends on the platform; see
//! `platform::wake`) and writes its address into the queue entries and session rows it
//! creates. A poke is one byte and carries no data: the woken process reads the truth from the
//! database. Across machines sharing a PostgreSQL database, the granting or sending
//! transaction also notifies the address through the database, which every process listens
//! to ([`Wakeup::follow`]). A lost poke (the granting process died right after its commit, the
//! listening connection was down) loses nothing but time: a waiting request finds its grant
//! at its next fallback look, and the session's next answer reports what arrived.
//!
//! The queue watcher also lives here: expiry frees locks without any transaction, so every
//! process wakes when the next lock that blocks a waiter expires and grants what it can.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::coordinator::{Coordinator, Notifier};
use crate::platform;

/// This process's wake-ups: a counter that changes on every poke (or local nudge).
pub struct Wakeup {
    address: Option<String>,
    bell: watch::Sender<u64>,
}

impl Wakeup {
    /// Binds this process's wake socket and listens on it. Without one (every kind failed to
    /// bind), waiters fall back to looking periodically.
    pub fn start() -> Arc<Self> {
        let (bell, _) = watch::channel(0);
        match platform::listen() {
            Ok(socket) => {
                let wakeup = Arc::new(Self {
                    address: Some(socket.address().to_owned()),
                    bell,
                });
                let listener = wakeup.clone();
                tokio::spawn(async move {
                    loop {
                        match socket.recv().await {
                            Ok(()) => listener.nudge(),
                            Err(error) => {
                                tracing::warn!(%error, "wake socket failed; queued waits will poll");
                                break;
                            }
                        }
                    }
                });
                wakeup
            }
            Err(error) => {
                tracing::warn!(%error, "no wake socket; queued waits will poll");
                Arc::new(Self {
                    address: None,
                    bell,
                })
            }
        }
    }

    /// Also rings for wake-ups announced on other machines (PostgreSQL's `LISTEN`), where the
    /// database carries them; after a gap in listening it rings once, so waiters look again.
    pub fn follow(self: &Arc<Self>, coordinator: &Coordinator) {
        let Some(own) = self.address.clone() else {
            return;
        };
        let wakeup = self.clone();
        let listening = coordinator.listen_for_wakes(Box::new(move |address| {
            if address.is_none_or(|address| address == own) {
                wakeup.nudge();
            }
        }));
        if listening {
            tracing::debug!("wake-ups from other machines: PostgreSQL LISTEN");
        }
    }

    /// The address to leave in queue entries.
    pub fn address(&self) -> Option<String> {
        self.address.clone()
    }

    /// A receiver that sees every later wake-up.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.bell.subscribe()
    }

    /// Rings the bell in this process (a new queue entry, a poke received).
    pub fn nudge(&self) {
        self.bell.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Pokes other processes' wake sockets.
pub struct Poker;

impl Notifier for Poker {
    fn wake(&self, address: &str) {
        if let Err(error) = platform::poke(address) {
            tracing::debug!(%error, address, "wake-up not delivered (process gone?)");
        }
    }
}

/// Grants queued requests whose blockers expired, waking at the next such expiry, on any
/// wake-up, and at least every `idle`.
pub fn spawn_queue_watcher(
    coordinator: Arc<Coordinator>,
    wakeup: Arc<Wakeup>,
    idle: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut bell = wakeup.subscribe();
        loop {
            let c = coordinator.clone();
            let due = match tokio::task::spawn_blocking(move || c.next_queue_due()).await {
                Ok(Ok(due)) => due,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "queue watcher could not read the queues");
                    None
                }
                Err(error) => {
                    tracing::error!(%error, "queue watcher task failed");
                    None
                }
            };
            let now = coordinator.now();
            let pause = due.map_or(idle, |due| {
                let millis = u64::try_from(due.as_millis() - now.as_millis()).unwrap_or(0);
                // A few ms past the expiry, so the expired lock is gone when we look.
                Duration::from_millis(millis + 5).min(idle)
            });
            let timed_out = tokio::select! {
                _ = tokio::time::sleep(pause) => true,
                changed = bell.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    false
                }
            };
            if timed_out && due.is_some() {
                let c = coordinator.clone();
                match tokio::task::spawn_blocking(move || c.promote_due()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "could not grant queued locks"),
                    Err(error) => tracing::error!(%error, "queue watcher task failed"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poke_rings_the_bell_of_the_listening_process() {
        let wakeup = Wakeup::start();
        let address = wakeup.address().expect("every platform has a wake socket");
        let mut bell = wakeup.subscribe();
        Poker.wake(&address);
        tokio::time::timeout(Duration::from_secs(5), bell.changed())
            .await
            .expect("woken in time")
            .expect("bell alive");
        // Poking a process that is gone is harmless.
        Poker.wake("mcp-session-coordinator/gone");
    }
}
