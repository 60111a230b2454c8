//! Events: what people want to hear about without watching the coordinator, recorded in the
//! transaction of the change they report (a transactional outbox), and the delivery state of
//! each webhook endpoint that reads them.
//!
//! Every process records, whether or not it delivers: the process that contends for a lock
//! is rarely the one configured with webhooks. Delivery is at least once, in order per
//! endpoint: an event is marked delivered only after the endpoint answered 2xx.

use std::time::Duration;

use serde_json::{Value, json};

use super::Coordinator;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::{EventRow, NewEvent, StoreError, WriteTx};

/// The same event (same kind and subject) is recorded at most once in this window: a session
/// that retries a refused lock every few seconds must not page the team every few seconds.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// Events older than this are deleted by the sweep, delivered or not.
pub const EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The first retry of a failed delivery waits this long; each next one twice as long, up to
/// [`LONGEST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// What happened; [`EventKind::as_str`] names it in the outbox and to whoever reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A lock request was refused or queued behind another session.
    LockContention,
    /// A queued request was granted when the lock it waited for was freed.
    LockGranted,
    /// A message sent with urgent priority or on the alerts channel.
    UrgentMessage,
    /// An announced intent collides with another session's work at high severity.
    Conflict,
    /// A session went silent past the timeout and was swept with its locks.
    StaleSession,
    /// A person took a lock away from the session that held it.
    ForcedRelease,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LockContention => "lock.contention",
            EventKind::LockGranted => "lock.granted",
            EventKind::UrgentMessage => "message.urgent",
            EventKind::Conflict => "conflict.high",
            EventKind::StaleSession => "session.stale",
            EventKind::ForcedRelease => "lock.force_released",
        }
    }
}

/// Something worth an event, as the change that caused it describes it.
pub(super) struct Occurrence<'a> {
    pub kind: EventKind,
    pub project: &'a str,
    /// What it is about (a session, a lock request): the same kind and subject is recorded
    /// once per [`REPEAT_WINDOW`].
    pub subject: &'a str,
    /// One plain sentence for people.
    pub text: &'a str,
    /// The details, for receivers that read more than the sentence.
    pub data: Value,
    /// Whose access token the acting session or person came with (`token add`), added to
    /// the details as `who`.
    pub who: Option<&'a str>,
}

/// Records `occurrence` in `tx` unless the same one was recorded within the window.
pub(super) fn record(
    tx: &WriteTx<'_>,
    occurrence: Occurrence<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Occurrence {
        kind,
        project,
        subject,
        text,
        mut data,
        who,
    } = occurrence;
    if let (Some(who), Some(details)) = (who, data.as_object_mut()) {
        details.insert("who".into(), Value::from(who));
    }
    let dedupe = format!("{}\u{1f}{project}\u{1f}{subject}", kind.as_str());
    tx.record_event(
        &NewEvent {
            kind: kind.as_str(),
            project,
            text,
            data: &data.to_string(),
            dedupe: Some(&dedupe),
            now,
        },
        now.minus(REPEAT_WINDOW),
    )?;
    Ok(())
}

/// One recorded event, as a deliverer reads it: what happened, in which project and when, one
/// plain sentence for people, and the details. How it is dressed for a receiver (Slack's
/// escapes, Discord's fields) is the deliverer's business, not the domain's.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    /// What happened, as [`EventKind::as_str`] names it.
    pub kind: String,
    pub project: String,
    pub at: Timestamp,
    /// One plain sentence, written for people; it may quote words any session chose.
    pub text: String,
    pub data: Value,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Event {
            id: row.id,
            kind: row.kind,
            project: row.project,
            at: row.created_at,
            text: row.text,
            data: serde_json::from_str(&row.data).unwrap_or_else(|_| json!({})),
        }
    }
}

/// What an endpoint should do next.
#[derive(Debug)]
pub enum Due {
    /// Send these, in order; the lease keeps other processes off them meanwhile.
    Send(Vec<Event>),
    /// Nothing new.
    Idle,
    /// A failure backs off, or another process holds the lease, until then.
    Later(Timestamp),
}

/// How long the `attempts`-th consecutive failure (from 1) makes the endpoint wait.
pub fn retry_delay(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_RETRY
        .saturating_mul(1u32 << doublings)
        .min(LONGEST_RETRY)
}

impl Coordinator {
    /// The next events to deliver to `url` (at most `max`), leased to `owner` for `lease`.
    /// An endpoint seen for the first time starts after the newest event.
    pub fn webhook_due(&self, url: &str, owner: &str, max: usize, lease: Duration) -> Result<Due> {
        let now = self.now();
        // Most looks find nothing new: answer those from a read, without the write lock.
        let idle = self.store.read(|tx| {
            Ok::<_, StoreError>(match tx.cursor(url)? {
                Some(cursor) => {
                    cursor.next_attempt_at <= now && tx.last_event_id()? <= cursor.delivered_through
                }
                None => false,
            })
        })?;
        if idle {
            return Ok(Due::Idle);
        }
        Ok(self.store.write(|tx| {
            tx.open_cursor(url)?;
            let Some(cursor) = tx.cursor(url)? else {
                return Ok::<_, StoreError>(Due::Idle);
            };
            let leased_elsewhere = cursor.lease_owner.as_deref() != Some(owner);
            let wait = if leased_elsewhere {
                cursor.next_attempt_at.max(cursor.leased_until)
            } else {
                cursor.next_attempt_at
            };
            if wait > now {
                return Ok(Due::Later(wait));
            }
            let events = tx.events_after(cursor.delivered_through, max)?;
            if events.is_empty() {
                return Ok(Due::Idle);
            }
            tx.lease_cursor(url, owner, now.plus(lease))?;
            Ok(Due::Send(events.into_iter().map(Event::from).collect()))
        })?)
    }

    /// Records that `url` received every event up to `through`, renewing `owner`'s lease for
    /// the rest of its batch; false when the lease was lost (stop sending: another process
    /// has the batch now).
    pub fn webhook_delivered(
        &self,
        url: &str,
        owner: &str,
        through: i64,
        lease: Duration,
    ) -> Result<bool> {
        let until = self.now().plus(lease);
        Ok(self
            .store
            .write(|tx| tx.advance_cursor(url, owner, through, until))?)
    }

    /// Records a failed delivery to `url`; returns how long it now waits before retrying
    /// (`None` when `owner` had lost the lease, and so recorded nothing).
    pub fn webhook_failed(&self, url: &str, owner: &str, error: &str) -> Result<Option<Duration>> {
        let now = self.now();
        Ok(self.store.write(|tx| {
            let attempts = tx.cursor(url)?.map_or(0, |c| c.attempts) + 1;
            let delay = retry_delay(attempts);
            let recorded = tx.fail_cursor(url, owner, attempts, now.plus(delay), error)?;
            Ok::<_, StoreError>(recorded.then_some(delay))
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{LockRequest, Outgoing, Sender};
    use super::*;
    use crate::model::{Channel, LockType, Priority};

    fn due(h: &Harness, url: &str) -> Due {
        h.coordinator
            .webhook_due(url, "me", 10, Duration::from_secs(30))
            .expect("due")
    }

    fn sent(due: Due) -> Vec<Event> {
        match due {
            Due::Send(events) => events,
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn contention_is_recorded_once_per_window_and_delivered_in_order() {
        let h = Harness::new();
        let url = "http://hooks.test/a";
        assert!(
            matches!(due(&h, url), Due::Idle),
            "a new endpoint starts now"
        );
        let alice = h.session("alice", "app", None);
        let bob = h.session("bob", "app", None);
        for session in [&alice, &bob, &bob] {
            h.coordinator
                .acquire_lock(LockRequest::new(session, "src/a.rs", LockType::Exclusive))
                .expect("acquire");
        }
        let events = sent(due(&h, url));
        assert_eq!(
            events.len(),
            1,
            "the retry within the window is the same event"
        );
        assert_eq!(events[0].kind, "lock.contention");
        assert!(events[0].text.contains("bob") && events[0].text.contains("src/a.rs"));
        assert!(
            matches!(
                h.coordinator
                    .webhook_due(url, "other", 10, Duration::from_secs(30))
                    .expect("due"),
                Due::Later(_)
            ),
            "leased to the sender while it sends"
        );
        assert_eq!(
            h.coordinator
                .webhook_failed(url, "other", "x")
                .expect("fail"),
            None,
            "only the lease's owner records"
        );

        let delay = h
            .coordinator
            .webhook_failed(url, "me", "refused")
            .expect("fail");
        assert_eq!(delay, Some(FIRST_RETRY));
        assert!(matches!(due(&h, url), Due::Later(_)), "backing off");
        h.advance(Duration::from_secs(1));
        let again = sent(due(&h, url));
        assert_eq!(again[0].id, events[0].id, "a failed event is sent again");
        assert!(
            h.coordinator
                .webhook_delivered(url, "me", again[0].id, Duration::from_secs(30))
                .expect("delivered")
        );
        assert!(matches!(due(&h, url), Due::Idle));

        h.advance(REPEAT_WINDOW);
        h.coordinator
            .acquire_lock(LockRequest::new(&bob, "src/a.rs", LockType::Exclusive))
            .expect("acquire");
        assert_eq!(
            sent(due(&h, url)).len(),
            1,
            "after the window it counts again"
        );
    }

    #[test]
    fn urgent_messages_and_queue_grants_are_events_but_normal_messages_are_not() {
        let h = Harness::new();
        let url = "http://hooks.test/b";
        assert!(matches!(due(&h, url), Due::Idle));
        let alice = h.session("alice", "app", None);
        let bob = h.session("bob", "app", None);
        let send = |priority, channel, content: &str| {
            h.coordinator
                .send_message(Outgoing {
                    from: Sender::Session(alice.clone()),
                    to_session: None,
                    to_group: None,
                    channel,
                    priority,
                    content: content.into(),
                })
                .expect("send");
        };
        send(Priority::Normal, Channel::General, "lunch?");
        send(Priority::Urgent, Channel::General, "main is broken");
        send(Priority::Normal, Channel::Alerts, "deploy frozen");
        h.coordinator
            .acquire_lock(LockRequest::new(&alice, "src/b.rs", LockType::Exclusive))
            .expect("acquire");
        h.coordinator
            .acquire_lock(LockRequest {
                queue: true,
                ..LockRequest::new(&bob, "src/b.rs", LockType::Exclusive)
            })
            .expect("queue");
        h.coordinator
            .release_lock(&alice, "src/b.rs")
            .expect("release");
        let kinds: Vec<String> = sent(due(&h, url)).into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                "message.urgent",
                "message.urgent",
                "lock.contention",
                "lock.granted"
            ]
        );
    }

    #[test]
    fn retries_back_off_up_to_five_minutes() {
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(2), Duration::from_secs(1));
        assert_eq!(retry_delay(4), Duration::from_secs(4));
        assert_eq!(retry_delay(30), LONGEST_RETRY);
        assert_eq!(retry_delay(i64::MAX), LONGEST_RETRY);
    }
}
