//! Access tokens: one per person or agent who uses a shared server, so that what they do is
//! recorded under their name and one of them can be shut out without changing everyone's
//! token. The database keeps each token's hash only; the token itself is shown once, when it
//! is added.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Coordinator, required_label};
use crate::error::{Error, Result};
use crate::ids::{new_token, token_hash};
use crate::model::AccessToken;
use crate::store::StoreError;

/// Longest token name: it is shown beside sessions and messages.
const MAX_TOKEN_NAME_CHARS: usize = 64;

/// What every access token starts with, so that secret scanners and people recognize one.
pub const ACCESS_TOKEN_PREFIX: &str = "mcpc_";

/// Most tokens of one request looked up: far more than a bearer token and a few cookies.
const MAX_SHOWN: usize = 64;

/// Whose a working token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    /// Stands for the token itself (its hash), in [`Coordinator::live_token_keys`]: a name may
    /// get a new token the moment its old one is revoked.
    pub key: String,
}

/// A token just added: the only time it is shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssuedToken {
    pub name: String,
    pub token: String,
}

impl Coordinator {
    /// Adds a token for `name` (a person or an agent). A name whose token was revoked may get
    /// a new one; a name with a working token is refused, so that no token is replaced by
    /// mistake.
    pub fn add_token(&self, name: &str) -> Result<IssuedToken> {
        let name = token_name(name)?;
        let secret = new_token().map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        let token = format!("{ACCESS_TOKEN_PREFIX}{secret}");
        let now = self.now();
        self.store.write(|tx| {
            if let Some(held) = tx.access_token(&name)?
                && held.revoked_at.is_none()
            {
                return Err(Error::invalid(
                    "name",
                    format!(
                        "'{name}' already has a token (added {}); revoke it first (token revoke {name}), then add a new one",
                        held.created_at
                    ),
                ));
            }
            tx.put_access_token(&name, &token_hash(&token), now)?;
            Ok::<_, Error>(())
        })?;
        Ok(IssuedToken { name, token })
    }

    /// Every token added, revoked ones too (never the tokens themselves).
    pub fn tokens(&self) -> Result<Vec<AccessToken>> {
        Ok(self.store.read(|tx| tx.access_tokens())?)
    }

    /// Stops `name`'s token from working; the servers refuse it from their next request.
    pub fn revoke_token(&self, name: &str) -> Result<AccessToken> {
        let name = token_name(name)?;
        let now = self.now();
        self.store.write(|tx| {
            if !tx.revoke_access_token(&name, now)? {
                let problem = match tx.access_token(&name)? {
                    Some(token) => format!(
                        "'{name}''s token was already revoked ({})",
                        token.revoked_at.unwrap_or(token.created_at)
                    ),
                    None => {
                        let names = tx.live_token_names()?;
                        format!(
                            "no token is named '{name}'; the working ones: {}",
                            if names.is_empty() {
                                "none".to_owned()
                            } else {
                                names.join(", ")
                            }
                        )
                    }
                };
                return Err(Error::invalid("name", problem));
            }
            tx.access_token(&name)?.ok_or_else(|| Error::NotFound {
                what: "token",
                id: name.clone(),
            })
        })
    }

    /// Whose working token the first of `shown` that is one is. Looked up in one read,
    /// however many are shown (a bearer token and cookies, some of them decoys).
    pub fn token_holder(&self, shown: &[&str]) -> Result<Option<Holder>> {
        let hashes: Vec<String> = shown
            .iter()
            .filter(|token| token.starts_with(ACCESS_TOKEN_PREFIX))
            .take(MAX_SHOWN)
            .map(|token| token_hash(token))
            .collect();
        if hashes.is_empty() {
            return Ok(None);
        }
        let found = self.store.read(|tx| tx.token_holder(&hashes))?;
        Ok(found.map(|(name, key)| Holder { name, key }))
    }

    /// Whether any token works: then every request to a server on this database needs one.
    pub fn tokens_in_use(&self) -> Result<bool> {
        Ok(self.store.read(|tx| tx.any_live_token())?)
    }

    /// Which tokens work now, by [`Holder::key`].
    pub fn live_token_keys(&self) -> Result<Vec<String>> {
        Ok(self.store.read(|tx| tx.live_token_hashes())?)
    }
}

/// A token's name: one word of letters, digits and `. _ @ -`, since people type it in
/// commands and read it beside what its holder did.
fn token_name(name: &str) -> Result<String> {
    let name = required_label("name", name)?;
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(Error::invalid(
            "name",
            format!("is longer than {MAX_TOKEN_NAME_CHARS} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        return Err(Error::invalid(
            "name",
            format!(
                "'{name}' contains '{c}'; use letters, digits and . _ @ - (e.g. alice, ci-bot, bob@laptop)"
            ),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use crate::coordinator::Coordinator;
    use crate::coordinator::testing::Harness;

    fn coordinator() -> Coordinator {
        Harness::new().coordinator
    }

    #[test]
    fn a_token_works_until_revoked() {
        let c = coordinator();
        let alice = c.add_token("alice").expect("added");
        assert!(alice.token.starts_with("mcpc_") && alice.token.len() == 69);
        let holder = |token: &str| {
            c.token_holder(&["mcpc_decoy", "not-ours", token])
                .expect("read")
                .map(|h| h.name)
        };
        assert_eq!(holder(&alice.token).as_deref(), Some("alice"));
        assert_eq!(holder("mcpc_guess"), None);
        let again = c.add_token("alice").expect_err("alice has one");
        assert!(again.to_string().contains("token revoke alice"), "{again}");
        let first_key = c.live_token_keys().expect("read");

        let revoked = c.revoke_token("alice").expect("revoked");
        assert!(revoked.revoked_at.is_some());
        assert_eq!(holder(&alice.token), None);
        assert!(c.live_token_keys().expect("read").is_empty());
        assert!(!c.tokens_in_use().expect("read"));
        let twice = c.revoke_token("alice").expect_err("already revoked");
        assert!(twice.to_string().contains("already revoked"), "{twice}");

        let renewed = c.add_token("alice").expect("a new token after revoking");
        assert_ne!(renewed.token, alice.token);
        assert_eq!(holder(&renewed.token).as_deref(), Some("alice"));
        assert_eq!(holder(&alice.token), None, "the old one stays dead");
        assert_ne!(
            c.live_token_keys().expect("read"),
            first_key,
            "the new token is told apart from the old one of the same name"
        );
        assert_eq!(c.tokens().expect("list").len(), 1);
    }

    #[test]
    fn names_are_one_plain_word() {
        let c = coordinator();
        for bad in ["", "two words", "a/b", "x\u{200b}y", &"n".repeat(65)] {
            let refused = c.add_token(bad).expect_err(bad);
            assert!(refused.to_string().contains("`name`"), "{refused}");
        }
        assert!(c.add_token("bob@laptop").is_ok());
        let unknown = c.revoke_token("carol").expect_err("no such token");
        assert!(unknown.to_string().contains("bob@laptop"), "{unknown}");
    }
}
