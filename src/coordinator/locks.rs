//! File locks: acquiring, releasing, and looking at who holds and who waits.
//!
//! Invariant: for overlapping keys of one project, the live holders are always compatible under
//! the rule (`rule.rs`). It holds because the decision and the grant happen in one write
//! transaction, which holds the database's write lock from its first statement, so no other
//! process can interleave with it.
//!
//! Fairness: a new grant must also be compatible with every request already queued on an
//! overlapping key, so no newcomer jumps the queue (a reader behind a queued writer waits). Only
//! renewing a lock you hold passes the queue. The queue itself lives in `queue.rs`, and what
//! a request is told in `locks/words.rs`.

mod types;
mod words;

use std::time::Duration;

pub(super) use types::Grant;
pub use types::{
    EditLock, LockList, LockListQuery, LockOutcome, LockRequest, LockStatus, Released,
};
pub(super) use words::refusal;

use super::events::{self, EventKind, Occurrence};
use super::queue::LockDecision;
use super::rule::{self, Blocker, Capacity, Rule, ahead, blocker, strength, waiting};
use super::{Coordinator, limit, optional_label, path_key, root_for, scope};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::{Lock, LockType, Session, Waiter};
use crate::patterns;
use crate::store::{LockFilter, NewLock, NewWaiter, Overlap, ReadTx, WriteTx};

/// Lock lifetime when the caller does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(900);
/// Longest lock lifetime: a day. Longer work renews by re-acquiring.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);
/// Longest `wait_seconds`: MCP clients time tool calls out after a few minutes.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// A wait's queue entry outlives its deadline by this much, so the waiting process removes it
/// itself; the slack only matters when that process died while waiting.
const WAIT_GRACE: Duration = Duration::from_secs(2);

/// One lock request inside its transaction, once its session and key are known.
struct Ask<'a> {
    request: &'a LockRequest,
    me: &'a Session,
    /// The request's key, normalized.
    path: &'a str,
    ttl: Duration,
    wait: Option<Duration>,
    /// Read inside the transaction, so the recorded history is in time order.
    now: Timestamp,
}

impl<'a> Ask<'a> {
    /// A new grant of the request at `now`, with a token to fill in: until its TTL ends, or
    /// for an edit lock held until committed, until [`Timestamp::UNTIL_COMMIT`].
    fn grant(&self) -> Grant<'a> {
        let edit = self.request.edit.as_ref();
        let until_commit = edit.is_some_and(|e| e.until_commit);
        Grant {
            holder: self.me,
            path: self.path,
            lock_type: self.request.lock_type,
            acquired_at: self.now,
            expires_at: if until_commit {
                Timestamp::UNTIL_COMMIT
            } else {
                self.now.plus(self.ttl)
            },
            fencing_token: 0,
            renewal: false,
            worktree: edit.map(|e| e.worktree.as_str()),
            edited_at: until_commit.then_some(self.now),
        }
    }
}

/// The rule for `key`: a resource's capacity (1 until someone sets it), else the matrix.
pub(super) fn key_rule(tx: &ReadTx<'_>, project: &str, key: &str) -> Result<Rule> {
    if !patterns::is_resource(key) {
        return Ok(Rule::Matrix);
    }
    Ok(Rule::Slots(
        tx.capacity(project, key)?.map_or(1, |(n, _)| n),
    ))
}

impl Coordinator {
    /// Grants, renews, queues or denies. Never blocks: a caller that wants to wait does so
    /// between calls to [`Coordinator::queued_status`].
    pub fn acquire_lock(&self, request: LockRequest) -> Result<LockOutcome> {
        let ttl = ttl(request.ttl_seconds)?;
        let wait = wait(request.wait_seconds)?;
        // Waiters granted on the way (a resource's capacity raised above its default), to wake
        // after the commit.
        let mut wakes = Vec::new();
        let outcome = self.store.write(|tx| {
            let now = self.now();
            let me = Self::acting(tx, &request.session_id, now)?;
            let path = path_key(
                "file_path",
                &request.file_path,
                me.working_directory.as_deref(),
            )?;
            let ask = Ask {
                request: &request,
                me: &me,
                path: &path,
                ttl,
                wait,
                now,
            };
            let (rule, raised) = self.settle_rule(tx, &ask)?;
            wakes = raised;

            let holders = tx.locks_overlapping(&me.project, &path, now)?;
            let worktree = request.edit.as_ref().map(|e| e.worktree.as_str());
            let (mine, others): (Vec<&Lock>, Vec<&Lock>) = holders
                .iter()
                .filter(|lock| rule::same_tree(worktree, lock.worktree.as_deref()))
                .partition(|lock| lock.session_id == me.session_id);
            // A renewal keeps the lock's scope: an edit lock asked for again as a lock_acquire
            // (which binds every worktree) must first be free in all of them.
            if let Some(held) = mine.iter().find(|lock| {
                lock.file_path == path
                    && lock.lock_type == request.lock_type
                    && lock.worktree.as_deref() == worktree
            }) {
                return self.renew(tx, &ask, held, &others);
            }

            let waiters = self.live_waiters(tx, &me.project, &path, now)?;
            let own = waiters
                .iter()
                .find(|w| w.session_id == me.session_id && w.file_path == path);
            let earlier = ahead(&waiters, &me.session_id, own.map(|w| w.id));
            let blocked = match request.lock_type {
                LockType::Intent => None,
                wanted => blocker(wanted, rule, &others, &earlier),
            };
            match blocked {
                None => self.grant_new(tx, &ask, own, &others),
                Some(blocked) => Self::refuse_or_queue(tx, &ask, blocked, others.len(), &earlier),
            }
        })?;
        self.wake(&wakes);
        if let Some(observer) = self.observer.get() {
            observer.lock_decided(if outcome.granted {
                LockDecision::Granted
            } else if outcome.queued {
                LockDecision::Queued
            } else {
                LockDecision::Refused
            });
        }
        Ok(outcome)
    }

    /// The rule the request's key follows. A resource takes exclusive requests only, and the
    /// first request naming its capacity sets it; the requests queued under the default of 1
    /// that then fit are granted, and their wake addresses returned.
    fn settle_rule(&self, tx: &WriteTx<'_>, ask: &Ask<'_>) -> Result<(Rule, Vec<String>)> {
        let (path, project) = (ask.path, &ask.me.project);
        if !patterns::is_resource(path) {
            if ask.request.capacity.is_some() {
                return Err(Error::invalid(
                    "capacity",
                    format!(
                        "only a resource key has a capacity (e.g. {}playwright), not {path}",
                        patterns::RESOURCE_PREFIX
                    ),
                ));
            }
            return Ok((Rule::Matrix, Vec::new()));
        }
        if ask.request.lock_type != LockType::Exclusive {
            return Err(Error::invalid(
                "lock_type",
                format!(
                    "{path} is a resource: each holder takes one of its slots, so lock_type must be exclusive (the default)"
                ),
            ));
        }
        let set = tx.capacity(project, path)?;
        let set = set.as_ref().map(|(n, by)| (*n, by.as_str()));
        match rule::capacity(path, project, set, ask.request.capacity)? {
            Capacity::InForce(n) => Ok((Rule::Slots(n), Vec::new())),
            Capacity::Setting(n) => {
                tx.set_capacity(project, path, n, &ask.me.name, ask.now)?;
                let wakes = self.promote(tx, project, path, ask.now)?;
                Ok((Rule::Slots(n), wakes))
            }
        }
    }

    /// Extends `held`, the session's own lock on this very key and type, by the request's
    /// TTL: it keeps its token, and passes the queue.
    fn renew(
        &self,
        tx: &WriteTx<'_>,
        ask: &Ask<'_>,
        held: &Lock,
        others: &[&Lock],
    ) -> Result<LockOutcome> {
        let grant = Grant {
            fencing_token: held.fencing_token,
            acquired_at: held.acquired_at,
            lock_type: held.lock_type,
            renewal: true,
            ..ask.grant()
        };
        self.write_grant(tx, ask, &grant, None, others)
    }

    /// Grants the request with a new fencing token; the session's queue entry for the key,
    /// `own`, is served by it.
    fn grant_new(
        &self,
        tx: &WriteTx<'_>,
        ask: &Ask<'_>,
        own: Option<&Waiter>,
        others: &[&Lock],
    ) -> Result<LockOutcome> {
        if let Some(entry) = own {
            tx.delete_waiter(entry, true, ask.now)?;
        }
        let grant = Grant {
            fencing_token: tx.next_fencing_token()?,
            ..ask.grant()
        };
        self.write_grant(tx, ask, &grant, own.map(|w| w.id), others)
    }

    /// Writes `grant` (serving queue entry `from_waiter`, if any) and answers with it, warning
    /// of the others' locks and intents that overlap without blocking.
    fn write_grant(
        &self,
        tx: &WriteTx<'_>,
        ask: &Ask<'_>,
        grant: &Grant<'_>,
        from_waiter: Option<i64>,
        others: &[&Lock],
    ) -> Result<LockOutcome> {
        let lock_id = tx.put_lock(&NewLock {
            from_waiter,
            ..grant.row(ask.now)
        })?;
        let warnings = self.warnings(tx, ask, others)?;
        Ok(grant.answer(lock_id, warnings))
    }

    /// Refuses a request `blocked` stands in the way of, or queues it when it asked to wait or
    /// to stay queued; either way the contention is recorded for people watching the project.
    /// `holders` counts the other sessions' locks on overlapping keys, `earlier` their requests
    /// queued before this one.
    fn refuse_or_queue(
        tx: &WriteTx<'_>,
        ask: &Ask<'_>,
        blocked: Blocker<'_>,
        holders: usize,
        earlier: &[&Waiter],
    ) -> Result<LockOutcome> {
        let request = ask.request;
        let position = if request.queue || ask.wait.is_some() {
            let id = tx.put_waiter(&NewWaiter {
                project: &ask.me.project,
                path: ask.path,
                session_id: &ask.me.session_id,
                lock_type: request.lock_type,
                ttl: ask.ttl,
                deadline: match (request.queue, ask.wait) {
                    (false, Some(wait)) => Some(ask.now.plus(wait + WAIT_GRACE)),
                    _ => None,
                },
                wake: request.wake.as_deref(),
                now: ask.now,
            })?;
            Some(earlier.iter().filter(|w| w.id < id).count() + 1)
        } else {
            None
        };
        let outcome = refusal(ask.path, request.lock_type, blocked, holders, position);
        record_contention(tx, ask, &outcome)?;
        Ok(outcome)
    }

    /// Sentences about the locks and intents of others on the request's key that do not block
    /// it.
    fn warnings(&self, tx: &ReadTx<'_>, ask: &Ask<'_>, others: &[&Lock]) -> Result<Vec<String>> {
        let wanted = ask.request.lock_type;
        let mut warnings: Vec<String> = others
            .iter()
            .filter(|lock| lock.lock_type == LockType::Intent || wanted == LockType::Intent)
            .map(|lock| words::holder_warning(lock))
            .collect();
        let intents = tx.overlapping_intents(
            &ask.me.project,
            &ask.me.session_id,
            self.alive_since(ask.now),
            Overlap::Path(ask.path),
        )?;
        warnings.extend(
            intents
                .iter()
                .map(|intent| words::intent_warning(ask.path, intent)),
        );
        Ok(warnings)
    }

    /// Releases the session's lock on a path and withdraws its queued request for it; the
    /// requests queued behind are granted if they now can be.
    pub fn release_lock(&self, session_id: &str, file_path: &str) -> Result<Released> {
        let (released, wakes) = self.store.write(|tx| {
            let now = self.now();
            let me = Self::acting(tx, session_id, now)?;
            let path = path_key("file_path", file_path, me.working_directory.as_deref())?;
            let deleted = tx.delete_lock(&me.project, &path, &me.session_id, now)?;
            let cancelled_wait = match tx.waiter_of(&me.project, &path, &me.session_id)? {
                Some(entry) => {
                    tx.delete_waiter(&entry, false, now)?;
                    true
                }
                None => false,
            };
            let reason = match deleted {
                Some(expires_at) if expires_at > now => None,
                Some(expires_at) => Some(format!(
                    "your lock on {path} had already expired at {expires_at}; nothing was held"
                )),
                None if cancelled_wait => Some(format!(
                    "this session held no lock on {path}; its queued request was withdrawn"
                )),
                None => Some(
                    match tx
                        .locks_overlapping(&me.project, &path, now)?
                        .iter()
                        .find(|lock| lock.session_id != me.session_id)
                    {
                        Some(holder) => format!(
                            "{} is held by session '{}' ({}), not by this session; only the holder can release it",
                            holder.file_path, holder.holder_name, holder.session_id
                        ),
                        None => format!("this session holds no lock on {path}"),
                    },
                ),
            };
            let wakes = if deleted.is_some() || cancelled_wait {
                self.promote(tx, &me.project, &path, now)?
            } else {
                Vec::new()
            };
            Ok::<_, Error>((
                Released {
                    released: reason.is_none(),
                    file_path: path,
                    cancelled_wait,
                    reason,
                },
                wakes,
            ))
        })?;
        self.wake(&wakes);
        Ok(released)
    }

    /// Who holds `file_path` (and who waits for it) in the given project (default: the
    /// viewer's); with `fencing_token`, whether that token is still current.
    pub fn check_lock(
        &self,
        viewer: Option<&str>,
        project: Option<&str>,
        file_path: &str,
        fencing_token: Option<i64>,
    ) -> Result<LockStatus> {
        self.look(viewer, |tx, viewer, now| {
            let project = scope(project, viewer).ok_or_else(|| {
                Error::invalid(
                    "project",
                    "is required when no session is given: pass project, or session_id (or register a session first)",
                )
            })?;
            let path = path_key("file_path", file_path, root_for(viewer, project))?;
            let holders = tx.locks_overlapping(project, &path, now)?;
            let strongest = holders.iter().min_by_key(|lock| strength(lock.lock_type));
            let alive_since = self.alive_since(now);
            let queue = tx
                .waiters_overlapping(project, &path)?
                .into_iter()
                .filter(|w| waiting(w, alive_since, now))
                .enumerate()
                .map(|(at, w)| Waiter { position: at + 1, ..w })
                .collect();
            let capacity = match key_rule(tx, project, &path)? {
                Rule::Slots(n) => Some(n),
                Rule::Matrix => None,
            };
            Ok(LockStatus {
                locked: !holders.is_empty(),
                capacity,
                file_path: path.clone(),
                project: project.to_owned(),
                lock_type: strongest.map(|l| l.lock_type),
                held_by: strongest.map(|l| l.session_id.clone()),
                holder_name: strongest.map(|l| l.holder_name.clone()),
                expires_at: strongest.map(|l| l.expires_at),
                token_valid: fencing_token.map(|token| {
                    holders
                        .iter()
                        .any(|l| l.fencing_token == token && l.file_path == path)
                }),
                holders,
                queue,
            })
        })
    }

    /// Live locks, by default those of the viewer's project.
    pub fn list_locks(&self, viewer: Option<&str>, query: LockListQuery) -> Result<LockList> {
        let limit = limit(query.limit, 100, 1_000)?;
        let group = optional_label("group", query.group.as_deref())?;
        self.look(viewer, |tx, viewer, now| {
            let project = scope(query.project.as_deref(), viewer);
            let path = match (&query.file_path, project) {
                (Some(raw), Some(project)) => {
                    Some(path_key("file_path", raw, root_for(viewer, project))?)
                }
                (Some(raw), None) => Some(path_key("file_path", raw, None)?),
                (None, _) => None,
            };
            let session_id = query
                .session_id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty());
            let locks = match (path.as_deref(), project) {
                // What stands on that path: the lock on it, and directory/glob locks that
                // cover it (or, for a directory/glob, the locks under it).
                (Some(path), Some(project)) => {
                    let members = match &group {
                        Some(group) => Some(tx.group_members(project, group)?),
                        None => None,
                    };
                    let mut locks: Vec<Lock> = tx
                        .locks_overlapping(project, path, now)?
                        .into_iter()
                        .filter(|l| session_id.is_none_or(|id| l.session_id == id))
                        .filter(|l| members.as_ref().is_none_or(|m| m.contains(&l.session_id)))
                        .collect();
                    locks.sort_by(|x, y| {
                        (&x.file_path, x.acquired_at, x.lock_id).cmp(&(
                            &y.file_path,
                            y.acquired_at,
                            y.lock_id,
                        ))
                    });
                    locks.truncate(limit);
                    locks
                }
                (path, project) => tx.locks(
                    LockFilter {
                        project,
                        session_id,
                        path,
                        group: group.as_deref(),
                        limit,
                    },
                    now,
                )?,
            };
            Ok(LockList {
                count: locks.len(),
                locks,
            })
        })
    }

    /// The queue entries overlapping `key` that still wait; entries of dead sessions and waits
    /// past their deadline are removed on the way (and recorded as dequeued).
    pub(super) fn live_waiters(
        &self,
        tx: &WriteTx<'_>,
        project: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Vec<Waiter>> {
        let alive_since = self.alive_since(now);
        let mut live = Vec::new();
        for entry in tx.waiters_overlapping(project, key)? {
            if waiting(&entry, alive_since, now) {
                live.push(Waiter {
                    position: live.len() + 1,
                    ..entry
                });
            } else {
                tx.delete_waiter(&entry, false, now)?;
            }
        }
        Ok(live)
    }
}

fn ttl(seconds: Option<u64>) -> Result<Duration> {
    match seconds {
        None => Ok(DEFAULT_TTL),
        Some(s) if (1..=MAX_TTL.as_secs()).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(Error::invalid(
            "ttl_seconds",
            format!(
                "{s} is out of range; allowed: 1 to {} (default {})",
                MAX_TTL.as_secs(),
                DEFAULT_TTL.as_secs()
            ),
        )),
    }
}

/// `wait_seconds`: absent or 0 means do not wait.
fn wait(seconds: Option<u64>) -> Result<Option<Duration>> {
    match seconds {
        None | Some(0) => Ok(None),
        Some(s) if s <= MAX_WAIT.as_secs() => Ok(Some(Duration::from_secs(s))),
        Some(s) => Err(Error::invalid(
            "wait_seconds",
            format!(
                "{s} is out of range; allowed: 0 to {} (0: answer at once; use queue=true to be granted later without waiting)",
                MAX_WAIT.as_secs()
            ),
        )),
    }
}

/// Records a refused or queued request as an event for people watching the project.
fn record_contention(tx: &WriteTx<'_>, ask: &Ask<'_>, outcome: &LockOutcome) -> Result<()> {
    let (me, wanted) = (ask.me, ask.request.lock_type);
    events::record(
        tx,
        Occurrence {
            kind: EventKind::LockContention,
            project: &me.project,
            subject: &format!("{}\u{1f}{}", me.session_id, outcome.file_path),
            text: &words::contention(me, wanted, outcome),
            data: serde_json::json!({
                "file_path": outcome.file_path,
                "requested_by": {"session_id": me.session_id, "name": me.name},
                "lock_type": wanted,
                "held_by": {"session_id": outcome.held_by, "name": outcome.holder_name},
                "queued": outcome.queued,
                "queue_position": outcome.queue_position,
            }),
            who: me.who.as_deref(),
        },
        ask.now,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
