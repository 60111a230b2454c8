//! In real temporary git repositories.

use super::*;

fn run(root: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs")
        .status
        .success();
    assert!(ok, "git {args:?}");
}

const LIB: &str = "use std::fmt;\n\nfn one() -> u32 {\n    1\n}\n\nfn two() -> u32 {\n    2\n}\n";

fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = dir.path();
    run(root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("lib.rs"), LIB).expect("write");
    std::fs::write(root.join("my notes.md"), "hello\n").expect("write");
    run(root, &["add", "."]);
    run(root, &["commit", "-q", "-m", "start"]);
    dir
}

fn write(root: &Path, file: &str, text: &str) {
    std::fs::write(root.join(file), text).expect("write");
}

#[test]
fn a_working_tree_change_touches_the_items_it_is_in() {
    let dir = repository();
    let root = dir.path();
    assert_eq!(worktree_touch(root, "lib.rs").expect("diff"), Touch::Clean);
    write(root, "lib.rs", &LIB.replace("    1\n", "    10\n"));
    assert_eq!(
        worktree_touch(root, "lib.rs").expect("diff"),
        Touch::Symbols(vec!["one".into()])
    );
    write(
        root,
        "lib.rs",
        &LIB.replace("use std::fmt;", "use std::io;"),
    );
    assert_eq!(
        worktree_touch(root, "lib.rs").expect("diff"),
        Touch::Whole,
        "an import is outside every item"
    );
    write(root, "lib.rs", &LIB.replace("    2\n", ""));
    assert_eq!(
        worktree_touch(root, "lib.rs").expect("diff"),
        Touch::Symbols(vec!["two".into()]),
        "a deleted line touches the item it was in"
    );
    write(root, "my notes.md", "bye\n");
    assert_eq!(
        worktree_touch(root, "my notes.md").expect("diff"),
        Touch::Whole,
        "no items in Markdown; a name with a space works"
    );
    write(root, "new.rs", "fn x() {}\n");
    assert_eq!(worktree_touch(root, "new.rs").expect("diff"), Touch::Whole);
    assert_eq!(
        Touch::Symbols(vec!["A.b".into()]).keys("src/x.py"),
        ["src/x.py#A.b"]
    );
}

#[test]
fn staged_changes_and_committed_files() {
    let dir = repository();
    let root = dir.path();
    write(
        root,
        "svc.py",
        "class Svc:\n    def login(self):\n        return 1\n\n    def logout(self):\n        return 2\n",
    );
    run(root, &["add", "svc.py"]);
    run(root, &["commit", "-q", "-m", "svc"]);
    assert_eq!(committed_files(root).expect("files"), ["svc.py"]);
    write(
        root,
        "svc.py",
        "class Svc:\n    def login(self):\n        return 10\n\n    def logout(self):\n        return 2\n",
    );
    run(root, &["add", "svc.py"]);
    // Unstaged changes are not what the commit carries.
    write(root, "lib.rs", &LIB.replace("    2\n", "    20\n"));
    assert_eq!(
        staged_touches(root).expect("staged"),
        [(
            "svc.py".to_owned(),
            Touch::Symbols(vec!["Svc.login".into()])
        )]
    );
}

#[test]
fn a_branch_behind_main_sees_what_main_changed_since_it_forked() {
    let dir = repository();
    let root = dir.path();
    run(root, &["checkout", "-q", "-b", "feature"]);
    assert_eq!(target_branch(root).as_deref(), Some("main"));
    assert_eq!(divergence(root, "main").expect("diverged"), None);
    write(
        root,
        "lib.rs",
        &LIB.replace("    1\n", "    11\n")
            .replace("    2\n", "    22\n"),
    );
    run(root, &["commit", "-q", "-am", "mine"]);
    run(root, &["checkout", "-q", "main"]);
    assert_eq!(target_branch(root), None, "main goes into nothing");
    write(root, "lib.rs", &LIB.replace("    1\n", "    100\n"));
    run(root, &["commit", "-q", "-am", "theirs"]);
    run(root, &["checkout", "-q", "feature"]);
    let found = divergence(root, "main").expect("diff").expect("diverged");
    assert_eq!(found.behind, 1);
    assert_eq!(found.theirs, ["lib.rs#one"]);
    assert_eq!(found.mine, ["lib.rs#one", "lib.rs#two"]);
}
