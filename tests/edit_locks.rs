//! Locks that follow the work, in real git repositories with the guard installed: the Claude
//! Code hook locks the functions an edit touches until the change is committed, the commit
//! releases them, and sessions in other worktrees are warned instead of refused.

use std::path::Path;

use crate::common::{Db, Run};
use crate::git_guard::git_run;
use serde_json::{Value, json};

pub(crate) const LIB: &str = "pub fn one() -> u32 {\n    1\n}\n\npub fn two() -> u32 {\n    2\n}\n";

/// Runs git in `dir` as `session` (when named), in project shop.
pub(crate) fn git(db: &Db, dir: &Path, args: &[&str], session: Option<&str>) -> Run {
    let mut env = vec![("MCP_COORDINATOR_PROJECT", "shop")];
    env.extend(session.map(|s| ("MCP_COORDINATOR_SESSION", s)));
    git_run(db, dir, args, &env)
}

/// A repository holding `src/lib.rs` with two functions, the guard installed.
pub(crate) fn repository(db: &Db) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    let repo = dir.path();
    assert!(git(db, repo, &["init", "-q", "-b", "main"], None).ok);
    std::fs::create_dir_all(repo.join("src")).expect("src");
    std::fs::write(repo.join("src/lib.rs"), LIB).expect("write");
    assert!(git(db, repo, &["add", "."], None).ok);
    assert!(git(db, repo, &["commit", "-q", "-m", "start"], None).ok);
    let installed = db.run(
        &["install-git-hook", "--repo", &repo.display().to_string()],
        &[],
        None,
        "",
    );
    assert!(installed.ok, "{}", installed.stderr);
    dir
}

/// Claude Code's PreToolUse hook for an Edit replacing `old` by `new` in `file`, from the
/// Claude Code session `claude` working in `dir`, acting as coordinator session `session`.
pub(crate) fn edit(
    db: &Db,
    dir: &Path,
    claude: &str,
    session: &str,
    file: &str,
    old: &str,
) -> Value {
    edit_at(db, dir, claude, session, file, old, None)
}

/// [`edit`] on a machine whose clock is `skew` ahead (libfaketime's syntax: "+120s").
pub(crate) fn edit_at(
    db: &Db,
    dir: &Path,
    claude: &str,
    session: &str,
    file: &str,
    old: &str,
    skew: Option<&str>,
) -> Value {
    let event = json!({
        "session_id": claude, "cwd": dir, "hook_event_name": "PreToolUse",
        "tool_name": "Edit",
        "tool_input": {"file_path": dir.join(file), "old_string": old, "new_string": "x"},
    });
    let faketime = crate::clock_skew::faketime();
    let mut env = vec![
        ("MCP_COORDINATOR_SESSION", session),
        ("MCP_COORDINATOR_PROJECT", "shop"),
    ];
    if let Some(skew) = skew {
        let library = faketime.as_deref().expect("libfaketime is installed");
        env.extend([
            ("LD_PRELOAD", library.to_str().expect("a UTF-8 path")),
            ("FAKETIME", skew),
        ]);
    }
    let run = db.run(
        &["hook", "claude-code", "--acquire"],
        &env,
        Some(dir),
        &event.to_string(),
    );
    assert!(run.ok, "{}", run.stderr);
    if run.stdout.trim().is_empty() {
        Value::Null
    } else {
        run.json()["hookSpecificOutput"].clone()
    }
}

pub(crate) fn text(answer: &Value) -> String {
    answer["additionalContext"]
        .as_str()
        .or(answer["permissionDecisionReason"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn two_sessions_edit_two_functions_of_one_file_until_each_commits() {
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let a = db.server_of_client("525301", Some(repo)).await;
    let b = db.server_of_client("525302", Some(repo)).await;
    let ida = a.register("auth", "shop", "main").await;
    let idb = b.register("profile", "shop", "main").await;

    let first = edit(&db, repo, "c-a", &ida, "src/lib.rs", "    1\n");
    assert!(
        text(&first).contains("src/lib.rs#one is now locked exclusively for you"),
        "{first}"
    );
    assert!(text(&first).contains("until you commit"), "{first}");
    let second = edit(&db, repo, "c-b", &idb, "src/lib.rs", "    2\n");
    assert!(
        text(&second).contains("src/lib.rs#two is now locked"),
        "another function of the same file: {second}"
    );
    let refused = edit(&db, repo, "c-b", &idb, "src/lib.rs", "    1\n");
    assert_eq!(refused["permissionDecision"], "deny", "{refused}");
    assert!(
        text(&refused).starts_with(
            "src/lib.rs#one is locked exclusively by 'auth' until they commit their change to it"
        ),
        "{refused}"
    );
    let whole = edit(&db, repo, "c-b", &idb, "src/lib.rs", "pub fn");
    assert_eq!(
        whole["permissionDecision"], "deny",
        "text in both functions touches both: {whole}"
    );

    // Both changes land in the working tree; auth stages only its own, as `git add -p` would.
    let both = LIB
        .replace("    1\n", "    10\n")
        .replace("    2\n", "    20\n");
    let theirs_too = git(&db, repo, &["commit", "-q", "-am", "both"], Some(&ida));
    std::fs::write(repo.join("src/lib.rs"), &both).expect("write");
    let theirs_too_staged = git(&db, repo, &["commit", "-q", "-am", "both"], Some(&ida));
    assert!(!theirs_too.ok || !theirs_too_staged.ok);
    assert!(
        theirs_too_staged
            .stderr
            .contains("src/lib.rs#two is locked exclusively by 'profile'"),
        "committing profile's unfinished function is refused: {}",
        theirs_too_staged.stderr
    );
    std::fs::write(repo.join("src/lib.rs"), LIB.replace("    1\n", "    10\n")).expect("write");
    assert!(git(&db, repo, &["add", "src/lib.rs"], None).ok);
    std::fs::write(repo.join("src/lib.rs"), &both).expect("write");
    let mine = git(&db, repo, &["commit", "-q", "-m", "one"], Some(&ida));
    assert!(mine.ok, "{}", mine.stderr);
    assert!(
        mine.stderr
            .contains("released your edit locks on src/lib.rs#one"),
        "{}",
        mine.stderr
    );
    let locks = b.call("lock_list", json!({})).await;
    let held: Vec<&str> = locks["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .filter_map(|l| l["file_path"].as_str())
        .collect();
    assert_eq!(
        held,
        ["src/lib.rs#two"],
        "profile's change is still uncommitted"
    );
    let now_free = edit(&db, repo, "c-b", &idb, "src/lib.rs", "    10\n");
    assert!(
        text(&now_free).contains("src/lib.rs#one is now locked"),
        "committed: free again: {now_free}"
    );
}

#[tokio::test]
async fn another_worktree_is_warned_not_refused_and_the_guard_sees_a_stale_base() {
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let wt = tempfile::tempdir().expect("worktree folder");
    let wt = wt.path().join("feature");
    let added = git(
        &db,
        repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature",
            &wt.display().to_string(),
        ],
        None,
    );
    assert!(added.ok, "{}", added.stderr);
    let a = db.server_of_client("525311", Some(repo)).await;
    let b = db.server_of_client("525312", Some(&wt)).await;
    let ida = a.register("auth", "shop", "main").await;
    let idb = b.register("profile", "shop", "feature").await;

    edit(&db, repo, "c-a", &ida, "src/lib.rs", "    1\n");
    let warned = edit(&db, &wt, "c-b", &idb, "src/lib.rs", "    1\n");
    assert!(warned.get("permissionDecision").is_none(), "{warned}");
    let note = text(&warned);
    assert!(
        note.contains("`src/lib.rs#one` has uncommitted changes by 'auth' in"),
        "who and what: {note}"
    );
    assert!(note.contains("(branch main)"), "and where: {note}");
    assert!(note.contains("src/lib.rs#one is now locked"), "{note}");
    let editing = b
        .call("conflict_check", json!({"file_paths": ["src/lib.rs"]}))
        .await;
    assert_eq!(
        editing["safe_to_proceed"], true,
        "auth's edit lock binds its own worktree: {editing}"
    );
    let check = b
        .call("conflict_check", json!({"intent_type": "git_commit"}))
        .await;
    let unmerged: Vec<&Value> = check["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .filter(|c| c["type"] == "unmerged_change")
        .collect();
    assert_eq!(unmerged.len(), 1, "{check}");
    assert_eq!(unmerged[0]["session_name"], "auth");
    assert_eq!(unmerged[0]["file_path"], "src/lib.rs#one");
    assert_eq!(unmerged[0]["severity"], "medium");

    // main moves on: auth commits its change to one().
    std::fs::write(repo.join("src/lib.rs"), LIB.replace("    1\n", "    10\n")).expect("write");
    let committed = git(&db, repo, &["commit", "-q", "-am", "one"], Some(&ida));
    assert!(committed.ok, "{}", committed.stderr);
    // profile commits its own change of one() on its branch: allowed, warned that main
    // changed the same function meanwhile (auth's change is in main now: merged, not pending).
    std::fs::write(wt.join("src/lib.rs"), LIB.replace("    1\n", "    11\n")).expect("write");
    let theirs = git(&db, &wt, &["commit", "-q", "-am", "one too"], Some(&idb));
    assert!(theirs.ok, "{}", theirs.stderr);
    assert!(
        theirs.stderr.contains("stale base: main has 1 commit(s)")
            && theirs.stderr.contains("`src/lib.rs#one`"),
        "{}",
        theirs.stderr
    );
    assert!(
        !theirs.stderr.contains("has unmerged changes"),
        "{}",
        theirs.stderr
    );
    let check = b
        .call(
            "conflict_check",
            json!({"intent_type": "git_merge", "target": "main"}),
        )
        .await;
    assert_eq!(check["stale_base"]["target"], "main", "{check}");
    assert_eq!(check["stale_base"]["behind"], 1, "{check}");
    assert_eq!(
        check["stale_base"]["overlapping"],
        json!(["src/lib.rs#one"]),
        "{check}"
    );
}

#[tokio::test]
async fn outside_git_an_edit_lock_lasts_its_ttl() {
    let db = Db::new();
    let dir = tempfile::tempdir().expect("a plain folder");
    let folder = dir.path();
    std::fs::write(folder.join("lib.rs"), LIB).expect("write");
    let a = db.server_of_client("525331", Some(folder)).await;
    let ida = a.register("auth", "shop", "main").await;
    let locked = edit(&db, folder, "c-a", &ida, "lib.rs", "    1\n");
    let note = text(&locked);
    assert!(
        note.contains("lib.rs#one is now locked exclusively for you"),
        "{note}"
    );
    assert!(
        note.contains("editing it again renews the lock") && !note.contains("commit"),
        "nothing is ever committed here: {note}"
    );
}
