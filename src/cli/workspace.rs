//! Who is asking, and about which checkout: what the hook and the git guard work out before
//! they ask the coordinator anything, since no caller hands them a session id.
//!
//! Their own sessions, whose locks never stand in their way, are:
//! - the one `MCP_COORDINATOR_SESSION` names (an id, or a name), when set;
//! - those whose client process is this process's own AI client ([`clients`]): the client
//!   running this hook or this `git commit` also started those sessions' servers;
//! - the one a hook registered for the client's own session id (`client_ref`).
//!
//! Their project is `MCP_COORDINATOR_PROJECT` when set, else that of their own sessions working
//! in this checkout (or the named one), else that of the live sessions working in any worktree
//! of this repository, else a guess from the checkout's folder name, where nothing is
//! coordinated.

use super::CliError;
use crate::checkout::Checkout;
use crate::clients;
use crate::coordinator::Coordinator;
use crate::model::Session;

/// Names the session a hook or guard acts for (an id or a name).
pub const SESSION_VAR: &str = "MCP_COORDINATOR_SESSION";
/// Names the project; it wins over what the sessions and the checkout suggest.
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

/// Who is asking: the sessions that count as the caller's own, and the project.
#[derive(Debug, Clone)]
pub struct Me {
    /// The session `MCP_COORDINATOR_SESSION` names, when set (and of this project).
    pub named: Option<Session>,
    /// Every own session of the project, the named one included.
    pub own: Vec<Session>,
    /// The session a hook registered for the client's session, whatever its project.
    pub hook: Option<Session>,
    pub project: String,
    /// True when nothing but the folder's name suggested the project: no variable, and no
    /// session works in this checkout. Nothing there is coordinated.
    pub guessed: bool,
}

impl Me {
    pub fn own_ids(&self) -> Vec<String> {
        self.own.iter().map(|s| s.session_id.clone()).collect()
    }

    /// The session a hook acts for: [`Me::ai_session`], else the hook's own.
    pub fn acting(&self) -> Option<&Session> {
        self.ai_session().or_else(|| self.own.last())
    }

    /// What the AI itself works as: the named session, else the newest one the client's MCP
    /// server registered.
    pub fn ai_session(&self) -> Option<&Session> {
        self.named
            .as_ref()
            .or_else(|| self.own.iter().rev().find(|s| s.client_ref.is_none()))
    }
}

/// Works out who is asking about `checkout`; `client_ref` is the client's own id for its
/// session, for finding the one a hook registered.
pub fn identify(
    coordinator: &Coordinator,
    checkout: &Checkout,
    client_ref: Option<&str>,
) -> Result<Me, CliError> {
    let project_var = var(PROJECT_VAR);
    let client = clients::client_pid();
    let mut own: Vec<Session> = coordinator
        .client_sessions()?
        .into_iter()
        .filter(|s| {
            (client_ref.is_some() && s.client_ref.as_deref() == client_ref)
                || (client.is_some() && s.client_pid == client)
        })
        .collect();
    let hook = own
        .iter()
        .find(|s| client_ref.is_some() && s.client_ref.as_deref() == client_ref)
        .cloned();
    let named = match var(SESSION_VAR) {
        Some(wanted) => Some(
            coordinator
                .find_session(&wanted, project_var.as_deref())
                .map_err(|e| CliError::Usage(format!("{SESSION_VAR}='{wanted}': {e}")))?,
        ),
        None => None,
    };
    if let Some(named) = &named {
        own.retain(|s| s.session_id != named.session_id);
        own.push(named.clone());
    }
    let roots: Vec<String> = checkout
        .worktrees()
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    let works_here = |s: &&Session| {
        s.working_directory
            .as_deref()
            .is_some_and(|wd| roots.iter().any(|root| within(wd, root)))
    };
    // An own session elsewhere says nothing about this checkout: a file in a sibling
    // repository belongs to that repository's project, not to the AI's.
    let (project, guessed) = match project_var {
        Some(project) => (project, false),
        None => match own.iter().rev().find(works_here).or(named.as_ref()) {
            Some(session) => (session.project.clone(), false),
            None => match coordinator.projects_in(&roots)?.into_iter().next() {
                Some(project) => (project, false),
                None => (checkout.folder_name(), true),
            },
        },
    };
    // Sessions of another project share nothing with this one.
    own.retain(|s| s.project == project);
    Ok(Me {
        named: named.filter(|s| s.project == project),
        own,
        hook,
        project,
        guessed,
    })
}

/// Whether the folder `dir` is `root` or inside it.
fn within(dir: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    dir.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn a_folder_is_within_its_root_and_not_a_sibling_with_a_longer_name() {
        assert!(within("/src/shop", "/src/shop"));
        assert!(within("/src/shop/web", "/src/shop/"));
        assert!(!within("/src/shop-wt", "/src/shop"));
    }
}
