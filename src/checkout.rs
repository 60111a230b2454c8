//! Where a session works: the git checkout around a folder, its branch, and its sibling
//! worktrees.
//!
//! Lock keys are relative to the project root, and every process must agree on that root for
//! one file: the MCP server that an AI client starts in `repo/packages/web`, the hook that
//! client runs, and the git guard all use the checkout's top folder. Paths are resolved to
//! their real location first, so a symlinked home or `/tmp` does not make a file look outside.

use std::path::{Path, PathBuf};

/// A git checkout (or, outside one, a plain folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The top folder: the nearest one upwards holding `.git`, else the folder itself.
    pub root: PathBuf,
    /// The branch checked out; `None` when detached, unreadable, or not in git.
    pub branch: Option<String>,
    /// The repository's git folder, shared by all its worktrees.
    git_common: Option<PathBuf>,
}

impl Checkout {
    /// The checkout around `dir` (which need not exist yet: a file about to be created).
    pub fn around(dir: &Path) -> Self {
        let dir = real(dir);
        let Some(root) = dir.ancestors().find(|d| d.join(".git").exists()) else {
            return Self {
                root: dir,
                branch: None,
                git_common: None,
            };
        };
        let git_dir = git_dir(root);
        let head = git_dir
            .as_ref()
            .and_then(|g| std::fs::read_to_string(g.join("HEAD")).ok());
        Self {
            root: root.to_path_buf(),
            branch: head
                .as_deref()
                .and_then(|h| h.trim().strip_prefix("ref: refs/heads/").map(str::to_owned)),
            git_common: git_dir.map(|g| common_dir(&g)),
        }
    }

    /// Whether it is a git checkout: only there is a change ever committed.
    pub fn is_git(&self) -> bool {
        self.git_common.is_some()
    }

    pub fn root_text(&self) -> String {
        self.root.display().to_string()
    }

    /// The folder's name, the project of last resort.
    pub fn folder_name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "default".to_owned())
    }

    /// The top folders of every worktree of this repository (this one first): sessions in any
    /// of them work on the same project.
    pub fn worktrees(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        if let Some(common) = &self.git_common {
            if let Some(main) = common.parent().filter(|_| common.ends_with(".git")) {
                found.push(main.to_path_buf());
            }
            for entry in std::fs::read_dir(common.join("worktrees"))
                .into_iter()
                .flatten()
                .flatten()
            {
                // Each linked worktree records where its `.git` file is.
                if let Ok(text) = std::fs::read_to_string(entry.path().join("gitdir")) {
                    // Absolute, or (worktree.useRelativePaths) relative to this entry.
                    let dot_git = entry.path().join(text.trim());
                    found.extend(dot_git.parent().map(real));
                }
            }
        }
        let mut roots = vec![self.root.clone()];
        for root in found {
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        roots
    }
}

/// The checkout `file` belongs to (a relative `file` is taken from `cwd`), and its path inside
/// it as written: symlinks inside the checkout are kept, as the MCP server, which never reads
/// the filesystem, keys them. Outside any git checkout, `cwd` stands for one when the file is
/// under it; otherwise `None`.
pub fn locate(file: &Path, cwd: &Path) -> Option<(Checkout, String)> {
    let file = cwd.join(file);
    let top = file
        .ancestors()
        .skip(1)
        .find(|d| d.join(".git").exists())
        .or_else(|| file.starts_with(cwd).then_some(cwd))?;
    let inside = file.strip_prefix(top).ok()?;
    Some((
        Checkout::around(top),
        inside.to_string_lossy().replace('\\', "/"),
    ))
}

/// The git folder of the checkout at `root`: `.git` itself, or where a linked worktree's `.git`
/// file points ("gitdir: /repo/.git/worktrees/x").
fn git_dir(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let target = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
    Some(if target.is_absolute() {
        target
    } else {
        root.join(target)
    })
}

/// The repository's shared git folder: a linked worktree's git folder names it in `commondir`.
fn common_dir(git_dir: &Path) -> PathBuf {
    match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(text) => {
            let common = PathBuf::from(text.trim());
            real(&if common.is_absolute() {
                common
            } else {
                git_dir.join(common)
            })
        }
        Err(_) => real(git_dir),
    }
}

/// `path` with its deepest existing part resolved to its real location (symlinks, `..`); the
/// part that does not exist yet is kept as written.
pub fn real(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            return rest.iter().rev().fold(resolved, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_is_found_upwards_with_its_branch_and_worktrees() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let base = real(dir.path());
        let repo = base.join("shop");
        std::fs::create_dir_all(repo.join(".git")).expect("git dir");
        std::fs::create_dir_all(repo.join("src/deep")).expect("src");
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/cart\n").expect("HEAD");
        let checkout = Checkout::around(&repo.join("src/deep/new/file-to-be"));
        assert_eq!(
            checkout.root, repo,
            "found from a path that does not exist yet"
        );
        assert_eq!(checkout.branch.as_deref(), Some("feature/cart"));
        assert_eq!(checkout.folder_name(), "shop");

        let worktree = base.join("shop-wt");
        let meta = repo.join(".git/worktrees/wt");
        std::fs::create_dir_all(&worktree).expect("worktree");
        std::fs::create_dir_all(&meta).expect("meta");
        std::fs::write(meta.join("HEAD"), "ref: refs/heads/fix\n").expect("HEAD");
        std::fs::write(meta.join("commondir"), "../..\n").expect("commondir");
        std::fs::write(
            meta.join("gitdir"),
            format!("{}/.git\n", worktree.display()),
        )
        .expect("gitdir");
        std::fs::write(
            worktree.join(".git"),
            format!("gitdir: {}\n", meta.display()),
        )
        .expect(".git file");
        let linked = Checkout::around(&worktree);
        assert_eq!(linked.branch.as_deref(), Some("fix"));
        assert_eq!(linked.worktrees(), [worktree.clone(), repo.clone()]);
        assert_eq!(checkout.worktrees(), [repo.clone(), worktree.clone()]);

        std::fs::write(meta.join("HEAD"), "0123456789abcdef\n").expect("detached");
        assert_eq!(Checkout::around(&worktree).branch, None);
    }

    #[test]
    fn a_file_is_located_in_its_checkout_or_under_the_working_folder() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let base = real(dir.path());
        std::fs::create_dir_all(base.join("repo/.git")).expect("repo");
        std::fs::create_dir_all(base.join("plain")).expect("plain");
        let (checkout, inside) =
            locate(Path::new("src/new.ts"), &base.join("repo")).expect("in the repo");
        assert_eq!(
            (checkout.root, inside.as_str()),
            (base.join("repo"), "src/new.ts")
        );
        let (checkout, inside) =
            locate(&base.join("plain/a/b.ts"), &base.join("plain")).expect("under cwd");
        assert_eq!(
            (checkout.root, inside.as_str()),
            (base.join("plain"), "a/b.ts")
        );
        assert!(locate(&base.join("elsewhere/x.ts"), &base.join("plain")).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_paths_resolve_to_the_same_root() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let base = real(dir.path());
        std::fs::create_dir_all(base.join("repo/.git")).expect("repo");
        std::os::unix::fs::symlink(base.join("repo"), base.join("link")).expect("symlink");
        let through_link = Checkout::around(&base.join("link/src"));
        assert_eq!(through_link.root, base.join("repo"));
        assert_eq!(
            real(&base.join("link/src/new.ts")),
            base.join("repo/src/new.ts")
        );
    }
}
