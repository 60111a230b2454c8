//! Replays the lock event history a database recorded and reports every broken promise: two
//! incompatible holders of overlapping keys at once (which includes a grant before the previous
//! holder's expiry), more holders of a resource than its capacity, a fencing token that does not
//! increase, a grant that passes an earlier incompatible request in the queue (for a resource,
//! any earlier request), a renewal of a lock not held.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mcp_session_coordinator::patterns::overlaps;
use rusqlite::Connection;

#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub project: String,
    pub path: String,
    pub session_id: String,
    pub lock_type: String,
    pub token: Option<i64>,
    pub expires_at: Option<i64>,
    pub waiter_id: Option<i64>,
    /// For a `resource:` key, how many may hold it at once; `None` for files.
    pub capacity: Option<usize>,
}

const EVENTS: &str = "SELECT e.seq, e.at, e.kind, e.project, e.path, e.session_id, e.lock_type,
        e.fencing_token, e.expires_at, e.waiter_id,
        CASE WHEN e.path LIKE 'resource:%' THEN coalesce(c.capacity, 1) END
     FROM lock_events e
     LEFT JOIN resource_capacities c ON c.project = e.project AND c.key = e.path
     ORDER BY e.seq";

/// The lock events database `db` recorded (the file, or in a PostgreSQL run the database
/// standing for it), in order.
pub fn events(db: &Path) -> Vec<Event> {
    match super::postgres_url(db) {
        Some(url) => super::on_postgres(&url, |client| {
            client
                .query(EVENTS, &[])
                .expect("query")
                .iter()
                .map(|row| Event {
                    seq: row.get(0),
                    at: row.get(1),
                    kind: row.get(2),
                    project: row.get(3),
                    path: row.get(4),
                    session_id: row.get(5),
                    lock_type: row.get(6),
                    token: row.get(7),
                    expires_at: row.get(8),
                    waiter_id: row.get(9),
                    capacity: row
                        .get::<_, Option<i64>>(10)
                        .map(|n| usize::try_from(n).unwrap_or(0)),
                })
                .collect()
        }),
        None => sqlite_events(db),
    }
}

fn sqlite_events(db: &Path) -> Vec<Event> {
    let conn = Connection::open(db).expect("open the database");
    let mut stmt = conn.prepare(EVENTS).expect("prepare");
    stmt.query_map([], |row| {
        Ok(Event {
            seq: row.get(0)?,
            at: row.get(1)?,
            kind: row.get(2)?,
            project: row.get(3)?,
            path: row.get(4)?,
            session_id: row.get(5)?,
            lock_type: row.get(6)?,
            token: row.get(7)?,
            expires_at: row.get(8)?,
            waiter_id: row.get(9)?,
            capacity: row
                .get::<_, Option<i64>>(10)?
                .map(|n| usize::try_from(n).unwrap_or(0)),
        })
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("events")
}

fn conflict(a: &str, b: &str) -> bool {
    (a == "exclusive" && b != "intent") || (b == "exclusive" && a != "intent")
}

struct Holder {
    lock_type: String,
    token: i64,
    expires_at: i64,
}

/// Every violation found, as sentences naming the events; empty when the history is sound.
pub fn check(events: &[Event]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut holders: HashMap<(String, String, String), Holder> = HashMap::new();
    let mut waiters: BTreeMap<i64, Event> = BTreeMap::new();
    let mut last_token = i64::MIN;
    for e in events {
        let key = (e.project.clone(), e.path.clone(), e.session_id.clone());
        match e.kind.as_str() {
            "granted" => {
                let token = e.token.unwrap_or(i64::MIN);
                if token <= last_token {
                    problems.push(format!(
                        "#{}: token {token} after {last_token}: not increasing",
                        e.seq
                    ));
                }
                last_token = last_token.max(token);
                holders.remove(&key);
                if let Some(capacity) = e.capacity {
                    let taken = holders
                        .iter()
                        .filter(|((project, path, _), h)| {
                            project == &e.project && path == &e.path && h.expires_at > e.at
                        })
                        .count();
                    if taken >= capacity {
                        problems.push(format!(
                            "#{}: {} granted a slot of {} while {taken} of {capacity} were held",
                            e.seq, e.session_id, e.path
                        ));
                    }
                }
                for ((project, path, session), h) in &holders {
                    if e.capacity.is_none()
                        && project == &e.project
                        && session != &e.session_id
                        && h.expires_at > e.at
                        && overlaps(path, &e.path)
                        && conflict(&e.lock_type, &h.lock_type)
                    {
                        problems.push(format!(
                            "#{}: {} granted {} on {} while {} held {} on {} (token {}, until {})",
                            e.seq,
                            e.session_id,
                            e.lock_type,
                            e.path,
                            session,
                            h.lock_type,
                            path,
                            h.token,
                            h.expires_at
                        ));
                    }
                }
                let limit = e.waiter_id.unwrap_or(i64::MAX);
                for (id, w) in waiters.range(..limit) {
                    if w.project == e.project
                        && w.session_id != e.session_id
                        && overlaps(&w.path, &e.path)
                        && conflict(&e.lock_type, &w.lock_type)
                    {
                        problems.push(format!(
                            "#{}: {} granted {} on {} past queued request {id} of {} ({} on {})",
                            e.seq,
                            e.session_id,
                            e.lock_type,
                            e.path,
                            w.session_id,
                            w.lock_type,
                            w.path
                        ));
                    }
                }
                if let Some(id) = e.waiter_id {
                    waiters.remove(&id);
                }
                holders.insert(
                    key,
                    Holder {
                        lock_type: e.lock_type.clone(),
                        token,
                        expires_at: e.expires_at.unwrap_or(i64::MIN),
                    },
                );
            }
            "renewed" => match holders.get_mut(&key) {
                Some(h) if Some(h.token) == e.token => {
                    h.expires_at = e.expires_at.unwrap_or(h.expires_at);
                }
                _ => problems.push(format!(
                    "#{}: {} renewed {} on {} without holding it",
                    e.seq, e.session_id, e.lock_type, e.path
                )),
            },
            "released" | "expired" | "ended" => {
                holders.remove(&key);
            }
            "queued" => {
                if let Some(id) = e.waiter_id {
                    waiters.insert(id, e.clone());
                }
            }
            "dequeued" => {
                if let Some(id) = e.waiter_id {
                    waiters.remove(&id);
                }
            }
            other => problems.push(format!("#{}: unknown event kind {other}", e.seq)),
        }
    }
    problems
}
