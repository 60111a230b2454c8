//! Several server processes on one database, contending for one path: the lock must be what
//! keeps their critical sections apart, checked on real files rather than on the server's word.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{Db, Server};
use serde_json::json;

const PROCESSES: usize = 6;
const INCREMENTS_EACH: usize = 25;

async fn acquire(server: &Server, lock_type: &str) -> Option<i64> {
    let answer = server
        .call(
            "lock_acquire",
            json!({"file_path": "shared/counter.txt", "lock_type": lock_type, "ttl_seconds": 60}),
        )
        .await;
    (answer["granted"] == true).then(|| answer["fencing_token"].as_i64().expect("token"))
}

async fn release(server: &Server) {
    let released = server
        .call("lock_release", json!({"file_path": "shared/counter.txt"}))
        .await;
    assert_eq!(released["released"], true);
}

async fn backoff(attempt: usize) {
    tokio::time::sleep(Duration::from_millis(1 + (attempt % 5) as u64)).await;
}

/// One process's share of the counter test: returns (counter value seen, token) per section.
async fn increment(server: Server, counter: PathBuf) -> Vec<(u64, i64)> {
    let mut sections = Vec::new();
    let mut attempt = 0;
    while sections.len() < INCREMENTS_EACH {
        attempt += 1;
        let Some(token) = acquire(&server, "exclusive").await else {
            backoff(attempt).await;
            continue;
        };
        let seen: u64 = std::fs::read_to_string(&counter)
            .expect("read counter")
            .trim()
            .parse()
            .expect("counter value");
        tokio::time::sleep(Duration::from_micros(500)).await; // widen the window for a lost update
        std::fs::write(&counter, (seen + 1).to_string()).expect("write counter");
        release(&server).await;
        sections.push((seen, token));
    }
    server.quit().await;
    sections
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exclusive_locks_keep_a_shared_counter_exact() {
    let db = Db::new();
    let counter = db.path().with_file_name("counter.txt");
    std::fs::write(&counter, "0").expect("init counter");

    let mut workers = Vec::new();
    for i in 0..PROCESSES {
        let server = db.server().await;
        server.register(&format!("worker-{i}"), "app", "main").await;
        workers.push(tokio::spawn(increment(server, counter.clone())));
    }
    let mut sections = Vec::new();
    for worker in workers {
        sections.extend(worker.await.expect("worker"));
    }

    let total = (PROCESSES * INCREMENTS_EACH) as u64;
    let value: u64 = std::fs::read_to_string(&counter)
        .expect("read")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(
        value, total,
        "no increment was lost: no two processes held the lock at once"
    );

    // The value each section read orders the sections; tokens must rise in that order.
    sections.sort();
    let seen: Vec<u64> = sections.iter().map(|(seen, _)| *seen).collect();
    assert_eq!(seen, (0..total).collect::<Vec<_>>());
    assert!(
        sections.windows(2).all(|pair| pair[0].1 < pair[1].1),
        "fencing tokens strictly increase from one holder to the next"
    );
}

/// A marker file per section in progress; a writer must never see a reader's, nor a reader a
/// writer's.
fn markers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list markers")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

async fn read_or_write(server: Server, dir: PathBuf, me: String, writer: bool) -> usize {
    let (lock_type, rounds) = if writer {
        ("exclusive", 12)
    } else {
        ("shared", 12)
    };
    let mut done = 0;
    let mut attempt = 0;
    let mut shared_with_others = 0;
    while done < rounds {
        attempt += 1;
        if acquire(&server, lock_type).await.is_none() {
            backoff(attempt).await;
            continue;
        }
        let marker = dir.join(format!("{}-{me}", if writer { "writer" } else { "reader" }));
        std::fs::write(&marker, "").expect("mark");
        tokio::time::sleep(Duration::from_millis(2)).await;
        let present = markers(&dir);
        let others: Vec<_> = present
            .iter()
            .filter(|m| !m.ends_with(&format!("-{me}")))
            .collect();
        if writer {
            assert!(others.is_empty(), "a writer is alone, found {others:?}");
        } else {
            assert!(
                others.iter().all(|m| m.starts_with("reader-")),
                "readers never overlap a writer, found {others:?}"
            );
            shared_with_others += others.len();
        }
        std::fs::remove_file(&marker).expect("unmark");
        release(&server).await;
        done += 1;
    }
    server.quit().await;
    shared_with_others
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_share_and_writers_exclude_across_processes() {
    let db = Db::new();
    let dir = db.path().with_file_name("markers");
    std::fs::create_dir(&dir).expect("markers dir");

    let mut tasks = Vec::new();
    for i in 0..PROCESSES {
        let server = db.server().await;
        let name = format!("p{i}");
        server.register(&name, "app", "main").await;
        tasks.push(tokio::spawn(read_or_write(
            server,
            dir.clone(),
            name,
            i % 2 == 0,
        )));
    }
    for task in tasks {
        task.await
            .expect("no overlap between a writer and anyone else");
    }
    assert!(markers(&dir).is_empty());
}
