//! What a git checkout has changed, as lock keys: `path` for a whole file, `path#Symbol` for
//! the named items a change touches.
//!
//! The hooks lock what an edit is about to change; the git guard and `conflict_check` need the
//! same words for what a commit carries, what a working tree still changes, and what the
//! target branch changed meanwhile. Each comes from `git diff -U0` (hunks with no context, so
//! each hunk is exactly the changed lines), mapped to items with `symbols` on the side the
//! lines belong to.

use std::ops::RangeInclusive;
use std::path::Path;
use std::process::Command;

use crate::patterns;
use crate::symbols::{self, Language};

/// Why git could not tell.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot run git: {0}")]
    Missing(std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
}

/// What a file's change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    Clean,
    /// The whole file: new, deleted, in an unknown language, or changed outside every item.
    Whole,
    Symbols(Vec<String>),
}

impl Touch {
    /// The lock keys of the change to `path`.
    pub fn keys(&self, path: &str) -> Vec<String> {
        match self {
            Touch::Clean => Vec::new(),
            Touch::Whole => vec![path.to_owned()],
            Touch::Symbols(names) => names.iter().map(|n| format!("{path}#{n}")).collect(),
        }
    }
}

/// Runs git in `root` (quoting no path, so names come out as they are); its standard output.
fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, DiffError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "core.quotepath=false"])
        .args(args)
        .output()
        .map_err(DiffError::Missing)?;
    if !output.status.success() {
        return Err(DiffError::Failed {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

fn text(root: &Path, args: &[&str]) -> Result<String, DiffError> {
    Ok(String::from_utf8_lossy(&git(root, args)?).into_owned())
}

/// NUL-separated names, as `-z` prints them.
fn names(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

/// The new-side line ranges of a `-U0` diff of one file; a pure deletion touches the line
/// after it (where the removed lines were), so deleting a function's body touches it.
fn hunks(diff: &str) -> Vec<RangeInclusive<usize>> {
    let mut found = Vec::new();
    for line in diff.lines() {
        let Some(rest) = line.strip_prefix("@@ ") else {
            continue;
        };
        let Some(new) = rest.split(' ').find_map(|part| part.strip_prefix('+')) else {
            continue;
        };
        let (start, count) = match new.split_once(',') {
            Some((start, count)) => (start.parse().unwrap_or(0), count.parse().unwrap_or(1)),
            None => (new.parse().unwrap_or(0), 1usize),
        };
        found.push(if count == 0 {
            start.max(1)..=start + 1
        } else {
            start.max(1)..=start + count - 1
        });
    }
    found
}

/// A change of `path` whose new side is `source`, given its `-U0` diff.
fn touch_of(path: &str, source: Option<&str>, diff: &str) -> Touch {
    let lines = hunks(diff);
    if lines.is_empty() {
        return if diff.trim().is_empty() {
            Touch::Clean
        } else {
            // A mode change or a binary file: no lines to place.
            Touch::Whole
        };
    }
    let (Some(language), Some(source)) = (Language::of(path), source) else {
        return Touch::Whole;
    };
    match symbols::touched_lines(language, source, &lines) {
        Some(names) if !names.is_empty() => Touch::Symbols(names),
        _ => Touch::Whole,
    }
}

/// Whether HEAD names a commit yet (not in a repository with no commit).
fn has_head(root: &Path) -> bool {
    git(root, &["rev-parse", "--verify", "-q", "HEAD"]).is_ok()
}

/// The working tree's change to one file against HEAD.
pub fn worktree_touch(root: &Path, path: &str) -> Result<Touch, DiffError> {
    let tracked = has_head(root) && git(root, &["cat-file", "-e", &format!("HEAD:{path}")]).is_ok();
    let source = std::fs::read(root.join(path))
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    match (tracked, &source) {
        (false, None) => return Ok(Touch::Clean),
        (false, Some(_)) | (true, None) => return Ok(Touch::Whole),
        (true, Some(_)) => {}
    }
    let diff = text(root, &["diff", "-U0", "--no-color", "HEAD", "--", path])?;
    Ok(touch_of(path, source.as_deref(), &diff))
}

/// Every staged file's change against HEAD (renames as a deletion and an addition).
pub fn staged_touches(root: &Path) -> Result<Vec<(String, Touch)>, DiffError> {
    let base: &[&str] = if has_head(root) { &["HEAD"] } else { &[] };
    let mut args = vec!["diff", "--cached", "--name-only", "--no-renames", "-z"];
    args.extend_from_slice(base);
    let files = names(&git(root, &args)?);
    let mut found = Vec::new();
    for file in files {
        let source = git(root, &["show", &format!(":{file}")])
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut args = vec!["diff", "--cached", "-U0", "--no-color", "--no-renames"];
        args.extend_from_slice(base);
        args.extend(["--", file.as_str()]);
        let diff = text(root, &args)?;
        let touch = if base.is_empty() || source.is_none() {
            Touch::Whole
        } else {
            touch_of(&file, source.as_deref(), &diff)
        };
        found.push((file, touch));
    }
    Ok(found)
}

/// The files the HEAD commit changed against its first parent (all of them for a root commit).
pub fn committed_files(root: &Path) -> Result<Vec<String>, DiffError> {
    Ok(names(&git(
        root,
        &[
            "diff-tree",
            "--no-commit-id",
            "--name-only",
            "--no-renames",
            "-r",
            "-z",
            "--root",
            "HEAD",
        ],
    )?))
}

/// The branch a checkout's work will be merged into: `MCP_COORDINATOR_TARGET_BRANCH` when
/// set, else origin's default branch, else `main`, else `master`, whichever exists; `None`
/// when that is the branch checked out, or none exists.
pub fn target_branch(root: &Path) -> Option<String> {
    let current = text(root, &["symbolic-ref", "-q", "--short", "HEAD"])
        .ok()
        .map(|b| b.trim().to_owned());
    let named = std::env::var("MCP_COORDINATOR_TARGET_BRANCH")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let origin = text(
        root,
        &["symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"],
    )
    .ok()
    .map(|b| b.trim().to_owned())
    .filter(|b| !b.is_empty());
    let candidates = named
        .into_iter()
        .chain(origin)
        .chain(["main".to_owned(), "master".to_owned()]);
    for branch in candidates {
        if git(
            root,
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("{branch}^{{commit}}"),
            ],
        )
        .is_ok()
        {
            let short = branch.strip_prefix("origin/").unwrap_or(&branch);
            return (current.as_deref() != Some(short) && current.as_deref() != Some(&branch))
                .then_some(branch);
        }
    }
    None
}

/// Since the merge base of HEAD and a target branch: what each side changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub target: String,
    /// Commits on the target that HEAD lacks.
    pub behind: usize,
    /// Keys the target changed (items from its version of each file).
    pub theirs: Vec<String>,
    /// Keys this checkout changed: its commits since the merge base and its uncommitted
    /// changes (items from the working tree).
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

/// How HEAD and `target` diverged; `None` when HEAD already has every commit of `target`.
pub fn divergence(root: &Path, target: &str) -> Result<Option<Divergence>, DiffError> {
    let base = text(root, &["merge-base", "HEAD", target])?
        .trim()
        .to_owned();
    let behind: usize = text(root, &["rev-list", "--count", &format!("HEAD..{target}")])?
        .trim()
        .parse()
        .unwrap_or(0);
    if behind == 0 {
        return Ok(None);
    }
    let mut theirs = Vec::new();
    for file in names(&git(
        root,
        &["diff", "--name-only", "--no-renames", "-z", &base, target],
    )?) {
        let source = git(root, &["show", &format!("{target}:{file}")])
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let diff = text(
            root,
            &[
                "diff",
                "-U0",
                "--no-color",
                "--no-renames",
                &base,
                target,
                "--",
                &file,
            ],
        )?;
        theirs.extend(touch_of(&file, source.as_deref(), &diff).keys(&file));
    }
    let mut mine = Vec::new();
    for file in names(&git(
        root,
        &["diff", "--name-only", "--no-renames", "-z", &base],
    )?) {
        let source = std::fs::read(root.join(&file))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let diff = text(
            root,
            &[
                "diff",
                "-U0",
                "--no-color",
                "--no-renames",
                &base,
                "--",
                &file,
            ],
        )?;
        mine.extend(touch_of(&file, source.as_deref(), &diff).keys(&file));
    }
    Ok(Some(Divergence {
        target: target.to_owned(),
        behind,
        theirs,
        mine,
    }))
}

#[cfg(test)]
mod tests;
