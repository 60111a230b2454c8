//! File locks: the grant decision, release, and looking at who holds and who waits.
//!
//! Invariant: for overlapping keys of one project, the live holders are always compatible under
//! [`LockType::is_blocked_by`]. It holds because the decision and the grant happen in one
//! `BEGIN IMMEDIATE` transaction, which no other process can interleave with.
//!
//! Fairness: a new grant must also be compatible with every request already queued on an
//! overlapping key, so no newcomer jumps the queue (a reader behind a queued writer waits). Only
//! renewing a lock you hold passes the queue. The queue itself lives in `queue.rs`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::events::{self, EventKind};
use super::{Coordinator, limit, optional_label, path_key, root_for, scope};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::LockId;
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

#[derive(Debug, Clone)]
pub struct LockRequest {
    pub session_id: String,
    pub file_path: String,
    pub lock_type: LockType,
    pub ttl_seconds: Option<u64>,
    /// Wait up to this long in the key's queue (the caller does the waiting, see `queue.rs`).
    pub wait_seconds: Option<u64>,
    /// Stay queued after the answer (and after `wait_seconds`), to be granted automatically.
    pub queue: bool,
    /// Where to wake this process when a queued request is granted (see `Notifier`).
    pub wake: Option<String>,
    /// For a `resource:` key: how many sessions may hold it at once (set once per project).
    pub capacity: Option<u64>,
}

impl LockRequest {
    pub fn new(session_id: &str, file_path: &str, lock_type: LockType) -> Self {
        Self {
            session_id: session_id.to_owned(),
            file_path: file_path.to_owned(),
            lock_type,
            ttl_seconds: None,
            wait_seconds: None,
            queue: false,
            wake: None,
            capacity: None,
        }
    }
}

/// The answer to a lock request: a grant, a place in the queue, or a denial naming the
/// blocking holder.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockOutcome {
    pub granted: bool,
    /// The normalized, project-relative path (or directory/glob) the lock is on.
    pub file_path: String,
    /// On a grant, the type granted; otherwise the type of the blocking lock or request.
    pub lock_type: LockType,
    /// On a grant, when your lock expires; otherwise when the blocking lock does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<LockId>,
    /// Strictly increasing across the database; a later holder always has a larger one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<i64>,
    /// True when you already held this lock and it was renewed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub renewed: bool,
    /// True when your request waits in the queue and will be granted automatically.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// Your place in the queue for this path (1 = next), when not granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    /// Other sessions whose locks or intents overlap this path (they do not block it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// When not granted, the session holding (or queued first for) the blocking lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// That session's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<String>,
    /// When not granted, why, and what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Released {
    pub released: bool,
    pub file_path: String,
    /// True when a queued request of yours for this path was withdrawn.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled_wait: bool,
    /// When nothing was released, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who holds a path, and who waits for it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockStatus {
    /// For a resource: whether any slot is taken (see `capacity` for how many there are).
    pub locked: bool,
    /// For a resource: how many sessions may hold it at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<usize>,
    pub file_path: String,
    pub project: String,
    /// The strongest lock held (exclusive > shared > intent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_type: Option<LockType>,
    /// The session holding that lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Every live lock on the path or on a directory/glob overlapping it, oldest first.
    pub holders: Vec<Lock>,
    /// Requests waiting for the path (or an overlapping key), first in line first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<Waiter>,
    /// When a fencing_token was given: whether it is the token of a live lock on this path.
    /// False means that lock expired or was released; do not write with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_valid: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct LockListQuery {
    pub project: Option<String>,
    pub session_id: Option<String>,
    pub file_path: Option<String>,
    /// Only locks of sessions in this group.
    pub group: Option<String>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockList {
    pub locks: Vec<Lock>,
    pub count: usize,
}

/// What stands in the way of a request.
#[derive(Debug, Clone, Copy)]
pub(super) enum Blocker<'a> {
    Holder(&'a Lock),
    /// An earlier request in the queue that this one must not pass.
    Queued(&'a Waiter),
}

/// How the requests on a key compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    /// Files, directories and globs: the exclusive/shared/intent matrix.
    Matrix,
    /// A `resource:` key: at most this many holders at once, strictly first come first served.
    Slots(usize),
}

/// The rule for `key`: a resource's capacity (1 until someone sets it), else the matrix.
pub(super) fn rule(tx: &ReadTx<'_>, project: &str, key: &str) -> Result<Rule> {
    if !patterns::is_resource(key) {
        return Ok(Rule::Matrix);
    }
    Ok(Rule::Slots(
        tx.capacity(project, key)?.map_or(1, |(n, _)| n),
    ))
}

/// The first thing that keeps `wanted` from being granted: the strongest incompatible holder,
/// else the first incompatible request queued before it. For a resource: the holder that frees
/// first when every slot is taken, else any earlier request. Both lists hold other sessions only.
pub(super) fn blocker<'a>(
    wanted: LockType,
    rule: Rule,
    holders: &[&'a Lock],
    earlier: &[&'a Waiter],
) -> Option<Blocker<'a>> {
    if let Rule::Slots(capacity) = rule {
        return if holders.len() >= capacity {
            holders
                .iter()
                .min_by_key(|lock| lock.expires_at)
                .map(|lock| Blocker::Holder(lock))
        } else {
            earlier.first().map(|w| Blocker::Queued(w))
        };
    }
    holders
        .iter()
        .filter(|lock| wanted.is_blocked_by(lock.lock_type))
        .min_by_key(|lock| strength(lock.lock_type))
        .map(|lock| Blocker::Holder(lock))
        .or_else(|| {
            earlier
                .iter()
                .find(|w| wanted.is_blocked_by(w.lock_type))
                .map(|w| Blocker::Queued(w))
        })
}

/// Most sessions a resource can admit at once.
pub const MAX_CAPACITY: u64 = 1_000;

/// A resource's capacity: the one set for the project, else the one asked for (which is then
/// set, once), else 1. True when this call set it.
fn settle_capacity(
    tx: &WriteTx<'_>,
    me: &Session,
    key: &str,
    asked: Option<u64>,
    now: Timestamp,
) -> Result<(usize, bool)> {
    let asked = match asked {
        Some(n) if (1..=MAX_CAPACITY).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(Error::invalid(
                "capacity",
                format!("{n} is out of range; allowed: 1 to {MAX_CAPACITY}"),
            ));
        }
        None => None,
    };
    match (tx.capacity(&me.project, key)?, asked) {
        (Some((set, by)), Some(n)) if n != set => Err(Error::invalid(
            "capacity",
            format!(
                "{key} already has capacity {set} in project {} (set by '{by}'); omit capacity or pass {set}",
                me.project
            ),
        )),
        (Some((set, _)), _) => Ok((set, false)),
        (None, Some(n)) => {
            tx.set_capacity(&me.project, key, n, &me.name, now)?;
            Ok((n, true))
        }
        (None, None) => Ok((1, false)),
    }
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
            // Read the clock inside the transaction, so the recorded history is in time order.
            let now = self.now();
            let me = Self::acting(tx, &request.session_id, now)?;
            let path = path_key(
                "file_path",
                &request.file_path,
                me.working_directory.as_deref(),
            )?;
            let rule = if patterns::is_resource(&path) {
                if request.lock_type != LockType::Exclusive {
                    return Err(Error::invalid(
                        "lock_type",
                        format!(
                            "{path} is a resource: each holder takes one of its slots, so lock_type must be exclusive (the default)"
                        ),
                    ));
                }
                let (capacity, raised) = settle_capacity(tx, &me, &path, request.capacity, now)?;
                if raised {
                    // Requests queued under the default capacity of 1 may fit now.
                    wakes = self.promote(tx, &me.project, &path, now)?;
                }
                Rule::Slots(capacity)
            } else if request.capacity.is_some() {
                return Err(Error::invalid(
                    "capacity",
                    format!(
                        "only a resource key has a capacity (e.g. {}playwright), not {path}",
                        patterns::RESOURCE_PREFIX
                    ),
                ));
            } else {
                Rule::Matrix
            };
            let holders = tx.locks_overlapping(&me.project, &path, now)?;
            let (mine, others): (Vec<&Lock>, Vec<&Lock>) = holders
                .iter()
                .partition(|lock| lock.session_id == me.session_id);
            let renewal = mine
                .iter()
                .find(|lock| lock.file_path == path && lock.lock_type == request.lock_type);

            let expires_at = now.plus(ttl);
            let finish = |row: NewLock<'_>| -> Result<LockOutcome> {
                let lock_id = tx.put_lock(&row)?;
                let warnings = self.warnings(tx, &me, &path, request.lock_type, &others, now)?;
                Ok(granted(
                    path.clone(),
                    request.lock_type,
                    expires_at,
                    lock_id,
                    row.fencing_token,
                    row.renewal,
                    warnings,
                ))
            };
            if let Some(held) = renewal {
                return finish(NewLock {
                    renewal: true,
                    ..grant(
                        &me,
                        &path,
                        held.lock_type,
                        held.acquired_at,
                        expires_at,
                        held.fencing_token,
                        now,
                    )
                });
            }

            let waiters = self.live_waiters(tx, &me.project, &path, now)?;
            let mine_queued = waiters
                .iter()
                .find(|w| w.session_id == me.session_id && w.file_path == path);
            let earlier: Vec<&Waiter> = waiters
                .iter()
                .filter(|w| w.session_id != me.session_id)
                .filter(|w| mine_queued.is_none_or(|m| w.id < m.id))
                .collect();
            let blocked = match request.lock_type {
                LockType::Intent => None,
                wanted => blocker(wanted, rule, &others, &earlier),
            };

            let Some(blocked) = blocked else {
                if let Some(entry) = mine_queued {
                    tx.delete_waiter(entry, true, now)?;
                }
                let token = tx.next_fencing_token()?;
                return finish(NewLock {
                    from_waiter: mine_queued.map(|w| w.id),
                    ..grant(&me, &path, request.lock_type, now, expires_at, token, now)
                });
            };

            if !request.queue && wait.is_none() {
                let outcome = refusal(&path, request.lock_type, blocked, others.len(), None);
                contention(tx, &me, request.lock_type, &outcome, now)?;
                return Ok(outcome);
            }
            let id = tx.put_waiter(&NewWaiter {
                project: &me.project,
                path: &path,
                session_id: &me.session_id,
                lock_type: request.lock_type,
                ttl,
                deadline: match (request.queue, wait) {
                    (false, Some(wait)) => Some(now.plus(wait + WAIT_GRACE)),
                    _ => None,
                },
                wake: request.wake.as_deref(),
                now,
            })?;
            let position = earlier.iter().filter(|w| w.id < id).count() + 1;
            let outcome = refusal(
                &path,
                request.lock_type,
                blocked,
                others.len(),
                Some(position),
            );
            contention(tx, &me, request.lock_type, &outcome, now)?;
            Ok(outcome)
        })?;
        self.wake(&wakes);
        Ok(outcome)
    }

    /// Sentences about the locks and intents of others on `path` that do not block `wanted`.
    fn warnings(
        &self,
        tx: &ReadTx<'_>,
        me: &Session,
        path: &str,
        wanted: LockType,
        others: &[&Lock],
        now: Timestamp,
    ) -> Result<Vec<String>> {
        let mut warnings: Vec<String> = others
            .iter()
            .filter(|lock| lock.lock_type == LockType::Intent || wanted == LockType::Intent)
            .map(|lock| {
                format!(
                    "Session '{}' ({}) holds {} lock on {} until {}",
                    lock.holder_name,
                    lock.session_id,
                    article(lock.lock_type),
                    lock.file_path,
                    lock.expires_at
                )
            })
            .collect();
        let intents = tx.overlapping_intents(
            &me.project,
            &me.session_id,
            self.alive_since(now),
            Overlap::Path(path),
        )?;
        warnings.extend(intents.iter().map(|intent| {
            format!(
                "Session '{}' ({}) announced {} on {path} ({}{})",
                intent.session_name,
                intent.session_id,
                intent.intent_type,
                intent.intent_id,
                intent
                    .description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        }));
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
            let capacity = match rule(tx, project, &path)? {
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

/// Whether a queue entry still waits: its session is alive and its deadline has not passed.
pub(super) fn waiting(entry: &Waiter, alive_since: Timestamp, now: Timestamp) -> bool {
    entry.last_heartbeat >= alive_since && entry.waiting_until.is_none_or(|d| d > now)
}

/// A new lock row for `me`, to adjust with struct update syntax.
pub(super) fn grant<'a>(
    me: &'a Session,
    path: &'a str,
    lock_type: LockType,
    acquired_at: Timestamp,
    expires_at: Timestamp,
    fencing_token: i64,
    now: Timestamp,
) -> NewLock<'a> {
    NewLock {
        project: &me.project,
        path,
        session_id: &me.session_id,
        lock_type,
        acquired_at,
        expires_at,
        fencing_token,
        renewal: false,
        from_waiter: None,
        unreported: false,
        now,
    }
}

pub(super) fn granted(
    path: String,
    lock_type: LockType,
    expires_at: Timestamp,
    lock_id: LockId,
    fencing_token: i64,
    renewed: bool,
    warnings: Vec<String>,
) -> LockOutcome {
    LockOutcome {
        granted: true,
        file_path: path,
        lock_type,
        expires_at: Some(expires_at),
        lock_id: Some(lock_id),
        fencing_token: Some(fencing_token),
        renewed,
        queued: false,
        queue_position: None,
        warnings,
        held_by: None,
        holder_name: None,
        reason: None,
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

/// Orders lock types from strongest to weakest.
fn strength(lock_type: LockType) -> u8 {
    match lock_type {
        LockType::Exclusive => 0,
        LockType::Shared => 1,
        LockType::Intent => 2,
    }
}

fn article(lock_type: LockType) -> &'static str {
    match lock_type {
        LockType::Exclusive => "an exclusive",
        LockType::Shared => "a shared",
        LockType::Intent => "an intent",
    }
}

/// Records a refused or queued request as an event for people watching the project.
fn contention(
    tx: &WriteTx<'_>,
    me: &Session,
    wanted: LockType,
    outcome: &LockOutcome,
    now: Timestamp,
) -> Result<()> {
    let holder = outcome.holder_name.as_deref().unwrap_or("another session");
    let text = format!(
        "'{}' wants {} lock on {}, held by '{holder}'{}",
        me.name,
        article(wanted),
        outcome.file_path,
        if outcome.queued {
            "; queued"
        } else {
            "; refused"
        }
    );
    events::record(
        tx,
        EventKind::LockContention,
        &me.project,
        &format!("{}\u{1f}{}", me.session_id, outcome.file_path),
        &text,
        serde_json::json!({
            "file_path": outcome.file_path,
            "requested_by": {"session_id": me.session_id, "name": me.name},
            "lock_type": wanted,
            "held_by": {"session_id": outcome.held_by, "name": outcome.holder_name},
            "queued": outcome.queued,
            "queue_position": outcome.queue_position,
        }),
        now,
    )?;
    Ok(())
}

/// The answer when `wanted` is not granted now: queued at `position`, or denied.
pub(super) fn refusal(
    path: &str,
    wanted: LockType,
    blocked: Blocker<'_>,
    holders: usize,
    position: Option<usize>,
) -> LockOutcome {
    let (session_id, name, lock_type, expires_at, what) = match blocked {
        Blocker::Holder(lock) if patterns::is_resource(path) => (
            &lock.session_id,
            &lock.holder_name,
            lock.lock_type,
            Some(lock.expires_at),
            format!(
                "{path} is full: all {holders} of its slots are held; the first to free is session '{}' ({}) until {}",
                lock.holder_name, lock.session_id, lock.expires_at
            ),
        ),
        Blocker::Holder(lock) => {
            let others = match holders.saturating_sub(1) {
                0 => String::new(),
                1 => " and 1 other session".to_owned(),
                n => format!(" and {n} other sessions"),
            };
            (
                &lock.session_id,
                &lock.holder_name,
                lock.lock_type,
                Some(lock.expires_at),
                format!(
                    "{} is held with {} lock by session '{}' ({}){others} until {}",
                    lock.file_path,
                    article(lock.lock_type),
                    lock.holder_name,
                    lock.session_id,
                    lock.expires_at
                ),
            )
        }
        Blocker::Queued(entry) => (
            &entry.session_id,
            &entry.session_name,
            entry.lock_type,
            None,
            format!(
                "session '{}' ({}) is queued first for {} lock on {}, and no request passes the queue",
                entry.session_name,
                entry.session_id,
                article(entry.lock_type),
                entry.file_path
            ),
        ),
    };
    let next = match position {
        Some(position) => format!(
            "You are queued at position {position}; the lock is granted to you automatically when it frees up. lock_release withdraws the request."
        ),
        None => "Message them (message_send), work on something else, wait for it with wait_seconds, or queue with queue=true to be granted it automatically."
            .to_owned(),
    };
    LockOutcome {
        granted: false,
        file_path: path.to_owned(),
        lock_type,
        expires_at,
        lock_id: None,
        fencing_token: None,
        renewed: false,
        queued: position.is_some(),
        queue_position: position,
        warnings: Vec::new(),
        held_by: Some(session_id.clone()),
        holder_name: Some(name.clone()),
        reason: Some(format!(
            "{what}, so {} lock cannot be granted now. {next}",
            article(wanted)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{IntentRequest, LockListQuery};
    use super::*;
    use crate::model::IntentType;

    fn acquire(h: &Harness, session: &str, path: &str, lock_type: LockType) -> LockOutcome {
        h.coordinator
            .acquire_lock(LockRequest::new(session, path, lock_type))
            .expect("acquire")
    }

    #[test]
    fn the_matrix_holds_between_sessions() {
        use LockType::*;
        for (held, wanted, granted) in [
            (Exclusive, Exclusive, false),
            (Exclusive, Shared, false),
            (Exclusive, Intent, true),
            (Shared, Exclusive, false),
            (Shared, Shared, true),
            (Shared, Intent, true),
            (Intent, Exclusive, true),
            (Intent, Shared, true),
            (Intent, Intent, true),
        ] {
            let h = Harness::new();
            let a = h.session("a", "app", None);
            let b = h.session("b", "app", None);
            assert!(acquire(&h, &a, "f.ts", held).granted);
            let outcome = acquire(&h, &b, "f.ts", wanted);
            assert_eq!(outcome.granted, granted, "{held} held, {wanted} wanted");
            if !granted {
                assert_eq!(outcome.held_by.as_deref(), Some(a.as_str()));
                assert_eq!(outcome.holder_name.as_deref(), Some("a"));
                assert_eq!(outcome.lock_type, held);
                // What the model reads: one sentence per step, no layout whitespace inside.
                let reason = outcome.reason.unwrap_or_default();
                assert!(
                    reason.contains("wait_seconds") && !reason.contains("  "),
                    "{reason:?}"
                );
            }
        }
    }

    #[test]
    fn intent_overlap_is_warned_about_not_blocked() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        assert!(acquire(&h, &a, "f.ts", LockType::Intent).granted);
        let outcome = acquire(&h, &b, "f.ts", LockType::Exclusive);
        assert!(outcome.granted);
        assert_eq!(outcome.warnings.len(), 1);
        assert!(outcome.warnings[0].starts_with("Session 'a'"));

        let intent = acquire(&h, &a, "g.ts", LockType::Intent);
        assert!(intent.warnings.is_empty());
        h.coordinator
            .announce_intent(IntentRequest {
                session_id: b.clone(),
                intent_type: IntentType::FileEdit,
                target: Some("g.ts".into()),
                description: Some("adding bio".into()),
                files: vec![],
            })
            .expect("announce");
        let again = acquire(&h, &a, "g.ts", LockType::Exclusive);
        assert!(
            again
                .warnings
                .iter()
                .any(|w| w.contains("file_edit") && w.contains("adding bio"))
        );
    }

    #[test]
    fn projects_do_not_collide() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "other", None);
        assert!(acquire(&h, &a, "f.ts", LockType::Exclusive).granted);
        assert!(acquire(&h, &b, "f.ts", LockType::Exclusive).granted);
    }

    #[test]
    fn spellings_of_a_path_collide_and_absolute_paths_resolve_per_session() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let granted = acquire(&h, &a, "/work/a/src/./x/../user.ts", LockType::Exclusive);
        assert_eq!(granted.file_path, "src/user.ts");
        for spelling in [
            "src/user.ts",
            "./src/user.ts",
            "src\\user.ts",
            "/work/b/src/user.ts",
        ] {
            assert!(
                !acquire(&h, &b, spelling, LockType::Exclusive).granted,
                "{spelling}"
            );
        }
        let escape = h
            .coordinator
            .acquire_lock(LockRequest::new(&b, "../outside.ts", LockType::Exclusive))
            .err()
            .map(|e| e.to_string());
        assert!(escape.is_some_and(|e| e.starts_with("invalid argument `file_path`")));
    }

    #[test]
    fn an_expired_lock_is_gone_at_once_and_tokens_keep_rising() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let first = h
            .coordinator
            .acquire_lock(LockRequest {
                ttl_seconds: Some(10),
                ..LockRequest::new(&a, "f.ts", LockType::Exclusive)
            })
            .expect("first");
        h.advance(Duration::from_secs(9));
        assert!(!acquire(&h, &b, "f.ts", LockType::Exclusive).granted);
        h.advance(Duration::from_secs(1));
        let status = h
            .coordinator
            .check_lock(Some(&b), None, "f.ts", None)
            .expect("check");
        assert!(
            !status.locked,
            "expired locks are invisible without a sweep"
        );
        let second = acquire(&h, &b, "f.ts", LockType::Exclusive);
        assert!(second.granted);
        assert!(second.fencing_token > first.fencing_token);
    }

    #[test]
    fn renewing_keeps_the_token_and_upgrading_takes_a_new_one() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let shared = acquire(&h, &a, "f.ts", LockType::Shared);
        h.advance(Duration::from_secs(100));
        let renewed = acquire(&h, &a, "f.ts", LockType::Shared);
        assert!(renewed.renewed);
        assert_eq!(renewed.fencing_token, shared.fencing_token);
        assert!(renewed.expires_at > shared.expires_at);

        assert!(acquire(&h, &b, "f.ts", LockType::Shared).granted);
        let blocked = acquire(&h, &a, "f.ts", LockType::Exclusive);
        assert!(!blocked.granted, "upgrade waits for the other reader");
        assert_eq!(blocked.held_by.as_deref(), Some(b.as_str()));

        h.coordinator.release_lock(&b, "f.ts").expect("release");
        let upgraded = acquire(&h, &a, "f.ts", LockType::Exclusive);
        assert!(upgraded.granted && !upgraded.renewed);
        assert!(upgraded.fencing_token > shared.fencing_token);
    }

    #[test]
    fn only_the_holder_releases() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        acquire(&h, &a, "f.ts", LockType::Exclusive);
        let refused = h.coordinator.release_lock(&b, "f.ts").expect("release");
        assert!(!refused.released);
        assert!(
            refused
                .reason
                .is_some_and(|r| r.contains("only the holder"))
        );
        assert!(
            h.coordinator
                .check_lock(Some(&b), None, "f.ts", None)
                .expect("check")
                .locked
        );
        assert!(
            h.coordinator
                .release_lock(&a, "./f.ts")
                .expect("release")
                .released
        );
        assert!(
            !h.coordinator
                .release_lock(&a, "f.ts")
                .expect("again")
                .released
        );
    }

    #[test]
    fn ttl_is_bounded() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        for bad in [0, MAX_TTL.as_secs() + 1] {
            let err = h
                .coordinator
                .acquire_lock(LockRequest {
                    ttl_seconds: Some(bad),
                    ..LockRequest::new(&a, "f.ts", LockType::Exclusive)
                })
                .err()
                .map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains("`ttl_seconds`") && e.contains("1 to 86400")));
        }
    }

    #[test]
    fn looking_needs_a_project_and_lists_filter() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        acquire(&h, &a, "x.ts", LockType::Exclusive);
        acquire(&h, &b, "y.ts", LockType::Shared);
        assert!(h.coordinator.check_lock(None, None, "x.ts", None).is_err());
        let status = h
            .coordinator
            .check_lock(None, Some("app"), "x.ts", None)
            .expect("check");
        assert_eq!(status.holder_name.as_deref(), Some("a"));

        let all = h
            .coordinator
            .list_locks(Some(&a), LockListQuery::default())
            .expect("list");
        assert_eq!(all.count, 2);
        let of_b = h
            .coordinator
            .list_locks(
                Some(&a),
                LockListQuery {
                    session_id: Some(b.clone()),
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!(
            of_b.locks
                .iter()
                .map(|l| l.file_path.as_str())
                .collect::<Vec<_>>(),
            ["y.ts"]
        );
        let elsewhere = h
            .coordinator
            .list_locks(
                None,
                LockListQuery {
                    project: Some("other".into()),
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!(elsewhere.count, 0);
    }

    fn slot(
        h: &Harness,
        session: &str,
        key: &str,
        capacity: Option<u64>,
        queue: bool,
    ) -> LockOutcome {
        h.coordinator
            .acquire_lock(LockRequest {
                capacity,
                queue,
                ..LockRequest::new(session, key, LockType::Exclusive)
            })
            .expect("acquire a slot")
    }

    #[test]
    fn a_resource_admits_up_to_its_capacity_first_come_first_served() {
        let h = Harness::new();
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| h.session(n, "app", None));
        assert!(slot(&h, &a, "resource:Playwright", Some(2), false).granted);
        let second = slot(&h, &b, "resource:playwright", None, false);
        assert!(
            second.granted,
            "the capacity was set to 2 and names ignore case"
        );
        assert_eq!(second.file_path, "resource:playwright");
        let full = slot(&h, &c, "resource:playwright", None, true);
        assert_eq!(full.queue_position, Some(1));
        assert!(full.reason.is_some_and(|r| r.contains("is full")));
        assert_eq!(
            slot(&h, &d, "resource:playwright", None, true).queue_position,
            Some(2)
        );

        h.coordinator
            .release_lock(&b, "resource:playwright")
            .expect("release");
        let status = h
            .coordinator
            .check_lock(Some(&a), None, "resource:playwright", None)
            .expect("check");
        assert_eq!(status.capacity, Some(2));
        let names: Vec<&str> = status
            .holders
            .iter()
            .map(|l| l.holder_name.as_str())
            .collect();
        assert_eq!(
            names,
            ["a", "c"],
            "the head of the queue got the freed slot"
        );
        assert_eq!(status.queue.len(), 1);
        // Holding a resource does not touch files, and a glob over everything does not touch it.
        assert!(acquire(&h, &b, "**", LockType::Exclusive).granted);

        let other_project = h.session("e", "web", None);
        assert!(slot(&h, &other_project, "resource:playwright", Some(5), false).granted);
    }

    #[test]
    fn setting_a_capacity_grants_requests_queued_under_the_default() {
        let h = Harness::new();
        let [a, b, c] = ["a", "b", "c"].map(|n| h.session(n, "app", None));
        assert!(slot(&h, &a, "resource:gpu", None, false).granted);
        assert!(
            slot(&h, &b, "resource:gpu", None, true).queued,
            "capacity 1 so far"
        );
        // c sets the capacity to 3: b, first in line, gets a slot, and so does c.
        let third = slot(&h, &c, "resource:gpu", Some(3), false);
        assert!(third.granted, "{third:?}");
        let status = h
            .coordinator
            .check_lock(Some(&a), None, "resource:gpu", None)
            .expect("check");
        let names: Vec<&str> = status
            .holders
            .iter()
            .map(|l| l.holder_name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(status.queue.is_empty());
    }

    #[test]
    fn a_resource_capacity_is_set_once_and_checked() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let error = |key: &str, capacity: Option<u64>, lock_type: LockType| {
            h.coordinator
                .acquire_lock(LockRequest {
                    capacity,
                    ..LockRequest::new(&a, key, lock_type)
                })
                .expect_err("refused")
                .to_string()
        };
        assert!(slot(&h, &a, "resource:gpu", Some(2), false).granted);
        let changed = error("resource:gpu", Some(3), LockType::Exclusive);
        assert!(
            changed.contains("already has capacity 2") && changed.contains("'a'"),
            "{changed}"
        );
        assert!(error("resource:db", Some(0), LockType::Exclusive).contains("1 to 1000"));
        assert!(error("src/a.ts", Some(2), LockType::Exclusive).contains("only a resource key"));
        assert!(error("resource:gpu", None, LockType::Shared).contains("must be exclusive"));
        let pathlike = error("./resource:GPU", None, LockType::Exclusive);
        assert!(pathlike.contains("through a path"), "{pathlike}");
        let bad = error("resource:no spaces", None, LockType::Exclusive);
        assert!(
            bad.contains("file_path") && bad.contains("letters, digits"),
            "{bad}"
        );
    }

    #[test]
    fn listing_a_path_shows_the_locks_that_overlap_it() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        acquire(&h, &a, "src/auth/jwt.ts", LockType::Exclusive);
        acquire(&h, &b, "src/**/*.test.ts", LockType::Shared);
        acquire(&h, &b, "docs/readme.md", LockType::Exclusive);
        let listed = |path: &str, session: Option<&str>| -> Vec<String> {
            h.coordinator
                .list_locks(
                    Some(&a),
                    LockListQuery {
                        file_path: Some(path.into()),
                        session_id: session.map(Into::into),
                        ..Default::default()
                    },
                )
                .expect("list")
                .locks
                .into_iter()
                .map(|l| l.file_path)
                .collect()
        };
        assert_eq!(
            listed("src/auth/", None),
            ["src/**/*.test.ts", "src/auth/jwt.ts"]
        );
        assert_eq!(listed("src/auth/jwt.ts", None), ["src/auth/jwt.ts"]);
        assert_eq!(listed("src/a/b.test.ts", None), ["src/**/*.test.ts"]);
        assert_eq!(listed("src/auth/", Some(&a)), ["src/auth/jwt.ts"]);
        assert!(listed("lib/x.ts", None).is_empty());
    }

    mod model {
        //! The lock rules against a reference model small enough to trust by reading: random
        //! sequences of acquires, releases and clock moves over overlapping keys.

        use std::collections::HashMap;

        use proptest::prelude::*;

        use super::*;
        use crate::patterns::overlaps;

        const KEYS: [&str; 5] = ["src/a.ts", "src/", "src/*.ts", "lib/b.ts", "src/x/y.ts"];
        const TYPES: [LockType; 3] = [LockType::Exclusive, LockType::Shared, LockType::Intent];

        #[derive(Debug, Clone)]
        enum Op {
            Acquire {
                session: usize,
                key: usize,
                kind: usize,
            },
            Release {
                session: usize,
                key: usize,
            },
            Wait {
                seconds: u64,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..3usize, 0..KEYS.len(), 0..3usize)
                    .prop_map(|(session, key, kind)| Op::Acquire { session, key, kind }),
                2 => (0..3usize, 0..KEYS.len()).prop_map(|(session, key)| Op::Release { session, key }),
                1 => (0..120u64).prop_map(|seconds| Op::Wait { seconds }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn grants_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
                let h = Harness::new();
                let sessions: Vec<String> =
                    ["a", "b", "c"].iter().map(|n| h.session(n, "app", None)).collect();
                // (session, key) -> (type, expires at in seconds since start)
                let mut held: HashMap<(usize, usize), (LockType, u64)> = HashMap::new();
                let mut now = 0u64;
                let mut last_token = 0;
                for op in ops {
                    match op {
                        Op::Acquire { session, key, kind } => {
                            let wanted = TYPES[kind];
                            held.retain(|_, (_, expires)| *expires > now);
                            let blocked = held.iter().any(|((s, k), (t, _))| {
                                *s != session
                                    && overlaps(KEYS[*k], KEYS[key])
                                    && wanted.is_blocked_by(*t)
                            });
                            let outcome = h.coordinator.acquire_lock(LockRequest {
                                ttl_seconds: Some(60),
                                ..LockRequest::new(&sessions[session], KEYS[key], wanted)
                            }).expect("acquire");
                            prop_assert_eq!(outcome.granted, !blocked, "{:?} {} on {}", wanted, session, KEYS[key]);
                            if outcome.granted {
                                let token = outcome.fencing_token.unwrap_or(0);
                                if outcome.renewed {
                                    prop_assert_eq!(token, last_token.min(token));
                                } else {
                                    prop_assert!(token > last_token);
                                    last_token = token;
                                }
                                held.insert((session, key), (wanted, now + 60));
                            }
                        }
                        Op::Release { session, key } => {
                            let live = held.remove(&(session, key)).is_some_and(|(_, e)| e > now);
                            let released = h.coordinator
                                .release_lock(&sessions[session], KEYS[key])
                                .expect("release");
                            prop_assert_eq!(released.released, live);
                        }
                        Op::Wait { seconds } => {
                            now += seconds;
                            h.advance(Duration::from_secs(seconds));
                            for id in &sessions {
                                h.coordinator.heartbeat(id).expect("heartbeat");
                            }
                        }
                    }
                }
            }
        }
    }
}
