//! What only the SQLite backend has to get right, mostly about the database file: its modes
//! whatever the umask, a path another user could have planted, a read-only file or folder; and
//! what a test can only see by moving one process's clock, which on PostgreSQL the database
//! server's clock overrides. The PostgreSQL pass of the suite skips this file (`--skip sqlite::`).

use std::path::Path;

use crate::common::{self, Db};
use crate::edit_locks::{LIB, edit, edit_at, repository, text};
use serde_json::json;

/// On PostgreSQL these tests would check nothing, so there they fail rather than pass: the
/// PostgreSQL pass leaves them out (`--skip sqlite::`), and its summary counts them as
/// filtered out.
fn sqlite_only() {
    assert!(
        common::postgres_server().is_none(),
        "about the SQLite file, not run on PostgreSQL: add --skip sqlite:: to the test command"
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The binary with `args` on the database file `db`, stdin closed at once: a server refuses
/// before reading it, or starts and ends at EOF.
fn run_at(db: &Path, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    common::run_on(Path::new(common::BIN), db, args, env, None, "")
}

/// A run that failed with one line on stderr, starting with `start`.
fn assert_refused(run: &common::Run, start: &str) {
    let stderr = run.stderr.trim_end();
    assert!(
        !run.ok && run.code == Some(1) && stderr.lines().count() == 1 && stderr.starts_with(start),
        "expected one line starting with {start:?}, got (exit {:?}): {stderr}",
        run.code
    );
}

#[tokio::test]
async fn database_files_are_private_to_their_owner_whatever_the_umask() {
    sqlite_only();
    let db = Db::new();
    let dir = db.path().parent().expect("folder").to_path_buf();
    let path = dir.join("private/nested/coordinator.db");
    // umask 000 would leave everything readable (and writable) by everyone unless the modes
    // are set explicitly.
    let wrapper = dir.join("umask-000.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\numask 000\nexec '{}' --db-path '{}' \"$@\"\n",
            common::BIN,
            path.display()
        ),
    )
    .expect("script");
    chmod(&wrapper, 0o755);
    let server = db.server_through(&wrapper, None).await;
    server.register("writer", "my-app", "main").await;
    server
        .call("message_send", json!({"content": "private"}))
        .await;
    let wal = dir.join("private/nested/coordinator.db-wal");
    let shm = dir.join("private/nested/coordinator.db-shm");
    let modes = [
        mode(&dir.join("private")),
        mode(&dir.join("private/nested")),
        mode(&path),
        mode(&wal),
        mode(&shm),
    ];
    server.quit().await;
    assert_eq!(modes, [0o700, 0o700, 0o600, 0o600, 0o600]);

    // A database made before this (0644 in a 0755 folder): the file is ours to tighten, and
    // is, on the next open; a folder given by --db-path is the person's, left as it is.
    chmod(&path, 0o644);
    chmod(&dir.join("private/nested"), 0o755);
    let status = run_at(&path, &["status"], &[("MCP_COORDINATOR_LOG", "info")]);
    assert!(status.ok, "{}", status.stderr);
    assert!(
        status.stderr.contains(&format!(
            "made the database private to its owner: {} (was 0644, now 0600)",
            path.display()
        )),
        "{}",
        status.stderr
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("private/nested")), 0o755);
}

#[tokio::test]
async fn a_database_path_another_user_could_have_planted_is_refused_unless_allowed() {
    sqlite_only();
    let db = Db::new();
    let dir = db.path().parent().expect("folder").to_path_buf();
    // A folder every user can write (not sticky: anyone may replace anything in it), where
    // another user planted a symlink to a file of ours.
    let open = dir.join("open");
    std::fs::create_dir(&open).expect("folder");
    chmod(&open, 0o777);
    let victim = dir.join("notes.txt");
    std::fs::write(&victim, "").expect("victim");
    let link = open.join("coordinator.db");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");

    let refused = run_at(&link, &[], &[]);
    assert_refused(
        &refused,
        &format!(
            "mcp-session-coordinator: refusing the database path {}: it is a symlink in {}, a \
             folder every user can write (mode 0777)",
            link.display(),
            open.display()
        ),
    );
    assert!(refused.stderr.contains("--allow-unsafe-db-path"));
    assert_eq!(
        std::fs::read(&victim).expect("victim").len(),
        0,
        "untouched"
    );
    let through = open.join("team");
    std::os::unix::fs::symlink(&dir, &through).expect("folder symlink");
    let refused = run_at(
        &through.join("c.db"),
        &["serve", "--http", "127.0.0.1:0"],
        &[],
    );
    assert_refused(
        &refused,
        "mcp-session-coordinator: refusing the database path",
    );
    assert!(!dir.join("c.db").exists(), "nothing was created through it");

    let allowed = run_at(&link, &[], &[("MCP_COORDINATOR_ALLOW_UNSAFE_DB_PATH", "1")]);
    assert!(allowed.ok, "told to trust it: {}", allowed.stderr);
    assert!(
        !std::fs::read(&victim).expect("victim").is_empty(),
        "as asked"
    );

    // A database another user owns: they read and change everything in it.
    let theirs = dir.join("theirs.db");
    assert!(run_at(&theirs, &[], &[]).ok, "created");
    if std::os::unix::fs::chown(&theirs, Some(65534), None).is_err() {
        eprintln!("skipped the other owner's database: changing a file's owner needs root");
        return;
    }
    let refused = run_at(&theirs, &["status"], &[]);
    assert_refused(
        &refused,
        &format!(
            "mcp-session-coordinator: refusing the database path {}: it is owned by another \
             user (uid 65534",
            theirs.display()
        ),
    );
    let allowed = run_at(&theirs, &["status", "--allow-unsafe-db-path"], &[]);
    assert!(allowed.ok, "{}", allowed.stderr);
}

#[tokio::test]
async fn a_read_only_database_stops_servers_at_start_and_can_still_be_read() {
    sqlite_only();
    let db = Db::new();
    let path = db.path();
    assert!(db.run(&[], &[], None, "").ok, "a server creates it");
    db.cli(&["send", "-p", "my-app", "--from", "ana", "before the freeze"]);
    // Tests run as root, which writes whatever the mode says: the mode bits decide.
    chmod(&path, 0o444);
    let line = format!(
        "mcp-session-coordinator: cannot write the database file {}: it is read-only (mode \
         0444); fix its permissions or point --db-path elsewhere",
        path.display()
    );
    let server = db.run(&[], &[], None, "");
    assert_refused(&server, &line);
    assert_eq!(server.stderr.trim_end(), line);
    assert!(server.stdout.is_empty());
    assert_refused(
        &db.run(&["serve", "--http", "127.0.0.1:0"], &[], None, ""),
        &line,
    );
    assert_refused(
        &db.run(&["send", "-p", "my-app", "hi"], &[], None, ""),
        &line,
    );

    // Commands that only read open it read-only.
    let messages = db.cli(&["messages", "-p", "my-app", "--json"]).json();
    assert_eq!(messages[0]["content"], "before the freeze", "{messages}");
    db.cli(&["status"]);
    let doctor = db.run(&["doctor"], &[], None, "");
    assert!(!doctor.ok, "doctor fails on it: no server can start");
    assert!(
        doctor.stdout.contains("access        read-only"),
        "{}",
        doctor.stdout
    );
    assert_eq!(mode(&path), 0o444, "a read-only file is not touched");

    chmod(&path, 0o600);
    let folder = path.parent().expect("folder");
    chmod(folder, 0o500);
    let server = db.run(&[], &[], None, "");
    chmod(folder, 0o700);
    assert_refused(
        &server,
        &format!(
            "mcp-session-coordinator: cannot write the database folder {}: it is read-only \
             (mode 0500)",
            folder.display()
        ),
    );
}

#[tokio::test]
async fn an_edit_lock_whose_change_is_gone_is_released_once_a_minute_old() {
    sqlite_only();
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let a = db.server_of_client("525321", Some(repo)).await;
    let b = db.server_of_client("525322", Some(repo)).await;
    let ida = a.register("auth", "shop", "main").await;
    let idb = b.register("profile", "shop", "main").await;

    // auth's hook locks one() and two(); its edit of one() never lands (the person said no),
    // its edit of two() does.
    edit(&db, repo, "c-a", &ida, "src/lib.rs", "    1\n");
    edit(&db, repo, "c-a", &ida, "src/lib.rs", "    2\n");
    std::fs::write(repo.join("src/lib.rs"), LIB.replace("    2\n", "    20\n")).expect("write");

    let now = edit(&db, repo, "c-b", &idb, "src/lib.rs", "    1\n");
    assert_eq!(
        now["permissionDecision"], "deny",
        "too young to judge: {now}"
    );
    let later = edit_at(
        &db,
        repo,
        "c-b",
        &idb,
        "src/lib.rs",
        "    1\n",
        Some("+120s"),
    );
    assert!(
        text(&later).contains("src/lib.rs#one is now locked exclusively for you"),
        "a minute on, one() shows no change: auth's lock is released: {later}"
    );
    let changed = edit_at(
        &db,
        repo,
        "c-b",
        &idb,
        "src/lib.rs",
        "    20\n",
        Some("+120s"),
    );
    assert_eq!(
        changed["permissionDecision"], "deny",
        "two() is still changed in the working tree: {changed}"
    );
}
