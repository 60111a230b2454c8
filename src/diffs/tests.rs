//! Against real git repositories in temporary folders, as the hook and the guard meet them.

use std::path::Path;
use std::process::Command;

use super::*;

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.root())
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn write(&self, path: &str, text: &str) {
        let file = self.root().join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).expect("a folder");
        }
        std::fs::write(file, text).expect("a file");
    }

    /// Replaces the one occurrence of `old` in a file.
    fn edit(&self, path: &str, old: &str, new: &str) {
        let text = std::fs::read_to_string(self.root().join(path)).expect("the file");
        assert_eq!(text.matches(old).count(), 1, "{old:?} once in {path}");
        self.write(path, &text.replacen(old, new, 1));
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn touch(&self, path: &str) -> Touch {
        worktree_touch(self.root(), path).expect("git answers")
    }
}

const LIB: &str = "use std::fmt;\n\n/// Adds.\npub fn f(a: u8) -> u8 {\n    a + 1\n}\n\n\
pub fn g(a: u8) -> u8 {\n    a * 2\n}\n\npub struct S;\n\nimpl fmt::Display for S {\n    \
fn fmt(&self, out: &mut fmt::Formatter) -> fmt::Result {\n        write!(out, \"s\")\n    }\n}\n";

const APP: &str = "import os\n\n\nclass Service:\n    def start(self):\n        return 1\n\n    \
def stop(self):\n        return 2\n";

fn symbols(names: &[&str]) -> Touch {
    Touch::Symbols(names.iter().map(|n| (*n).to_owned()).collect())
}

fn repo_with_files() -> Repo {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    repo.write("app.py", APP);
    repo.write("README.md", "# Hi\n");
    repo.commit("first");
    repo
}

#[test]
fn a_clean_file_touches_nothing() {
    let repo = repo_with_files();
    assert_eq!(repo.touch("src/lib.rs"), Touch::Clean);
    assert_eq!(Touch::Clean.keys("src/lib.rs"), Vec::<String>::new());
}

#[test]
fn an_edit_inside_one_function_touches_that_symbol() {
    let repo = repo_with_files();
    repo.edit("src/lib.rs", "a + 1", "a + 10");
    assert_eq!(repo.touch("src/lib.rs"), symbols(&["f"]));
    repo.edit("src/lib.rs", "write!(out, \"s\")", "write!(out, \"S\")");
    let touch = repo.touch("src/lib.rs");
    assert_eq!(touch, symbols(&["S.fmt", "f"]));
    assert_eq!(
        touch.keys("src/lib.rs"),
        ["src/lib.rs#S.fmt", "src/lib.rs#f"]
    );
    // Back to its committed content: nothing left to hold.
    repo.write("src/lib.rs", LIB);
    assert_eq!(repo.touch("src/lib.rs"), Touch::Clean);
}

#[test]
fn deleting_lines_touches_the_function_they_were_in() {
    let repo = repo_with_files();
    repo.edit("src/lib.rs", "    a * 2\n", "");
    assert_eq!(repo.touch("src/lib.rs"), symbols(&["g"]));
    repo.write("src/lib.rs", LIB);
    repo.edit(
        "src/lib.rs",
        "pub fn g(a: u8) -> u8 {\n    a * 2\n}\n\n",
        "",
    );
    assert_eq!(repo.touch("src/lib.rs"), symbols(&["g"]));
}

#[test]
fn an_edit_outside_every_item_touches_the_whole_file() {
    let repo = repo_with_files();
    repo.edit(
        "src/lib.rs",
        "use std::fmt;",
        "use std::fmt::{self, Write};",
    );
    assert_eq!(repo.touch("src/lib.rs"), Touch::Whole);
    assert_eq!(Touch::Whole.keys("src/lib.rs"), ["src/lib.rs"]);
    repo.edit("README.md", "Hi", "Hello");
    assert_eq!(repo.touch("README.md"), Touch::Whole);
}

#[test]
fn new_deleted_and_ignored_files() {
    let repo = repo_with_files();
    repo.write(".gitignore", "*.log\n");
    repo.write("new.rs", "fn n() {}\n");
    assert_eq!(repo.touch("new.rs"), Touch::Whole);
    repo.write("debug.log", "x\n");
    assert_eq!(repo.touch("debug.log"), Touch::Clean);
    std::fs::remove_file(repo.root().join("app.py")).expect("remove");
    assert_eq!(repo.touch("app.py"), Touch::Whole);
    assert_eq!(repo.touch("never.rs"), Touch::Clean);
}

#[test]
fn paths_with_spaces_non_ascii_and_brackets() {
    let repo = repo_with_files();
    for path in ["my dir/café.py", "app/[id]/page.py"] {
        repo.write(path, APP);
        repo.commit("add");
        repo.edit(path, "return 2", "return 3");
        assert_eq!(repo.touch(path), symbols(&["Service.stop"]), "{path}");
        repo.git(&["add", "-A"]);
        let staged = staged_touches(repo.root()).expect("git answers");
        assert_eq!(
            staged,
            [(path.to_owned(), symbols(&["Service.stop"]))],
            "{path}"
        );
        repo.commit("edit");
    }
}

#[test]
fn a_staged_edit_of_a_python_method_touches_it() {
    let repo = repo_with_files();
    repo.edit("app.py", "return 1", "return 11");
    repo.edit("README.md", "Hi", "Hello");
    repo.write("added.py", "X = 1\n");
    repo.git(&["add", "app.py", "README.md", "added.py"]);
    // Unstaged changes are not what the commit holds.
    repo.edit("app.py", "return 2", "return 22");
    let staged = staged_touches(repo.root()).expect("git answers");
    assert_eq!(
        staged,
        [
            ("README.md".to_owned(), Touch::Whole),
            ("added.py".to_owned(), Touch::Whole),
            ("app.py".to_owned(), symbols(&["Service.start"])),
        ]
    );
}

#[test]
fn the_first_commit_is_all_new() {
    let repo = Repo::new();
    repo.write("a.rs", "fn a() {}\n");
    assert_eq!(repo.touch("a.rs"), Touch::Whole);
    repo.git(&["add", "a.rs"]);
    let staged = staged_touches(repo.root()).expect("git answers");
    assert_eq!(staged, [("a.rs".to_owned(), Touch::Whole)]);
    repo.commit("root");
    assert_eq!(committed_files(repo.root()).expect("git answers"), ["a.rs"]);
}

#[test]
fn committed_files_are_those_of_the_last_commit() {
    let repo = repo_with_files();
    assert_eq!(
        committed_files(repo.root()).expect("git answers"),
        ["README.md", "app.py", "src/lib.rs"]
    );
    repo.edit("app.py", "return 1", "return 11");
    repo.git(&["mv", "README.md", "READ ME.md"]);
    repo.commit("second");
    assert_eq!(
        committed_files(repo.root()).expect("git answers"),
        ["READ ME.md", "README.md", "app.py"]
    );
}

#[test]
fn divergence_names_what_both_sides_changed() {
    let repo = repo_with_files();
    repo.git(&["checkout", "-q", "-b", "work"]);
    assert_eq!(divergence(repo.root(), "main").expect("git answers"), None);
    assert_eq!(target_branch(repo.root()).as_deref(), Some("main"));
    repo.git(&["checkout", "-q", "main"]);
    assert_eq!(target_branch(repo.root()), None);
    repo.edit("src/lib.rs", "a + 1", "a + 2");
    repo.commit("main changes f");
    repo.git(&["checkout", "-q", "work"]);
    repo.edit("src/lib.rs", "a + 1", "a + 3");
    repo.commit("work changes f");
    // Not committed yet, still this checkout's change.
    repo.edit("src/lib.rs", "a * 2", "a * 4");
    let found = divergence(repo.root(), "main")
        .expect("git answers")
        .expect("behind main");
    assert_eq!(
        found,
        Divergence {
            target: "main".to_owned(),
            behind: 1,
            theirs: vec!["src/lib.rs#f".to_owned()],
            mine: vec!["src/lib.rs#f".to_owned(), "src/lib.rs#g".to_owned()],
        }
    );
    repo.git(&["stash", "-q"]);
    repo.git(&["merge", "-q", "-X", "ours", "main", "-m", "merge"]);
    assert_eq!(divergence(repo.root(), "main").expect("git answers"), None);
}

#[test]
fn outside_a_repository_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let err = worktree_touch(dir.path(), "a.rs").expect_err("no repository");
    assert!(matches!(err, DiffError::NotARepository(_)), "{err}");
    let err = staged_touches(dir.path()).expect_err("no repository");
    assert!(matches!(err, DiffError::NotARepository(_)), "{err}");
}

#[test]
fn hunk_headers_and_quoted_paths_are_read() {
    let patch = b"diff --git a/x y.rs b/x y.rs\nindex 1..2 100644\n--- a/x y.rs\n+++ b/x y.rs\t\n\
@@ -3 +3,2 @@ fn f()\n-a\n+b\n+c\n@@ -9,2 +10,0 @@\n-d\n-e\n\
diff --git \"a/q\\\"\\303\\251.rs\" \"b/q\\\"\\303\\251.rs\"\n@@ -0,0 +1 @@\n+z\n";
    let found = hunks(patch);
    assert_eq!(
        found.get("x y.rs"),
        Some(&Hunks {
            old: vec![3..=3, 9..=10],
            new: vec![3..=4],
        })
    );
    assert_eq!(
        found.get("q\"é.rs"),
        Some(&Hunks {
            old: vec![],
            new: vec![1..=1],
        })
    );
}
