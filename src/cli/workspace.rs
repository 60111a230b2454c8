//! Who is asking, and about which checkout: what the hook and the git guard work out before
//! they ask the coordinator anything, since no caller hands them a session id.
//!
//! Their own sessions, whose locks never stand in their way, are:
//! - the one `MCP_COORDINATOR_SESSION` names (an id, or a name), when set;
//! - those whose client process is one of this process's ancestors ([`clients`]): the AI
//!   client running this hook or this `git commit` also started those sessions' servers;
//! - the one a hook registered for the client's own session id (`client_ref`).
//!
//! Their project is that of their own sessions, else `MCP_COORDINATOR_PROJECT`, else that of
//! the live sessions working in this checkout, else the checkout's folder name.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::clients;
use crate::coordinator::Coordinator;
use crate::model::Session;

/// Names the session a hook or guard acts for (an id or a name).
pub const SESSION_VAR: &str = "MCP_COORDINATOR_SESSION";
/// Names the project, where sessions do not tell it.
pub const PROJECT_VAR: &str = "MCP_COORDINATOR_PROJECT";
/// The name a hook registers its session under.
pub const NAME_VAR: &str = "MCP_COORDINATOR_SESSION_NAME";
/// The group a hook registers its session in.
pub const GROUP_VAR: &str = "MCP_COORDINATOR_GROUP";

/// A non-empty environment variable.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A git checkout (or, outside one, a plain folder).
#[derive(Debug, Clone)]
pub struct Checkout {
    pub root: PathBuf,
    pub branch: Option<String>,
}

impl Checkout {
    /// The checkout around `dir`: the nearest folder upwards holding `.git` (a folder, or the
    /// file a linked worktree has), else `dir` itself.
    pub fn around(dir: &Path) -> Self {
        let found = dir.ancestors().find(|d| d.join(".git").exists());
        match found {
            Some(root) => Self {
                root: root.to_path_buf(),
                branch: branch(root),
            },
            None => Self {
                root: dir.to_path_buf(),
                branch: None,
            },
        }
    }

    pub fn root_text(&self) -> String {
        self.root.display().to_string()
    }

    /// The folder's name, the project of last resort.
    fn folder_name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "default".to_owned())
    }
}

/// The branch checked out in `root`, read from `HEAD` (no `git` process: the hook runs before
/// every edit); `None` when detached or unreadable.
fn branch(root: &Path) -> Option<String> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        // A linked worktree's `.git` is a file: "gitdir: /path/to/main/.git/worktrees/x".
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
        if target.is_absolute() {
            target
        } else {
            root.join(target)
        }
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    head.trim()
        .strip_prefix("ref: refs/heads/")
        .map(str::to_owned)
}

/// Who is asking: the sessions that count as the caller's own, and the project.
#[derive(Debug, Clone)]
pub struct Me {
    pub own: Vec<Session>,
    pub project: String,
}

impl Me {
    pub fn own_ids(&self) -> Vec<String> {
        self.own.iter().map(|s| s.session_id.clone()).collect()
    }

    /// The session a hook acts for: the named one, else the newest one the client's MCP
    /// server registered (what the AI itself works as), else the hook's own.
    pub fn acting(&self) -> Option<&Session> {
        self.own
            .iter()
            .rev()
            .find(|s| s.client_ref.is_none())
            .or_else(|| self.own.last())
    }
}

/// Works out who is asking about `checkout`; `client_ref` is the client's own session id,
/// for finding a session a hook registered.
pub fn identify(
    coordinator: &Coordinator,
    checkout: &Checkout,
    client_ref: Option<&str>,
) -> Result<Me, CliError> {
    let project_var = var(PROJECT_VAR);
    let mut own = coordinator.client_sessions(&clients::ancestors(), client_ref)?;
    if let Some(named) = var(SESSION_VAR) {
        match coordinator.find_session(&named, project_var.as_deref())? {
            // The named session is the one to act for: last, where `acting` looks first.
            Some(session) => {
                own.retain(|s| s.session_id != session.session_id);
                own.push(session);
            }
            None => {
                return Err(CliError::Usage(format!(
                    "{SESSION_VAR}='{named}' names no live session (by id, or by a name only one live session has)"
                )));
            }
        }
    }
    let project = match (own.last(), project_var) {
        (Some(session), _) => session.project.clone(),
        (None, Some(project)) => project,
        (None, None) => coordinator
            .projects_in(&checkout.root_text())?
            .into_iter()
            .next()
            .unwrap_or_else(|| checkout.folder_name()),
    };
    // Sessions of another project share nothing with this one.
    own.retain(|s| s.project == project);
    Ok(Me { own, project })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_is_found_upwards_with_its_branch() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let repo = dir.path().join("shop");
        std::fs::create_dir_all(repo.join(".git")).expect("git dir");
        std::fs::create_dir_all(repo.join("src/deep")).expect("src");
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/cart\n").expect("HEAD");
        let checkout = Checkout::around(&repo.join("src/deep"));
        assert_eq!(checkout.root, repo);
        assert_eq!(checkout.branch.as_deref(), Some("feature/cart"));
        assert_eq!(checkout.folder_name(), "shop");

        let worktree = dir.path().join("shop-wt");
        let meta = repo.join(".git/worktrees/wt");
        std::fs::create_dir_all(&worktree).expect("worktree");
        std::fs::create_dir_all(&meta).expect("meta");
        std::fs::write(meta.join("HEAD"), "ref: refs/heads/fix\n").expect("HEAD");
        std::fs::write(
            worktree.join(".git"),
            format!("gitdir: {}\n", meta.display()),
        )
        .expect(".git file");
        assert_eq!(Checkout::around(&worktree).branch.as_deref(), Some("fix"));

        std::fs::write(meta.join("HEAD"), "0123456789abcdef\n").expect("detached");
        assert_eq!(Checkout::around(&worktree).branch, None);
        let plain = Checkout::around(dir.path());
        assert_eq!((plain.root.as_path(), plain.branch), (dir.path(), None));
    }
}
