//! Intents: announcing what a session is about to do, so others can check before they act.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Serialize;

use super::conflicts::{Conflict, Planned};
use super::events::{self, EventKind, Occurrence};
use super::{
    Coordinator, MAX_DESCRIPTION_CHARS, MAX_FILES, limit, optional_label, optional_text, path_key,
    scope,
};
use crate::error::{Error, Result};
use crate::ids::IntentId;
use crate::model::{Intent, IntentStatus, IntentType, Session, Severity};
use crate::paths;
use crate::store::{IntentFilter, NewIntent, WriteTx};

#[derive(Debug, Clone)]
pub struct IntentRequest {
    pub session_id: String,
    pub intent_type: IntentType,
    pub target: Option<String>,
    pub description: Option<String>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Announced {
    pub intent_id: IntentId,
    /// Always "announced".
    pub status: IntentStatus,
    pub intent_type: IntentType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The normalized paths the intent touches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// What other sessions are doing that clashes with this intent, worst first.
    pub conflicts: Vec<Conflict>,
    /// False when a conflict has severity high.
    pub safe_to_proceed: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IntentUpdated {
    pub intent_id: IntentId,
    pub status: IntentStatus,
    pub previous_status: IntentStatus,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IntentCleared {
    pub cleared: bool,
    pub intent_id: IntentId,
}

#[derive(Debug, Clone, Default)]
pub struct IntentListQuery {
    pub project: Option<String>,
    pub session_id: Option<String>,
    /// Only intents of sessions in this group.
    pub group: Option<String>,
    pub intent_type: Option<IntentType>,
    pub include_finished: bool,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IntentList {
    pub intents: Vec<Intent>,
    pub count: usize,
}

impl Coordinator {
    /// Records an intent and answers with what already clashes with it.
    pub fn announce_intent(&self, request: IntentRequest) -> Result<Announced> {
        let target = optional_text("target", request.target.as_deref(), MAX_DESCRIPTION_CHARS)?;
        let description = optional_text(
            "description",
            request.description.as_deref(),
            MAX_DESCRIPTION_CHARS,
        )?;
        if request.files.len() > MAX_FILES {
            return Err(Error::invalid(
                "files",
                format!(
                    "lists {} paths; the limit is {MAX_FILES}",
                    request.files.len()
                ),
            ));
        }
        let intent_type = request.intent_type;
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, &request.session_id, now)?;
            let root = me.working_directory.as_deref();
            let mut files = BTreeSet::new();
            for file in &request.files {
                files.insert(path_key("files", file, root)?);
            }
            // A git operation targets a branch: the session's own unless it names another.
            // Any other intent's target is usually a path, and then it counts as a file.
            let target = match target {
                None if intent_type.is_git() => me.branch.clone(),
                target => target,
            };
            if let (false, Some(target)) = (intent_type.is_git(), &target)
                && let Ok(key) = paths::normalize(target, root)
            {
                files.insert(key);
            }
            if intent_type.is_write() && files.is_empty() {
                return Err(Error::invalid(
                    "target",
                    format!("a {intent_type} intent needs a target (the file it changes) or files"),
                ));
            }
            let files: Vec<String> = files.into_iter().collect();
            let intent_id = tx.insert_intent(&NewIntent {
                session_id: &me.session_id,
                project: &me.project,
                intent_type,
                target: target.as_deref(),
                description: description.as_deref(),
                files: &files,
                now,
            })?;
            let planned = Planned {
                intent_type: Some(intent_type),
                files: &files,
                target: target.as_deref(),
            };
            let report = self.conflicts(tx, &me, &planned, now)?;
            for conflict in report
                .conflicts
                .iter()
                .filter(|c| c.severity == Severity::High)
            {
                events::record(
                    tx,
                    Occurrence {
                        kind: EventKind::Conflict,
                        project: &me.project,
                        subject: &format!("{intent_id}\u{1f}{}", conflict.session_id),
                        text: &format!(
                            "'{}' announced {intent_type}, which conflicts with '{}': {}",
                            me.name, conflict.session_name, conflict.description
                        ),
                        data: serde_json::json!({
                            "intent_id": intent_id,
                            "session_id": me.session_id,
                            "name": me.name,
                            "intent_type": intent_type,
                            "conflict": conflict,
                        }),
                        who: me.who.as_deref(),
                    },
                    now,
                )?;
            }
            Ok(Announced {
                intent_id,
                status: IntentStatus::Announced,
                intent_type,
                target,
                files,
                safe_to_proceed: report.safe_to_proceed,
                conflicts: report.conflicts,
            })
        })
    }

    /// Moves an intent along announced → in_progress → completed | abandoned.
    pub fn update_intent(
        &self,
        session_id: &str,
        intent_id: IntentId,
        status: IntentStatus,
        description: Option<&str>,
    ) -> Result<IntentUpdated> {
        let description = optional_text("description", description, MAX_DESCRIPTION_CHARS)?;
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, session_id, now)?;
            let intent = owned_intent(tx, &me, intent_id, "update")?;
            if !intent.status.is_active() {
                return Err(Error::invalid(
                    "intent_id",
                    format!(
                        "{intent_id} is already {}; announce a new intent instead",
                        intent.status
                    ),
                ));
            }
            if status == IntentStatus::Announced && intent.status != IntentStatus::Announced {
                return Err(Error::invalid(
                    "status",
                    "an intent cannot go back to announced; allowed: in_progress, completed, abandoned",
                ));
            }
            tx.update_intent(intent_id, status, description.as_deref(), now)?;
            Ok(IntentUpdated {
                intent_id,
                status,
                previous_status: intent.status,
            })
        })
    }

    /// Removes an intent (finished or dropped) so it no longer shows up in conflict checks.
    pub fn clear_intent(&self, session_id: &str, intent_id: IntentId) -> Result<IntentCleared> {
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, session_id, now)?;
            owned_intent(tx, &me, intent_id, "clear")?;
            tx.delete_intent(intent_id)?;
            Ok(IntentCleared {
                cleared: true,
                intent_id,
            })
        })
    }

    /// Intents, by default the active ones of the viewer's project, newest first.
    pub fn list_intents(&self, viewer: Option<&str>, query: IntentListQuery) -> Result<IntentList> {
        let limit = limit(query.limit, 100, 1_000)?;
        let group = optional_label("group", query.group.as_deref())?;
        self.look(viewer, |tx, viewer, _| {
            let intents = tx.intents(IntentFilter {
                project: scope(query.project.as_deref(), viewer),
                session_id: query
                    .session_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty()),
                group: group.as_deref(),
                intent_type: query.intent_type,
                active_only: !query.include_finished,
                limit,
            })?;
            Ok(IntentList {
                count: intents.len(),
                intents,
            })
        })
    }
}

/// The intent, when it exists and belongs to `me`.
fn owned_intent(tx: &WriteTx<'_>, me: &Session, id: IntentId, verb: &str) -> Result<Intent> {
    let intent = tx.intent(id)?.ok_or_else(|| Error::NotFound {
        what: "intent",
        id: id.to_string(),
    })?;
    if intent.session_id != me.session_id {
        return Err(Error::NotPermitted(format!(
            "{id} belongs to session '{}' ({}); only its owner can {verb} it. Message them instead.",
            intent.session_name, intent.session_id
        )));
    }
    Ok(intent)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn announce(
        h: &Harness,
        session: &str,
        intent_type: IntentType,
        target: Option<&str>,
    ) -> Result<Announced> {
        h.coordinator.announce_intent(IntentRequest {
            session_id: session.into(),
            intent_type,
            target: target.map(Into::into),
            description: None,
            files: vec![],
        })
    }

    #[test]
    fn a_file_edit_target_is_a_normalized_file() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let announced = announce(&h, &a, IntentType::FileEdit, Some("./src/auth.ts")).expect("ok");
        assert_eq!(announced.status, IntentStatus::Announced);
        assert_eq!(announced.files, ["src/auth.ts"]);
        assert!(announced.safe_to_proceed);
        let err = announce(&h, &a, IntentType::FileEdit, None)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("needs a target")));
    }

    #[test]
    fn git_intents_default_to_the_session_branch() {
        let h = Harness::new();
        let a = h.session("a", "app", Some("feature/auth"));
        let announced = announce(&h, &a, IntentType::GitRebase, None).expect("ok");
        assert_eq!(announced.target.as_deref(), Some("feature/auth"));
        assert!(announced.files.is_empty());
    }

    #[test]
    fn lifecycle_moves_forward_only_and_only_for_the_owner() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let id = announce(&h, &a, IntentType::Build, None)
            .expect("ok")
            .intent_id;

        let refused = h
            .coordinator
            .update_intent(&b, id, IntentStatus::InProgress, None)
            .err()
            .map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("only its owner")));

        let moved = h
            .coordinator
            .update_intent(&a, id, IntentStatus::InProgress, Some("compiling"))
            .expect("in progress");
        assert_eq!(
            (moved.previous_status, moved.status),
            (IntentStatus::Announced, IntentStatus::InProgress)
        );
        assert!(
            h.coordinator
                .update_intent(&a, id, IntentStatus::Announced, None)
                .is_err()
        );
        h.coordinator
            .update_intent(&a, id, IntentStatus::Completed, None)
            .expect("done");
        assert!(
            h.coordinator
                .update_intent(&a, id, IntentStatus::InProgress, None)
                .is_err()
        );

        let active = h
            .coordinator
            .list_intents(Some(&a), IntentListQuery::default())
            .expect("list");
        assert_eq!(active.count, 0);
        let all = h
            .coordinator
            .list_intents(
                Some(&a),
                IntentListQuery {
                    include_finished: true,
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!(
            all.intents.first().map(|i| i.description.as_deref()),
            Some(Some("compiling"))
        );

        assert!(h.coordinator.clear_intent(&b, id).is_err());
        assert!(h.coordinator.clear_intent(&a, id).expect("clear").cleared);
        assert!(matches!(
            h.coordinator.clear_intent(&a, id),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn lists_filter_by_type_and_session() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        announce(&h, &a, IntentType::Build, None).expect("ok");
        announce(&h, &b, IntentType::Test, None).expect("ok");
        let tests = h
            .coordinator
            .list_intents(
                Some(&a),
                IntentListQuery {
                    intent_type: Some(IntentType::Test),
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!(
            tests
                .intents
                .iter()
                .map(|i| i.session_id.as_str())
                .collect::<Vec<_>>(),
            [b.as_str()]
        );
        let of_a = h
            .coordinator
            .list_intents(
                None,
                IntentListQuery {
                    session_id: Some(a.clone()),
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!(of_a.count, 1);
    }
}
