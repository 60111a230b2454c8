//! Live state written straight through the store, for benchmarks that need a database the
//! size of a busy team's without making thousands of tool calls first.

use mcp_session_coordinator::clock::Timestamp;
use mcp_session_coordinator::model::{IntentType, LockType, Session};
use mcp_session_coordinator::store::{NewIntent, NewLock, StoreError, WriteTx};

/// A session of `project` that heartbeats at `until`, so no sweep removes it mid-measurement.
pub fn session(id: &str, name: &str, project: &str, now: Timestamp, until: Timestamp) -> Session {
    Session {
        session_id: id.to_owned(),
        name: name.to_owned(),
        project: project.to_owned(),
        branch: Some("main".into()),
        working_directory: None,
        registered_at: now,
        last_heartbeat: until,
        wake: None,
        group: None,
        client_pid: None,
        client_ref: None,
        who: None,
    }
}

/// 100 sessions of `project` holding `locks` exclusive locks between them until `until`, and
/// an intent for every tenth lock; the holders' ids, in the order they were written.
pub fn locks_held(
    tx: &WriteTx<'_>,
    project: &str,
    locks: usize,
    now: Timestamp,
    until: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let holders: Vec<String> = (0..100).map(|s| format!("ses-seed-{s}")).collect();
    for (s, id) in holders.iter().enumerate() {
        tx.insert_session(
            &session(id, &format!("seed-{s}"), project, now, until),
            "seed",
        )?;
    }
    for i in 0..locks {
        let path = format!("seed/{}/{i}.ts", i / 100);
        let token = tx.next_fencing_token()?;
        tx.put_lock(&NewLock {
            project,
            path: &path,
            session_id: &holders[i % holders.len()],
            lock_type: LockType::Exclusive,
            acquired_at: now,
            expires_at: until,
            fencing_token: token,
            renewal: false,
            from_waiter: None,
            unreported: false,
            worktree: None,
            edited_at: None,
            now,
        })?;
    }
    for i in 0..locks / 10 {
        let files = [format!("seed/{}/{}.ts", i / 10, i * 10)];
        tx.insert_intent(&NewIntent {
            session_id: &holders[i % holders.len()],
            project,
            intent_type: IntentType::FileEdit,
            target: None,
            description: Some("seeded"),
            files: &files,
            now,
        })?;
    }
    Ok(holders)
}
