//! Statements on `intents` and `intent_files`.

use super::sql::{Arg, IntoArg, Row, args};

use super::{ReadTx, StoreError, WriteTx, word};
use crate::clock::Timestamp;
use crate::ids::IntentId;
use crate::model::{Intent, IntentStatus, IntentType};

const SELECT: &str = "SELECT i.id, i.session_id, s.name AS session_name, i.project,
        i.intent_type, i.target, i.description, i.status, i.created_at, i.updated_at,
        (SELECT string_agg(f.path, '\n') FROM intent_files f WHERE f.intent_id = i.id)
            AS files
    FROM intents i JOIN sessions s ON s.id = i.session_id";

const ACTIVE: &str = "i.status IN ('announced', 'in_progress')";

fn intent_from_row(row: &Row<'_>) -> Result<Intent, StoreError> {
    let files: Option<String> = row.get("files")?;
    let mut files: Vec<String> = files
        .map(|text| text.split('\n').map(str::to_owned).collect())
        .unwrap_or_default();
    files.sort();
    Ok(Intent {
        intent_id: IntentId(row.get("id")?),
        session_id: row.get("session_id")?,
        session_name: row.get("session_name")?,
        project: row.get("project")?,
        intent_type: word(row, "intent_type", IntentType::parse)?,
        target: row.get("target")?,
        description: row.get("description")?,
        files,
        status: word(row, "status", IntentStatus::parse)?,
        created_at: Timestamp::from_millis(row.get("created_at")?),
        updated_at: Timestamp::from_millis(row.get("updated_at")?),
    })
}

/// An intent about to be recorded; paths already normalized.
#[derive(Debug, Clone)]
pub struct NewIntent<'a> {
    pub session_id: &'a str,
    pub project: &'a str,
    pub intent_type: IntentType,
    pub target: Option<&'a str>,
    pub description: Option<&'a str>,
    pub files: &'a [String],
    pub now: Timestamp,
}

/// Which intents `intent_list` shows; absent fields do not filter.
#[derive(Debug, Clone, Copy)]
pub struct IntentFilter<'a> {
    pub project: Option<&'a str>,
    pub session_id: Option<&'a str>,
    /// Only intents of sessions in this group.
    pub group: Option<&'a str>,
    pub intent_type: Option<IntentType>,
    pub active_only: bool,
    pub limit: usize,
}

/// Which active intents of other live sessions a conflict check looks at.
#[derive(Debug, Clone, Copy)]
pub enum Overlap<'a> {
    /// Intents that touch this path.
    Path(&'a str),
    /// Intents with exactly this target.
    Target(&'a str),
    /// Every git operation (commit, push, rebase, merge).
    Git,
}

impl ReadTx<'_> {
    pub fn intent(&self, id: IntentId) -> Result<Option<Intent>, StoreError> {
        self.conn.query_opt(
            &format!("{SELECT} WHERE i.id = ?1"),
            &args![id.0],
            intent_from_row,
        )
    }

    pub fn intents(&self, filter: IntentFilter<'_>) -> Result<Vec<Intent>, StoreError> {
        let mut sql = format!("{SELECT} WHERE 1 = 1");
        let mut values = Vec::new();
        if filter.active_only {
            sql.push_str(&format!(" AND {ACTIVE}"));
        }
        for (column, value) in [
            ("i.project", filter.project),
            ("i.session_id", filter.session_id),
            ("s.group_name", filter.group),
            ("i.intent_type", filter.intent_type.map(IntentType::as_str)),
        ] {
            if let Some(value) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                values.push(value.arg());
            }
        }
        sql.push_str(" ORDER BY i.id DESC LIMIT ?");
        values.push(Arg::Int(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
        self.conn.query(&sql, &values, intent_from_row)
    }

    /// Active intents of other live sessions of `project` that overlap in the given way.
    /// Each variant is one indexed lookup, so the cost follows the overlap, not the table.
    pub fn overlapping_intents(
        &self,
        project: &str,
        except_session: &str,
        alive_since: Timestamp,
        overlap: Overlap<'_>,
    ) -> Result<Vec<Intent>, StoreError> {
        let others = "i.session_id <> ?2 AND s.last_heartbeat >= ?3";
        let (sql, key) = match overlap {
            Overlap::Path(path) => (
                format!(
                    "{SELECT} JOIN intent_files m ON m.intent_id = i.id
                     WHERE m.project = ?1 AND m.path = ?4 AND {others} AND {ACTIVE}"
                ),
                Some(path),
            ),
            Overlap::Target(target) => (
                format!(
                    "{SELECT} WHERE i.project = ?1 AND i.target = ?4 AND {others} AND {ACTIVE}"
                ),
                Some(target),
            ),
            Overlap::Git => (
                format!(
                    "{SELECT} WHERE i.project = ?1
                       AND i.intent_type IN ('git_commit', 'git_push', 'git_rebase', 'git_merge')
                       AND {others} AND {ACTIVE}"
                ),
                None,
            ),
        };
        let mut values = vec![
            project.arg(),
            except_session.arg(),
            Arg::Int(alive_since.as_millis()),
        ];
        values.extend(key.map(str::arg));
        self.conn.query(&sql, &values, intent_from_row)
    }
}

impl WriteTx<'_> {
    pub fn insert_intent(&self, intent: &NewIntent<'_>) -> Result<IntentId, StoreError> {
        let id: i64 = self.conn.query_one(
            "INSERT INTO intents
                (session_id, project, intent_type, target, description, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'announced', ?6, ?6)
             RETURNING id",
            &args![
                intent.session_id,
                intent.project,
                intent.intent_type.as_str(),
                intent.target,
                intent.description,
                intent.now.as_millis()
            ],
            |row| row.get(0),
        )?;
        for path in intent.files {
            self.conn.execute(
                "INSERT INTO intent_files (intent_id, project, path) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                &args![id, intent.project, path],
            )?;
        }
        Ok(IntentId(id))
    }

    /// Sets an intent's status (and description, when given).
    pub fn update_intent(
        &self,
        id: IntentId,
        status: IntentStatus,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE intents SET status = ?2, description = coalesce(?3, description), updated_at = ?4
             WHERE id = ?1",
            &args![id.0, status.as_str(), description, now.as_millis()],
        )? > 0)
    }

    pub fn delete_intent(&self, id: IntentId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM intents WHERE id = ?1", &args![id.0])?
            > 0)
    }

    /// Deletes completed and abandoned intents last changed before `before`.
    pub fn delete_finished_intents(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn.execute(
            "DELETE FROM intents
             WHERE status IN ('completed', 'abandoned') AND updated_at < ?1",
            &args![before.as_millis()],
        )
    }
}
