//! Servers on "machines" whose clocks disagree, sharing one PostgreSQL database. Each server
//! process runs under libfaketime, which shifts its wall clock by minutes; the database server
//! keeps the true time. Expiry and liveness follow the database's clock, so the machines agree
//! on when a lock or a session ends, and no two sessions ever hold one file at once.
//!
//! Runs in the PostgreSQL pass of the suite (`scripts/with-postgres`); on SQLite every process
//! shares one machine's clock, so there is no skew to test. The contenders' seed is random
//! unless `SKEW_SEED=N` replays one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::history;
use crate::common::replay::Seed;
use crate::common::{self, Db, Server};
use serde_json::{Value, json};

/// Debian's libfaketime, under the machine's multiarch folder (`x86_64-linux-gnu`,
/// `aarch64-linux-gnu`, ...).
pub(crate) fn faketime() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
}

/// A server on a machine whose clock is off by `skew` (libfaketime's syntax: "-90s", "+90s").
async fn on_machine(db: &Db, skew: &str) -> Server {
    let faketime = faketime().expect("libfaketime is installed");
    db.server_with(&[
        ("LD_PRELOAD", faketime.to_str().expect("a UTF-8 path")),
        ("FAKETIME", skew),
        // Timers and timeouts keep the true pace; only the wall clock is off.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("MCP_SESSION_TIMEOUT_SEC", "120"),
        ("MCP_CLEANUP_INTERVAL_SEC", "1"),
    ])
    .await
}

/// The true time, in milliseconds since the epoch (this test process is not shifted).
fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn millis(time: &Value) -> i64 {
    let text = time
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {time}"));
    humantime::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A holding as the holder saw it, in true time: from the grant's answer until it sent its
/// release, or until the lock's expiry if that came first. Each is inside the real holding,
/// so two that overlap prove two holders at once.
#[derive(Debug, Clone)]
struct Held {
    session: String,
    from: i64,
    until: i64,
}

async fn contender(server: Server, name: String, log: Arc<Mutex<Vec<Held>>>, seed: u64) {
    server.register(&name, "app", "main").await;
    let mut dice = seed | 1;
    for _ in 0..5 * common::soak() {
        dice ^= dice << 13;
        dice ^= dice >> 7;
        dice ^= dice << 17;
        let answer = server
            .call(
                "lock_acquire",
                json!({"file_path": "src/shared.rs", "ttl_seconds": 1, "wait_seconds": 30}),
            )
            .await;
        if answer["granted"] != true {
            continue;
        }
        let from = real_now();
        let expires = millis(&answer["expires_at"]);
        // Some holders outlive their one-second lease, so expiry hands the file on too.
        tokio::time::sleep(Duration::from_millis(dice % 1_300)).await;
        let until = real_now().min(expires);
        server
            .call("lock_release", json!({"file_path": "src/shared.rs"}))
            .await;
        log.lock().expect("log").push(Held {
            session: name.clone(),
            from,
            until,
        });
    }
    server.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres runs it"]
async fn machines_with_skewed_clocks_agree_on_expiry_and_never_share_a_file() {
    common::postgres_only();
    assert!(
        faketime().is_some(),
        "no /usr/lib/*/faketime/libfaketime.so.1: apt-get install libfaketime"
    );
    let db = Db::new();
    let slow = on_machine(&db, "-90s").await;
    let fast = on_machine(&db, "+90s").await;

    // A lock taken on the slow machine ends 60 s from the true now, not from its clock's.
    slow.register("slow-host", "app", "main").await;
    let held = slow
        .call(
            "lock_acquire",
            json!({"file_path": "src/shared.rs", "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(held["granted"], true, "{held}");
    let off = millis(&held["expires_at"]) - (real_now() + 60_000);
    assert!(off.abs() < 5_000, "expiry is {off} ms off the true time");

    // The fast machine's clock is already past that expiry by its own reckoning: it must
    // still see the lock held.
    fast.register("fast-host", "app", "main").await;
    let refused = fast
        .call(
            "lock_acquire",
            json!({"file_path": "src/shared.rs", "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(refused["granted"], false, "two holders: {refused}");
    assert_eq!(refused["holder_name"], "slow-host");

    // The fast machine sweeps every second; by its clock the slow session has been silent for
    // three minutes, past the two-minute timeout. It must stay.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let sessions = fast.call("session_list", json!({})).await;
    assert_eq!(sessions["count"], 2, "a live session was swept: {sessions}");
    slow.call("lock_release", json!({"file_path": "src/shared.rs"}))
        .await;

    // Contention across three machines (slow, fast, true) with one-second leases.
    let seed = Seed::random("SKEW_SEED");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for (i, skew) in ["-90s", "+90s", "+0s", "-90s", "+90s", "+0s"]
        .into_iter()
        .enumerate()
    {
        let server = on_machine(&db, skew).await;
        workers.push(tokio::spawn(contender(
            server,
            format!("worker-{i}{skew}"),
            log.clone(),
            seed.value().wrapping_add(i as u64 * 7919),
        )));
    }
    for worker in workers {
        worker.await.expect("worker");
    }

    let mut held = log.lock().expect("log").clone();
    held.sort_by_key(|h| h.from);
    assert!(held.len() >= 25, "only {} holdings", held.len());
    for pair in held.windows(2) {
        assert!(
            pair[0].until <= pair[1].from,
            "two holders at once: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    let sessions: std::collections::HashSet<&str> =
        held.iter().map(|h| h.session.as_str()).collect();
    assert_eq!(sessions.len(), 6, "every machine got the file");
    let problems = history::check(&history::events(&db.path()));
    assert!(problems.is_empty(), "{problems:#?}");
    drop((slow, fast));
}
