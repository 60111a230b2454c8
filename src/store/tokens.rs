//! Statements on `access_tokens`: the tokens people and agents reach a shared server with,
//! kept as hashes.

use super::sql::{Arg, IntoArg, Row, args};
use super::{ReadTx, StoreError, WriteTx};
use crate::clock::Timestamp;
use crate::model::AccessToken;

fn token_from_row(row: &Row<'_>) -> Result<AccessToken, StoreError> {
    let revoked: Option<i64> = row.get("revoked_at")?;
    Ok(AccessToken {
        name: row.get("name")?,
        created_at: Timestamp::from_millis(row.get("created_at")?),
        revoked_at: revoked.map(Timestamp::from_millis),
    })
}

impl ReadTx<'_> {
    /// Every token ever added, revoked ones too, by name.
    pub fn access_tokens(&self) -> Result<Vec<AccessToken>, StoreError> {
        self.conn.query(
            "SELECT name, created_at, revoked_at FROM access_tokens ORDER BY name",
            &[],
            token_from_row,
        )
    }

    pub fn access_token(&self, name: &str) -> Result<Option<AccessToken>, StoreError> {
        self.conn.query_opt(
            "SELECT name, created_at, revoked_at FROM access_tokens WHERE name = ?1",
            &args![name],
            token_from_row,
        )
    }

    /// The first of `hashes` (in their order, at least one) that is an unrevoked token's, with
    /// its name.
    pub fn token_holder(&self, hashes: &[String]) -> Result<Option<(String, String)>, StoreError> {
        let marks: Vec<String> = (1..=hashes.len()).map(|n| format!("?{n}")).collect();
        let values: Vec<Arg<'_>> = hashes.iter().map(|h| h.as_str().arg()).collect();
        let found: Vec<(String, String)> = self.conn.query(
            &format!(
                "SELECT name, hash FROM access_tokens
                 WHERE revoked_at IS NULL AND hash IN ({})",
                marks.join(", ")
            ),
            &values,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(hashes
            .iter()
            .find_map(|hash| found.iter().find(|(_, h)| h == hash).cloned()))
    }

    /// Whether any token works: one row read at most.
    pub fn any_live_token(&self) -> Result<bool, StoreError> {
        let found: i64 = self.conn.query_one(
            "SELECT count(*) FROM
                (SELECT 1 FROM access_tokens WHERE revoked_at IS NULL LIMIT 1) AS live",
            &[],
            |row| row.get(0),
        )?;
        Ok(found > 0)
    }

    /// The hashes of the unrevoked tokens.
    pub fn live_token_hashes(&self) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT hash FROM access_tokens WHERE revoked_at IS NULL",
            &[],
            |row| row.get(0),
        )
    }

    /// The names of the unrevoked tokens.
    pub fn live_token_names(&self) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT name FROM access_tokens WHERE revoked_at IS NULL ORDER BY name",
            &[],
            |row| row.get(0),
        )
    }
}

impl WriteTx<'_> {
    /// Stores `hash` as `name`'s token, over a revoked one of the same name.
    pub fn put_access_token(
        &self,
        name: &str,
        hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO access_tokens (name, hash, created_at, revoked_at)
             VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (name) DO UPDATE
                SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL",
            &args![name, hash, now.as_millis()],
        )?;
        Ok(())
    }

    /// Marks `name`'s token revoked; false when it has none, or it was already revoked.
    pub fn revoke_access_token(&self, name: &str, now: Timestamp) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE access_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            &args![name, now.as_millis()],
        )?;
        Ok(changed > 0)
    }
}
