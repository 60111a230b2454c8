//! The pre-commit guard in real temporary git repositories, installed with
//! `install-git-hook` and run by `git commit`, with two sessions in real MCP servers.

use std::path::Path;

use crate::common::{self, Db, Run, Server};
use serde_json::json;

/// Runs git in `repo` as someone committing there; `env` says who (which session).
fn git(db: &Db, repo: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let run = git_run(db, repo, args, env);
    (run.ok, format!("{}{}", run.stdout, run.stderr))
}

/// [`git`], with its output as it came.
pub(crate) fn git_run(db: &Db, repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let repo = repo.display().to_string();
    let args: Vec<&str> = ["-C", repo.as_str()].iter().chain(args).copied().collect();
    let env: Vec<(&str, &str)> = [
        ("GIT_AUTHOR_NAME", "t"),
        ("GIT_AUTHOR_EMAIL", "t@example.com"),
        ("GIT_COMMITTER_NAME", "t"),
        ("GIT_COMMITTER_EMAIL", "t@example.com"),
    ]
    .iter()
    .chain(env)
    .copied()
    .collect();
    db.run_program(Path::new("git"), &args, &env, None, "")
}

/// `git commit -q -m message` as `session` (its id or name), or as a person without one.
fn commit(db: &Db, repo: &Path, message: &str, session: Option<&str>) -> (bool, String) {
    let env: Vec<(&str, &str)> = session
        .map(|id| ("MCP_COORDINATOR_SESSION", id))
        .into_iter()
        .collect();
    git(db, repo, &["commit", "-q", "-m", message], &env)
}

/// A repository with one commit and the guard installed.
fn repository(db: &Db) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    let repo = dir.path();
    assert!(git(db, repo, &["init", "-q", "-b", "main"], &[]).0);
    std::fs::create_dir_all(repo.join("src")).expect("src");
    for file in ["src/a.ts", "src/b.ts"] {
        std::fs::write(repo.join(file), "v1\n").expect("write");
    }
    assert!(git(db, repo, &["add", "."], &[]).0);
    assert!(git(db, repo, &["commit", "-q", "-m", "start"], &[]).0);
    let installed = db.run(
        &["install-git-hook", "--repo", &repo.display().to_string()],
        &[],
        None,
        "",
    );
    assert!(installed.ok, "{}", installed.stderr);
    assert!(
        installed
            .stdout
            .starts_with("Installed the pre-commit guard at ")
    );
    dir
}

/// Changes and stages `file`.
fn stage(db: &Db, repo: &Path, file: &str, content: &str) {
    std::fs::write(repo.join(file), content).expect("write");
    assert!(git(db, repo, &["add", file], &[]).0);
}

/// Two AI sessions of project "shop", each with its own client process.
async fn sessions(db: &Db, repo: &Path) -> (Server, String, Server, String) {
    let a = db.server_of_client("525201", Some(repo)).await;
    let b = db.server_of_client("525202", Some(repo)).await;
    let ida = a.register("auth", "shop", "main").await;
    let idb = b.register("profile", "shop", "main").await;
    (a, ida, b, idb)
}

#[tokio::test]
async fn a_commit_of_a_file_another_session_holds_is_refused() {
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let (a, ida, _b, idb) = sessions(&db, repo).await;
    a.call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    a.call(
        "lock_acquire",
        json!({"file_path": "src/b.ts", "lock_type": "shared"}),
    )
    .await;

    stage(&db, repo, "src/a.ts", "v2 by profile\n");
    let (ok, out) = commit(&db, repo, "profile edits", Some(&idb));
    assert!(!ok, "refused");
    assert!(
        out.contains("Commit refused by mcp-session-coordinator (project shop):"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "src/a.ts is locked exclusively by 'auth' ({ida}) until "
        )),
        "{out}"
    );
    assert!(out.contains("git commit --no-verify"), "{out}");

    let (ok, out) = commit(&db, repo, "a person commits", None);
    assert!(
        !ok && out.contains("locked exclusively by 'auth'"),
        "a person is refused too; the project comes from the sessions in this checkout: {out}"
    );

    let (ok, out) = commit(&db, repo, "auth's own work", Some("auth"));
    assert!(ok, "the holder commits its own file: {out}");

    stage(&db, repo, "src/b.ts", "v2\n");
    let (ok, out) = commit(&db, repo, "b", Some(&idb));
    assert!(ok, "a reader's shared lock does not stop a commit: {out}");

    stage(&db, repo, "src/a.ts", "v3\n");
    let (ok, _) = git(
        &db,
        repo,
        &["commit", "-q", "--no-verify", "-m", "forced"],
        &[("MCP_COORDINATOR_SESSION", &idb)],
    );
    assert!(ok, "--no-verify is the escape hatch");

    std::fs::rename(repo.join("src/a.ts"), repo.join("src/moved.ts")).expect("move");
    assert!(git(&db, repo, &["add", "-A"], &[]).0);
    let (ok, out) = commit(&db, repo, "move", Some(&idb));
    assert!(
        !ok && out.contains("src/a.ts is locked"),
        "moving a held file away: {out}"
    );

    a.call("lock_release", json!({"file_path": "src/a.ts"}))
        .await;
    let (ok, out) = commit(&db, repo, "move", Some(&idb));
    assert!(ok, "released: {out}");
}

#[tokio::test]
async fn no_commit_while_another_session_rebases() {
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let (a, ida, _b, idb) = sessions(&db, repo).await;
    let intent = a
        .call(
            "intent_announce",
            json!({"intent_type": "git_rebase", "description": "Rebasing onto latest main"}),
        )
        .await;
    stage(&db, repo, "src/b.ts", "v2\n");
    let (ok, out) = commit(&db, repo, "b", Some(&idb));
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "'auth' ({ida}) is rebasing main: Rebasing onto latest main (git_rebase, announced "
        )),
        "{out}"
    );
    let (ok, out) = commit(&db, repo, "b", Some(&ida));
    assert!(
        ok,
        "its own rebase does not stop the rebasing session: {out}"
    );

    stage(&db, repo, "src/b.ts", "v3\n");
    a.call(
        "intent_clear",
        json!({"intent_id": intent["intent_id"].clone()}),
    )
    .await;
    let (ok, out) = commit(&db, repo, "b", Some(&idb));
    assert!(ok, "the rebase is over: {out}");
}

#[tokio::test]
async fn installing_keeps_a_foreign_hook_only_when_asked_and_runs_it_after() {
    let db = Db::new();
    let dir = tempfile::tempdir().expect("temporary folder");
    let repo = dir.path();
    assert!(git(&db, repo, &["init", "-q", "-b", "main"], &[]).0);
    let hook = repo.join(".git/hooks/pre-commit");
    std::fs::create_dir_all(repo.join(".git/hooks")).expect("hooks");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'lint ran' > \"$(git rev-parse --show-toplevel)/lint.out\"\nexit 1\n",
    )
    .expect("foreign hook");
    make_executable(&hook);
    let repo_arg = repo.display().to_string();

    let refused = db.run(&["install-git-hook", "--repo", &repo_arg], &[], None, "");
    assert!(!refused.ok);
    assert!(
        refused
            .stderr
            .contains("already holds a pre-commit hook that is not ours; pass --force"),
        "{}",
        refused.stderr
    );
    let forced = db.run(
        &["install-git-hook", "--repo", &repo_arg, "--force"],
        &[],
        None,
        "",
    );
    assert!(forced.ok, "{}", forced.stderr);
    assert!(repo.join(".git/hooks/pre-commit.local").exists());
    let again = db.run(&["install-git-hook", "--repo", &repo_arg], &[], None, "");
    assert!(
        again.ok,
        "ours is replaced without --force: {}",
        again.stderr
    );

    std::fs::write(repo.join("x.txt"), "x").expect("x");
    assert!(git(&db, repo, &["add", "x.txt"], &[]).0);
    let (ok, _) = commit(&db, repo, "x", None);
    assert!(!ok, "the kept hook still decides after the guard passed");
    assert!(repo.join("lint.out").exists(), "and it ran");
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) {}

#[tokio::test]
async fn the_guard_refuses_with_its_own_exit_code_and_a_broken_one_lets_commits_through() {
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let (a, _ida, _b, idb) = sessions(&db, repo).await;
    a.call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    stage(&db, repo, "src/a.ts", "v2\n");
    let direct = db.run(
        &["guard", "pre-commit"],
        &[("MCP_COORDINATOR_SESSION", &idb)],
        Some(repo),
        "",
    );
    assert_eq!(direct.code, Some(3), "refused: {}", direct.stdout);

    // A database that cannot be opened (a folder; on PostgreSQL, an unreadable URL): the guard
    // cannot check, and says so.
    let broken = tempfile::tempdir().expect("a folder where the database should be");
    let broken_path = broken.path().display().to_string();
    let mut env = vec![
        ("MCP_COORDINATOR_SESSION", idb.as_str()),
        ("MCP_COORDINATOR_DB_PATH", broken_path.as_str()),
    ];
    if common::postgres_server().is_some() {
        env.push(("MCP_COORDINATOR_DB_URL", "postgres://broken:not-a-port/db"));
    }
    let (ok, out) = git(&db, repo, &["commit", "-q", "-m", "unchecked"], &env);
    assert!(ok, "a broken guard does not block: {out}");
    assert!(
        out.contains("could not check this commit (exit 1); committing anyway"),
        "{out}"
    );
}

#[tokio::test]
async fn a_person_committing_in_a_linked_worktree_meets_the_locks_of_the_main_one() {
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let side = tempfile::tempdir().expect("a folder for the worktree");
    let worktree = side.path().join("wt");
    let worktree_arg = worktree.display().to_string();
    let (ok, out) = git(
        &db,
        repo,
        &["worktree", "add", "-q", "-b", "side", &worktree_arg],
        &[],
    );
    assert!(ok, "{out}");
    let (a, _, _b, _) = sessions(&db, repo).await;
    a.call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;

    stage(&db, &worktree, "src/a.ts", "from the worktree\n");
    let (ok, out) = commit(&db, &worktree, "side", None);
    assert!(!ok, "refused");
    assert!(
        out.contains("(project shop)") && out.contains("src/a.ts is locked exclusively by 'auth'"),
        "{out}"
    );
}

#[tokio::test]
async fn the_guard_knows_its_own_session_from_the_process_tree() {
    // This test process is the AI client that runs `git commit`, as an agent's shell would;
    // "auth" belongs to another client.
    let db = Db::new();
    let dir = repository(&db);
    let repo = dir.path();
    let other = db.server_of_client("525301", Some(repo)).await;
    other.register("auth", "shop", "main").await;
    let mine = Server::spawn_in(
        &db.path(),
        &[],
        common::Lifecycle::Initialize(rmcp::model::ProtocolVersion::V_2025_06_18),
        Some(repo),
    )
    .await;
    mine.register("profile", "shop", "main").await;
    other
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    mine.call("lock_acquire", json!({"file_path": "src/b.ts"}))
        .await;

    stage(&db, repo, "src/b.ts", "mine\n");
    let (ok, out) = commit(&db, repo, "my own file", None);
    assert!(
        ok,
        "its own lock, found through git and the hook script: {out}"
    );
    stage(&db, repo, "src/a.ts", "theirs\n");
    let (ok, out) = commit(&db, repo, "their file", None);
    assert!(!ok && out.contains("locked exclusively by 'auth'"), "{out}");
}
