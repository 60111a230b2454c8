//! Lock queues: granting waiting requests when their blockers go, and telling the waiters.
//!
//! Requests wait in one FIFO order (the queue entry's id) across overlapping keys. Whenever
//! something may free a key — a release, a withdrawn request, a session ending — the same
//! transaction walks the requests queued on overlapping keys in order and grants each one that
//! is compatible with the holders and with every request still queued before it. So the head
//! of a queue is served first, consecutive readers at the head are granted together, and a
//! reader behind a waiting writer waits.
//!
//! Expiry frees a key without any transaction; every process therefore runs a queue watcher
//! ([`Coordinator::next_queue_due`], [`Coordinator::promote_due`]) that wakes when the next
//! lock blocking a waiter expires.
//!
//! A waiter learns of its grant three ways: the process waiting for it (`wait_seconds`) is woken
//! through the [`Notifier`] at once; a `queue=true` request also gets a `coordination` message and
//! is reported on its session's next answer (`locks_granted`).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Serialize;

use super::events::{self, EventKind, Occurrence};
use super::locks::{Grant, key_rule, refusal};
use super::messages::{Notice, notify};
use super::rule::{ahead, blocker, waiting};
use super::{Coordinator, LockOutcome, path_key};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::{Channel, Lock, LockType, Session, Waiter};
use crate::store::{LockFilter, NewLock, ReadTx, WriteTx};

/// More locks than one session could sensibly hold; a bound for the resource's size.
const SESSION_LOCKS_LIMIT: usize = 1_000;

/// Everything a session holds or waits for.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionLocks {
    pub session_id: String,
    /// Live locks, by project and path.
    pub held: Vec<Lock>,
    /// Requests still queued, each with its `queue_position` and what blocks it.
    pub queued: Vec<LockOutcome>,
}

/// Wakes a session's server process when something arrives for it: its queued request was
/// granted, or a message was delivered to it. The coordinator only carries the addresses left
/// in queue entries and session rows; `wake.rs` implements it.
pub trait Notifier: Send + Sync {
    fn wake(&self, address: &str);
}

/// For coordinators nobody waits on (unit tests, one-shot commands).
pub struct Silent;

impl Notifier for Silent {
    fn wake(&self, _address: &str) {}
}

/// What became of a lock request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockDecision {
    /// Granted or renewed.
    Granted,
    /// Put in the queue behind the holders.
    Queued,
    /// Refused: held by another session.
    Refused,
}

/// Told what this process's coordinator decides, for whoever counts it (the HTTP server's
/// `/metrics`). A queue grant is told inside its transaction, which could still fail: these
/// are counts for people watching, not records.
pub trait Observer: Send + Sync {
    fn lock_decided(&self, decision: LockDecision);
    /// A queued request was granted after waiting `waited`.
    fn granted_from_queue(&self, waited: std::time::Duration);
}

impl Coordinator {
    /// Grants every request queued on keys overlapping `key` that can be granted now, in FIFO
    /// order; returns the wake addresses of the granted waiters, to call after the commit.
    pub(super) fn promote(
        &self,
        tx: &WriteTx<'_>,
        project: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        let mut wakes = Vec::new();
        for candidate in self.live_waiters(tx, project, key, now)? {
            let holders = tx.locks_overlapping(project, &candidate.file_path, now)?;
            let others: Vec<&Lock> = holders
                .iter()
                .filter(|lock| lock.session_id != candidate.session_id)
                .collect();
            let queue = self.live_waiters(tx, project, &candidate.file_path, now)?;
            let earlier = ahead(&queue, &candidate.session_id, Some(candidate.id));
            let rule = key_rule(tx, project, &candidate.file_path)?;
            if blocker(candidate.lock_type, rule, &others, &earlier).is_none() {
                self.grant_queued(tx, &candidate, now)?;
                wakes.extend(candidate.wake.clone());
            }
        }
        // To every machine with the commit; this machine's sockets are poked after it.
        tx.announce(&wakes);
        Ok(wakes)
    }

    /// Promotes on every key that has a queue.
    pub(super) fn promote_everywhere(
        &self,
        tx: &WriteTx<'_>,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        let keys: BTreeSet<(String, String)> = tx
            .all_waiters()?
            .into_iter()
            .map(|w| (w.project, w.file_path))
            .collect();
        let mut wakes = Vec::new();
        for (project, key) in keys {
            wakes.extend(self.promote(tx, &project, &key, now)?);
        }
        Ok(wakes)
    }

    fn grant_queued(&self, tx: &WriteTx<'_>, entry: &Waiter, now: Timestamp) -> Result<()> {
        let session = tx
            .session(&entry.session_id)?
            .ok_or_else(|| Error::unknown_session(&entry.session_id))?;
        // A `queue=true` request has no deadline, and nobody waits for its answer.
        let unattended = entry.waiting_until.is_none();
        if let Some(observer) = self.observer.get() {
            observer.granted_from_queue(entry.queued_at.until(now));
        }
        let token = tx.next_fencing_token()?;
        let expires_at = now.plus(entry.ttl);
        tx.delete_waiter(entry, true, now)?;
        let grant = Grant {
            holder: &session,
            path: &entry.file_path,
            lock_type: entry.lock_type,
            acquired_at: now,
            expires_at,
            fencing_token: token,
            renewal: false,
            worktree: None,
            edited_at: None,
        };
        tx.put_lock(&NewLock {
            from_waiter: Some(entry.id),
            unreported: unattended,
            ..grant.row(now)
        })?;
        events::record(
            tx,
            Occurrence {
                kind: EventKind::LockGranted,
                project: &session.project,
                subject: &format!("{}\u{1f}{token}", session.session_id),
                text: &format!(
                    "'{}' was granted the {} lock on {} it queued for",
                    session.name, entry.lock_type, entry.file_path
                ),
                data: serde_json::json!({
                    "file_path": entry.file_path,
                    "session_id": session.session_id,
                    "name": session.name,
                    "lock_type": entry.lock_type,
                    "fencing_token": token,
                    "expires_at": expires_at,
                }),
                who: session.who.as_deref(),
            },
            now,
        )?;
        if unattended {
            let content = format!(
                "Your queued {} lock on {} was granted (fencing_token {token}, expires at \
                 {expires_at}). Edit it now, and lock_release it when done.",
                entry.lock_type, entry.file_path
            );
            notify(
                tx,
                Notice {
                    project: &session.project,
                    session_id: &session.session_id,
                    channel: Channel::Coordination,
                    content: &content,
                },
                now,
            )?;
        }
        Ok(())
    }

    /// Where a waiting request stands: granted (from the queue), still queued, or gone (its
    /// wait ran out or its session ended).
    pub fn queued_status(
        &self,
        session_id: &str,
        file_path: &str,
        wanted: LockType,
    ) -> Result<LockOutcome> {
        self.look(Some(session_id), |tx, me, now| {
            let me = me.ok_or_else(|| Error::unknown_session(session_id))?;
            let path = path_key("file_path", file_path, me.working_directory.as_deref())?;
            self.standing(tx, me, &path, wanted, now)
        })
    }

    fn standing(
        &self,
        tx: &ReadTx<'_>,
        me: &Session,
        path: &str,
        wanted: LockType,
        now: Timestamp,
    ) -> Result<LockOutcome> {
        let alive_since = self.alive_since(now);
        let queue: Vec<Waiter> = tx
            .waiters_overlapping(&me.project, path)?
            .into_iter()
            .filter(|w| waiting(w, alive_since, now))
            .collect();
        let holders = tx.locks_overlapping(&me.project, path, now)?;
        let Some(at) = queue
            .iter()
            .position(|w| w.session_id == me.session_id && w.file_path == path)
        else {
            return Ok(
                match holders
                    .iter()
                    .find(|l| l.session_id == me.session_id && l.file_path == path)
                {
                    Some(lock) => LockOutcome::held(lock),
                    None => {
                        let mut gone = LockOutcome::not_granted(path, wanted);
                        gone.reason = Some(format!(
                            "the request for {path} is no longer queued (its wait ran out or it was withdrawn) and no lock was granted; try lock_acquire again"
                        ));
                        gone
                    }
                },
            );
        };
        let entry = &queue[at];
        let others: Vec<&Lock> = holders
            .iter()
            .filter(|l| l.session_id != me.session_id)
            .collect();
        let earlier = ahead(&queue, &me.session_id, Some(entry.id));
        let position = earlier.len() + 1;
        let rule = key_rule(tx, &me.project, path)?;
        Ok(match blocker(entry.lock_type, rule, &others, &earlier) {
            Some(blocked) => refusal(path, entry.lock_type, blocked, others.len(), Some(position)),
            // Grantable but not granted yet: the next promotion will; report it as queued.
            None => LockOutcome {
                queued: true,
                queue_position: Some(position),
                ..LockOutcome::not_granted(path, entry.lock_type)
            },
        })
    }

    /// What a session holds and what it still waits for (with its place in each queue): the
    /// `coordinator://locks` resource.
    pub fn session_locks(&self, session_id: &str) -> Result<SessionLocks> {
        self.look(Some(session_id), |tx, me, now| {
            let me = me.ok_or_else(|| Error::unknown_session(session_id))?;
            let held = tx.locks(
                LockFilter {
                    project: None,
                    session_id: Some(session_id),
                    path: None,
                    group: None,
                    limit: SESSION_LOCKS_LIMIT,
                },
                now,
            )?;
            let alive_since = self.alive_since(now);
            let mut queued = Vec::new();
            for entry in tx.waiters_of(session_id)? {
                if waiting(&entry, alive_since, now) {
                    let standing = self.standing(tx, me, &entry.file_path, entry.lock_type, now)?;
                    if standing.queued {
                        queued.push(standing);
                    }
                }
            }
            Ok(SessionLocks {
                session_id: me.session_id.clone(),
                held,
                queued,
            })
        })
    }

    /// Withdraws a waiting request when its wait ran out. If it was granted meanwhile, says
    /// so instead: the caller then holds the lock.
    pub fn give_up_wait(
        &self,
        session_id: &str,
        file_path: &str,
        wanted: LockType,
    ) -> Result<LockOutcome> {
        let (outcome, wakes) = self.store.write(|tx| {
            let now = self.now();
            let me = Self::acting(tx, session_id, now)?;
            let path = path_key("file_path", file_path, me.working_directory.as_deref())?;
            let before = self.standing(tx, &me, &path, wanted, now)?;
            if before.granted {
                return Ok::<_, Error>((before, Vec::new()));
            }
            if let Some(entry) = tx.waiter_of(&me.project, &path, &me.session_id)? {
                tx.delete_waiter(&entry, false, now)?;
            }
            let wakes = self.promote(tx, &me.project, &path, now)?;
            let blocked_by = match (&before.holder_name, &before.held_by) {
                (Some(name), Some(id)) => format!(" because of session '{name}' ({id})"),
                _ => String::new(),
            };
            let reason = format!(
                "The wait ran out: {path} could not be granted{blocked_by}, and the request was \
                 withdrawn from the queue. Try again later, or queue with queue=true to be \
                 granted it automatically."
            );
            Ok((
                LockOutcome {
                    queued: false,
                    reason: Some(reason),
                    ..before
                },
                wakes,
            ))
        })?;
        self.wake(&wakes);
        Ok(outcome)
    }

    /// When the queue watcher should next look: the earliest moment a lock blocking a waiter
    /// expires, a wait runs out, or a waiting session goes stale. `None` when nobody waits.
    pub fn next_queue_due(&self) -> Result<Option<Timestamp>> {
        let now = self.now();
        self.store.read(|tx| {
            let mut due: Option<Timestamp> = None;
            let mut consider = |t: Timestamp| due = Some(due.map_or(t, |d| d.min(t)));
            for entry in tx.all_waiters()? {
                entry.waiting_until.into_iter().for_each(&mut consider);
                consider(entry.last_heartbeat.plus(self.session_timeout));
                for lock in tx.locks_overlapping(&entry.project, &entry.file_path, now)? {
                    if lock.session_id != entry.session_id {
                        consider(lock.expires_at);
                    }
                }
            }
            Ok(due)
        })
    }

    /// Grants what expiry has made grantable; returns how many processes were woken.
    pub fn promote_due(&self) -> Result<usize> {
        let wakes = self.store.write(|tx| {
            let now = self.now();
            self.promote_everywhere(tx, now)
        })?;
        self.wake(&wakes);
        Ok(wakes.len())
    }

    pub(super) fn wake(&self, addresses: &[String]) {
        for address in addresses {
            self.notifier.wake(address);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::*;
    use super::super::{InboxQuery, LockRequest};
    use super::*;

    fn ask(
        h: &Harness,
        session: &str,
        path: &str,
        lock_type: LockType,
        queue: bool,
    ) -> LockOutcome {
        h.coordinator
            .acquire_lock(LockRequest {
                queue,
                ..LockRequest::new(session, path, lock_type)
            })
            .expect("acquire")
    }

    fn release(h: &Harness, session: &str, path: &str) {
        h.coordinator.release_lock(session, path).expect("release");
    }

    fn holders(h: &Harness, path: &str) -> Vec<String> {
        let status = h
            .coordinator
            .check_lock(None, Some("app"), path, None)
            .expect("check");
        status.holders.into_iter().map(|l| l.holder_name).collect()
    }

    #[test]
    fn the_queue_is_served_in_order_and_readers_at_its_head_together() {
        use LockType::*;
        let h = Harness::new();
        let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|n| h.session(n, "app", None));
        assert!(ask(&h, &a, "f.ts", Exclusive, false).granted);
        let queued = ask(&h, &b, "f.ts", Shared, true);
        assert!(queued.queued && !queued.granted);
        assert_eq!(queued.queue_position, Some(1));
        assert_eq!(ask(&h, &c, "f.ts", Shared, true).queue_position, Some(2));
        assert_eq!(ask(&h, &d, "f.ts", Exclusive, true).queue_position, Some(3));
        release(&h, &a, "f.ts");
        assert_eq!(
            holders(&h, "f.ts"),
            ["b", "c"],
            "consecutive readers granted together"
        );
        // A reader arriving now waits behind the queued writer d: no writer starvation.
        let late = ask(&h, &e, "f.ts", Shared, false);
        assert!(!late.granted && !late.queued);
        assert!(late.reason.is_some_and(|r| r.contains("queued first")));
        release(&h, &b, "f.ts");
        assert_eq!(
            holders(&h, "f.ts"),
            ["c"],
            "the writer waits for every reader"
        );
        release(&h, &c, "f.ts");
        assert_eq!(holders(&h, "f.ts"), ["d"]);

        let tokens: Vec<i64> = h
            .coordinator
            .check_lock(None, Some("app"), "f.ts", None)
            .expect("check")
            .holders
            .iter()
            .map(|l| l.fencing_token)
            .collect();
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn a_session_sees_what_it_holds_and_where_it_waits() {
        use LockType::*;
        let h = Harness::new();
        let [a, b, c] = ["a", "b", "c"].map(|n| h.session(n, "app", None));
        ask(&h, &a, "f.ts", Exclusive, false);
        ask(&h, &b, "f.ts", Exclusive, true);
        ask(&h, &c, "g.ts", Shared, false);
        ask(&h, &c, "f.ts", Exclusive, true);

        let mine = h.coordinator.session_locks(&c).expect("c's locks");
        let held: Vec<&str> = mine.held.iter().map(|l| l.file_path.as_str()).collect();
        assert_eq!(held, ["g.ts"]);
        assert_eq!(mine.queued.len(), 1);
        assert_eq!(mine.queued[0].file_path, "f.ts");
        assert_eq!(mine.queued[0].queue_position, Some(2));
        assert_eq!(mine.queued[0].holder_name.as_deref(), Some("a"));

        release(&h, &a, "f.ts");
        let mine = h.coordinator.session_locks(&c).expect("c's locks");
        assert_eq!(mine.queued[0].queue_position, Some(1));
        assert_eq!(mine.queued[0].holder_name.as_deref(), Some("b"));
        let theirs = h.coordinator.session_locks(&b).expect("b's locks");
        assert_eq!(theirs.held[0].file_path, "f.ts");
        assert!(theirs.queued.is_empty());
    }

    #[test]
    fn a_queued_grant_is_told_by_message_and_on_the_next_answer() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        ask(&h, &a, "f.ts", LockType::Exclusive, false);
        ask(&h, &b, "f.ts", LockType::Exclusive, true);
        release(&h, &a, "f.ts");

        let granted = h.coordinator.news(&b).expect("news").granted;
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].file_path, "f.ts");
        assert!(h.coordinator.news(&b).expect("news").granted.is_empty());
        let inbox = h
            .coordinator
            .list_messages(InboxQuery {
                session_id: b.clone(),
                channel: None,
                unread_only: true,
                since: None,
                limit: None,
                mark_read: false,
            })
            .expect("inbox");
        assert!(
            inbox.messages[0]
                .content
                .contains("queued exclusive lock on f.ts was granted")
        );
    }

    #[test]
    fn expiry_and_dead_waiters_move_the_queue() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let c = h.session("c", "app", None);
        h.coordinator
            .acquire_lock(LockRequest {
                ttl_seconds: Some(60),
                ..LockRequest::new(&a, "f.ts", LockType::Exclusive)
            })
            .expect("lock");
        ask(&h, &b, "f.ts", LockType::Exclusive, true);
        ask(&h, &c, "f.ts", LockType::Exclusive, true);
        let due = h
            .coordinator
            .next_queue_due()
            .expect("due")
            .expect("someone waits");
        assert_eq!(due, h.coordinator.now().plus(Duration::from_secs(60)));

        // b goes silent past the timeout while a's lock expires: c is next, not b.
        h.advance(Duration::from_secs(200));
        h.coordinator.heartbeat(&c).expect("c beats");
        h.advance(Duration::from_secs(150));
        h.coordinator.promote_due().expect("promote");
        assert_eq!(holders(&h, "f.ts"), ["c"]);
    }

    #[test]
    fn a_wait_that_runs_out_leaves_the_queue() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        ask(&h, &a, "f.ts", LockType::Exclusive, false);
        let waiting = h
            .coordinator
            .acquire_lock(LockRequest {
                wait_seconds: Some(5),
                ..LockRequest::new(&b, "f.ts", LockType::Exclusive)
            })
            .expect("acquire");
        assert_eq!(waiting.queue_position, Some(1));
        let status = h
            .coordinator
            .queued_status(&b, "f.ts", LockType::Exclusive)
            .expect("status");
        assert!(status.queued);
        let gave_up = h
            .coordinator
            .give_up_wait(&b, "f.ts", LockType::Exclusive)
            .expect("give up");
        assert!(!gave_up.granted && !gave_up.queued);
        assert_eq!(gave_up.queue_position, Some(1));
        release(&h, &a, "f.ts");
        assert!(
            holders(&h, "f.ts").is_empty(),
            "the withdrawn request is not granted"
        );
    }

    #[test]
    fn directory_and_glob_locks_conflict_both_ways() {
        use LockType::*;
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        assert!(ask(&h, &a, "src/auth/jwt.ts", Exclusive, false).granted);
        let dir = ask(&h, &b, "src/auth/**", Exclusive, false);
        assert!(!dir.granted);
        assert_eq!(dir.holder_name.as_deref(), Some("a"));
        assert!(ask(&h, &b, "src/other/", Exclusive, false).granted);
        assert!(!ask(&h, &a, "src/other/x.ts", Shared, false).granted);
        assert!(ask(&h, &a, "migrations/*.sql", Exclusive, false).granted);
        assert!(!ask(&h, &b, "./migrations/002.sql", Exclusive, false).granted);
        assert!(ask(&h, &b, "migrations/README.md", Exclusive, false).granted);
        let status = h
            .coordinator
            .check_lock(Some(&b), None, "migrations/003.sql", None)
            .expect("check");
        assert!(status.locked);
        assert_eq!(status.holders[0].file_path, "migrations/*.sql");
    }

    #[test]
    fn a_stale_token_is_reported_invalid() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let first = h
            .coordinator
            .acquire_lock(LockRequest {
                ttl_seconds: Some(10),
                ..LockRequest::new(&a, "f.ts", LockType::Exclusive)
            })
            .expect("lock");
        let token = first.fencing_token;
        let valid = |h: &Harness| {
            h.coordinator
                .check_lock(Some(&a), None, "f.ts", token)
                .expect("check")
                .token_valid
        };
        assert_eq!(valid(&h), Some(true));
        h.advance(Duration::from_secs(11));
        let second = ask(&h, &b, "f.ts", LockType::Exclusive, false);
        assert!(second.fencing_token > token);
        assert_eq!(valid(&h), Some(false));
        // The old holder's refresh does not touch the new holder's lock.
        assert!(!ask(&h, &a, "f.ts", LockType::Exclusive, false).granted);
        assert!(
            !h.coordinator
                .release_lock(&a, "f.ts")
                .expect("release")
                .released
        );
        assert_eq!(holders(&h, "f.ts"), ["b"]);
    }
}
