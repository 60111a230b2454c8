//! What people do from outside any session, at the command line or on the dashboard.
//!
//! A person is not a session: they hold no locks and have no inbox, and looking does not
//! count as anyone's heartbeat. What they change goes through the same store methods and
//! transactions as the tools, so the rules, the lock history and the queue hold for them too.
//! Whatever they do to a session's locks is told to that session, in its inbox.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;

use super::events::{self, EventKind, Occurrence};
use super::messages::{Notice, notify};
use super::rule::waiting;
use super::sessions::only_one;
use super::{Coordinator, Deregistered, limit, optional_label, path_key, required_label};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::{Channel, Intent, Lock, Message, Session, SessionActivity, Waiter};
use crate::patterns;
use crate::store::{IntentFilter, LockFilter, SessionFilter, StoreHealth};

/// "Heard from since ever": a liveness cutoff that keeps stale sessions, which people see.
const EVER: Timestamp = Timestamp::from_millis(i64::MIN);

/// Most rows of each kind an overview shows.
const OVERVIEW_LIMIT: usize = 1_000;

/// A session as a person reviewing the project sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SessionState {
    #[serde(flatten)]
    pub activity: SessionActivity,
    /// "active", or "stale": silent past the timeout, about to be swept with its locks.
    pub state: &'static str,
}

/// Everything going on in a project (or in every project) at one instant.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Overview {
    /// When it was read; expiry countdowns count from here.
    pub now: Timestamp,
    pub session_timeout_seconds: u64,
    /// Live and stale sessions, by project then age.
    pub sessions: Vec<SessionState>,
    pub locks: Vec<Lock>,
    /// Requests waiting for a lock, in the order they are granted.
    pub queue: Vec<Queued>,
    /// Announced and in-progress intents, newest first.
    pub intents: Vec<Intent>,
}

/// A waiting request, with the project it waits in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Queued {
    pub project: String,
    #[serde(flatten)]
    pub request: Waiter,
}

/// A file (or directory, or glob) that two or more live sessions are touching at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Contested {
    pub project: String,
    pub file_path: String,
    /// "high" when someone writes it (an exclusive lock or a write intent), else "medium".
    pub severity: &'static str,
    pub sessions: Vec<Toucher>,
}

/// A session touching a contested path, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Toucher {
    pub session_id: String,
    pub name: String,
    /// "exclusive lock", "shared lock", "intent lock", "queued for it", or the intent type.
    pub how: String,
}

impl Overview {
    /// The paths two or more live sessions touch through their locks, queued requests or
    /// active intents, overlapping keys counted as one (a lock on `src/` touches
    /// `src/a.rs`). What a person watching should look at first.
    pub fn contested(&self) -> Vec<Contested> {
        let live: HashSet<&str> = self
            .sessions
            .iter()
            .filter(|s| s.state == "active")
            .map(|s| s.activity.session.session_id.as_str())
            .collect();
        struct Touch<'a> {
            project: &'a str,
            path: &'a str,
            session_id: &'a str,
            name: &'a str,
            how: String,
            writes: bool,
        }
        let mut touches: Vec<Touch<'_>> = Vec::new();
        for lock in &self.locks {
            touches.push(Touch {
                project: &lock.project,
                path: &lock.file_path,
                session_id: &lock.session_id,
                name: &lock.holder_name,
                how: format!("{} lock", lock.lock_type),
                writes: lock.lock_type == crate::model::LockType::Exclusive,
            });
        }
        for queued in &self.queue {
            touches.push(Touch {
                project: &queued.project,
                path: &queued.request.file_path,
                session_id: &queued.request.session_id,
                name: &queued.request.session_name,
                how: "queued for it".to_owned(),
                writes: queued.request.lock_type == crate::model::LockType::Exclusive,
            });
        }
        for intent in &self.intents {
            for file in &intent.files {
                touches.push(Touch {
                    project: &intent.project,
                    path: file,
                    session_id: &intent.session_id,
                    name: &intent.session_name,
                    how: format!("{} intent", intent.intent_type),
                    writes: intent.intent_type.is_write(),
                });
            }
        }
        touches.retain(|t| live.contains(t.session_id));

        // Two file keys overlap only when equal: index them, and test overlaps only against
        // directory and glob keys (comparing every pair made 1,000 locks a million checks).
        let mut same_key: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, t) in touches.iter().enumerate() {
            same_key.entry((t.project, t.path)).or_default().push(i);
        }
        let wide: Vec<usize> = (0..touches.len())
            .filter(|&i| patterns::is_pattern(touches[i].path))
            .collect();
        let mut contested: Vec<Contested> = Vec::new();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for touch in &touches {
            // A key is worked out once, whether it turns out contested or not.
            if !seen.insert((touch.project, touch.path)) {
                continue;
            }
            let candidates: Vec<usize> = if patterns::is_pattern(touch.path) {
                (0..touches.len()).collect()
            } else {
                let mut near = same_key[&(touch.project, touch.path)].clone();
                near.extend(wide.iter().copied());
                near.sort_unstable();
                near.dedup();
                near
            };
            let around: Vec<&Touch<'_>> = candidates
                .into_iter()
                .map(|i| &touches[i])
                .filter(|t| t.project == touch.project && patterns::overlaps(t.path, touch.path))
                .collect();
            let mut sessions: Vec<Toucher> = Vec::new();
            for t in &around {
                if !sessions
                    .iter()
                    .any(|s| s.session_id == t.session_id && s.how == t.how)
                {
                    sessions.push(Toucher {
                        session_id: t.session_id.to_owned(),
                        name: t.name.to_owned(),
                        how: t.how.clone(),
                    });
                }
            }
            let distinct = {
                let mut ids: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.len()
            };
            if distinct < 2 {
                continue;
            }
            contested.push(Contested {
                project: touch.project.to_owned(),
                file_path: touch.path.to_owned(),
                severity: if around.iter().any(|t| t.writes) {
                    "high"
                } else {
                    "medium"
                },
                sessions,
            });
        }
        contested.sort_by(|a, b| {
            (a.severity != "high", &a.project, &a.file_path).cmp(&(
                b.severity != "high",
                &b.project,
                &b.file_path,
            ))
        });
        contested
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ForceReleased {
    pub project: String,
    pub file_path: String,
    /// The locks removed; each holder found a message saying so in its inbox.
    pub released: Vec<Lock>,
}

/// The database's health, and what the sweep has yet to clean up.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Diagnosis {
    #[serde(flatten)]
    pub store: StoreHealth,
    pub sessions: usize,
    /// Silent past the timeout and not swept yet: no process is sweeping this database, or
    /// one swept less than a cleanup interval ago.
    pub stale_sessions: Vec<Session>,
    pub session_timeout_seconds: u64,
}

impl Coordinator {
    /// Sessions (stale ones too), locks, queues and active intents of `project`, or of every
    /// project, read in one transaction so they agree with each other.
    pub fn overview(&self, project: Option<&str>) -> Result<Overview> {
        let project = optional_label("project", project)?;
        let project = project.as_deref();
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            let sessions = tx
                .sessions(
                    SessionFilter {
                        project,
                        branch: None,
                        group: None,
                        alive_since: EVER,
                    },
                    now,
                )?
                .into_iter()
                .map(|activity| SessionState {
                    state: if activity.session.last_heartbeat >= alive_since {
                        "active"
                    } else {
                        "stale"
                    },
                    activity,
                })
                .collect();
            let locks = tx.locks(
                LockFilter {
                    project,
                    session_id: None,
                    path: None,
                    group: None,
                    limit: OVERVIEW_LIMIT,
                },
                now,
            )?;
            // A request's place counts the earlier live requests on every overlapping key, as
            // the grant decision does (invariant 11), not only those on its exact path.
            let mut queue: Vec<Queued> = Vec::new();
            for entry in tx.all_waiters()? {
                if project.is_some_and(|p| p != entry.project) || !waiting(&entry, alive_since, now)
                {
                    continue;
                }
                let position = 1 + queue
                    .iter()
                    .filter(|q| {
                        q.project == entry.project
                            && patterns::overlaps(&q.request.file_path, &entry.file_path)
                    })
                    .count();
                queue.push(Queued {
                    project: entry.project.clone(),
                    request: Waiter { position, ..entry },
                });
            }
            let intents = tx.intents(IntentFilter {
                project,
                session_id: None,
                group: None,
                intent_type: None,
                active_only: true,
                limit: OVERVIEW_LIMIT,
            })?;
            Ok(Overview {
                now,
                session_timeout_seconds: self.session_timeout.as_secs(),
                sessions,
                locks,
                queue,
                intents,
            })
        })
    }

    /// Removes the locks on exactly `file_path` in `project` (only `holder`'s, when given: an id
    /// or a name), tells each holder in its inbox, records it for people watching, and grants
    /// the queue behind them. `by` is what the holder is told did it; `who`, whose access token
    /// the request came with, if any.
    pub fn force_release(
        &self,
        project: &str,
        file_path: &str,
        holder: Option<&str>,
        by: &str,
        who: Option<&str>,
    ) -> Result<ForceReleased> {
        let project = required_label("project", project)?;
        let by = required_label("by", by)?;
        let holder = optional_label("session", holder)?;
        let key = path_key("file_path", file_path, None)?;
        let (released, wakes) = self.store.write(|tx| {
            let now = self.now();
            let on_key = tx.locks_overlapping(&project, &key, now)?;
            let (exact, covering): (Vec<Lock>, Vec<Lock>) =
                on_key.into_iter().partition(|l| l.file_path == key);
            let released: Vec<Lock> = exact
                .into_iter()
                .filter(|l| {
                    holder
                        .as_deref()
                        .is_none_or(|h| l.session_id == h || l.holder_name == h)
                })
                .collect();
            if released.is_empty() {
                let hint = match covering.first() {
                    Some(l) => format!(
                        "; '{}' holds {} which covers it: release that key instead",
                        l.holder_name, l.file_path
                    ),
                    None => String::new(),
                };
                let whose = holder
                    .as_deref()
                    .map(|h| format!(" held by '{h}'"))
                    .unwrap_or_default();
                return Err(Error::invalid(
                    "file_path",
                    format!("no live lock on {key}{whose} in project {project}{hint}"),
                ));
            }
            let mut wakes = Vec::new();
            for lock in &released {
                tx.delete_lock(&project, &key, &lock.session_id, now)?;
                let notice = format!(
                    "{by} (a person) force-released your {} lock on {key}. Do not write to it \
                     with fencing token {}; lock_acquire it again before editing.",
                    lock.lock_type, lock.fencing_token
                );
                notify(
                    tx,
                    Notice {
                        project: &project,
                        session_id: &lock.session_id,
                        channel: Channel::Alerts,
                        content: &notice,
                    },
                    now,
                )?;
                let holder = tx.session(&lock.session_id)?.and_then(|s| s.wake);
                tx.announce(holder.as_slice());
                wakes.extend(holder);
            }
            events::record(
                tx,
                Occurrence {
                    kind: EventKind::ForcedRelease,
                    project: &project,
                    subject: &format!("{key}\u{1f}{now}"),
                    text: &format!(
                        "{by} force-released {key} from {}",
                        released
                            .iter()
                            .map(|l| format!("'{}'", l.holder_name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    data: serde_json::json!({
                        "file_path": key,
                        "by": by,
                        "released": released.iter().map(|l| serde_json::json!({
                            "session_id": l.session_id,
                            "name": l.holder_name,
                            "lock_type": l.lock_type,
                            "fencing_token": l.fencing_token,
                        })).collect::<Vec<_>>(),
                    }),
                    who,
                },
                now,
            )?;
            wakes.extend(self.promote(tx, &project, &key, now)?);
            Ok::<_, Error>((released, wakes))
        })?;
        self.wake(&wakes);
        Ok(ForceReleased {
            project,
            file_path: key,
            released,
        })
    }

    /// Ends a session named by id, or by name (within `project` when given), releasing its
    /// locks and clearing its intents. A session whose process still runs comes back at its
    /// next heartbeat, without them, and finds a notice in its inbox.
    pub fn end_session(&self, session: &str, project: Option<&str>) -> Result<Deregistered> {
        let wanted = required_label("session", session)?;
        let project = optional_label("project", project)?;
        let now = self.now();
        let (gone, wakes) = self.store.write(|tx| {
            let id = if tx.session(&wanted)?.is_some() {
                wanted.clone()
            } else {
                // Stale sessions too: ending a stuck one is what this is for.
                let named = tx.named(&wanted, project.as_deref(), EVER)?;
                only_one(named, &wanted)?.session_id
            };
            self.end_in(tx, &id, now)
        })?;
        self.wake(&wakes);
        Ok(gone)
    }

    /// A project's messages (every project's without one), newest first; `read` is true when
    /// no recipient still has it unread.
    pub fn project_messages(
        &self,
        project: Option<&str>,
        channel: Option<Channel>,
        count: Option<u64>,
    ) -> Result<Vec<Message>> {
        let count = limit(count, 50, 1_000)?;
        let project = optional_label("project", project)?;
        self.look(None, |tx, _, _| {
            Ok(tx.project_messages(project.as_deref(), channel, count)?)
        })
    }

    /// The database's health, with the sessions the sweep should have removed.
    pub fn diagnose(&self) -> Result<Diagnosis> {
        let store = self.store.health()?;
        self.look(None, |tx, _, now| {
            let all = tx.sessions(
                SessionFilter {
                    project: None,
                    branch: None,
                    group: None,
                    alive_since: EVER,
                },
                now,
            )?;
            let alive_since = self.alive_since(now);
            Ok(Diagnosis {
                store,
                sessions: all.len(),
                stale_sessions: all
                    .into_iter()
                    .map(|s| s.session)
                    .filter(|s| s.last_heartbeat < alive_since)
                    .collect(),
                session_timeout_seconds: self.session_timeout.as_secs(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::LockRequest;
    use super::super::testing::*;
    use crate::model::LockType;

    #[test]
    fn contested_paths_are_those_two_live_sessions_touch() {
        let h = Harness::new();
        let alice = h.session("alice", "app", None);
        let bob = h.session("bob", "app", None);
        let carol = h.session("carol", "other", None);
        let lock = |s: &str, path: &str, lock_type| {
            h.coordinator
                .acquire_lock(LockRequest::new(s, path, lock_type))
                .expect("lock");
        };
        lock(&alice, "src/", LockType::Shared);
        lock(&bob, "src/a.rs", LockType::Shared);
        lock(&alice, "docs/x.md", LockType::Exclusive);
        lock(&carol, "src/a.rs", LockType::Exclusive);
        h.coordinator
            .announce_intent(crate::coordinator::IntentRequest {
                session_id: bob.clone(),
                intent_type: crate::model::IntentType::FileEdit,
                target: None,
                description: None,
                files: vec!["docs/x.md".into()],
            })
            .expect("intent");
        let contested = h.coordinator.overview(None).expect("overview").contested();
        let paths: Vec<(&str, &str)> = contested
            .iter()
            .map(|c| (c.file_path.as_str(), c.severity))
            .collect();
        assert_eq!(
            paths,
            [
                ("docs/x.md", "high"),
                ("src/", "medium"),
                ("src/a.rs", "medium")
            ],
            "{contested:#?}"
        );
        assert!(
            contested.iter().all(|c| c.project == "app"),
            "carol is alone in hers"
        );
        let docs = &contested[0];
        let hows: Vec<&str> = docs.sessions.iter().map(|s| s.how.as_str()).collect();
        assert_eq!(hows, ["exclusive lock", "file_edit intent"]);

        h.advance(h.coordinator.session_timeout() * 2);
        assert!(
            h.coordinator
                .overview(None)
                .expect("overview")
                .contested()
                .is_empty(),
            "stale sessions contest nothing"
        );
    }

    fn queued(h: &Harness, session: &str, path: &str) {
        let outcome = h
            .coordinator
            .acquire_lock(LockRequest {
                queue: true,
                ..LockRequest::new(session, path, LockType::Exclusive)
            })
            .expect("queue");
        assert!(outcome.queued, "{path}");
    }

    #[test]
    fn queue_places_count_earlier_requests_on_overlapping_keys() {
        let h = Harness::new();
        let holder = h.session("holder", "app", None);
        let (a, b) = (h.session("a", "app", None), h.session("b", "app", None));
        h.coordinator
            .acquire_lock(LockRequest::new(&holder, "src/", LockType::Exclusive))
            .expect("lock");
        queued(&h, &a, "src/");
        queued(&h, &b, "src/a.ts");
        let overview = h.coordinator.overview(Some("app")).expect("overview");
        let places: Vec<_> = overview
            .queue
            .iter()
            .map(|q| {
                (
                    q.request.session_name.as_str(),
                    q.request.position,
                    q.project.as_str(),
                )
            })
            .collect();
        assert_eq!(places, [("a", 1, "app"), ("b", 2, "app")]);
        assert!(
            h.coordinator
                .overview(Some("other"))
                .expect("other")
                .queue
                .is_empty()
        );
    }

    #[test]
    fn a_forced_release_needs_a_lock_on_exactly_that_key() {
        let h = Harness::new();
        let holder = h.session("holder", "app", None);
        h.coordinator
            .acquire_lock(LockRequest::new(&holder, "src/", LockType::Exclusive))
            .expect("lock");
        let err = h
            .coordinator
            .force_release("app", "src/a.ts", None, "dana", None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid argument `file_path`: no live lock on src/a.ts in project app; 'holder' holds src/ which covers it: release that key instead"
            )
        );
        let url = "http://hooks.test/ops";
        h.coordinator
            .webhook_due(url, "me", 10, std::time::Duration::from_secs(30))
            .expect("the endpoint starts now");
        let done = h
            .coordinator
            .force_release("app", "src/", Some("holder"), "dana", Some("dana"))
            .expect("released");
        assert_eq!(done.released.len(), 1);
        let due = h
            .coordinator
            .webhook_due(url, "me", 10, std::time::Duration::from_secs(30))
            .expect("due");
        let crate::coordinator::Due::Send(events) = due else {
            panic!("the forced release is an event: {due:?}");
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "lock.force_released");
        assert_eq!(events[0].data["who"], "dana");
        assert_eq!(events[0].data["by"], "dana");
        assert_eq!(events[0].data["released"][0]["name"], "holder");
        assert_eq!(
            h.coordinator
                .news(&holder)
                .expect("news")
                .unread
                .map(|u| u.count),
            Some(1)
        );
    }
}
