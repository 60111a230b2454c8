//! What the service is doing now, counted over the whole database, for people who watch it
//! (`/metrics`): every process's sessions, locks and queues, not only this one's.

use super::Coordinator;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::{Counts, Outbox};

/// The counts at one instant, and each webhook endpoint's delivery state.
#[derive(Debug, Clone)]
pub struct Tally {
    pub now: Timestamp,
    pub counts: Counts,
    /// In the order of the endpoints asked about.
    pub outboxes: Vec<Outbox>,
}

impl Coordinator {
    /// Reads the counts, and the delivery state of the webhook endpoints `urls`, in one read.
    pub fn tally(&self, urls: &[String]) -> Result<Tally> {
        let now = self.now();
        let alive_since = self.alive_since(now);
        Ok(self.store.read(|tx| {
            let counts = tx.counts(alive_since, now)?;
            let outboxes = urls
                .iter()
                .map(|url| tx.outbox(url))
                .collect::<Result<_, _>>()?;
            Ok::<_, crate::store::StoreError>(Tally {
                now,
                counts,
                outboxes,
            })
        })?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::*;
    use super::super::{LockRequest, Outgoing, Sender};
    use crate::model::{Channel, LockType, Priority};

    #[test]
    fn the_tally_counts_sessions_locks_queues_and_undelivered_events() {
        let h = Harness::new();
        let url = "http://hooks.test/a".to_owned();
        h.coordinator
            .webhook_due(&url, "me", 10, Duration::from_secs(30))
            .expect("the endpoint starts now");
        let alice = h.session("alice", "app", None);
        let bob = h.session("bob", "app", None);
        h.coordinator
            .acquire_lock(LockRequest::new(&alice, "src/a.rs", LockType::Exclusive))
            .expect("granted");
        let mut queued = LockRequest::new(&bob, "src/a.rs", LockType::Exclusive);
        queued.queue = true;
        h.coordinator.acquire_lock(queued).expect("queued");
        h.clock.advance(Duration::from_secs(7));
        h.coordinator
            .send_message(Outgoing {
                from: Sender::Session(alice.clone()),
                to_session: None,
                to_group: None,
                channel: Channel::Alerts,
                priority: Priority::Urgent,
                content: "main is red".into(),
            })
            .expect("sent");

        let tally = h
            .coordinator
            .tally(std::slice::from_ref(&url))
            .expect("tally");
        assert_eq!(tally.counts.sessions_live, 2);
        assert_eq!(tally.counts.sessions_stale, 0);
        assert_eq!(tally.counts.locks_held, 1);
        assert_eq!(tally.counts.queued, 1);
        assert_eq!(
            tally.counts.oldest_queued_at.map(|at| at.until(tally.now)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            tally.outboxes[0].backlog, 2,
            "contention and the urgent message"
        );
        assert_eq!(tally.outboxes[0].failures, 0);

        h.clock.advance(TIMEOUT + Duration::from_secs(1));
        let tally = h.coordinator.tally(&[]).expect("tally");
        assert_eq!(
            (tally.counts.sessions_live, tally.counts.sessions_stale),
            (0, 2)
        );
    }
}
