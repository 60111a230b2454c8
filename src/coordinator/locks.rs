//! File locks: the grant decision, release, and looking at who holds what.
//!
//! Invariant: for one (project, path), the live holders are always compatible under
//! [`LockType::is_blocked_by`]. It holds because the decision and the grant happen in one
//! `BEGIN IMMEDIATE` transaction, which no other process can interleave with.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Coordinator, limit, path_key, root_for, scope};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::LockId;
use crate::model::{Lock, LockType, Session};
use crate::store::{LockFilter, Overlap, ReadTx};

/// Lock lifetime when the caller does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(900);
/// Longest lock lifetime: a day. Longer work renews by re-acquiring.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone)]
pub struct LockRequest {
    pub session_id: String,
    pub file_path: String,
    pub lock_type: LockType,
    pub ttl_seconds: Option<u64>,
}

impl LockRequest {
    pub fn new(session_id: &str, file_path: &str, lock_type: LockType) -> Self {
        Self {
            session_id: session_id.to_owned(),
            file_path: file_path.to_owned(),
            lock_type,
            ttl_seconds: None,
        }
    }
}

/// The answer to a lock request: a grant, or a denial naming the blocking holder.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockOutcome {
    pub granted: bool,
    /// The normalized, project-relative path the lock is on.
    pub file_path: String,
    /// On a grant, the type granted; on a denial, the type of the blocking lock.
    pub lock_type: LockType,
    /// On a grant, when your lock expires; on a denial, when the blocking lock does.
    pub expires_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<LockId>,
    /// Strictly increasing across the database; a later holder always has a larger one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<i64>,
    /// True when you already held this lock and it was renewed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub renewed: bool,
    /// Other sessions whose locks or intents overlap this path (they do not block it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// On a denial, the session holding the blocking lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// On a denial, that session's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<String>,
    /// On a denial, what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Released {
    pub released: bool,
    pub file_path: String,
    /// When nothing was released, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who holds a path.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockStatus {
    pub locked: bool,
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
    /// Every live lock on the path, oldest first.
    pub holders: Vec<Lock>,
}

#[derive(Debug, Clone, Default)]
pub struct LockListQuery {
    pub project: Option<String>,
    pub session_id: Option<String>,
    pub file_path: Option<String>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LockList {
    pub locks: Vec<Lock>,
    pub count: usize,
}

impl Coordinator {
    pub fn acquire_lock(&self, request: LockRequest) -> Result<LockOutcome> {
        let ttl = ttl(request.ttl_seconds)?;
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, &request.session_id, now)?;
            let path = path_key(
                "file_path",
                &request.file_path,
                me.working_directory.as_deref(),
            )?;
            tx.delete_expired_locks_on(&me.project, &path, now)?;
            let holders = tx.locks_on(&me.project, &path, now)?;
            let (mine, others): (Vec<&Lock>, Vec<&Lock>) = holders
                .iter()
                .partition(|lock| lock.session_id == me.session_id);

            if let Some(blocker) = strongest_blocker(request.lock_type, &others) {
                return Ok(denial(&path, request.lock_type, blocker, others.len()));
            }

            // Renewing keeps the grant (and its token); any other change is a new grant.
            let renewal = mine
                .first()
                .filter(|lock| lock.lock_type == request.lock_type);
            let (fencing_token, acquired_at) = match renewal {
                Some(lock) => (lock.fencing_token, lock.acquired_at),
                None => (tx.next_fencing_token()?, now),
            };
            let expires_at = now.plus(ttl);
            let lock_id = tx.put_lock(
                &me.project,
                &path,
                &me.session_id,
                request.lock_type,
                acquired_at,
                expires_at,
                fencing_token,
            )?;
            let warnings = self.warnings(tx, &me, &path, request.lock_type, &others, now)?;
            Ok(LockOutcome {
                granted: true,
                file_path: path,
                lock_type: request.lock_type,
                expires_at,
                lock_id: Some(lock_id),
                fencing_token: Some(fencing_token),
                renewed: renewal.is_some(),
                warnings,
                held_by: None,
                holder_name: None,
                reason: None,
            })
        })
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
                    "Session '{}' ({}) holds {} lock on {path} until {}",
                    lock.holder_name,
                    lock.session_id,
                    article(lock.lock_type),
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

    pub fn release_lock(&self, session_id: &str, file_path: &str) -> Result<Released> {
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, session_id, now)?;
            let path = path_key("file_path", file_path, me.working_directory.as_deref())?;
            let reason = match tx.delete_lock(&me.project, &path, &me.session_id)? {
                Some(expires_at) if expires_at > now => None,
                Some(expires_at) => Some(format!(
                    "your lock on {path} had already expired at {expires_at}; nothing was held"
                )),
                None => Some(match tx.locks_on(&me.project, &path, now)?.first() {
                    Some(holder) => format!(
                        "{path} is held by session '{}' ({}), not by this session; only the holder can release it",
                        holder.holder_name, holder.session_id
                    ),
                    None => format!("this session holds no lock on {path}"),
                }),
            };
            Ok(Released {
                released: reason.is_none(),
                file_path: path,
                reason,
            })
        })
    }

    /// Who holds `file_path` in the given project (default: the viewer's).
    pub fn check_lock(
        &self,
        viewer: Option<&str>,
        project: Option<&str>,
        file_path: &str,
    ) -> Result<LockStatus> {
        self.look(viewer, |tx, viewer, now| {
            let project = scope(project, viewer).ok_or_else(|| {
                Error::invalid(
                    "project",
                    "is required when no session is given: pass project, or session_id (or register a session first)",
                )
            })?;
            let path = path_key("file_path", file_path, root_for(viewer, project))?;
            let holders = tx.locks_on(project, &path, now)?;
            let strongest = holders.iter().min_by_key(|lock| strength(lock.lock_type));
            Ok(LockStatus {
                locked: !holders.is_empty(),
                file_path: path.clone(),
                project: project.to_owned(),
                lock_type: strongest.map(|l| l.lock_type),
                held_by: strongest.map(|l| l.session_id.clone()),
                holder_name: strongest.map(|l| l.holder_name.clone()),
                expires_at: strongest.map(|l| l.expires_at),
                holders,
            })
        })
    }

    /// Live locks, by default those of the viewer's project.
    pub fn list_locks(&self, viewer: Option<&str>, query: LockListQuery) -> Result<LockList> {
        let limit = limit(query.limit, 100, 1_000)?;
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
            let locks = tx.locks(
                LockFilter {
                    project,
                    session_id,
                    path: path.as_deref(),
                    limit,
                },
                now,
            )?;
            Ok(LockList {
                count: locks.len(),
                locks,
            })
        })
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

/// Orders lock types from strongest to weakest.
fn strength(lock_type: LockType) -> u8 {
    match lock_type {
        LockType::Exclusive => 0,
        LockType::Shared => 1,
        LockType::Intent => 2,
    }
}

/// The lock to name in a denial: the strongest of those that block `wanted`, oldest first.
fn strongest_blocker<'a>(wanted: LockType, others: &[&'a Lock]) -> Option<&'a Lock> {
    others
        .iter()
        .filter(|lock| wanted.is_blocked_by(lock.lock_type))
        .min_by_key(|lock| strength(lock.lock_type))
        .copied()
}

fn article(lock_type: LockType) -> &'static str {
    match lock_type {
        LockType::Exclusive => "an exclusive",
        LockType::Shared => "a shared",
        LockType::Intent => "an intent",
    }
}

fn denial(path: &str, wanted: LockType, blocker: &Lock, holders: usize) -> LockOutcome {
    let others = match holders.saturating_sub(1) {
        0 => String::new(),
        1 => " and 1 other session".to_owned(),
        n => format!(" and {n} other sessions"),
    };
    let reason = format!(
        "{path} is held with {} lock by session '{}' ({}){others} until {}, so {} lock cannot be \
         granted now. Message them (message_send), work on something else, or try again after it \
         is released or expires.",
        article(blocker.lock_type),
        blocker.holder_name,
        blocker.session_id,
        blocker.expires_at,
        article(wanted),
    );
    LockOutcome {
        granted: false,
        file_path: path.to_owned(),
        lock_type: blocker.lock_type,
        expires_at: blocker.expires_at,
        lock_id: None,
        fencing_token: None,
        renewed: false,
        warnings: Vec::new(),
        held_by: Some(blocker.session_id.clone()),
        holder_name: Some(blocker.holder_name.clone()),
        reason: Some(reason),
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
            .check_lock(Some(&b), None, "f.ts")
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
                .check_lock(Some(&b), None, "f.ts")
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
        assert!(h.coordinator.check_lock(None, None, "x.ts").is_err());
        let status = h
            .coordinator
            .check_lock(None, Some("app"), "x.ts")
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
}
