//! What a git checkout has changed, as lock keys: `path` for a whole file, `path#Symbol` for
//! the named items a change touches.
//!
//! A lock that lasts from a session's first edit until its commit needs to know whether the
//! change is still there; the git guard needs what a commit holds; sessions in other worktrees
//! need to see each other's unmerged work. All of it is `git diff -U0` hunks mapped to symbols:
//! removed lines on the old version of a file, added lines on the new one, so deleting a whole
//! function names that function. Git is run as a process (`git -C ROOT ...`) so that its
//! configuration, worktrees and index are read exactly as the user's git reads them.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::checkout::Checkout;
use crate::patterns;
use crate::symbols::{self, Language};

/// Why git could not say what changed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot run git (is it installed and on PATH?): {0}")]
    GitMissing(#[source] std::io::Error),
    #[error("`git {command}` failed: {stderr}")]
    GitFailed { command: String, stderr: String },
    #[error("{} is not in a git repository", .0.display())]
    NotARepository(PathBuf),
}

/// What a file's change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    /// No change.
    Clean,
    /// The whole file: new, deleted, binary, of an unknown language, or changed outside every
    /// named item.
    Whole,
    /// These named items only (sorted).
    Symbols(Vec<String>),
}

impl Touch {
    /// The lock keys of this change to `path`.
    pub fn keys(&self, path: &str) -> Vec<String> {
        match self {
            Touch::Clean => Vec::new(),
            Touch::Whole => vec![path.to_owned()],
            Touch::Symbols(names) => names.iter().map(|s| format!("{path}#{s}")).collect(),
        }
    }
}

/// The working tree's change to one file against HEAD (untracked file: Whole; deleted: Whole;
/// unknown language or a hunk outside every item: Whole). An ignored file is Clean: it is never
/// committed, so it is nobody's change.
pub fn worktree_touch(root: &Path, path: &str) -> Result<Touch, DiffError> {
    let changed = match changes(root, "HEAD", New::WorkTree, &[path]) {
        Ok(changed) => changed,
        // No commit yet: everything in the checkout is new.
        Err(DiffError::GitFailed { .. }) if !has_head(root)? => {
            let exists = root.join(path).exists();
            return Ok(if exists { Touch::Whole } else { Touch::Clean });
        }
        Err(e) => return Err(e),
    };
    if let Some((_, touch)) = changed.into_iter().find(|(p, _)| p == path) {
        return Ok(touch);
    }
    Ok(if untracked(root, &[path])?.is_empty() {
        Touch::Clean
    } else {
        Touch::Whole
    })
}

/// Every staged file's change against HEAD (index content from `git show :path`), renames as
/// delete + add (`--no-renames`); what the pre-commit guard checks.
pub fn staged_touches(root: &Path) -> Result<Vec<(String, Touch)>, DiffError> {
    let base = if has_head(root)? { "HEAD" } else { EMPTY_TREE };
    changes(root, base, New::Index, &[])
}

/// The files the HEAD commit changed against its first parent (all its files for a root commit).
pub fn committed_files(root: &Path) -> Result<Vec<String>, DiffError> {
    let out = git(
        root,
        &[
            "show",
            "--first-parent",
            "--no-renames",
            "--name-only",
            "-z",
            "--format=",
            "HEAD",
        ],
    )?;
    Ok(fields(&out).map(str::to_owned).collect())
}

/// The branch a checkout's work will be merged into: MCP_COORDINATOR_TARGET_BRANCH when set,
/// else origin/HEAD's branch, else `main`, else `master` — whichever exists; None when it is the
/// branch checked out or none exists.
pub fn target_branch(root: &Path) -> Option<String> {
    let mut candidates = Vec::new();
    match std::env::var("MCP_COORDINATOR_TARGET_BRANCH") {
        Ok(name) if !name.trim().is_empty() => candidates.push(name.trim().to_owned()),
        _ => {
            let origin = git(
                root,
                &["symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"],
            )
            .ok()
            .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
            .filter(|name| !name.is_empty());
            // The local branch when there is one: that is where worktrees merge.
            if let Some(remote) = origin {
                candidates.extend(remote.strip_prefix("origin/").map(str::to_owned));
                candidates.push(remote);
            }
            candidates.extend(["main".to_owned(), "master".to_owned()]);
        }
    }
    let found = candidates.into_iter().find(|name| commit_of(root, name))?;
    let current = Checkout::around(root).branch;
    (current.as_deref() != Some(found.as_str())).then_some(found)
}

/// Stale base: since the merge base of HEAD and `target`, the keys `target` changed (symbols
/// from target's version of each file) and the keys this checkout changed (commits since the
/// merge base plus uncommitted working-tree changes, symbols from the working tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub target: String,
    /// Commits on `target` that HEAD does not contain.
    pub behind: usize,
    pub theirs: Vec<String>,
    pub mine: Vec<String>,
}

impl Divergence {
    /// What both sides changed: the target's keys that overlap one of this checkout's.
    pub fn overlapping(&self) -> Vec<String> {
        self.theirs
            .iter()
            .filter(|theirs| {
                self.mine
                    .iter()
                    .any(|mine| patterns::overlaps(mine, theirs))
            })
            .cloned()
            .collect()
    }
}

/// None when HEAD already contains `target`, or when they share no history.
pub fn divergence(root: &Path, target: &str) -> Result<Option<Divergence>, DiffError> {
    let resolved = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "-q",
            "--end-of-options",
            &rev(target),
        ],
    )?;
    let target_commit = String::from_utf8_lossy(&resolved).trim().to_owned();
    let behind = git(
        root,
        &[
            "rev-list",
            "--count",
            "--end-of-options",
            &format!("HEAD..{target_commit}"),
        ],
    )?;
    let behind: usize = String::from_utf8_lossy(&behind).trim().parse().unwrap_or(0);
    if behind == 0 {
        return Ok(None);
    }
    // Exit status 1 without a word: no common ancestor.
    let Ok(base) = git(
        root,
        &["merge-base", "--end-of-options", "HEAD", &target_commit],
    ) else {
        return Ok(None);
    };
    let base = String::from_utf8_lossy(&base).trim().to_owned();
    let keys = |changed: Vec<(String, Touch)>| -> Vec<String> {
        changed.iter().flat_map(|(p, t)| t.keys(p)).collect()
    };
    let theirs = keys(changes(root, &base, New::Tree(&target_commit), &[])?);
    let mut mine = keys(changes(root, &base, New::WorkTree, &[])?);
    mine.extend(untracked(root, &[])?);
    mine.sort();
    mine.dedup();
    Ok(Some(Divergence {
        target: target.to_owned(),
        behind,
        theirs,
        mine,
    }))
}

/// The tree of a repository without commits (SHA-1), the base of a first commit's changes.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// The new side of a comparison.
#[derive(Clone, Copy)]
enum New<'a> {
    WorkTree,
    Index,
    Tree(&'a str),
}

/// Every file changed between the tree `old` and `new` (those of `paths` only, unless empty),
/// with what each change touches.
fn changes(
    root: &Path,
    old: &str,
    new: New,
    paths: &[&str],
) -> Result<Vec<(String, Touch)>, DiffError> {
    let mut revs = vec!["--end-of-options".to_owned(), old.to_owned()];
    match new {
        New::WorkTree => {}
        New::Index => revs.insert(0, "--cached".to_owned()),
        New::Tree(rev) => revs.push(rev.to_owned()),
    }
    let mut args: Vec<String> = ["diff", "--no-renames", "--name-status", "-z"]
        .map(str::to_owned)
        .to_vec();
    args.extend(revs.iter().cloned());
    args.push("--".to_owned());
    args.extend(paths.iter().map(|p| (*p).to_owned()));
    let listing = git(root, &args)?;
    let mut statuses = fields(&listing);
    let mut changed: BTreeMap<String, Touch> = BTreeMap::new();
    let mut modified: Vec<(String, Language)> = Vec::new();
    while let (Some(status), Some(path)) = (statuses.next(), statuses.next()) {
        match (status, Language::of(path)) {
            // A path with a line break cannot be named to `git cat-file --batch`.
            ("M", Some(language)) if !path.contains('\n') => {
                modified.push((path.to_owned(), language));
            }
            _ => {
                changed.insert(path.to_owned(), Touch::Whole);
            }
        }
    }
    if modified.is_empty() {
        return Ok(changed.into_iter().collect());
    }
    let mut args: Vec<String> = [
        "diff",
        "--no-renames",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--src-prefix=a/",
        "--dst-prefix=b/",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(revs);
    args.push("--".to_owned());
    args.extend(modified.iter().map(|(p, _)| p.clone()));
    let mut hunks = hunks(&git(root, &args)?);
    let mut names: Vec<String> = modified.iter().map(|(p, _)| format!("{old}:{p}")).collect();
    match new {
        New::WorkTree => {}
        New::Index => names.extend(modified.iter().map(|(p, _)| format!(":{p}"))),
        New::Tree(rev) => names.extend(modified.iter().map(|(p, _)| format!("{rev}:{p}"))),
    }
    let mut blobs = blobs(root, &names)?.into_iter();
    let olds: Vec<Option<Vec<u8>>> = blobs.by_ref().take(modified.len()).collect();
    for ((path, language), old) in modified.into_iter().zip(olds) {
        let new = match new {
            New::WorkTree => std::fs::read(root.join(&path)).ok(),
            _ => blobs.next().flatten(),
        };
        let touch = match (hunks.remove(&path), old, new) {
            (Some(hunks), Some(old), Some(new)) => touch(language, &hunks, &old, &new),
            _ => Touch::Whole,
        };
        changed.insert(path, touch);
    }
    Ok(changed.into_iter().collect())
}

/// The lines a hunk removed from the old version and added to the new one.
#[derive(Debug, Default, PartialEq, Eq)]
struct Hunks {
    old: Vec<RangeInclusive<usize>>,
    new: Vec<RangeInclusive<usize>>,
}

fn touch(language: Language, hunks: &Hunks, old: &[u8], new: &[u8]) -> Touch {
    let side = |lines: &[RangeInclusive<usize>], content: &[u8]| {
        if lines.is_empty() {
            return Some(Vec::new());
        }
        symbols::touched_lines(language, &String::from_utf8_lossy(content), lines)
    };
    match (side(&hunks.old, old), side(&hunks.new, new)) {
        (Some(mut removed), Some(added)) => {
            removed.extend(added);
            removed.sort();
            removed.dedup();
            if removed.is_empty() {
                Touch::Whole
            } else {
                Touch::Symbols(removed)
            }
        }
        _ => Touch::Whole,
    }
}

/// The hunks of a `git diff -U0` patch, by file. A section whose file cannot be read from its
/// header is left out: its file is then a whole-file change.
fn hunks(patch: &[u8]) -> BTreeMap<String, Hunks> {
    let mut found: BTreeMap<String, Hunks> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in patch.split(|b| *b == b'\n') {
        if let Some(header) = line.strip_prefix(b"diff --git ") {
            current = header_path(header);
            if let Some(path) = &current {
                found.entry(path.clone()).or_default();
            }
        } else if let (Some(path), Some(at)) = (&current, line.strip_prefix(b"@@ -")) {
            let text = String::from_utf8_lossy(at);
            let Some((old, rest)) = text.split_once(" +") else {
                continue;
            };
            let new = rest.split(' ').next().unwrap_or_default();
            let entry = found.entry(path.clone()).or_default();
            entry.old.extend(span(old));
            entry.new.extend(span(new));
        }
    }
    found
}

/// The lines of `start,count` (`start` alone: one line); none for a count of 0.
fn span(text: &str) -> Option<RangeInclusive<usize>> {
    let (start, count) = text.split_once(',').unwrap_or((text, "1"));
    let (start, count) = (start.parse::<usize>().ok()?, count.parse::<usize>().ok()?);
    (count > 0).then(|| start..=start + count - 1)
}

/// The path in `a/PATH b/PATH` (`--no-renames`: both the same), or in its quoted form.
fn header_path(header: &[u8]) -> Option<String> {
    if header.first() == Some(&b'"') {
        let (path, _) = unquote(header)?;
        return path.strip_prefix("a/").map(str::to_owned);
    }
    let half = header.len().checked_sub(5)? / 2;
    let text = std::str::from_utf8(header).ok()?;
    let path = text.get(2..2 + half)?;
    (text == format!("a/{path} b/{path}")).then(|| path.to_owned())
}

/// The C-quoted string git writes for an unusual path, and what follows it.
fn unquote(text: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 1;
    while let Some(&b) = text.get(i) {
        match b {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &text[i + 1..])),
            b'\\' => {
                let escaped = *text.get(i + 1)?;
                i += 2;
                out.push(match escaped {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'a' => 7,
                    b'b' => 8,
                    b'f' => 12,
                    b'v' => 11,
                    b'0'..=b'7' => {
                        let digits = text.get(i - 1..i + 2)?;
                        i += 2;
                        let octal = std::str::from_utf8(digits).ok()?;
                        u8::from_str_radix(octal, 8).ok()?
                    }
                    other => other,
                });
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

/// The contents of `REV:PATH` objects, in one `git cat-file --batch`; `None` for a missing one.
fn blobs(root: &Path, names: &[String]) -> Result<Vec<Option<Vec<u8>>>, DiffError> {
    let mut input = names.join("\n");
    input.push('\n');
    let mut child = command(root, &["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(DiffError::GitMissing)?;
    // Written from a thread: git answers while it reads, and both pipes have a bounded buffer.
    let writer = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    });
    let output = child.wait_with_output().map_err(DiffError::GitMissing)?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if !output.status.success() {
        return Err(failed(root, "cat-file --batch", &output.stderr));
    }
    let mut rest = output.stdout.as_slice();
    let mut found = Vec::with_capacity(names.len());
    for _ in names {
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let header = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = rest.get(end + 1..).unwrap_or_default();
        let mut words = header.rsplitn(3, ' ');
        let (size, kind) = (words.next(), words.next());
        match (kind, size.and_then(|s| s.parse::<usize>().ok())) {
            (Some(_), Some(size)) if rest.len() > size => {
                found.push(Some(rest[..size].to_vec()));
                rest = &rest[size + 1..];
            }
            _ => found.push(None),
        }
    }
    Ok(found)
}

/// Untracked files that are not ignored, of `paths` (all when empty).
fn untracked(root: &Path, paths: &[&str]) -> Result<Vec<String>, DiffError> {
    let mut args = vec!["ls-files", "-z", "--others", "--exclude-standard", "--"];
    args.extend(paths);
    let out = git(root, &args)?;
    Ok(fields(&out).map(str::to_owned).collect())
}

fn has_head(root: &Path) -> Result<bool, DiffError> {
    let output = command(root, &["rev-parse", "--verify", "-q", "HEAD^{commit}"])
        .output()
        .map_err(DiffError::GitMissing)?;
    if output.status.success() {
        return Ok(true);
    }
    if is_not_repository(&output.stderr) {
        return Err(DiffError::NotARepository(root.to_path_buf()));
    }
    Ok(false)
}

fn commit_of(root: &Path, name: &str) -> bool {
    git(
        root,
        &[
            "rev-parse",
            "--verify",
            "-q",
            "--end-of-options",
            &rev(name),
        ],
    )
    .is_ok()
}

/// A name as a commit, so that a branch and a file of the same name are never mistaken.
fn rev(name: &str) -> String {
    format!("{name}^{{commit}}")
}

/// The fields of `-z` output, as text.
fn fields(out: &[u8]) -> impl Iterator<Item = &str> {
    out.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .filter_map(|f| std::str::from_utf8(f).ok())
}

fn command<S: AsRef<std::ffi::OsStr>>(root: &Path, args: &[S]) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(root)
        .args(["-c", "core.quotepath=false"])
        .args(args)
        // Paths are file names, never patterns (`app/[id]/page.tsx`); a hook must not take
        // the index lock a concurrent `git commit` needs; messages are matched in English.
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    command
}

fn git<S: AsRef<std::ffi::OsStr>>(root: &Path, args: &[S]) -> Result<Vec<u8>, DiffError> {
    let output = command(root, args)
        .output()
        .map_err(DiffError::GitMissing)?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let words: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    Err(failed(root, &words.join(" "), &output.stderr))
}

fn failed(root: &Path, command: &str, stderr: &[u8]) -> DiffError {
    if is_not_repository(stderr) {
        return DiffError::NotARepository(root.to_path_buf());
    }
    DiffError::GitFailed {
        command: command.to_owned(),
        stderr: String::from_utf8_lossy(stderr).trim().to_owned(),
    }
}

fn is_not_repository(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("not a git repository")
}
