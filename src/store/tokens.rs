//! Statements on `access_tokens`: the tokens people and agents reach a shared server with,
//! kept as hashes.

use super::sql::{Row, args};
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

    /// The name of the unrevoked token with this hash.
    pub fn token_holder(&self, hash: &str) -> Result<Option<String>, StoreError> {
        self.conn.query_opt(
            "SELECT name FROM access_tokens WHERE hash = ?1 AND revoked_at IS NULL",
            &args![hash],
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
