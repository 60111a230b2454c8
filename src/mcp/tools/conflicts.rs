//! Conflicts: what a planned operation would clash with, before it is done.

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::params::{Parameters, lenient};
use crate::checkout::Checkout;
use crate::coordinator::{ConflictQuery, ConflictReport, StaleBase};
use crate::diffs;
use crate::mcp::{Answer, CoordinatorServer, ToolError};
use crate::model::IntentType;

/// Arguments of `conflict_check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConflictCheck {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// What you are about to do; with file_paths and no intent_type, an edit is assumed.
    #[serde(default)]
    pub intent_type: Option<IntentType>,
    /// Files you are about to touch, relative to the project root.
    #[serde(default, deserialize_with = "lenient::list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub file_paths: Vec<String>,
    /// What the operation acts on: a branch for git operations (default: your branch), else a file or component.
    #[serde(default)]
    pub target: Option<String>,
}

#[tool_router(router = conflict_tools, vis = "pub(in crate::mcp)")]
impl CoordinatorServer {
    #[tool(
        description = "Check before you act: compares what you plan (intent_type, file_paths, target) with other live sessions' locks, intents and branches. Returns conflicts (type, severity, a description naming the session and what it does) and safe_to_proceed, false when any conflict is high. For a commit, merge or push also: other worktrees' unmerged changes to the same code (unmerged_change) and stale_base. Call it before editing shared files and before every commit, push, rebase or merge.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn conflict_check(
        &self,
        Parameters(args): Parameters<ConflictCheck>,
    ) -> Result<Json<Answer<ConflictReport>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let carries = args.intent_type.is_some_and(IntentType::carries_changes);
        let query = ConflictQuery {
            session_id: session.clone(),
            intent_type: args.intent_type,
            file_paths: args.file_paths,
            target: args.target,
            changed: Vec::new(),
            stale_base: None,
        };
        if !carries {
            return self
                .respond(Some(session), move |c| c.check_conflicts(query.clone()))
                .await;
        }
        // Before a commit, merge or push: what the session's checkout changes, read from git
        // where the checkout is on this machine (running git: on the blocking pool).
        self.respond_on_pool(Some(session.clone()), move |c| {
            let mut query = query.clone();
            if let Some(root) = c.find_session(&session, None)?.working_directory {
                (query.changed, query.stale_base) = read_changes(&root);
            }
            c.check_conflicts(query)
        })
        .await
    }
}

/// What the checkout at `dir` changed since its branch forked from the target branch
/// (committed or not), and what of it the target changed too. Nothing when it is not a git
/// checkout on this machine, or has no target branch.
fn read_changes(dir: &str) -> (Vec<String>, Option<StaleBase>) {
    let checkout = Checkout::around(std::path::Path::new(dir));
    let root = checkout.root.as_path();
    let Some(target) = diffs::target_branch(root) else {
        return (Vec::new(), None);
    };
    let Ok(Some(divergence)) = diffs::divergence(root, &target) else {
        return (Vec::new(), None);
    };
    let overlapping = divergence.overlapping();
    let stale = (!overlapping.is_empty()).then(|| StaleBase {
        target: divergence.target.clone(),
        behind: divergence.behind,
        overlapping,
    });
    (divergence.mine, stale)
}
