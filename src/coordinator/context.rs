//! Shared context: decisions, discoveries and conventions that outlive the session that found
//! them, searchable by relevance.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Coordinator, MAX_CONTEXT_CHARS, limit, optional_label, required_text, scope};
use crate::error::{Error, Result};
use crate::ids::ContextId;
use crate::model::{ContextEntry, ContextType};
use crate::store::ContextQuery;

/// Most tags on one entry.
const MAX_TAGS: usize = 20;
/// Most search terms in one keyword query.
const MAX_TERMS: usize = 16;

#[derive(Debug, Clone)]
pub struct NewContext {
    pub session_id: String,
    pub context_type: ContextType,
    pub content: String,
    /// Defaults to the session's project.
    pub project: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContextShared {
    pub context_id: ContextId,
    /// Always "shared".
    pub status: &'static str,
    pub context_type: ContextType,
    pub project: String,
    pub shared_by: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContextList {
    /// Best match first with a keyword, newest first without.
    pub entries: Vec<ContextEntry>,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContextDeleted {
    pub deleted: bool,
    pub context_id: ContextId,
}

impl Coordinator {
    pub fn share_context(&self, entry: NewContext) -> Result<ContextShared> {
        let content = required_text("content", &entry.content, MAX_CONTEXT_CHARS)?;
        let project = optional_label("project", entry.project.as_deref())?;
        let tags = tags(&entry.tags)?;
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, &entry.session_id, now)?;
            let project = project.unwrap_or_else(|| me.project.clone());
            let context_id = tx.insert_context(
                &project,
                entry.context_type,
                &content,
                &tags,
                &me.session_id,
                &me.name,
                now,
            )?;
            Ok(ContextShared {
                context_id,
                status: "shared",
                context_type: entry.context_type,
                project,
                shared_by: me.name,
            })
        })
    }

    /// Entries of a project (default: the viewer's), optionally of one type, optionally
    /// matching keywords ranked by relevance (BM25 over content and tags, with stemming; the
    /// store ranks the newest matches only, see `store/context.rs`).
    pub fn query_context(
        &self,
        viewer: Option<&str>,
        project: Option<&str>,
        context_type: Option<ContextType>,
        keyword: Option<&str>,
        max: Option<u64>,
    ) -> Result<ContextList> {
        let limit = limit(max, 20, 200)?;
        let words = keyword
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(search_words)
            .transpose()?;
        self.look(viewer, |tx, viewer, _| {
            let entries = tx.search_context(ContextQuery {
                project: scope(project, viewer),
                context_type,
                words: words.as_deref(),
                limit,
            })?;
            Ok(ContextList {
                count: entries.len(),
                entries,
            })
        })
    }

    /// Deletes an entry; any session of the entry's project may, since shared knowledge that is
    /// wrong should not wait for its author.
    pub fn delete_context(
        &self,
        session_id: &str,
        context_id: ContextId,
    ) -> Result<ContextDeleted> {
        let now = self.now();
        self.store.write(|tx| {
            let me = Self::acting(tx, session_id, now)?;
            let entry = tx.context_entry(context_id)?.ok_or_else(|| Error::NotFound {
                what: "context entry",
                id: context_id.to_string(),
            })?;
            if entry.project != me.project {
                return Err(Error::NotPermitted(format!(
                    "{context_id} belongs to project {}; only sessions of that project can delete it",
                    entry.project
                )));
            }
            tx.delete_context(context_id)?;
            Ok(ContextDeleted {
                deleted: true,
                context_id,
            })
        })
    }
}

fn tags(raw: &[String]) -> Result<Vec<String>> {
    if raw.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            format!("has {} tags; the limit is {MAX_TAGS}", raw.len()),
        ));
    }
    let mut tags = Vec::new();
    for tag in raw {
        if let Some(tag) = optional_label("tags", Some(tag))?
            && !tags.contains(&tag)
        {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// The words of free text to search for: letters and digits only, so no word can be read as
/// search syntax. The store matches each as a prefix (`auth` finds "authentication"), any of
/// them, ranked by relevance.
fn search_words(keyword: &str) -> Result<Vec<String>> {
    let terms: Vec<String> = keyword
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_TERMS)
        .map(str::to_lowercase)
        .collect();
    if terms.is_empty() {
        return Err(Error::invalid(
            "keyword",
            "has no letters or digits to search for",
        ));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn share(
        h: &Harness,
        session: &str,
        context_type: ContextType,
        content: &str,
    ) -> ContextShared {
        h.coordinator
            .share_context(NewContext {
                session_id: session.into(),
                context_type,
                content: content.into(),
                project: None,
                tags: vec![],
            })
            .expect("share")
    }

    fn contents(list: &ContextList) -> Vec<&str> {
        list.entries.iter().map(|e| e.content.as_str()).collect()
    }

    #[test]
    fn keyword_search_is_ranked_stemmed_and_safe() {
        let h = Harness::new();
        let a = h.session("auth-implementation", "my-app", None);
        share(
            &h,
            &a,
            ContextType::Discovery,
            "The auth module uses JWT tokens (not sessions).",
        );
        share(
            &h,
            &a,
            ContextType::Convention,
            "Use tabs. Auth is mentioned once.",
        );
        share(
            &h,
            &a,
            ContextType::Note,
            "Auth auth auth: the authentication flow, auth everywhere.",
        );
        share(&h, &a, ContextType::Decision, "Database is PostgreSQL.");

        let found = h
            .coordinator
            .query_context(Some(&a), None, None, Some("auth"), None)
            .expect("query");
        assert_eq!(found.count, 3);
        assert!(
            contents(&found)[0].starts_with("Auth auth auth"),
            "{:?}",
            contents(&found)
        );

        let stemmed = h
            .coordinator
            .query_context(Some(&a), None, None, Some("token"), None)
            .expect("q");
        assert_eq!(stemmed.count, 1, "token finds tokens");
        for hostile in ["NEAR(auth", "a* OR", "-x", "auth\" OR \"x", "col:auth"] {
            assert!(
                h.coordinator
                    .query_context(Some(&a), None, None, Some(hostile), None)
                    .is_ok(),
                "{hostile}"
            );
        }
        assert!(
            h.coordinator
                .query_context(Some(&a), None, None, Some("!!!"), None)
                .is_err()
        );
    }

    #[test]
    fn filters_by_type_and_project_and_shows_who_shared() {
        let h = Harness::new();
        let a = h.session("auth-implementation", "my-app", None);
        let b = h.session("other", "other-app", None);
        share(&h, &a, ContextType::Discovery, "JWT in httpOnly cookies");
        share(&h, &a, ContextType::Decision, "No ORMs");
        share(&h, &b, ContextType::Discovery, "elsewhere");

        let discoveries = h
            .coordinator
            .query_context(
                None,
                Some("my-app"),
                Some(ContextType::Discovery),
                None,
                None,
            )
            .expect("query");
        assert_eq!(contents(&discoveries), ["JWT in httpOnly cookies"]);
        assert_eq!(discoveries.entries[0].shared_by, "auth-implementation");
        let mine = h
            .coordinator
            .query_context(Some(&a), None, None, None, None)
            .expect("query");
        assert_eq!(
            contents(&mine),
            ["No ORMs", "JWT in httpOnly cookies"],
            "newest first"
        );
    }

    #[test]
    fn deleting_is_for_sessions_of_the_entry_project() {
        let h = Harness::new();
        let a = h.session("a", "my-app", None);
        let b = h.session("b", "my-app", None);
        let stranger = h.session("c", "other-app", None);
        let id = share(&h, &a, ContextType::Note, "outdated").context_id;
        assert!(matches!(
            h.coordinator.delete_context(&stranger, id),
            Err(Error::NotPermitted(_))
        ));
        assert!(
            h.coordinator
                .delete_context(&b, id)
                .expect("delete")
                .deleted
        );
        assert!(matches!(
            h.coordinator.delete_context(&a, id),
            Err(Error::NotFound { .. })
        ));
        let left = h
            .coordinator
            .query_context(Some(&a), None, None, Some("outdated"), None)
            .expect("q");
        assert_eq!(left.count, 0, "the search index forgets deleted entries");
    }
}
